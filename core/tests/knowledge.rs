//! The knowledge base against real SQLite files: import, versions, lookup, Indic whole-word
//! search, FTS injection, migrations and integrity.

#![allow(clippy::unwrap_used)]

use std::path::Path;

use vazhi_core::knowledge::{schema, KnowledgeBase, KnowledgeError};

fn write_pack(dir: &Path, name: &str, version: &str, records: &[&str]) {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(
        dir.join("pack.toml"),
        format!("name = \"{name}\"\ntitle = \"Test {name}\"\nversion = \"{version}\"\nlanguages = [\"ta\", \"en\"]\nlicence = \"CC0-1.0\"\nsource = \"Vazhi tests\"\n"),
    )
    .unwrap();
    std::fs::write(dir.join("records.jsonl"), records.join("\n")).unwrap();
}

fn record(id: &str, keys: &[&str], title: &str, body: &str) -> String {
    serde_json::json!({"id": id, "keys": keys, "title": title, "body": body, "lang": "ta", "tags": ["t"], "source": format!("source of {id}")})
        .to_string()
}

fn kb_with(records: &[String]) -> (tempfile::TempDir, KnowledgeBase) {
    let dir = tempfile::tempdir().unwrap();
    let refs: Vec<&str> = records.iter().map(String::as_str).collect();
    write_pack(&dir.path().join("pack"), "t", "1.0.0", &refs);
    let kb = KnowledgeBase::open(&dir.path().join("knowledge.db")).unwrap();
    kb.import_dir(&dir.path().join("pack")).unwrap();
    (dir, kb)
}

#[test]
fn lookup_finds_records_by_normalized_key_verbatim_with_source() {
    let body = "அகர முதல எழுத்தெல்லாம் ஆதி\nபகவன் முதற்றே உலகு.";
    let (_dir, kb) = kb_with(&[record("kural-1", &["kural 1", "குறள் 1"], "Kural 1", body)]);
    for key in ["kural 1", "KURAL  1", "குறள் ௧", "குறள் 1"] {
        let card = kb
            .lookup("t", key)
            .unwrap()
            .unwrap_or_else(|| panic!("{key} not found"));
        assert_eq!(card.body, body);
        assert_eq!(card.source, "source of kural-1");
        assert_eq!(card.licence, "CC0-1.0");
    }
    assert_eq!(kb.lookup("t", "kural 2").unwrap(), None);
    assert_eq!(kb.lookup("other", "kural 1").unwrap(), None);
}

#[test]
fn tamil_search_is_whole_word_with_suffixes() {
    let (_dir, kb) = kb_with(&[
        record("eyes", &[], "கண்கள்", "இரண்டு கண்கள் உலகைப் பார்க்கின்றன"),
        record("computer", &[], "கணினி", "கணினி ஒரு கருவி"),
    ]);
    let ids = |q: &str| {
        kb.search(q, 10, None)
            .unwrap()
            .into_iter()
            .map(|h| h.card.id)
            .collect::<Vec<_>>()
    };
    assert_eq!(ids("கண்"), vec!["eyes"], "கண் must find கண்கள் and not கணினி");
    assert_eq!(ids("கணினி"), vec!["computer"]);
    assert!(ids("கண").is_empty(), "a query ending mid-letter matched");
    // An NFD-typed query finds NFC text: ொ typed as ெ + ா.
    let nfd = "உலகைப் பார்க்கின்றன".replace('ொ', "\u{0BC6}\u{0BBE}");
    assert_eq!(ids(&nfd), vec!["eyes"]);
}

#[test]
fn devanagari_search_is_whole_word() {
    let (_dir, kb) = kb_with(&[
        record("hindi", &[], "हिन्दी भाषा", "हिन्दी भारत की एक भाषा है"),
        record("other", &[], "कमल", "कमल एक फूल है"),
    ]);
    let ids = |q: &str| {
        kb.search(q, 10, None)
            .unwrap()
            .into_iter()
            .map(|h| h.card.id)
            .collect::<Vec<_>>()
    };
    assert_eq!(ids("हिन्दी"), vec!["hindi"]);
    assert_eq!(ids("भाषा"), vec!["hindi"]);
    assert!(
        ids("ह").is_empty(),
        "a bare consonant matched the first letter of हिन्दी"
    );
    assert_eq!(ids("फूल"), vec!["other"]);
}

#[test]
fn user_text_never_becomes_fts_syntax() {
    let (_dir, kb) = kb_with(&[record(
        "a",
        &[],
        "multi-agent systems",
        "agents that cooperate; a'b \"quoted\" AND NEAR col:foo",
    )]);
    for q in [
        "multi-agent",
        "a'b",
        "\"",
        "AND",
        "NEAR(",
        "*",
        "col:foo",
        "",
        "   ",
        "\u{0}",
        "((((",
        "^",
        "-x",
        "x OR",
        "\u{202E}abc",
    ] {
        kb.search(q, 5, None)
            .unwrap_or_else(|e| panic!("{q:?}: {e}"));
    }
    assert_eq!(kb.search("multi-agent", 5, None).unwrap().len(), 1);
    assert_eq!(kb.search("col:foo", 5, None).unwrap().len(), 1);
    let huge = "ab ".repeat(400_000);
    kb.search(&huge, 5, None).unwrap();
}

