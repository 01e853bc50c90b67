//! Training sequences, prepared in Rust before any GPU time is spent: SFT conversations
//! rendered with the model's own chat template and masked so that **only assistant tokens are
//! trained**, and DAPT texts packed into fixed-length sequences trained on every token.
//!
//! The mask does not rely on `{% generation %}` markers (most templates lack them). For each
//! assistant turn *i* the template renders the conversation up to *i* with the generation
//! prompt opened (`P`) and up to and including *i* (`Q`); the assistant's span is `Q[len(P)..]`
//! — its content and the template's end-of-turn marker, so the model learns to stop. A template
//! that renders earlier turns differently once later ones exist cannot be masked this way and
//! is refused with that reason. Tokens are trained when they *start* inside a span (byte
//! offsets from the tokenizer), so the role header before the content is never trained.

use std::path::Path;

use serde::Serialize;
use tokenizers::Tokenizer;
use vazhi_core::engine::template::{self, ChatTemplate};
use vazhi_core::engine::{Message, Role};

use crate::hf::{self, catch_tokenizer_panic, load_chat_template, token_content};
use crate::hf::{TOKENIZER_CONFIG_JSON, TOKENIZER_JSON};

/// The label of a position that is not trained (PyTorch's `ignore_index`).
pub const IGNORE: i64 = -100;

/// One training sequence.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Sequence {
    /// Token ids.
    pub input_ids: Vec<u32>,
    /// The id to predict at each position, or [`IGNORE`]. Labels are *not* shifted: the
    /// trainer shifts them, as Hugging Face models do.
    pub labels: Vec<i64>,
}

impl Sequence {
    /// Positions that are trained.
    pub fn trained(&self) -> usize {
        self.labels.iter().filter(|&&l| l != IGNORE).count()
    }
}

/// Why sequences could not be prepared.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DatasetError {
    /// A model file could not be read.
    #[error(transparent)]
    Hf(#[from] hf::HfError),
    /// The tokenizer could not be loaded or run.
    #[error("tokenizer: {0}")]
    Tokenizer(String),
    /// The model directory has no chat template (SFT needs one).
    #[error("{0}: no chat template (tokenizer_config.json chat_template or chat_template.jinja); SFT renders conversations with the model's own template")]
    NoTemplate(std::path::PathBuf),
    /// The template failed to render a conversation.
    #[error("chat template: {0}")]
    Template(String),
    /// The template is not prefix-consistent, so turns cannot be located.
    #[error("the chat template renders earlier turns differently once later turns exist ({0}); assistant-only masking needs a prefix-consistent template")]
    NotPrefixConsistent(String),
    /// The conversation has no assistant turn.
    #[error("the conversation has no assistant turn to train")]
    NoAssistantTurn,
}

/// A model's tokenizer and chat template, ready to render and tokenize training data.
#[derive(Debug)]
pub struct Formatter {
    tokenizer: Tokenizer,
    /// The same tokenizer with special-token matching off: how message contents are read, so
    /// that `<|im_start|>` typed in a message is text, as the engine reads it (issue 18).
    plain: Tokenizer,
    template: Option<ChatTemplate>,
    bos: Option<(String, u32)>,
    eos: Option<(String, u32)>,
    add_bos: bool,
}

impl Formatter {
    /// Loads `tokenizer.json`, `tokenizer_config.json` and the chat template of a Hugging Face
    /// model directory.
    pub fn open(dir: &Path) -> Result<Formatter, DatasetError> {
        let path = dir.join(TOKENIZER_JSON);
        let tokenizer = catch_tokenizer_panic("loading", || Tokenizer::from_file(&path))
            .map_err(DatasetError::Tokenizer)?
            .map_err(|e| DatasetError::Tokenizer(format!("{}: {e}", path.display())))?;
        let config = hf::read_json_if_exists(&dir.join(TOKENIZER_CONFIG_JSON))?;
        let special = |key: &str| {
            let text = config
                .as_ref()?
                .get(key)
                .and_then(token_content)?
                .to_owned();
            let id = tokenizer.token_to_id(&text)?;
            Some((text, id))
        };
        let (bos, eos) = (special("bos_token"), special("eos_token"));
        let add_bos = config
            .as_ref()
            .and_then(|c| c.get("add_bos_token"))
            .and_then(serde_json::Value::as_bool)
            .unwrap_or(false);
        let template =
            load_chat_template(dir, config.as_ref().and_then(serde_json::Value::as_object))
                .map_err(|e| DatasetError::Template(e.to_string()))?
                .and_then(|found| found.template.main().map(str::to_owned))
                .map(|source| {
                    let text = |t: &Option<(String, u32)>| {
                        t.as_ref().map_or("", |(s, _)| s.as_str()).to_owned()
                    };
                    ChatTemplate::new(&source, &text(&bos), &text(&eos))
                })
                .transpose()
                .map_err(|e| DatasetError::Template(e.to_string()))?;
        let mut plain = tokenizer.clone();
        plain.set_encode_special_tokens(true);
        Ok(Formatter {
            tokenizer,
            plain,
            template,
            bos,
            eos,
            add_bos,
        })
    }

