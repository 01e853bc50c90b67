//! Ed25519 signatures over what an app loads from outside the SDK: knowledge packs and model
//! catalogs (decision 0014). A signature signs a short text that names what it covers and
//! holds the SHA-256 of every file it covers, so one format serves both, and a signature made
//! for a catalog can never pass for a pack's (the text starts with its purpose).
//!
//! A signature travels as a small JSON document ([`SignatureFile`]): the public key that made
//! it and the signature, both hex. Only keys the app configured ([`TrustedKeys`]) are
//! believed; the key in the file only says which one to try. Secret keys live in key files:
//! the 32-byte Ed25519 seed as hex on one line ([`read_signing_key`], [`write_new_signing_key`]).

use std::io::Write;
use std::path::Path;

use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use serde::{Deserialize, Serialize};

use crate::fsutil::{from_hex, hex};

/// The `format` of a signature file this code writes and reads.
pub const SIGNATURE_FORMAT: &str = "vazhi-signature-1";
/// Largest signature file accepted, in bytes.
pub const MAX_SIGNATURE_FILE_BYTES: u64 = 4096;

/// Why a signature, key or key file was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SigningError {
    /// A public key is not 32 bytes of hex, or not a valid Ed25519 point.
    #[error("not an Ed25519 public key (64 hex digits): {0:?}")]
    BadPublicKey(String),
    /// A signature file is not JSON of the expected shape.
    #[error("signature file: {0}")]
    BadSignatureFile(String),
    /// The signature was made by a key the app does not trust.
    #[error("signed by key {key}, which is not one of the trusted keys")]
    UntrustedKey {
        /// The key, hex.
        key: String,
    },
    /// The signature does not match what it claims to sign: the files were changed after
    /// signing, or the signature was forged.
    #[error("the signature does not match the signed files")]
    Mismatch,
    /// A key file is missing, unreadable or not a 64-hex-digit seed.
    #[error("key file {path}: {reason}")]
    KeyFile {
        /// The key file.
        path: std::path::PathBuf,
        /// What is wrong.
        reason: String,
    },
}

/// A detached signature, as stored in `pack.sig` or beside a catalog.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignatureFile {
    /// Always [`SIGNATURE_FORMAT`].
    pub format: String,
    /// The Ed25519 public key that signed, 64 hex digits.
    pub public_key: String,
    /// The Ed25519 signature, 128 hex digits.
    pub signature: String,
}

impl SignatureFile {
    /// Parses a signature file's text.
    pub fn parse(text: &str) -> Result<Self, SigningError> {
        let file: SignatureFile = serde_json::from_str(text)
            .map_err(|e| SigningError::BadSignatureFile(e.to_string()))?;
        if file.format != SIGNATURE_FORMAT {
            return Err(SigningError::BadSignatureFile(format!(
                "format {:?} is not {SIGNATURE_FORMAT:?}",
                file.format
            )));
        }
        Ok(file)
    }

    /// The file's JSON text (one line and a newline).
    pub fn to_json(&self) -> String {
        let mut s = serde_json::to_string(self).unwrap_or_default();
        s.push('\n');
        s
    }

    /// The public key, hex, lowercase.
    pub fn key_hex(&self) -> String {
        self.public_key.to_ascii_lowercase()
    }
}

/// Signs `message` with `key`.
pub fn sign(key: &SigningKey, message: &[u8]) -> SignatureFile {
    SignatureFile {
        format: SIGNATURE_FORMAT.to_owned(),
        public_key: hex(key.verifying_key().as_bytes()),
        signature: hex(&key.sign(message).to_bytes()),
    }
}

/// What an app accepts: packs (beyond those Vazhi ships) and catalogs (beyond the built-in
/// one) signed by `keys`, and unsigned ones only when `allow_unsigned` is set.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustPolicy {
    /// Keys whose signatures are believed.
    pub keys: TrustedKeys,
    /// Whether a pack that is neither shipped nor signed by one of `keys` is accepted.
    pub allow_unsigned: bool,
}

impl TrustPolicy {
    /// Only what the SDK ships (its packs, its catalog).
    pub fn shipped_only() -> Self {
        Self::default()
    }

    /// What the SDK ships, and what `keys` signed.
    pub fn signed_by(keys: TrustedKeys) -> Self {
        Self {
            keys,
            allow_unsigned: false,
        }
    }

    /// Anything well-formed (tools that build and test packs; apps that say so explicitly).
    pub fn any() -> Self {
        Self {
            keys: TrustedKeys::none(),
            allow_unsigned: true,
        }
    }
}

/// The public keys an app trusts to sign packs and catalogs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedKeys {
    keys: Vec<VerifyingKey>,
}

impl TrustedKeys {
    /// No keys: only what the SDK itself ships is trusted.
    pub fn none() -> Self {
        Self::default()
    }

    /// Keys given as hex (64 digits each).
    pub fn from_hex<S: AsRef<str>>(keys: &[S]) -> Result<Self, SigningError> {
        let mut out = Self::none();
        for k in keys {
            out.keys.push(parse_public_key(k.as_ref())?);
        }
        Ok(out)
    }

