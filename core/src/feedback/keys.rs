//! Where feedback keys come from: a [`KeyProvider`]. Phones implement it in the bindings with the
//! Android Keystore or the iOS Keychain; the desktop uses [`FileKeyProvider`], a random key per
//! file under the data directory's `keys/`, readable by the owner only.
//!
//! Keys live in [`Key`], which wipes its bytes when dropped.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use zeroize::Zeroizing;

/// Bytes in a key (AES-256).
pub const KEY_LEN: usize = 32;

/// A 256-bit key, zeroized on drop.
pub struct Key(Zeroizing<[u8; KEY_LEN]>);

impl Key {
    /// A key from its bytes (the caller should wipe its own copy).
    pub fn from_bytes(bytes: [u8; KEY_LEN]) -> Self {
        Self(Zeroizing::new(bytes))
    }

    /// A key from bytes handed over by an app's key store, which wipes them; anything but
    /// [`KEY_LEN`] bytes is a [`KeyError::Backend`].
    pub fn from_vec(bytes: Vec<u8>) -> Result<Self, KeyError> {
        let bytes = Zeroizing::new(bytes);
        let array: [u8; KEY_LEN] = bytes.as_slice().try_into().map_err(|_| {
            KeyError::Backend(format!("key must be {KEY_LEN} bytes, got {}", bytes.len()))
        })?;
        Ok(Self::from_bytes(array))
    }

    /// A fresh random key from the operating system's RNG.
    pub fn generate() -> Result<Self, KeyError> {
        let mut key = Zeroizing::new([0u8; KEY_LEN]);
        getrandom::fill(key.as_mut()).map_err(|e| KeyError::Backend(format!("OS RNG: {e}")))?;
        Ok(Self(key))
    }

    /// The key's bytes.
    pub fn as_bytes(&self) -> &[u8; KEY_LEN] {
        &self.0
    }
}

impl std::fmt::Debug for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Key(…)")
    }
}

/// A key provider failed (not: the key is absent — that is `Ok(None)`).
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// The key id is not a safe name (`[a-z0-9-]{1,64}`).
    #[error("invalid key id")]
    InvalidId,
    /// The store behind the provider failed.
    #[error("key store: {0}")]
    Backend(String),
    /// The provider did not answer within its time limit ([`TimedKeyProvider`]).
    #[error("key store did not answer within {seconds} s")]
    Timeout {
        /// The limit.
        seconds: u64,
    },
}

/// A provider whose every call gives up after a time limit with [`KeyError::Timeout`]: the
/// bindings wrap an app's keystore callbacks in it, so that a keystore prompt nobody answers
/// cannot block the feedback store (or a thread of the app) for ever. Each call runs on a
/// thread of its own; one that times out is left to finish (its answer is dropped).
#[derive(Debug)]
pub struct TimedKeyProvider {
    inner: Arc<dyn KeyProvider>,
    timeout: Duration,
}

/// How long the bindings wait for an app's keystore callback by default.
pub const DEFAULT_KEY_TIMEOUT: Duration = Duration::from_secs(30);

impl TimedKeyProvider {
    /// Wraps `inner`, waiting at most `timeout` for each call.
    pub fn new(inner: Arc<dyn KeyProvider>, timeout: Duration) -> Self {
        Self { inner, timeout }
    }

    fn call<T: Send + 'static>(
        &self,
        f: impl FnOnce(&dyn KeyProvider) -> Result<T, KeyError> + Send + 'static,
    ) -> Result<T, KeyError> {
        let (send, receive) = std::sync::mpsc::channel();
        let inner = self.inner.clone();
        std::thread::Builder::new()
            .name("vazhi-key-provider".into())
            .spawn(move || {
                let _ = send.send(f(inner.as_ref()));
            })
            .map_err(|e| KeyError::Backend(format!("cannot start a thread: {e}")))?;
        match receive.recv_timeout(self.timeout) {
            Ok(result) => result,
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => Err(KeyError::Timeout {
                seconds: self.timeout.as_secs().max(1),
            }),
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => Err(KeyError::Backend(
                "the key provider failed without an answer".into(),
            )),
        }
    }
}

impl KeyProvider for TimedKeyProvider {
    fn get(&self, key_id: &str) -> Result<Option<Key>, KeyError> {
        let id = key_id.to_owned();
        self.call(move |p| p.get(&id))
    }
    fn create(&self, key_id: &str) -> Result<Key, KeyError> {
        let id = key_id.to_owned();
        self.call(move |p| p.create(&id))
    }
    fn delete(&self, key_id: &str) -> Result<(), KeyError> {
        let id = key_id.to_owned();
        self.call(move |p| p.delete(&id))
    }
}

/// Keeps the feedback store's keys. Implementations must be safe to call from any thread.
pub trait KeyProvider: Send + Sync + std::fmt::Debug {
    /// The key `key_id`, or `None` if it does not exist (for example after a restore to a new
    /// phone, whose keystore does not hold it).
    fn get(&self, key_id: &str) -> Result<Option<Key>, KeyError>;
    /// Creates, stores and returns a new random key under `key_id` (which is new).
    fn create(&self, key_id: &str) -> Result<Key, KeyError>;
    /// Deletes key `key_id` (after its records were re-encrypted); absent is not an error.
    fn delete(&self, key_id: &str) -> Result<(), KeyError>;
}