    /// The tokenizer.
    pub fn tokenizer(&self) -> &Tokenizer {
        &self.tokenizer
    }

    /// Renders `messages` with the chat template and labels only the assistant turns (their
    /// content and end-of-turn marker); see the module docs.
    pub fn sft_sequence(&self, messages: &[Message]) -> Result<Sequence, DatasetError> {
        let template = self
            .template
            .as_ref()
            .ok_or_else(|| DatasetError::NoTemplate(".".into()))?;
        let render = |upto: usize, open: bool| {
            template
                .render(&messages[..upto], open)
                .map_err(|e| DatasetError::Template(e.to_string()))
        };
        let full = render(messages.len(), false)?;
        let mut spans = Vec::new();
        for (i, message) in messages.iter().enumerate() {
            if message.role != Role::Assistant {
                continue;
            }
            let prompt = render(i, true)?;
            let with_answer = render(i + 1, false)?;
            if !with_answer.starts_with(&prompt) || !full.starts_with(&with_answer) {
                return Err(DatasetError::NotPrefixConsistent(format!("turn {i}")));
            }
            spans.push(prompt.len()..with_answer.len());
        }
        if spans.is_empty() {
            return Err(DatasetError::NoAssistantTurn);
        }
        let encoding = self.encode_rendered(template, messages, false, &full)?;
        let mut input_ids = Vec::with_capacity(encoding.len() + 1);
        let mut labels = Vec::with_capacity(encoding.len() + 1);
        if let Some((_, bos)) = self.bos.as_ref().filter(|_| self.add_bos) {
            if encoding.first().map(|(id, _)| id) != Some(bos) {
                input_ids.push(*bos);
                labels.push(IGNORE);
            }
        }
        for (id, start) in encoding {
            let trained = spans.iter().any(|s| s.contains(&start));
            input_ids.push(id);
            labels.push(if trained { i64::from(id) } else { IGNORE });
        }
        Ok(Sequence { input_ids, labels })
    }

    /// The token ids a model reads before answering `messages`: the conversation rendered with
    /// the generation prompt opened, BOS where the model adds one.
    pub fn prompt_ids(&self, messages: &[Message]) -> Result<Vec<u32>, DatasetError> {
        let template = self
            .template
            .as_ref()
            .ok_or_else(|| DatasetError::NoTemplate(".".into()))?;
        let text = template
            .render(messages, true)
            .map_err(|e| DatasetError::Template(e.to_string()))?;
        let encoding = self.encode_rendered(template, messages, true, &text)?;
        let mut ids = Vec::with_capacity(encoding.len() + 1);
        if let Some((_, bos)) = self.bos.as_ref().filter(|_| self.add_bos) {
            if encoding.first().map(|(id, _)| id) != Some(bos) {
                ids.push(*bos);
            }
        }
        ids.extend(encoding.into_iter().map(|(id, _)| id));
        Ok(ids)
    }

    /// The ids that end an answer: EOS and the special tokens the chat template closes an
    /// assistant turn with (`<|im_end|>`, `<end_of_turn>`…), found by rendering a one-turn
    /// conversation.
    pub fn stop_ids(&self) -> Result<Vec<u32>, DatasetError> {
        let mut stops: Vec<u32> = self.eos.iter().map(|(_, id)| *id).collect();
        if self.template.is_some() {
            let turn = [
                Message::new(Role::User, "1".to_owned()),
                Message::new(Role::Assistant, "2".to_owned()),
            ];
            let sequence = self.sft_sequence(&turn)?;
            let specials = self.tokenizer.get_added_tokens_decoder();
            for (&id, &label) in sequence.input_ids.iter().zip(&sequence.labels) {
                let special = specials.get(&id).is_some_and(|t| t.special);
                if label != IGNORE && special && !stops.contains(&id) {
                    stops.push(id);
                }
            }
        }
        Ok(stops)
    }

