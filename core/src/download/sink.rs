//! The writer thread of a download: appends the bytes the network task receives to the part
//! file and hashes them on the way, so that hashing and disk writes overlap the network.
//!
//! On resume it first re-hashes the bytes already in the part (the SHA-256 state is not saved
//! between runs), while the first network chunks wait in the bounded channel.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::Path;
use std::sync::Arc;
use std::thread::JoinHandle;

use bytes::Bytes;
use sha2::{Digest, Sha256};
use tokio::sync::mpsc;

use super::install::open_own_file;
use super::storage::TargetLock;

/// Chunks in flight to each of the writer and the hasher (hyper's chunks reach ~400 KiB, and
/// each may pin a larger read buffer: this bounds memory, whatever the file size).
const CHANNEL_CHUNKS: usize = 32;

/// What the writer hands back when it stops.
#[derive(Debug)]
pub struct Written {
    /// The part file, flushed (not yet synced).
    pub file: File,
    /// SHA-256 state over every byte now in the part.
    pub hasher: Sha256,
    /// Length of the part.
    pub len: u64,
}

/// A running writer: one thread appends to the part, another hashes, so neither the disk nor
/// SHA-256 (≈ 1.4 GB/s on a core with SHA extensions) alone sets the download's speed.
#[derive(Debug)]
pub struct PartWriter {
    write_tx: Option<mpsc::Sender<Bytes>>,
    hash_tx: Option<mpsc::Sender<Bytes>>,
    writer: Option<JoinHandle<std::io::Result<(File, u64)>>>,
    hasher: Option<JoinHandle<std::io::Result<Sha256>>>,
}

impl PartWriter {
    /// Opens `path` (created if missing; with `keep == 0` it must be missing), cuts it to
    /// `keep` bytes, re-hashes those (unless `prefix_hash` already covers them), then appends
    /// what [`send`](Self::send) delivers. Both threads hold `lock` until they end, even if this
    /// writer is dropped early.
    ///
    /// The part is opened once, without following a symlink, and must be a regular file with no
    /// other link: anything else is refused before a byte is cut or written, so a link planted
    /// at `path` never lets the download truncate or append to a file elsewhere.
    pub fn start(
        path: &Path,
        keep: u64,
        prefix_hash: Option<Sha256>,
        lock: Arc<TargetLock>,
    ) -> std::io::Result<Self> {
        let file = open_own_file(path, keep == 0)?;
        // Cut before the hasher reads, so that it reads exactly the kept prefix.
        file.set_len(keep)?;
        let prefix = match prefix_hash {
            Some(hasher) => Prefix::Hashed(hasher),
            None if keep > 0 => Prefix::Read(reader_of(&file, path)?),
            None => Prefix::Hashed(Sha256::new()),
        };
        let writer_lock = Arc::clone(&lock);
        let (write_tx, write_rx) = mpsc::channel(CHANNEL_CHUNKS);
        let (hash_tx, hash_rx) = mpsc::channel(CHANNEL_CHUNKS);
        let writer = std::thread::Builder::new()
            .name("vazhi-download-writer".into())
            .spawn(move || {
                let _lock = writer_lock;
                write_loop(file, keep, write_rx)
            })?;
        let hasher = std::thread::Builder::new()
            .name("vazhi-download-hasher".into())
            .spawn(move || {
                let _lock = lock;
                hash_loop(prefix, keep, hash_rx)
            })?;
        Ok(Self {
            write_tx: Some(write_tx),
            hash_tx: Some(hash_tx),
            writer: Some(writer),
            hasher: Some(hasher),
        })
    }

    /// Queues `chunk`; `false` when the writer or the hasher has stopped on an error (call
    /// [`finish`](Self::finish) to get it).
    pub async fn send(&self, chunk: Bytes) -> bool {
        let (Some(w), Some(h)) = (&self.write_tx, &self.hash_tx) else {
            return false;
        };
        h.send(chunk.clone()).await.is_ok() && w.send(chunk).await.is_ok()
    }

    /// Waits for the queued bytes to be written and hashed; returns the file, the hash state and
    /// the length, or the first I/O error.
    pub async fn finish(mut self) -> std::io::Result<Written> {
        drop(self.write_tx.take());
        drop(self.hash_tx.take());
        let (writer, hasher) = (self.writer.take(), self.hasher.take());
        tokio::task::spawn_blocking(move || {
            let written = join(writer);
            let hashed = join(hasher);
            let (file, len) = written?;
            Ok(Written {
                file,
                hasher: hashed?,
                len,
            })
        })
        .await
        .unwrap_or_else(|e| Err(std::io::Error::other(e)))
    }
}

fn join<T>(thread: Option<JoinHandle<std::io::Result<T>>>) -> std::io::Result<T> {
    match thread {
        Some(t) => t
            .join()
            .unwrap_or_else(|_| Err(std::io::Error::other("download thread panicked"))),
        None => Err(std::io::Error::other("download thread already finished")),
    }
}

impl Drop for PartWriter {
    fn drop(&mut self) {
        drop(self.write_tx.take());
        drop(self.hash_tx.take());
        let _ = join(self.writer.take());
        let _ = join(self.hasher.take());
    }
}

fn write_loop(
    mut file: File,
    keep: u64,
    mut rx: mpsc::Receiver<Bytes>,
) -> std::io::Result<(File, u64)> {
    let _span = tracing::debug_span!("download_writer", keep).entered();
    file.seek(SeekFrom::Start(keep))?;
    let mut len = keep;
    // hyper's chunks average hundreds of KiB on a fast link: written as they come, no copy.
    while let Some(chunk) = rx.blocking_recv() {
        file.write_all(&chunk)?;
        len += chunk.len() as u64;
    }
    Ok((file, len))
}

