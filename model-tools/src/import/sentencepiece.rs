//! Writes a SentencePiece `tokenizer.model` (a `sentencepiece.ModelProto` protobuf) for a
//! SentencePiece GGUF vocabulary; the wire format is encoded by [`crate::hf::sentencepiece`],
//! next to the reader `convert` uses.
//!
//! Pieces keep their GGUF ids, texts and scores. Types are mapped back to what the original
//! `tokenizer.model` had: llama.cpp's converter marks every token listed in
//! `added_tokens_decoder` as CONTROL (or USER_DEFINED with `▁` written as a space), while a
//! SentencePiece model has only bos/eos/pad as CONTROL, one UNKNOWN piece, and matches
//! USER_DEFINED pieces in text. So the unknown token becomes UNKNOWN, bos/eos/pad stay
//! CONTROL, other control tokens become USER_DEFINED (matched in text, as llama.cpp and
//! Hugging Face match them), and user-defined pieces get their spaces back as `▁`.

use std::collections::HashSet;

use super::tokenizer::{
    GgufVocab, VocabKind, SPM_SPACE, TOKEN_BYTE, TOKEN_CONTROL, TOKEN_UNKNOWN, TOKEN_UNUSED,
    TOKEN_USER_DEFINED,
};
use super::ImportError;
use crate::hf::sentencepiece::{Message, ModelType, Piece, PieceType};

/// The pieces of `vocab` with SentencePiece types and texts (see the module docs).
pub fn pieces(vocab: &GgufVocab) -> Result<Vec<Piece>, ImportError> {
    let VocabKind::Spm { scores, .. } = &vocab.kind else {
        return Err(ImportError::Tokenizer {
            problem: "tokenizer.model is only written for SentencePiece vocabularies".into(),
        });
    };
    let reserved = [vocab.bos, vocab.eos, vocab.pad];
    let mut seen: HashSet<&str> = vocab.tokens.iter().map(String::as_str).collect();
    let mut out = Vec::with_capacity(vocab.tokens.len());
    for (i, text) in vocab.tokens.iter().enumerate() {
        if text.is_empty() {
            return Err(ImportError::Tokenizer {
                problem: format!("token {i} is empty; SentencePiece pieces must not be"),
            });
        }
        let id = Some(i as u32);
        let gguf_type = vocab.types.get(i).copied().unwrap_or(1);
        let kind = if id == vocab.unk || gguf_type == TOKEN_UNKNOWN {
            PieceType::Unknown
        } else if reserved.contains(&id) {
            PieceType::Control
        } else {
            match gguf_type {
                TOKEN_CONTROL | TOKEN_USER_DEFINED => PieceType::UserDefined,
                TOKEN_UNUSED => PieceType::Unused,
                TOKEN_BYTE => PieceType::Byte,
                _ => PieceType::Normal,
            }
        };
        let mut piece = text.clone();
        if kind == PieceType::UserDefined && text.contains(' ') {
            let escaped = text.replace(' ', SPM_SPACE);
            if !seen.contains(escaped.as_str()) {
                piece = escaped;
            }
        }
        out.push(Piece {
            piece,
            score: scores.get(i).copied().unwrap_or(0.0),
            kind,
        });
    }
    // Escaping may not create duplicates: each escaped text was checked against the GGUF
    // texts, but two user-defined tokens could escape to the same text.
    seen.clear();
    for p in &out {
        if !seen.insert(p.piece.as_str()) {
            return Err(ImportError::Tokenizer {
                problem: format!("piece {:?} occurs twice", p.piece),
            });
        }
    }
    if !out.iter().any(|p| p.kind == PieceType::Unknown) {
        return Err(ImportError::Tokenizer {
            problem: "the vocabulary has no unknown token, which SentencePiece requires".into(),
        });
    }
    Ok(out)
}

