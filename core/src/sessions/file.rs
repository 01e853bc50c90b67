//! The session file's layout: a plaintext header saying what the saved KV state needs (never
//! user text), then the conversation's history and its KV state, each sealed with AES-256-GCM
//! under the app's key.
//!
//! ```text
//! "VZHISESS"  format (u32 LE)  header length (u32 LE)  header (JSON)
//! history: AES-GCM(key, history nonce, JSON {system, messages})
//! state:   AES-GCM(key, state nonce,   token count (u32 LE), tokens (i32 LE), KV bytes)
//! ```
//!
//! The history's associated data binds every byte before it (magic, format and header: the
//! model, llama.cpp, context and template it was saved with, and a random file id); the
//! state's binds every byte before it too (header and sealed history), so a state is only
//! ever read with its own history and header. A file whose state fails (damage at its end)
//! still gives its history back; one whose header was altered gives nothing.

use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::engine::{Message, Role, StateFingerprint, ToolCall};
use crate::feedback::crypto::{random, Sealer, NONCE_LEN, TAG_LEN};
use crate::feedback::Key;
use crate::fsutil::{from_hex, hex};

use super::RestoreIssue;

/// The file's first bytes.
pub const MAGIC: &[u8; 8] = b"VZHISESS";
/// The format this build writes and reads.
pub const FORMAT: u32 = 1;
/// Magic, format and header length.
pub const PREAMBLE_LEN: usize = 16;
/// Largest header accepted.
pub const MAX_HEADER_BYTES: usize = 4096;
/// Largest sealed history accepted (a longer conversation is refused at save).
pub const MAX_HISTORY_BYTES: u64 = 512 << 10;

/// The plaintext header: what the state needs, where the sealed parts are. No user text.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Header {
    /// What the saved KV state depends on.
    #[serde(flatten)]
    pub fingerprint: StateFingerprint,
    /// The key (in the app's key provider) both parts are sealed with.
    pub key_id: String,
    /// Random per file, bound into the history's associated data.
    pub file_id: String,
    /// When the file was written, Unix ms.
    pub created_at_ms: i64,
    /// The history's nonce, hex.
    pub history_nonce: String,
    /// Bytes of the sealed history (tag included).
    pub history_bytes: u64,
    /// The state's nonce, hex; `None` when no state was saved.
    pub state_nonce: Option<String>,
    /// Bytes of the sealed state (tag included); 0 when none.
    pub state_bytes: u64,
}

/// The conversation's text, as sealed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SavedHistory {
    /// The system prompt the conversation ran with.
    pub system: Option<String>,
    /// Its turns.
    pub messages: Vec<SavedMessage>,
}

/// One turn, in a shape that reads back exactly (a [`Message`] serialises its calls the way
/// templates want them).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SavedMessage {
    role: Role,
    content: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    tool_calls: Vec<ToolCall>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    tool_call_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    name: Option<String>,
}

impl From<Message> for SavedMessage {
    fn from(m: Message) -> Self {
        Self {
            role: m.role,
            content: m.content,
            tool_calls: m.tool_calls,
            tool_call_id: m.tool_call_id,
            name: m.name,
        }
    }
}

impl From<SavedMessage> for Message {
    fn from(m: SavedMessage) -> Self {
        let mut message = Message::new(m.role, m.content);
        message.tool_calls = m.tool_calls;
        message.tool_call_id = m.tool_call_id;
        message.name = m.name;
        message
    }
}

/// What goes into a file.
pub struct Contents<'a> {
    /// What the state depends on.
    pub fingerprint: &'a StateFingerprint,
    /// The key's id in the app's key provider.
    pub key_id: &'a str,
    /// The key.
    pub key: &'a Key,
    /// The history as JSON.
    pub history: &'a [u8],
    /// The cached tokens and the KV state bytes, if saved.
    pub state: Option<(&'a [i32], &'a [u8])>,
    /// Now, Unix ms.
    pub now_ms: i64,
}

