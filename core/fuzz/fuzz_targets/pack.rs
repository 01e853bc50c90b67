//! The knowledge-pack reader with hostile packs: the input is `pack.toml`, then (after the
//! first NUL byte) `records.jsonl`, then (after the next NUL, if any) `pack.sig`. Parsing the
//! manifest, reading every record, checking the signature and importing the pack into a real
//! SQLite knowledge base must each return, never panic; an import that succeeds holds the
//! records that were read, and a refused one leaves the base as it was.
#![no_main]

use std::io::Cursor;
use std::path::Path;
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use vazhi_core::knowledge::pack::{parse_manifest, HashingReader, RecordReader};
use vazhi_core::knowledge::trust::{self, PackFiles};
use vazhi_core::knowledge::{KnowledgeBase, Pack};
use vazhi_core::signing::{SignatureFile, TrustPolicy};

fn kb() -> &'static KnowledgeBase {
    static KB: OnceLock<(tempfile::TempDir, KnowledgeBase)> = OnceLock::new();
    &KB.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let kb = KnowledgeBase::open(&dir.path().join("knowledge.db")).unwrap();
        (dir, kb)
    })
    .1
}

fn sha256(bytes: &[u8]) -> [u8; 32] {
    let (mut r, hash) = HashingReader::new(bytes);
    std::io::copy(&mut r, &mut std::io::sink()).unwrap();
    hash.finish().unwrap()
}

fuzz_target!(|data: &[u8]| {
    let mut parts = data.splitn(3, |&b| b == 0);
    let (Some(manifest), Some(records)) = (parts.next(), parts.next()) else {
        return;
    };
    let signature = parts.next();
    let Ok(text) = std::str::from_utf8(manifest) else {
        return;
    };
    let Ok(manifest_parsed) = parse_manifest(Path::new("pack.toml"), text) else {
        return;
    };
    let reader = RecordReader::new(
        "records.jsonl".into(),
        Cursor::new(records),
        &manifest_parsed,
    );
    let Ok(read) = reader.collect::<Result<Vec<_>, _>>() else {
        return;
    };
    let signature = signature
        .and_then(|s| std::str::from_utf8(s).ok())
        .and_then(|s| SignatureFile::parse(s).ok());
    let files = PackFiles {
        manifest: sha256(manifest),
        records: sha256(records),
    };
    let _ = trust::decide(
        &TrustPolicy::shipped_only(),
        &manifest_parsed.name,
        &files,
        signature.as_ref(),
    );
    let count = read.len();
    let pack = Pack {
        manifest: manifest_parsed,
        records: read,
        files,
        signature,
    };
    let kb = kb();
    let before = kb.packs().unwrap().len();
    match kb.import(&pack, &TrustPolicy::any()) {
        Ok(report) => {
            assert_eq!(report.records, count);
            let _ = kb.search(&pack.records[0].title, 3, None);
            kb.remove(&pack.manifest.name).unwrap();
        }
        Err(_) => assert_eq!(kb.packs().unwrap().len(), before),
    }
});
