//! Sealing one feedback record: AES-256-GCM, a random 96-bit nonce per record from the OS RNG,
//! and associated data binding the record id, the key id, the record format and (format 2)
//! every plaintext column, so that a ciphertext moved to another row, relabelled with another
//! key, read as another format, or kept while its row's rating, route, time, model or pack
//! versions are edited, fails authentication.

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use zeroize::Zeroizing;

use super::keys::Key;

/// Nonce length (96 bits).
pub const NONCE_LEN: usize = 12;
/// Authentication tag length, appended to the ciphertext.
pub const TAG_LEN: usize = 16;
/// Record id length (random, 128 bits).
pub const RECORD_ID_LEN: usize = 16;

/// Authentication failed: wrong key, or the nonce, ciphertext, tag, record id or key id was
/// changed. Deliberately says nothing more.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("record failed authentication (wrong key or altered data)")]
pub struct AuthenticationFailed;

/// `len` random bytes from the operating system's RNG.
pub fn random<const N: usize>() -> Result<[u8; N], getrandom::Error> {
    let mut out = [0u8; N];
    getrandom::fill(&mut out)?;
    Ok(out)
}

/// The plaintext columns of a record, as stored: everything format 2 binds into its
/// associated data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Columns<'a> {
    /// `created_at`, Unix ms.
    pub created_at_ms: i64,
    /// `route`.
    pub route: &'a str,
    /// `rating` as stored (1 or -1).
    pub rating: i64,
    /// `model_id`.
    pub model_id: Option<&'a str>,
    /// `model_sha256`.
    pub model_sha256: Option<&'a str>,
    /// `pack_versions`, the stored JSON text.
    pub pack_versions: &'a str,
}

fn put_text(aad: &mut Vec<u8>, text: Option<&str>) {
    match text {
        None => aad.push(0),
        Some(t) => {
            aad.push(1);
            aad.extend_from_slice(&(t.len() as u64).to_le_bytes());
            aad.extend_from_slice(t.as_bytes());
        }
    }
}

/// The associated data of a format-2 record: the record id, key id and format as in format 1,
/// then every plaintext column, each length-prefixed (text) or fixed-width (numbers), `None`
/// distinct from empty. Any column edited, or a sealed triple moved onto another row, fails
/// authentication.
pub fn associated_data_v2(
    record_id: &[u8; RECORD_ID_LEN],
    key_id: &str,
    columns: &Columns<'_>,
) -> Vec<u8> {
    let mut aad = associated_data(record_id, key_id, 2);
    aad.extend_from_slice(b"columns\0");
    aad.extend_from_slice(&columns.created_at_ms.to_le_bytes());
    put_text(&mut aad, Some(columns.route));
    aad.extend_from_slice(&columns.rating.to_le_bytes());
    put_text(&mut aad, columns.model_id);
    put_text(&mut aad, columns.model_sha256);
    put_text(&mut aad, Some(columns.pack_versions));
    aad
}

/// The associated data of a record in `format` (1: record id, key id and format only; 2: and
/// every column), or `None` for a format this build does not know.
pub fn associated_data_for(
    format: u32,
    record_id: &[u8; RECORD_ID_LEN],
    key_id: &str,
    columns: &Columns<'_>,
) -> Option<Vec<u8>> {
    match format {
        1 => Some(associated_data(record_id, key_id, 1)),
        2 => Some(associated_data_v2(record_id, key_id, columns)),
        _ => None,
    }
}

/// The associated data of a format-1 record (record id, key id, format).
pub fn associated_data(record_id: &[u8; RECORD_ID_LEN], key_id: &str, format: u32) -> Vec<u8> {
    let mut aad = Vec::with_capacity(32 + key_id.len());
    aad.extend_from_slice(b"vazhi-feedback\0");
    aad.extend_from_slice(&format.to_le_bytes());
    aad.extend_from_slice(&(key_id.len() as u32).to_le_bytes());
    aad.extend_from_slice(key_id.as_bytes());
    aad.extend_from_slice(record_id);
    aad
}

/// An AES-256-GCM instance for one key; its round keys are wiped when it is dropped.
pub struct Sealer {
    cipher: Aes256Gcm,
}

impl std::fmt::Debug for Sealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Sealer(…)")
    }
}

impl Sealer {
    /// A sealer for `key`.
    pub fn new(key: &Key) -> Self {
        Self {
            cipher: Aes256Gcm::new(&(*key.as_bytes()).into()),
        }
    }

    /// Encrypts `plaintext` under `nonce` with the record's associated data; returns ciphertext
    /// followed by the tag.
    pub fn seal(&self, nonce: &[u8; NONCE_LEN], aad: &[u8], plaintext: &[u8]) -> Vec<u8> {
        let nonce = Nonce::from(*nonce);
        self.cipher
            .encrypt(
                &nonce,
                Payload {
                    msg: plaintext,
                    aad,
                },
            )
            // Only fails for inputs over 64 GiB; records are capped far below.
            .unwrap_or_default()
    }