impl std::fmt::Debug for Contents<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the history or the state: they are the conversation.
        f.debug_struct("Contents")
            .field("fingerprint", self.fingerprint)
            .field("key_id", &self.key_id)
            .field("history_bytes", &self.history.len())
            .field("state_tokens", &self.state.map(|(t, _)| t.len()))
            .finish()
    }
}

fn history_aad(preamble_and_header: &[u8]) -> Vec<u8> {
    let mut aad = b"vazhi-session\0history\0".to_vec();
    aad.extend_from_slice(preamble_and_header);
    aad
}

fn state_aad(before_state: &[u8]) -> Vec<u8> {
    let mut aad = b"vazhi-session\0state\0".to_vec();
    aad.extend_from_slice(before_state);
    aad
}

/// Builds the whole file. Fails only when the OS has no random numbers.
pub fn seal(contents: &Contents<'_>) -> Result<Vec<u8>, getrandom::Error> {
    let sealer = Sealer::new(contents.key);
    let history_nonce = random::<NONCE_LEN>()?;
    let state_nonce = match contents.state {
        Some(_) => Some(random::<NONCE_LEN>()?),
        None => None,
    };
    let header = Header {
        fingerprint: contents.fingerprint.clone(),
        key_id: contents.key_id.to_owned(),
        file_id: hex(&random::<16>()?),
        created_at_ms: contents.now_ms,
        history_nonce: hex(&history_nonce),
        history_bytes: (contents.history.len() + TAG_LEN) as u64,
        state_nonce: state_nonce.map(|n| hex(&n)),
        state_bytes: contents.state.map_or(0, |(tokens, kv)| {
            (4 + tokens.len() * 4 + kv.len() + TAG_LEN) as u64
        }),
    };
    let header_json = serde_json::to_vec(&header).unwrap_or_default();
    let mut out = Vec::with_capacity(
        PREAMBLE_LEN
            + header_json.len()
            + header.history_bytes as usize
            + header.state_bytes as usize,
    );
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&FORMAT.to_le_bytes());
    out.extend_from_slice(&(header_json.len() as u32).to_le_bytes());
    out.extend_from_slice(&header_json);
    let sealed_history = sealer.seal(&history_nonce, &history_aad(&out), contents.history);
    out.extend_from_slice(&sealed_history);
    if let (Some((tokens, kv)), Some(nonce)) = (contents.state, state_nonce) {
        let mut plain = Zeroizing::new(Vec::with_capacity(4 + tokens.len() * 4 + kv.len()));
        plain.extend_from_slice(&(tokens.len() as u32).to_le_bytes());
        for t in tokens {
            plain.extend_from_slice(&t.to_le_bytes());
        }
        plain.extend_from_slice(kv);
        let sealed = sealer.seal(&nonce, &state_aad(&out), &plain);
        out.extend_from_slice(&sealed);
    }
    Ok(out)
}

/// The front of a file: its header and sealed history, read and checked for shape.
#[derive(Debug)]
pub struct Front {
    /// The parsed header.
    pub header: Header,
    /// Every byte up to the state (preamble, header, sealed history).
    pub bytes: Vec<u8>,
}

impl Front {
    /// Where the sealed state starts.
    pub fn state_offset(&self) -> u64 {
        self.bytes.len() as u64
    }

    /// The file's whole length according to its header.
    pub fn expected_len(&self) -> u64 {
        self.state_offset().saturating_add(self.header.state_bytes)
    }
}