#[test]
fn hits_are_ranked_and_carry_snippets() {
    let (_dir, kb) = kb_with(&[
        record("once", &[], "Rivers", "The Kaveri is a river."),
        record(
            "title",
            &[],
            "River Kaveri",
            "The Kaveri river flows through Tamil Nadu; Kaveri delta.",
        ),
    ]);
    let hits = kb.search("kaveri", 10, None).unwrap();
    assert_eq!(hits.len(), 2);
    assert_eq!(hits[0].card.id, "title");
    assert!(hits[0].score >= hits[1].score);
    assert!(hits[0].snippet.contains("[Kaveri]"), "{}", hits[0].snippet);
    assert!(kb.best_score("kaveri").unwrap().is_some());
    assert_eq!(kb.best_score("zzzz").unwrap(), None);
}

#[test]
fn bad_packs_import_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let kb = KnowledgeBase::open(&dir.path().join("k.db")).unwrap();
    let good = record("a", &["x"], "A", "a");
    let cases: Vec<(&str, Vec<String>)> = vec![
        ("malformed line", vec![good.clone(), "{not json".into()]),
        ("duplicate id", vec![good.clone(), good.clone()]),
        ("empty pack", vec![]),
    ];
    for (what, records) in cases {
        let p = dir.path().join(what.replace(' ', "-"));
        let refs: Vec<&str> = records.iter().map(String::as_str).collect();
        write_pack(&p, "bad", "1.0.0", &refs);
        assert!(kb.import_dir(&p).is_err(), "{what} was imported");
    }
    let err = kb
        .import_dir(&dir.path().join("malformed-line"))
        .unwrap_err();
    assert!(
        matches!(err, KnowledgeError::Record { line: 2, .. }),
        "{err}"
    );
    // No licence.
    let p = dir.path().join("nolicence");
    write_pack(&p, "bad", "1.0.0", &[&good]);
    let manifest = std::fs::read_to_string(p.join("pack.toml"))
        .unwrap()
        .replace("licence = \"CC0-1.0\"\n", "");
    std::fs::write(p.join("pack.toml"), manifest).unwrap();
    assert!(matches!(
        kb.import_dir(&p),
        Err(KnowledgeError::Manifest { .. })
    ));
    assert!(kb.packs().unwrap().is_empty());
    kb.integrity_check().unwrap();
}

#[test]
fn versions_upgrade_and_never_downgrade() {
    let dir = tempfile::tempdir().unwrap();
    let kb = KnowledgeBase::open(&dir.path().join("k.db")).unwrap();
    let v1 = dir.path().join("v1");
    let v2 = dir.path().join("v2");
    write_pack(
        &v1,
        "p",
        "1.9.0",
        &[&record("a", &["old"], "Old", "old text")],
    );
    write_pack(
        &v2,
        "p",
        "1.10.0",
        &[&record("b", &["new"], "New", "new text")],
    );
    kb.import_dir(&v1).unwrap();
    assert!(matches!(
        kb.import_dir(&v1),
        Err(KnowledgeError::NotAnUpgrade { .. })
    ));
    let report = kb.import_dir(&v2).unwrap();
    assert_eq!(report.replaced.as_deref(), Some("1.9.0"));
    assert!(kb.lookup("p", "old").unwrap().is_none());
    assert!(
        kb.search("old", 5, None).unwrap().is_empty(),
        "old records left in the index"
    );
    assert_eq!(kb.lookup("p", "new").unwrap().unwrap().body, "new text");
    assert!(matches!(
        kb.import_dir(&v1),
        Err(KnowledgeError::NotAnUpgrade { .. })
    ));
    assert_eq!(kb.packs().unwrap()[0].version, "1.10.0");
    kb.remove("p").unwrap();
    assert!(matches!(kb.remove("p"), Err(KnowledgeError::NoSuchPack(_))));
    assert!(kb.search("new", 5, None).unwrap().is_empty());
    kb.integrity_check().unwrap();
}

#[test]
fn migrations_run_from_every_older_version_and_refuse_newer() {
    for from in 0..schema::VERSION {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k.db");
        {
            let mut conn = rusqlite::Connection::open(&path).unwrap();
            schema::migrate_to(&mut conn, from).unwrap();
            assert_eq!(schema::version(&conn).unwrap(), from);
        }
        let kb = KnowledgeBase::open(&path).unwrap();
        kb.integrity_check().unwrap();
        let conn = rusqlite::Connection::open(&path).unwrap();
        assert_eq!(schema::version(&conn).unwrap(), schema::VERSION);
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("k.db");
    rusqlite::Connection::open(&path)
        .unwrap()
        .pragma_update(None, "user_version", 99)
        .unwrap();
    assert!(matches!(
        KnowledgeBase::open(&path),
        Err(KnowledgeError::SchemaTooNew { found: 99, .. })
    ));
}

#[test]
fn many_openers_of_a_new_file_all_succeed() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("k.db");
    let barrier = std::sync::Arc::new(std::sync::Barrier::new(6));
    let threads: Vec<_> = (0..6)
        .map(|_| {
            let (path, barrier) = (path.clone(), barrier.clone());
            std::thread::spawn(move || {
                barrier.wait();
                KnowledgeBase::open(&path).map(|_| ())
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap().unwrap();
    }
    let conn = rusqlite::Connection::open(&path).unwrap();
    assert_eq!(schema::version(&conn).unwrap(), schema::VERSION);
}