/// The serialised `ModelProto` for `vocab` (a BPE model with byte fallback when the
/// vocabulary has byte pieces, no text normalisation beyond whitespace escaping).
pub fn model_proto(vocab: &GgufVocab) -> Result<Vec<u8>, ImportError> {
    let pieces = pieces(vocab)?;
    let VocabKind::Spm {
        add_space_prefix, ..
    } = &vocab.kind
    else {
        return Err(ImportError::Tokenizer {
            problem: "tokenizer.model is only written for SentencePiece vocabularies".into(),
        });
    };
    let mut model = Message::default();
    for p in &pieces {
        let mut m = Message::default();
        m.bytes(1, p.piece.as_bytes());
        m.float(2, p.score);
        m.uint(3, p.kind.to_proto());
        model.message(1, &m);
    }

    let id_of = |kind: PieceType| pieces.iter().position(|p| p.kind == kind);
    let as_i32 = |id: Option<u32>| id.and_then(|v| i32::try_from(v).ok()).unwrap_or(-1);
    let unk = id_of(PieceType::Unknown).and_then(|v| i32::try_from(v).ok());
    let text = |id: i32| usize::try_from(id).ok().map(|i| pieces[i].piece.as_str());
    let mut trainer = Message::default();
    trainer.uint(3, ModelType::Bpe.to_proto());
    trainer.int32(4, i32::try_from(pieces.len()).unwrap_or(i32::MAX));
    trainer.boolean(35, id_of(PieceType::Byte).is_some());
    let ids = [
        (40, 45, unk.unwrap_or(-1)),
        (41, 46, as_i32(vocab.bos)),
        (42, 47, as_i32(vocab.eos)),
        (43, 48, as_i32(vocab.pad)),
    ];
    for (id_field, piece_field, id) in ids {
        trainer.int32(id_field, id);
        if let Some(t) = text(id) {
            trainer.bytes(piece_field, t.as_bytes());
        }
    }
    model.message(2, &trainer);

    let mut normalizer = Message::default();
    normalizer.bytes(1, b"identity");
    normalizer.boolean(3, *add_space_prefix);
    normalizer.boolean(4, false);
    normalizer.boolean(5, true);
    model.message(3, &normalizer);
    Ok(model.into_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hf::sentencepiece::{Reader, Value as Field};
    use vazhi_gguf::{Array, Metadata};

    /// The `(field, value)` pairs of one message, read with the model reader's decoder.
    fn parse(b: &[u8]) -> Vec<(u32, Field<'_>)> {
        let mut reader = Reader::new(b);
        let mut out = Vec::new();
        while let Some((field, value)) = reader.next_field().expect("valid protobuf") {
            out.push((u32::try_from(field).expect("field number"), value));
        }
        out
    }

    fn vocab() -> GgufVocab {
        let mut m = Metadata::new();
        m.insert("tokenizer.ggml.model", "llama");
        m.insert(
            "tokenizer.ggml.tokens",
            Array::from(vec![
                "<pad>", "<eos>", "<bos>", "<unk>", "<mask>", "  ", "<0x0A>", "▁a",
            ]),
        );
        m.insert(
            "tokenizer.ggml.token_type",
            Array::from(vec![3i32, 3, 3, 3, 3, 4, 6, 1]),
        );
        m.insert(
            "tokenizer.ggml.scores",
            Array::from(vec![
                -1000f32, -1000.0, -1000.0, -1000.0, -1000.0, -1000.0, 0.0, -7.5,
            ]),
        );
        m.insert("tokenizer.ggml.bos_token_id", 2u32);
        m.insert("tokenizer.ggml.eos_token_id", 1u32);
        m.insert("tokenizer.ggml.unknown_token_id", 3u32);
        m.insert("tokenizer.ggml.padding_token_id", 0u32);
        m.insert("tokenizer.ggml.add_space_prefix", false);
        GgufVocab::from_metadata(&m).expect("vocab")
    }

    #[test]
    fn model_proto_round_trips_through_a_decoder() {
        let bytes = model_proto(&vocab()).expect("proto");
        let top = parse(&bytes);
        let pieces: Vec<(String, f32, u64)> = top
            .iter()
            .filter(|(f, _)| *f == 1)
            .map(|(_, v)| {
                let Field::Bytes(b) = v else { panic!("piece") };
                let fields = parse(b);
                let mut p = (String::new(), f32::NAN, 1);
                for (f, v) in fields {
                    match (f, v) {
                        (1, Field::Bytes(t)) => p.0 = String::from_utf8(t.to_vec()).expect("utf8"),
                        (2, Field::Fixed32(bits)) => p.1 = f32::from_bits(bits),
                        (3, Field::Varint(t)) => p.2 = t,
                        other => panic!("unexpected {other:?}"),
                    }
                }
                p
            })
            .collect();
        let want: Vec<(String, f32, u64)> = vec![
            ("<pad>".into(), -1000.0, 3),
            ("<eos>".into(), -1000.0, 3),
            ("<bos>".into(), -1000.0, 3),
            ("<unk>".into(), -1000.0, 2),
            ("<mask>".into(), -1000.0, 4),
            ("▁▁".into(), -1000.0, 4),
            ("<0x0A>".into(), 0.0, 6),
            ("▁a".into(), -7.5, 1),
        ];
        assert_eq!(pieces, want);

        let sub = |field: u32| {
            let Some((_, Field::Bytes(b))) = top.iter().find(|(f, _)| *f == field) else {
                panic!("field {field}")
            };
            parse(b)
        };
        let trainer = sub(2);
        let get = |fields: &[(u32, Field<'_>)], n: u32| {
            fields.iter().find(|(f, _)| *f == n).map(|(_, v)| match v {
                Field::Varint(x) => *x,
                _ => panic!("field {n} not a varint"),
            })
        };
        assert_eq!(get(&trainer, 3), Some(2), "BPE");
        assert_eq!(get(&trainer, 4), Some(8), "vocab size");
        assert_eq!(get(&trainer, 35), Some(1), "byte fallback");
        assert_eq!(get(&trainer, 40), Some(3), "unk id");
        assert_eq!(get(&trainer, 41), Some(2), "bos id");
        assert_eq!(get(&trainer, 42), Some(1), "eos id");
        assert_eq!(get(&trainer, 43), Some(0), "pad id");
        assert!(trainer.contains(&(46, Field::Bytes(b"<bos>"))));
        let normalizer = sub(3);
        assert!(normalizer.contains(&(1, Field::Bytes(b"identity"))));
        assert_eq!(get(&normalizer, 3), Some(0), "no dummy prefix");
        assert_eq!(get(&normalizer, 4), Some(0), "keep whitespace");
        assert_eq!(get(&normalizer, 5), Some(1), "escape whitespace");
    }

    #[test]
    fn a_vocabulary_without_unknown_is_refused() {
        let mut v = vocab();
        // Without unknown_token_id, <unk> (GGUF type CONTROL) is an ordinary control token.
        v.unk = None;
        let err = model_proto(&v).expect_err("no unk");
        assert!(err.to_string().contains("unknown"), "{err}");
    }
}