    /// Whether no key is configured.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// Checks `file` against `message`: the key must be one of these, and the signature its
    /// signature of `message`. Returns the key, hex.
    pub fn verify(&self, file: &SignatureFile, message: &[u8]) -> Result<String, SigningError> {
        let key = parse_public_key(&file.public_key)?;
        let bytes: [u8; 64] = from_hex(&file.signature)
            .and_then(|b| b.try_into().ok())
            .ok_or_else(|| {
                SigningError::BadSignatureFile("signature is not 128 hex digits".into())
            })?;
        let signature = Signature::from_bytes(&bytes);
        // A forged signature is a forgery whoever it claims to be from: check it first, so
        // that a tampered file signed by an unknown key is reported as tampered.
        key.verify_strict(message, &signature)
            .map_err(|_| SigningError::Mismatch)?;
        if !self.keys.contains(&key) {
            return Err(SigningError::UntrustedKey {
                key: hex(key.as_bytes()),
            });
        }
        Ok(hex(key.as_bytes()))
    }
}

/// Parses a public key from 64 hex digits.
pub fn parse_public_key(text: &str) -> Result<VerifyingKey, SigningError> {
    let bad = || SigningError::BadPublicKey(text.chars().take(80).collect());
    let bytes: [u8; 32] = from_hex(text.trim())
        .and_then(|b| b.try_into().ok())
        .ok_or_else(bad)?;
    VerifyingKey::from_bytes(&bytes).map_err(|_| bad())
}

/// Reads a secret key file: the 32-byte seed as 64 hex digits (lines starting with `#` and
/// blank lines are ignored).
pub fn read_signing_key(path: &Path) -> Result<SigningKey, SigningError> {
    let bad = |reason: String| SigningError::KeyFile {
        path: path.to_owned(),
        reason,
    };
    let text = std::fs::read_to_string(path).map_err(|e| bad(e.to_string()))?;
    let line = text
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty() && !l.starts_with('#'))
        .ok_or_else(|| bad("no key in the file".into()))?;
    let seed: [u8; 32] = from_hex(line)
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| bad("the key is not 64 hex digits".into()))?;
    Ok(SigningKey::from_bytes(&seed))
}

/// Makes a new secret key from the OS's random source and writes it to `path`, which must not
/// exist yet (created with mode 0600 on Unix). Returns the key.
pub fn write_new_signing_key(path: &Path) -> Result<SigningKey, SigningError> {
    let bad = |reason: String| SigningError::KeyFile {
        path: path.to_owned(),
        reason,
    };
    let mut seed = zeroize::Zeroizing::new([0u8; 32]);
    getrandom::fill(seed.as_mut()).map_err(|e| bad(format!("no randomness: {e}")))?;
    let key = SigningKey::from_bytes(&seed);
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600).custom_flags(libc::O_NOFOLLOW);
    }
    let mut file = options.open(path).map_err(|e| bad(e.to_string()))?;
    let text = zeroize::Zeroizing::new(format!(
        "# Vazhi Ed25519 signing key (secret). Public key: {}\n{}\n",
        hex(key.verifying_key().as_bytes()),
        hex(seed.as_ref())
    ));
    file.write_all(text.as_bytes())
        .and_then(|()| file.sync_all())
        .map_err(|e| bad(e.to_string()))?;
    Ok(key)
}

/// The public key of `key`, hex.
pub fn public_key_hex(key: &SigningKey) -> String {
    hex(key.verifying_key().as_bytes())
}

/// The text a signature signs: a purpose line, then `name sha256` per file, in order.
pub fn signed_text(purpose: &str, files: &[(&str, [u8; 32])]) -> Vec<u8> {
    let mut text = format!("{purpose}\n");
    for (name, digest) in files {
        text.push_str(name);
        text.push(' ');
        text.push_str(&hex(digest));
        text.push('\n');
    }
    text.into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(seed: u8) -> SigningKey {
        SigningKey::from_bytes(&[seed; 32])
    }

    #[test]
    fn a_trusted_key_verifies_and_anything_else_is_refused() {
        let signer = key(1);
        let message = signed_text("test-v1", &[("a", [7; 32])]);
        let file = sign(&signer, &message);
        let trusted = TrustedKeys::from_hex(&[public_key_hex(&signer)]).unwrap();
        assert_eq!(
            trusted.verify(&file, &message).unwrap(),
            public_key_hex(&signer)
        );
        // Another message: a mismatch.
        let other = signed_text("test-v1", &[("a", [8; 32])]);
        assert!(matches!(
            trusted.verify(&file, &other),
            Err(SigningError::Mismatch)
        ));
        // A valid signature by a key the app does not trust.
        assert!(matches!(
            TrustedKeys::from_hex(&[public_key_hex(&key(2))])
                .unwrap()
                .verify(&file, &message),
            Err(SigningError::UntrustedKey { .. })
        ));
        // The key swapped for a trusted one: the signature is not that key's.
        let mut swapped = file.clone();
        swapped.public_key = public_key_hex(&key(2));
        let both = TrustedKeys::from_hex(&[public_key_hex(&key(2))]).unwrap();
        assert!(matches!(
            both.verify(&swapped, &message),
            Err(SigningError::Mismatch)
        ));
        // A file round-trips through its JSON.
        assert_eq!(SignatureFile::parse(&file.to_json()).unwrap(), file);
        assert!(
            SignatureFile::parse("{\"format\":\"x\",\"public_key\":\"\",\"signature\":\"\"}")
                .is_err()
        );
    }

    #[test]
    fn key_files_round_trip_and_are_private() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k.key");
        let made = write_new_signing_key(&path).unwrap();
        assert_eq!(read_signing_key(&path).unwrap().to_bytes(), made.to_bytes());
        // Never overwritten.
        assert!(write_new_signing_key(&path).is_err());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        std::fs::write(&path, "not a key\n").unwrap();
        assert!(matches!(
            read_signing_key(&path),
            Err(SigningError::KeyFile { .. })
        ));
        assert!(parse_public_key("abcd").is_err());
    }
}