/// A handle that reads the part the writer writes without sharing its file offset: on unix the
/// same open file (read with `pread`), elsewhere the path opened again.
#[cfg(unix)]
fn reader_of(file: &File, _path: &Path) -> std::io::Result<File> {
    file.try_clone()
}

#[cfg(not(unix))]
fn reader_of(_file: &File, path: &Path) -> std::io::Result<File> {
    File::open(path)
}

/// Where the hash of the kept prefix comes from.
enum Prefix {
    /// Already hashed (earlier in this download call), or empty.
    Hashed(Sha256),
    /// To be read back from the part.
    Read(File),
}

fn hash_loop(prefix: Prefix, keep: u64, mut rx: mpsc::Receiver<Bytes>) -> std::io::Result<Sha256> {
    let _span = tracing::debug_span!("download_hasher", keep).entered();
    let mut hasher = match prefix {
        Prefix::Hashed(hasher) => hasher,
        Prefix::Read(mut file) => {
            let mut hasher = Sha256::new();
            hash_prefix(&mut file, keep, &mut hasher)?;
            hasher
        }
    };
    while let Some(chunk) = rx.blocking_recv() {
        hasher.update(&chunk);
    }
    Ok(hasher)
}

fn hash_prefix(file: &mut File, len: u64, hasher: &mut Sha256) -> std::io::Result<()> {
    #[cfg(unix)]
    let mut reader = PositionalReader { file, pos: 0 }.take(len);
    #[cfg(not(unix))]
    let mut reader = {
        file.seek(SeekFrom::Start(0))?;
        file.take(len)
    };
    let read = hash_reader(&mut reader, hasher)?;
    if read != len {
        return Err(std::io::Error::new(
            std::io::ErrorKind::UnexpectedEof,
            "part file shrank while being re-hashed",
        ));
    }
    Ok(())
}

/// Reads a file from `pos` on with `pread`, leaving the file offset (shared with the writer's
/// handle, a clone of this one) alone.
#[cfg(unix)]
struct PositionalReader<'a> {
    file: &'a File,
    pos: u64,
}

#[cfg(unix)]
impl Read for PositionalReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = std::os::unix::fs::FileExt::read_at(self.file, buf, self.pos)?;
        self.pos += n as u64;
        Ok(n)
    }
}

/// Feeds everything `reader` yields into `hasher`; returns the byte count.
pub fn hash_reader(reader: &mut impl Read, hasher: &mut Sha256) -> std::io::Result<u64> {
    let mut buf = vec![0u8; 1 << 20];
    let mut total = 0u64;
    loop {
        let n = match reader.read(&mut buf) {
            Ok(0) => return Ok(total),
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        hasher.update(&buf[..n]);
        total += n as u64;
    }
}

pub use crate::fsutil::hex;

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn appends_after_the_kept_prefix_and_hashes_everything() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.part");
        std::fs::write(&path, b"hello, garbage beyond the kept prefix").unwrap();
        let lock = Arc::new(TargetLock::acquire(&dir.path().join("p.lock"), "p").unwrap());
        let writer = PartWriter::start(&path, 7, None, Arc::clone(&lock)).unwrap();
        assert!(writer.send(Bytes::from_static(b"world")).await);
        let written = writer.finish().await.unwrap();
        assert_eq!(written.len, 12);
        assert_eq!(std::fs::read(&path).unwrap(), b"hello, world");
        assert_eq!(
            hex(&written.hasher.finalize()),
            hex(&Sha256::digest(b"hello, world"))
        );
    }

    #[cfg(unix)]
    #[test]
    fn a_link_at_the_part_path_is_refused_before_its_target_is_cut() {
        let dir = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        let target = outside.path().join("precious");
        std::fs::write(&target, b"not ours to truncate").unwrap();
        let lock = Arc::new(TargetLock::acquire(&dir.path().join("p.lock"), "p").unwrap());
        let link = dir.path().join("p.part");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        assert!(PartWriter::start(&link, 7, None, Arc::clone(&lock)).is_err());
        assert!(PartWriter::start(&link, 0, None, Arc::clone(&lock)).is_err());
        std::fs::remove_file(&link).unwrap();
        std::fs::hard_link(&target, &link).unwrap();
        assert!(PartWriter::start(&link, 7, None, Arc::clone(&lock)).is_err());
        assert!(PartWriter::start(&link, 0, None, lock).is_err());
        assert_eq!(std::fs::read(&target).unwrap(), b"not ours to truncate");
    }

    #[tokio::test]
    async fn a_carried_prefix_hash_is_used_instead_of_rereading() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.part");
        // The bytes on disk differ from what the carried hash covers: the result shows which
        // one the writer used (in a download both are the same bytes).
        std::fs::write(&path, b"HELLO, ").unwrap();
        let lock = Arc::new(TargetLock::acquire(&dir.path().join("p.lock"), "p").unwrap());
        let mut carried = Sha256::new();
        carried.update(b"hello, ");
        let writer = PartWriter::start(&path, 7, Some(carried), lock).unwrap();
        assert!(writer.send(Bytes::from_static(b"world")).await);
        let written = writer.finish().await.unwrap();
        assert_eq!(
            hex(&written.hasher.finalize()),
            hex(&Sha256::digest(b"hello, world"))
        );
    }
}