    /// Text of generated ids, special tokens kept (a leaked template token must show), one
    /// trailing stop token removed.
    pub fn decode_answer(&self, ids: &[u32], stops: &[u32]) -> Result<String, DatasetError> {
        let ids = match ids.split_last() {
            Some((last, rest)) if stops.contains(last) => rest,
            _ => ids,
        };
        catch_tokenizer_panic("decoding", || self.tokenizer.decode(ids, false))
            .map_err(DatasetError::Tokenizer)?
            .map_err(|e| DatasetError::Tokenizer(e.to_string()))
    }

    /// Packs plain texts into sequences of exactly `seq_len` tokens (the last may be shorter):
    /// each text as the model reads it (BOS where it adds one) followed by EOS, every token
    /// trained. Texts run on across sequence boundaries, as in pre-training.
    pub fn dapt_sequences(
        &self,
        texts: impl IntoIterator<Item = impl AsRef<str>>,
        seq_len: usize,
    ) -> Result<Vec<Sequence>, DatasetError> {
        let seq_len = seq_len.max(2);
        let mut stream: Vec<u32> = Vec::new();
        for text in texts {
            if let Some((_, bos)) = self.bos.as_ref().filter(|_| self.add_bos) {
                stream.push(*bos);
            }
            stream.extend(self.encode(text.as_ref())?.into_iter().map(|(id, _)| id));
            if let Some((_, eos)) = &self.eos {
                stream.push(*eos);
            }
        }
        Ok(stream
            .chunks(seq_len)
            // A one-token tail predicts nothing (labels are shifted by one).
            .filter(|chunk| chunk.len() >= 2)
            .map(|chunk| Sequence {
                input_ids: chunk.to_vec(),
                labels: chunk.iter().map(|&id| i64::from(id)).collect(),
            })
            .collect())
    }

    /// [`encode`](Self::encode) of `text`, the template's rendering of `messages`, with the
    /// messages' contents read as plain text — as the engine reads a prompt: when no content
    /// holds a special token's text the whole text is encoded at once, otherwise piece by
    /// piece (`vazhi_core::engine::template::content_spans`).
    fn encode_rendered(
        &self,
        template: &ChatTemplate,
        messages: &[Message],
        open: bool,
        text: &str,
    ) -> Result<Vec<(u32, usize)>, DatasetError> {
        let spans = template
            .render(&template::with_placeholders(messages), open)
            .ok()
            .and_then(|placeholders| template::content_spans(text, &placeholders, messages))
            .unwrap_or_default();
        let mut specials_in_content = false;
        for span in &spans {
            let piece = &text[span.clone()];
            specials_in_content |= self.encode_with(&self.tokenizer, piece)?
                != self.encode_with(&self.plain, piece)?;
        }
        if !specials_in_content {
            return self.encode(text);
        }
        let mut out = Vec::new();
        for (range, content) in template::pieces(text, &spans) {
            let tokenizer = if content {
                &self.plain
            } else {
                &self.tokenizer
            };
            let start = range.start;
            let ids = self.encode_with(tokenizer, &text[range])?;
            out.extend(ids.into_iter().map(|(id, offset)| (id, start + offset)));
        }
        Ok(out)
    }

    /// Token ids and the byte offset where each starts (special tokens in the text are
    /// matched as such; nothing is added).
    fn encode(&self, text: &str) -> Result<Vec<(u32, usize)>, DatasetError> {
        self.encode_with(&self.tokenizer, text)
    }

    fn encode_with(
        &self,
        tokenizer: &Tokenizer,
        text: &str,
    ) -> Result<Vec<(u32, usize)>, DatasetError> {
        if text.is_empty() {
            return Ok(Vec::new());
        }
        let encoding = catch_tokenizer_panic("encoding", || tokenizer.encode(text, false))
            .map_err(DatasetError::Tokenizer)?
            .map_err(|e| DatasetError::Tokenizer(e.to_string()))?;
        Ok(encoding
            .get_ids()
            .iter()
            .zip(encoding.get_offsets())
            .map(|(&id, &(start, _))| (id, start))
            .collect())
    }
}
