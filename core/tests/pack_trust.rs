//! Which packs the knowledge base accepts (decision 0014), against real SQLite files and the
//! packs Vazhi ships: an impostor cannot replace a shipped pack, a signature covers every byte
//! of a pack, a signed pack is replaced only by the same key, unsigned packs need consent.

#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};

use ed25519_dalek::SigningKey;
use vazhi_core::knowledge::trust::{self, PackFiles};
use vazhi_core::knowledge::{KnowledgeBase, KnowledgeError, Provenance};
use vazhi_core::signing::{public_key_hex, SigningError, TrustPolicy, TrustedKeys};

fn shipped(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../assets/packs")
        .join(name)
}

fn write_pack(dir: &Path, name: &str, version: &str, body: &str) {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(
        dir.join("pack.toml"),
        format!("name = \"{name}\"\ntitle = \"{name}\"\nversion = \"{version}\"\nlicence = \"CC0-1.0\"\nsource = \"tests\"\n"),
    )
    .unwrap();
    let record = serde_json::json!({"id": "emergency", "keys": ["emergency number"], "title": "Emergency", "body": body, "lang": "en"});
    std::fs::write(dir.join("records.jsonl"), format!("{record}\n")).unwrap();
}

fn key(seed: u8) -> SigningKey {
    SigningKey::from_bytes(&[seed; 32])
}

fn trusting(keys: &[&SigningKey]) -> TrustPolicy {
    let hex: Vec<String> = keys.iter().map(|k| public_key_hex(k)).collect();
    TrustPolicy::signed_by(TrustedKeys::from_hex(&hex).unwrap())
}

fn open() -> (tempfile::TempDir, KnowledgeBase) {
    let dir = tempfile::tempdir().unwrap();
    let kb = KnowledgeBase::open(&dir.path().join("knowledge.db")).unwrap();
    (dir, kb)
}

fn emergency_body(kb: &KnowledgeBase) -> String {
    kb.lookup("helplines", "emergency numbers")
        .unwrap()
        .expect("the helplines index")
        .body
}

#[test]
fn an_impostor_cannot_replace_a_shipped_pack() {
    let (dir, kb) = open();
    let report = kb
        .import_dir(&shipped("helplines"), &TrustPolicy::shipped_only())
        .unwrap();
    assert_eq!(report.provenance, Provenance::Shipped);
    let genuine = emergency_body(&kb);
    assert!(genuine.contains("112"));

    // The review's attack: `helplines` 999, unsigned, with other numbers.
    let fake = dir.path().join("fake");
    write_pack(
        &fake,
        "helplines",
        "999.0.0",
        "Call 555-0100 in any emergency.",
    );
    assert!(matches!(
        kb.import_dir(&fake, &TrustPolicy::shipped_only()),
        Err(KnowledgeError::Unsigned { .. })
    ));
    // Even where unsigned packs are allowed, or signed by a key the app trusts, a shipped pack
    // is replaced only by a shipped pack.
    assert!(matches!(
        kb.import_dir(&fake, &TrustPolicy::any()),
        Err(KnowledgeError::ReplacementUntrusted {
            installed: Provenance::Shipped,
            ..
        })
    ));
    let k = key(1);
    trust::sign_pack(&fake, &k).unwrap();
    let err = kb.import_dir(&fake, &trusting(&[&k])).unwrap_err();
    assert!(
        matches!(err, KnowledgeError::ReplacementUntrusted { .. }),
        "{err}"
    );
    assert_eq!(err.kind(), vazhi_core::error_kind::ErrorKind::Verification);
    // Nothing changed.
    assert_eq!(emergency_body(&kb), genuine);
    let info = kb.packs().unwrap();
    let helplines = info.iter().find(|p| p.name == "helplines").unwrap();
    assert_eq!(helplines.version, "1.2.0");
    assert_eq!(helplines.provenance, Provenance::Shipped);
}

#[test]
fn a_copy_of_a_shipped_pack_changed_by_one_byte_is_not_shipped() {
    let (dir, kb) = open();
    let copy = dir.path().join("copy");
    std::fs::create_dir_all(&copy).unwrap();
    for f in ["pack.toml", "records.jsonl"] {
        std::fs::copy(shipped("thirukkural").join(f), copy.join(f)).unwrap();
    }
    assert_eq!(
        PackFiles::of_dir(&copy).unwrap(),
        PackFiles::of_dir(&shipped("thirukkural")).unwrap()
    );
    let mut records = std::fs::read(copy.join("records.jsonl")).unwrap();
    // One byte of the first record's English translation.
    let at = records.windows(8).position(|w| w == b"\"body\": ").unwrap();
    let at = at + records[at..].iter().position(|&b| b == b'e').unwrap();
    records[at] = b'E';
    std::fs::write(copy.join("records.jsonl"), records).unwrap();
    assert!(matches!(
        kb.import_dir(&copy, &TrustPolicy::shipped_only()),
        Err(KnowledgeError::Unsigned { .. })
    ));
    assert!(kb.packs().unwrap().is_empty());
}