/// Reads the preamble, header and sealed history from `read` (which yields at most
/// `file_len` bytes), checking shapes only: nothing is authenticated yet.
pub fn read_front(read: &mut impl std::io::Read, file_len: u64) -> Result<Front, RestoreIssue> {
    let mut preamble = [0u8; PREAMBLE_LEN];
    if file_len < PREAMBLE_LEN as u64 {
        // A cut session file, or something else entirely.
        let start = &mut preamble[..file_len as usize];
        read_exact(read, start)?;
        let n = start.len().min(MAGIC.len());
        return Err(if start[..n] == MAGIC[..n] {
            RestoreIssue::Truncated
        } else {
            RestoreIssue::NotASessionFile
        });
    }
    read_exact(read, &mut preamble)?;
    if &preamble[..8] != MAGIC {
        return Err(RestoreIssue::NotASessionFile);
    }
    let format = u32::from_le_bytes(preamble[8..12].try_into().unwrap_or_default());
    if format != FORMAT {
        return Err(RestoreIssue::UnsupportedFormat { found: format });
    }
    let header_len = u32::from_le_bytes(preamble[12..16].try_into().unwrap_or_default()) as usize;
    if header_len == 0 || header_len > MAX_HEADER_BYTES {
        return Err(RestoreIssue::Damaged);
    }
    if file_len < (PREAMBLE_LEN + header_len) as u64 {
        return Err(RestoreIssue::Truncated);
    }
    let mut bytes = preamble.to_vec();
    bytes.resize(PREAMBLE_LEN + header_len, 0);
    read_exact(read, &mut bytes[PREAMBLE_LEN..])?;
    let header: Header =
        serde_json::from_slice(&bytes[PREAMBLE_LEN..]).map_err(|_| RestoreIssue::Damaged)?;
    if header.history_bytes < TAG_LEN as u64 || header.history_bytes > MAX_HISTORY_BYTES {
        return Err(RestoreIssue::Damaged);
    }
    let history_end = bytes.len() as u64 + header.history_bytes;
    if file_len < history_end {
        return Err(RestoreIssue::Truncated);
    }
    let start = bytes.len();
    bytes.resize(history_end as usize, 0);
    read_exact(read, &mut bytes[start..])?;
    Ok(Front { header, bytes })
}

fn read_exact(read: &mut impl std::io::Read, buf: &mut [u8]) -> Result<(), RestoreIssue> {
    read.read_exact(buf).map_err(|e| match e.kind() {
        std::io::ErrorKind::UnexpectedEof => RestoreIssue::Truncated,
        _ => RestoreIssue::Unreadable {
            detail: e.to_string(),
        },
    })
}

/// Authenticates and decrypts the history.
pub fn open_history(front: &Front, key: &Key) -> Result<SavedHistory, RestoreIssue> {
    let header = &front.header;
    let nonce = from_hex(&header.history_nonce).ok_or(RestoreIssue::Damaged)?;
    let start = front.bytes.len() - header.history_bytes as usize;
    let plain = Sealer::new(key)
        .open(
            &nonce,
            &history_aad(&front.bytes[..start]),
            &front.bytes[start..],
        )
        .map_err(|_| RestoreIssue::Tampered)?;
    serde_json::from_slice(&plain).map_err(|_| RestoreIssue::Damaged)
}

/// A state read back: its tokens and KV bytes (wiped when dropped).
pub struct OpenedState {
    /// Tokens whose KV entries the state holds.
    pub tokens: Vec<i32>,
    /// llama.cpp's sequence state.
    pub kv: Zeroizing<Vec<u8>>,
}

impl std::fmt::Debug for OpenedState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpenedState")
            .field("tokens", &self.tokens.len())
            .field("kv_bytes", &self.kv.len())
            .finish()
    }
}

