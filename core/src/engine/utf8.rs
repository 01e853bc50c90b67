//! Incremental UTF-8 decoding for token streams.
//!
//! A token is a run of bytes, not of characters: Gemma's vocabulary splits a Tamil letter (three
//! bytes in UTF-8) across two or three tokens. [`Utf8Stream`] holds back an incomplete trailing
//! sequence until the bytes that finish it arrive, so the stream never emits half a code point
//! and never invents a U+FFFD for a sequence that is merely unfinished. Bytes that can never
//! become valid UTF-8 are replaced by U+FFFD, exactly as `String::from_utf8_lossy` would.

/// Turns a stream of byte chunks into a stream of complete UTF-8 text.
#[derive(Debug, Default)]
pub struct Utf8Stream {
    pending: Vec<u8>,
    split_sequences: usize,
}

impl Utf8Stream {
    /// A decoder with nothing buffered.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds `bytes` and returns the text that is now complete (possibly empty).
    pub fn push(&mut self, bytes: &[u8]) -> String {
        if !self.pending.is_empty() && !bytes.is_empty() {
            // A sequence started in an earlier chunk is being continued: count it.
            self.split_sequences += 1;
        }
        self.pending.extend_from_slice(bytes);
        let mut out = String::new();
        loop {
            match std::str::from_utf8(&self.pending) {
                Ok(text) => {
                    out.push_str(text);
                    self.pending.clear();
                    return out;
                }
                Err(err) => {
                    let valid = err.valid_up_to();
                    // SAFETY-free: `valid_up_to` bytes are valid UTF-8 by definition.
                    out.push_str(&String::from_utf8_lossy(&self.pending[..valid]));
                    match err.error_len() {
                        // Incomplete sequence at the end: keep it for the next chunk.
                        None => {
                            self.pending.drain(..valid);
                            return out;
                        }
                        // Bytes that can never be valid: replace them and go on.
                        Some(bad) => {
                            out.push(char::REPLACEMENT_CHARACTER);
                            self.pending.drain(..valid + bad);
                        }
                    }
                }
            }
        }
    }

    /// Ends the stream: whatever is still buffered is incomplete and becomes U+FFFD.
    pub fn finish(&mut self) -> String {
        let rest = String::from_utf8_lossy(&self.pending).into_owned();
        self.pending.clear();
        rest
    }

    /// How many times a character's bytes arrived in more than one chunk so far.
    ///
    /// Tests use this to prove that a model really did split characters across tokens.
    pub fn split_sequences(&self) -> usize {
        self.split_sequences
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tamil_split_byte_by_byte_reassembles() {
        let text = "தமிழ் கண்கள்";
        let mut stream = Utf8Stream::new();
        let mut out = String::new();
        for b in text.as_bytes() {
            let piece = stream.push(std::slice::from_ref(b));
            assert!(!piece.contains('\u{FFFD}'));
            out.push_str(&piece);
        }
        out.push_str(&stream.finish());
        assert_eq!(out, text);
        assert!(stream.split_sequences() > 0);
    }

    #[test]
    fn invalid_bytes_become_replacement_once() {
        let mut stream = Utf8Stream::new();
        assert_eq!(stream.push(b"a\xffb"), "a\u{FFFD}b");
        assert_eq!(stream.push(b"\xe0\xae"), "");
        assert_eq!(stream.finish(), "\u{FFFD}");
    }

    #[test]
    fn complete_chunks_pass_through() {
        let mut stream = Utf8Stream::new();
        assert_eq!(stream.push("hello ".as_bytes()), "hello ");
        assert_eq!(stream.push("உலகம்".as_bytes()), "உலகம்");
        assert_eq!(stream.split_sequences(), 0);
    }
}