/// Whether `id` is a valid key id.
pub fn is_valid_key_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 64
        && id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

/// The desktop key provider: `<dir>/<key id>.key`, 32 random bytes, mode 0600, in a 0700
/// directory. Anyone who can read the user's files can read these keys: on the desktop the
/// protection is the account's, as for browser profiles.
#[derive(Debug, Clone)]
pub struct FileKeyProvider {
    dir: PathBuf,
}

impl FileKeyProvider {
    /// A provider keeping keys in `dir` (created 0700 when the first key is made).
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into() }
    }

    fn path(&self, key_id: &str) -> Result<PathBuf, KeyError> {
        if !is_valid_key_id(key_id) {
            return Err(KeyError::InvalidId);
        }
        Ok(self.dir.join(format!("{key_id}.key")))
    }
}

fn backend(context: &str) -> impl FnOnce(std::io::Error) -> KeyError + '_ {
    move |e| KeyError::Backend(format!("{context}: {e}"))
}

impl KeyProvider for FileKeyProvider {
    fn get(&self, key_id: &str) -> Result<Option<Key>, KeyError> {
        let path = self.path(key_id)?;
        let bytes = match std::fs::read(&path) {
            Ok(b) => Zeroizing::new(b),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(backend("reading a key file")(e)),
        };
        let key: [u8; KEY_LEN] = bytes
            .as_slice()
            .try_into()
            .map_err(|_| KeyError::Backend("key file has the wrong length".into()))?;
        Ok(Some(Key::from_bytes(key)))
    }

    fn create(&self, key_id: &str) -> Result<Key, KeyError> {
        let path = self.path(key_id)?;
        create_private_dir(&self.dir).map_err(backend("creating the key directory"))?;
        let key = Key::generate()?;
        write_private_file(&path, key.as_bytes()).map_err(backend("writing a key file"))?;
        // The database that will name this key commits durably; so must the key's directory
        // entry, or a power cut could leave records whose key never existed.
        crate::fsutil::sync_dir(&self.dir).map_err(backend("syncing the key directory"))?;
        Ok(key)
    }

    fn delete(&self, key_id: &str) -> Result<(), KeyError> {
        match std::fs::remove_file(self.path(key_id)?) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(backend("deleting a key file")(e)),
        }
    }
}

fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
    }
    Ok(())
}

/// Writes `bytes` to a new file at `path` readable by the owner only; never overwrites.
fn write_private_file(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path)?;
    let result = file.write_all(bytes).and_then(|()| file.sync_all());
    if result.is_err() {
        let _ = std::fs::remove_file(path);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_keys_are_private_random_and_stable() {
        let dir = tempfile::tempdir().unwrap();
        let p = FileKeyProvider::new(dir.path().join("keys"));
        assert!(p.get("k-1").unwrap().is_none());
        let a = p.create("k-1").unwrap();
        let b = p.create("k-2").unwrap();
        assert_ne!(a.as_bytes(), b.as_bytes());
        assert_eq!(p.get("k-1").unwrap().unwrap().as_bytes(), a.as_bytes());
        assert!(p.create("k-1").is_err(), "never overwrites a key");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode(&dir.path().join("keys")), 0o700);
            assert_eq!(mode(&dir.path().join("keys/k-1.key")), 0o600);
        }
        p.delete("k-1").unwrap();
        p.delete("k-1").unwrap();
        assert!(p.get("k-1").unwrap().is_none());
        assert!(format!("{a:?}").contains('…'));
    }

    #[test]
    fn a_provider_that_never_answers_times_out_with_a_typed_error() {
        #[derive(Debug)]
        struct Hung;
        impl KeyProvider for Hung {
            fn get(&self, _: &str) -> Result<Option<Key>, KeyError> {
                std::thread::sleep(Duration::from_secs(3600));
                Ok(None)
            }
            fn create(&self, _: &str) -> Result<Key, KeyError> {
                Key::generate()
            }
            fn delete(&self, _: &str) -> Result<(), KeyError> {
                Ok(())
            }
        }
        let timed = TimedKeyProvider::new(Arc::new(Hung), Duration::from_millis(200));
        assert!(matches!(timed.get("k-1"), Err(KeyError::Timeout { .. })));
        assert!(timed.create("k-1").is_ok());
        assert!(timed.delete("k-1").is_ok());
    }

    #[test]
    fn key_ids_cannot_escape_the_directory() {
        let p = FileKeyProvider::new("/tmp/nowhere");
        for bad in ["", "../x", "a/b", "K", "a.key", &"a".repeat(65)] {
            assert!(matches!(p.get(bad), Err(KeyError::InvalidId)), "{bad}");
        }
    }

    #[test]
    fn a_damaged_key_file_is_an_error_not_a_key() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("k.key"), b"short").unwrap();
        let p = FileKeyProvider::new(dir.path());
        assert!(matches!(p.get("k"), Err(KeyError::Backend(_))));
    }
}