/// Authenticates and decrypts the sealed state (`sealed`, read after the front).
pub fn open_state(front: &Front, sealed: &[u8], key: &Key) -> Result<OpenedState, RestoreIssue> {
    let nonce = front
        .header
        .state_nonce
        .as_deref()
        .and_then(from_hex)
        .ok_or(RestoreIssue::Damaged)?;
    let plain = Sealer::new(key)
        .open(&nonce, &state_aad(&front.bytes), sealed)
        .map_err(|_| RestoreIssue::Tampered)?;
    let count = plain
        .get(..4)
        .map(|b| u32::from_le_bytes(b.try_into().unwrap_or_default()) as usize)
        .ok_or(RestoreIssue::Damaged)?;
    let kv_start = count
        .checked_mul(4)
        .and_then(|n| n.checked_add(4))
        .filter(|&end| end <= plain.len())
        .ok_or(RestoreIssue::Damaged)?;
    let tokens = plain[4..kv_start]
        .chunks_exact(4)
        .map(|b| i32::from_le_bytes(b.try_into().unwrap_or_default()))
        .collect();
    // The KV bytes moved to the front in place: no second copy of the state.
    let mut kv = plain;
    kv.drain(..kv_start);
    Ok(OpenedState { tokens, kv })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fingerprint() -> StateFingerprint {
        StateFingerprint {
            llama_cpp: "llama-cpp-sys-2 0.0.0".into(),
            model_sha256: "ab".repeat(32),
            n_ctx: 1024,
            kv_cache: "f16".into(),
            template_sha256: "cd".repeat(32),
        }
    }

    fn file(key: &Key, state: Option<(&[i32], &[u8])>) -> Vec<u8> {
        seal(&Contents {
            fingerprint: &fingerprint(),
            key_id: "vazhi-sessions",
            key,
            history: br#"{"system":"be brief","messages":[{"role":"user","content":"secret question"}]}"#,
            state,
            now_ms: 1,
        })
        .unwrap()
    }

    fn front(bytes: &[u8]) -> Result<Front, RestoreIssue> {
        read_front(&mut &bytes[..], bytes.len() as u64)
    }

    #[test]
    fn round_trip_and_no_plaintext() {
        let key = Key::generate().unwrap();
        let kv = b"KV STATE BYTES OF THE CONVERSATION".repeat(10);
        let bytes = file(&key, Some((&[1, 2, 3], &kv)));
        for secret in [&b"secret question"[..], b"be brief", b"KV STATE"] {
            assert!(!bytes.windows(secret.len()).any(|w| w == secret));
        }
        let f = front(&bytes).unwrap();
        assert_eq!(f.expected_len(), bytes.len() as u64);
        assert_eq!(f.header.fingerprint, fingerprint());
        let history = open_history(&f, &key).unwrap();
        assert_eq!(history.system.as_deref(), Some("be brief"));
        let state = open_state(&f, &bytes[f.bytes.len()..], &key).unwrap();
        assert_eq!(state.tokens, [1, 2, 3]);
        assert_eq!(state.kv.as_slice(), kv.as_slice());
    }

    #[test]
    fn every_flipped_byte_and_every_cut_is_caught() {
        let key = Key::generate().unwrap();
        let bytes = file(&key, Some((&[7; 5], &[9; 40])));
        let history_start = front(&bytes).unwrap().bytes.len();
        for at in 0..bytes.len() {
            let mut bad = bytes.clone();
            bad[at] ^= 0x20;
            let outcome = front(&bad).and_then(|f| {
                let history = open_history(&f, &key)?;
                let state = open_state(&f, &bad[f.bytes.len()..], &key)?;
                Ok((history, state.tokens))
            });
            // Whitespace-insensitive JSON may absorb a flipped case bit in a key name only
            // when it still parses to the same header; the state's MAC covers the header
            // bytes, so nothing altered opens whole.
            assert!(outcome.is_err(), "byte {at} of {} altered", bytes.len());
        }
        for len in 0..bytes.len() {
            let cut = &bytes[..len];
            let f = front(cut);
            if len < history_start {
                assert!(f.is_err(), "cut at {len}");
            } else {
                let f = f.unwrap();
                assert!(f.expected_len() > len as u64);
                assert!(open_state(&f, &cut[f.bytes.len()..], &key).is_err());
            }
        }
    }

    #[test]
    fn another_key_or_format_is_refused() {
        let key = Key::generate().unwrap();
        let bytes = file(&key, None);
        let f = front(&bytes).unwrap();
        assert_eq!(
            open_history(&f, &Key::generate().unwrap()).unwrap_err(),
            RestoreIssue::Tampered
        );
        let mut newer = bytes.clone();
        newer[8] = 2;
        assert_eq!(
            front(&newer).unwrap_err(),
            RestoreIssue::UnsupportedFormat { found: 2 }
        );
        assert_eq!(
            front(b"GGUF\x03\0\0\0 not a session").unwrap_err(),
            RestoreIssue::NotASessionFile
        );
    }
}