#[test]
fn a_signature_covers_every_byte_and_binds_the_key() {
    let (dir, kb) = open();
    let (a, b) = (key(1), key(2));
    let pack = dir.path().join("p");
    write_pack(&pack, "civic", "1.0.0", "Ward office: 9 to 5.");
    let sig = trust::sign_pack(&pack, &a).unwrap();
    assert_eq!(sig.key_hex(), public_key_hex(&a));

    // Not trusted: refused, and not taken as unsigned unless the app allows unsigned packs.
    assert!(matches!(
        kb.import_dir(&pack, &TrustPolicy::shipped_only()),
        Err(KnowledgeError::Signature {
            source: SigningError::UntrustedKey { .. },
            ..
        })
    ));
    // Changed after signing: refused whatever the policy.
    let body = std::fs::read_to_string(pack.join("records.jsonl")).unwrap();
    std::fs::write(pack.join("records.jsonl"), body.replace("9 to 5", "9 to 6")).unwrap();
    for policy in [trusting(&[&a]), TrustPolicy::any()] {
        assert!(matches!(
            kb.import_dir(&pack, &policy),
            Err(KnowledgeError::Signature {
                source: SigningError::Mismatch,
                ..
            })
        ));
    }
    std::fs::write(pack.join("records.jsonl"), &body).unwrap();
    let report = kb.import_dir(&pack, &trusting(&[&a])).unwrap();
    assert_eq!(
        report.provenance,
        Provenance::Signed {
            key: public_key_hex(&a)
        }
    );

    // An upgrade signed by the same key replaces it; one signed by another trusted key, or
    // unsigned, does not.
    let v2 = dir.path().join("v2");
    write_pack(&v2, "civic", "2.0.0", "Ward office: 10 to 5.");
    trust::sign_pack(&v2, &b).unwrap();
    assert!(matches!(
        kb.import_dir(&v2, &trusting(&[&a, &b])),
        Err(KnowledgeError::ReplacementUntrusted { .. })
    ));
    std::fs::remove_file(v2.join(trust::SIGNATURE_FILE)).unwrap();
    assert!(matches!(
        kb.import_dir(&v2, &TrustPolicy::any()),
        Err(KnowledgeError::ReplacementUntrusted { .. })
    ));
    trust::sign_pack(&v2, &a).unwrap();
    let report = kb.import_dir(&v2, &trusting(&[&a])).unwrap();
    assert_eq!(report.replaced.as_deref(), Some("1.0.0"));
    assert_eq!(
        kb.lookup("civic", "emergency number")
            .unwrap()
            .unwrap()
            .body,
        "Ward office: 10 to 5."
    );
}

#[test]
fn unsigned_packs_need_consent_and_may_be_replaced_by_trusted_ones() {
    let (dir, kb) = open();
    let pack = dir.path().join("p");
    write_pack(&pack, "notes", "1.0.0", "First.");
    assert!(matches!(
        kb.import_dir(&pack, &TrustPolicy::shipped_only()),
        Err(KnowledgeError::Unsigned { .. })
    ));
    assert_eq!(
        kb.import_dir(&pack, &TrustPolicy::any())
            .unwrap()
            .provenance,
        Provenance::Unsigned
    );
    let k = key(7);
    write_pack(&pack, "notes", "1.1.0", "Second.");
    trust::sign_pack(&pack, &k).unwrap();
    let report = kb.import_dir(&pack, &trusting(&[&k])).unwrap();
    assert!(matches!(report.provenance, Provenance::Signed { .. }));
    // A malformed signature file is an error, not "unsigned".
    write_pack(&pack, "notes", "1.2.0", "Third.");
    std::fs::write(pack.join(trust::SIGNATURE_FILE), "{not json").unwrap();
    assert!(matches!(
        kb.import_dir(&pack, &TrustPolicy::any()),
        Err(KnowledgeError::Signature {
            source: SigningError::BadSignatureFile(_),
            ..
        })
    ));
}

#[test]
fn a_pack_read_whole_is_checked_like_a_streamed_one() {
    let (dir, kb) = open();
    let pack = dir.path().join("p");
    write_pack(&pack, "notes", "1.0.0", "First.");
    let read = vazhi_core::knowledge::Pack::read(&pack).unwrap();
    assert_eq!(read.files, PackFiles::of_dir(&pack).unwrap());
    assert!(matches!(
        kb.import(&read, &TrustPolicy::shipped_only()),
        Err(KnowledgeError::Unsigned { .. })
    ));
    let k = key(9);
    trust::sign_pack(&pack, &k).unwrap();
    let read = vazhi_core::knowledge::Pack::read(&pack).unwrap();
    assert!(kb.import(&read, &trusting(&[&k])).is_ok());
}