    /// Decrypts and authenticates; the plaintext is wiped when dropped.
    pub fn open(
        &self,
        nonce: &[u8],
        aad: &[u8],
        ciphertext: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, AuthenticationFailed> {
        let nonce: [u8; NONCE_LEN] = nonce.try_into().map_err(|_| AuthenticationFailed)?;
        let nonce = Nonce::from(nonce);
        self.cipher
            .decrypt(
                &nonce,
                Payload {
                    msg: ciphertext,
                    aad,
                },
            )
            .map(Zeroizing::new)
            .map_err(|_| AuthenticationFailed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn setup() -> (Sealer, [u8; 16], [u8; 12], Vec<u8>) {
        let key = Key::generate().unwrap();
        let id = random::<16>().unwrap();
        let nonce = random::<12>().unwrap();
        let aad = associated_data(&id, "k-1", 1);
        let sealer = Sealer::new(&key);
        let ct = sealer.seal(&nonce, &aad, b"secret question");
        (sealer, id, nonce, ct)
    }

    #[test]
    fn round_trip_and_every_flipped_bit_fails() {
        let (sealer, id, nonce, ct) = setup();
        let aad = associated_data(&id, "k-1", 1);
        assert_eq!(ct.len(), b"secret question".len() + TAG_LEN);
        assert_eq!(
            sealer.open(&nonce, &aad, &ct).unwrap().as_slice(),
            b"secret question"
        );
        for bit in 0..ct.len() * 8 {
            let mut bad = ct.clone();
            bad[bit / 8] ^= 1 << (bit % 8);
            assert_eq!(sealer.open(&nonce, &aad, &bad), Err(AuthenticationFailed));
        }
        for bit in 0..NONCE_LEN * 8 {
            let mut bad = nonce;
            bad[bit / 8] ^= 1 << (bit % 8);
            assert_eq!(sealer.open(&bad, &aad, &ct), Err(AuthenticationFailed));
        }
        assert_eq!(
            sealer.open(&nonce[..11], &aad, &ct),
            Err(AuthenticationFailed)
        );
    }

    #[test]
    fn format_2_binds_every_column() {
        let key = Key::generate().unwrap();
        let sealer = Sealer::new(&key);
        let id = random::<16>().unwrap();
        let nonce = random::<12>().unwrap();
        let cols = Columns {
            created_at_ms: 1_700_000_000_000,
            route: "exact:helplines",
            rating: 1,
            model_id: Some("m"),
            model_sha256: None,
            pack_versions: "{\"helplines\":\"1.2.0\"}",
        };
        let ct = sealer.seal(&nonce, &associated_data_v2(&id, "k-1", &cols), b"q");
        assert!(sealer
            .open(&nonce, &associated_data_v2(&id, "k-1", &cols), &ct)
            .is_ok());
        let edits = [
            Columns {
                created_at_ms: 1,
                ..cols
            },
            Columns {
                route: "model",
                ..cols
            },
            Columns { rating: -1, ..cols },
            Columns {
                model_id: None,
                ..cols
            },
            Columns {
                model_id: Some(""),
                ..cols
            },
            Columns {
                model_sha256: Some(""),
                ..cols
            },
            Columns {
                pack_versions: "{}",
                ..cols
            },
        ];
        for edited in edits {
            let aad = associated_data_v2(&id, "k-1", &edited);
            assert_eq!(
                sealer.open(&nonce, &aad, &ct),
                Err(AuthenticationFailed),
                "{edited:?}"
            );
        }
        // Read as format 1 (a downgrade of the format column): fails too.
        assert_eq!(
            sealer.open(&nonce, &associated_data(&id, "k-1", 1), &ct),
            Err(AuthenticationFailed)
        );
        assert!(associated_data_for(3, &id, "k-1", &cols).is_none());
    }

    #[test]
    fn associated_data_binds_record_key_and_format() {
        let (sealer, id, nonce, ct) = setup();
        let mut other_id = id;
        other_id[0] ^= 1;
        for aad in [
            associated_data(&other_id, "k-1", 1),
            associated_data(&id, "k-2", 1),
            associated_data(&id, "k-1", 2),
        ] {
            assert_eq!(sealer.open(&nonce, &aad, &ct), Err(AuthenticationFailed));
        }
        let wrong_key = Sealer::new(&Key::generate().unwrap());
        let aad = associated_data(&id, "k-1", 1);
        assert_eq!(wrong_key.open(&nonce, &aad, &ct), Err(AuthenticationFailed));
    }
}
