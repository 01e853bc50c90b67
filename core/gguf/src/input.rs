//! A buffered byte source that knows the file length and refuses to read past it.
//!
//! Every read first checks the request against the bytes left before the declared end of the
//! file, so a length field can be validated (and rejected) before anything is allocated for it.

use std::io::{ErrorKind, Read};

use crate::error::GgufError;

/// Read-buffer size: large enough that header parsing is not syscall-bound.
const BUF_SIZE: usize = 64 * 1024;

/// Buffered reader bounded by a declared file length, tracking the absolute offset.
pub(crate) struct Input<R> {
    inner: R,
    buf: Vec<u8>,
    /// Next unread byte in `buf`.
    pos: usize,
    /// Number of valid bytes in `buf`.
    filled: usize,
    /// Absolute offset of the next byte handed out.
    offset: u64,
    file_len: u64,
}

impl<R: Read> Input<R> {
    /// Wraps `inner`, positioned at offset 0 of a file of `file_len` bytes.
    pub(crate) fn new(inner: R, file_len: u64) -> Self {
        let cap = usize::try_from(file_len).map_or(BUF_SIZE, |len| len.clamp(1, BUF_SIZE));
        Input {
            inner,
            buf: vec![0; cap],
            pos: 0,
            filled: 0,
            offset: 0,
            file_len,
        }
    }

    /// Absolute offset of the next byte.
    pub(crate) fn offset(&self) -> u64 {
        self.offset
    }

    /// Bytes left before the declared end of the file.
    pub(crate) fn remaining(&self) -> u64 {
        self.file_len.saturating_sub(self.offset)
    }

    /// Fails with `UnexpectedEof` unless `n` more bytes exist before the end of the file.
    pub(crate) fn ensure(&self, n: u64) -> Result<(), GgufError> {
        if n > self.remaining() {
            return Err(GgufError::UnexpectedEof {
                offset: self.offset,
                needed: n,
            });
        }
        Ok(())
    }

    /// One `read` call on the inner reader, retrying on `Interrupted`.
    fn read_some(inner: &mut R, out: &mut [u8], offset: u64) -> Result<usize, GgufError> {
        loop {
            match inner.read(out) {
                Ok(0) => {
                    return Err(GgufError::UnexpectedEof {
                        offset,
                        needed: out.len() as u64,
                    })
                }
                Ok(n) => return Ok(n.min(out.len())),
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) if e.kind() == ErrorKind::UnexpectedEof => {
                    return Err(GgufError::UnexpectedEof {
                        offset,
                        needed: out.len() as u64,
                    })
                }
                Err(e) => return Err(GgufError::Io(e)),
            }
        }
    }

    /// Refills the (empty) buffer with at most the bytes left in the file.
    fn fill(&mut self) -> Result<(), GgufError> {
        let want =
            usize::try_from(self.remaining()).map_or(self.buf.len(), |r| r.min(self.buf.len()));
        let target = self.buf.get_mut(..want).unwrap_or_default();
        let n = Self::read_some(&mut self.inner, target, self.offset)?;
        self.pos = 0;
        self.filled = n;
        Ok(())
    }

    /// Fills `out` completely.
    pub(crate) fn read_exact_into(&mut self, out: &mut [u8]) -> Result<(), GgufError> {
        self.ensure(out.len() as u64)?;
        let mut done = 0;
        while done < out.len() {
            if self.pos == self.filled {
                let rest = out.get_mut(done..).unwrap_or_default();
                if rest.len() >= self.buf.len() {
                    // Large read: bypass the buffer.
                    let n = Self::read_some(&mut self.inner, rest, self.offset)?;
                    done += n;
                    self.offset += n as u64;
                    continue;
                }
                self.fill()?;
            }
            let n = (self.filled - self.pos).min(out.len() - done);
            if let (Some(dst), Some(src)) = (
                out.get_mut(done..done + n),
                self.buf.get(self.pos..self.pos + n),
            ) {
                dst.copy_from_slice(src);
            }
            self.pos += n;
            done += n;
            self.offset += n as u64;
        }
        Ok(())
    }

    /// Reads `N` bytes.
    pub(crate) fn read_array<const N: usize>(&mut self) -> Result<[u8; N], GgufError> {
        // Fast path: the buffer never holds bytes past the end of the file, so no extra check.
        if let Some(bytes) = self.buf.get(self.pos..self.pos + N) {
            if self.pos + N <= self.filled {
                let mut a = [0u8; N];
                a.copy_from_slice(bytes);
                self.pos += N;
                self.offset += N as u64;
                return Ok(a);
            }
        }
        let mut a = [0u8; N];
        self.read_exact_into(&mut a)?;
        Ok(a)
    }

    /// Reads a little-endian `u32`.
    pub(crate) fn read_u32(&mut self) -> Result<u32, GgufError> {
        self.read_array().map(u32::from_le_bytes)
    }

    /// Reads a little-endian `u64`.
    pub(crate) fn read_u64(&mut self) -> Result<u64, GgufError> {
        self.read_array().map(u64::from_le_bytes)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// A reader that hands out at most 3 bytes per call.
    struct Dribble<'a>(&'a [u8]);

    impl Read for Dribble<'_> {
        fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
            let n = out.len().min(3).min(self.0.len());
            out[..n].copy_from_slice(&self.0[..n]);
            self.0 = &self.0[n..];
            Ok(n)
        }
    }

    #[test]
    fn bounded_reads() {
        let data: Vec<u8> = (0..200u8).collect();
        let mut input = Input::new(Dribble(&data), 100);
        assert_eq!(input.read_u32().unwrap(), u32::from_le_bytes([0, 1, 2, 3]));
        let mut big = vec![0; 90];
        input.read_exact_into(&mut big).unwrap();
        assert_eq!(big[0], 4);
        assert_eq!(input.offset(), 94);
        assert!(matches!(
            input.read_u64(),
            Err(GgufError::UnexpectedEof {
                offset: 94,
                needed: 8
            })
        ));
        // A reader shorter than the declared length.
        let mut short = Input::new(&data[..10], 100);
        assert!(matches!(
            short.read_exact_into(&mut [0; 20]),
            Err(GgufError::UnexpectedEof { offset: 10, .. })
        ));
    }
}
