//! The knowledge base against real SQLite files: import, versions, lookup, Indic whole-word
//! search, FTS injection, migrations and integrity.

#![allow(clippy::unwrap_used)]

use std::path::Path;
use vazhi_core::signing::TrustPolicy;

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
    kb.import_dir(&dir.path().join("pack"), &TrustPolicy::any())
        .unwrap();
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
        assert!(
            kb.import_dir(&p, &TrustPolicy::any()).is_err(),
            "{what} was imported"
        );
    }
    let err = kb
        .import_dir(&dir.path().join("malformed-line"), &TrustPolicy::any())
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
        kb.import_dir(&p, &TrustPolicy::any()),
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
    kb.import_dir(&v1, &TrustPolicy::any()).unwrap();
    assert!(matches!(
        kb.import_dir(&v1, &TrustPolicy::any()),
        Err(KnowledgeError::NotAnUpgrade { .. })
    ));
    let report = kb.import_dir(&v2, &TrustPolicy::any()).unwrap();
    assert_eq!(report.replaced.as_deref(), Some("1.9.0"));
    assert!(kb.lookup("p", "old").unwrap().is_none());
    assert!(
        kb.search("old", 5, None).unwrap().is_empty(),
        "old records left in the index"
    );
    assert_eq!(kb.lookup("p", "new").unwrap().unwrap().body, "new text");
    assert!(matches!(
        kb.import_dir(&v1, &TrustPolicy::any()),
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

fn ids(kb: &KnowledgeBase, q: &str) -> Vec<String> {
    kb.search(q, 10, None)
        .unwrap()
        .into_iter()
        .map(|h| h.card.id)
        .collect()
}

#[test]
fn any_query_word_may_match_and_records_holding_more_of_the_question_rank_first() {
    let (_dir, kb) = kb_with(&[
        record("both", &[], "Monsoon", "The rain falls on the farms."),
        record("rain", &[], "Weather", "Heavy rain today."),
        record("farms", &[], "Villages", "Farms and cattle."),
        record("none", &[], "Other", "Nothing related."),
    ]);
    let found = ids(&kb, "rain on farms");
    assert_eq!(found[0], "both", "{found:?}");
    assert_eq!(found.len(), 3, "{found:?}");
    let r = kb.retrieve("rain on farms", 3, None).unwrap();
    assert!((r.confidence - 1.0).abs() < 1e-9, "{}", r.confidence);
    // A word no record has lowers the confidence: the best record holds only part of the
    // question.
    let partial = kb.retrieve("rain photosynthesis", 3, None).unwrap();
    assert!(["both", "rain"].contains(&partial.hits[0].card.id.as_str()));
    assert!(partial.confidence < 0.5, "{}", partial.confidence);
}

#[test]
fn stop_words_do_not_count_and_limit_zero_finds_nothing() {
    let (_dir, kb) = kb_with(&[record("a", &[], "The river", "What is in a river")]);
    assert_eq!(ids(&kb, "the river"), ids(&kb, "river"));
    assert!(ids(&kb, "what is the").is_empty());
    assert!(ids(&kb, "என்ன எது").is_empty());
    assert!(kb.search("river", 0, None).unwrap().is_empty());
}

#[test]
fn inflected_misspelt_and_romanized_questions_meet_their_records() {
    let (_dir, kb) = kb_with(&[
        record(
            "friend",
            &[],
            "நட்பு · Friendship",
            "நட்பின் பெருமை; true friendship",
        ),
        record("rain", &[], "மழை", "மழை உலகைக் காக்கும்"),
    ]);
    // Tamil case endings on either side.
    assert_eq!(ids(&kb, "நட்பை")[0], "friend");
    assert_eq!(ids(&kb, "மழையின் சிறப்பு")[0], "rain");
    // Romanized Tamil.
    assert_eq!(ids(&kb, "natpu")[0], "friend");
    assert_eq!(ids(&kb, "mazhai pathi")[0], "rain");
    // English stems and a typo.
    assert_eq!(ids(&kb, "friendships")[0], "friend");
    assert_eq!(ids(&kb, "frendship")[0], "friend");
}

#[test]
fn keys_inside_a_question_boost_their_record() {
    let (_dir, kb) = kb_with(&[
        record(
            "amb",
            &["ambulance", "ambulance number"],
            "108",
            "Call for medical help.",
        ),
        record(
            "other",
            &[],
            "Ambulance history",
            "The ambulance was invented long ago.",
        ),
    ]);
    let r = kb
        .retrieve("i need an ambulance right now", 3, None)
        .unwrap();
    assert_eq!(r.hits[0].card.id, "amb");
    assert!(r.key.is_none(), "the key is not the whole question");
    let whole = kb.retrieve("Ambulance number?", 3, None).unwrap();
    assert_eq!(whole.hits[0].card.id, "amb");
    let key = whole.key.unwrap();
    assert_eq!(
        (key.pack.as_str(), key.key.as_str()),
        ("t", "ambulance number")
    );
    assert!((whole.confidence - 1.0).abs() < 1e-9);
}

#[test]
fn pack_aliases_say_where_to_look_not_what_for() {
    let dir = tempfile::tempdir().unwrap();
    let kb = KnowledgeBase::open(&dir.path().join("k.db")).unwrap();
    let pack = dir.path().join("kural");
    write_pack(
        &pack,
        "kural",
        "1.0.0",
        &[&record("k11", &[], "Kural 11", "Rain sustains the world.")],
    );
    let manifest = std::fs::read_to_string(pack.join("pack.toml")).unwrap();
    std::fs::write(
        pack.join("pack.toml"),
        format!("{manifest}aliases = [\"kural\", \"குறள்\"]\n"),
    )
    .unwrap();
    kb.import_dir(&pack, &TrustPolicy::any()).unwrap();
    let other = dir.path().join("other");
    write_pack(
        &other,
        "other",
        "1.0.0",
        &[&record("o", &[], "Weather", "Rain in the hills.")],
    );
    kb.import_dir(&other, &TrustPolicy::any()).unwrap();
    // "kural" names the pack: its records come first, and the confidence is about "rain".
    let r = kb.retrieve("kural about rain", 3, None).unwrap();
    assert_eq!(r.hits[0].card.id, "k11");
    assert!((r.confidence - 1.0).abs() < 1e-9, "{}", r.confidence);
    // An alias alone is still searched for.
    assert_eq!(ids(&kb, "kural"), ["k11"]);
    // Naming the pack is evidence of its own, even when nothing in it matches: the router
    // answers from the pack instead of letting the model invent a kural.
    let none = kb.retrieve("kural about education", 3, None).unwrap();
    assert!(none.hits.is_empty());
    assert_eq!(none.named_packs, ["kural"]);
    let evidence = none.evidence().expect("a named pack is evidence");
    assert_eq!(evidence.named_pack.as_deref(), Some("kural"));
    assert_eq!(evidence.confidence, 0.0);
    // No alias, nothing found: no evidence.
    assert!(kb
        .retrieve("education", 3, None)
        .unwrap()
        .evidence()
        .is_none());
}

#[test]
fn tamil_verbs_meet_their_root_and_short_typos_their_packs_common_words() {
    let (_dir, kb) = kb_with(&[
        record(
            "wife",
            &[],
            "181",
            "கணவன் அடித்தல், குடும்ப வன்முறை. Call this number.",
        ),
        record(
            "thief",
            &[],
            "100",
            "வீட்டில் திருடன் புகுந்தால். Call this number.",
        ),
        record("fire", &[], "101", "Fire. Call this number."),
        record("police", &[], "100", "Police. Call this number."),
        record("hello", &[], "Hell", "Hell and heaven."),
    ]);
    // Present tense and completive forms meet the verbal noun and the conditional: the
    // record holds the whole question.
    for (question, id) in [("கணவன் அடிக்கிறார்", "wife"), ("திருடன் புகுந்துவிட்டான்", "thief")]
    {
        let r = kb.retrieve(question, 3, None).unwrap();
        assert_eq!(r.hits[0].card.id, id);
        assert!(
            (r.confidence - 1.0).abs() < 1e-9,
            "{question}: {}",
            r.confidence
        );
    }
    // "numbr" is five letters: corrected only because "number" is in most of the records.
    let fixed = kb.retrieve("fire numbr", 3, None).unwrap();
    assert_eq!(fixed.hits[0].card.id, "fire");
    assert!(
        (fixed.confidence - 1.0).abs() < 1e-9,
        "{}",
        fixed.confidence
    );
    // "helo" is not corrected into "hell", which only one record in five holds.
    assert_eq!(kb.correct_spelling("helo").unwrap(), "helo");
}

#[test]
fn romanized_tamil_stop_words_do_not_count() {
    let (_dir, kb) = kb_with(&[record("amb", &[], "108", "Ambulance")]);
    let r = kb.retrieve("udane ambulance venum", 3, None).unwrap();
    assert_eq!(r.hits[0].card.id, "amb");
    assert!((r.confidence - 1.0).abs() < 1e-9, "{}", r.confidence);
    let r = kb.retrieve("ambulance ku", 3, None).unwrap();
    assert!((r.confidence - 1.0).abs() < 1e-9, "{}", r.confidence);
}

#[test]
fn a_version_1_database_with_packs_is_reindexed_on_open() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("k.db");
    {
        let mut conn = rusqlite::Connection::open(&path).unwrap();
        schema::migrate_to(&mut conn, 1).unwrap();
        conn.execute_batch(
            "INSERT INTO packs VALUES ('old', 'Old', '1.0.0', '[]', 'CC0-1.0', 's', '', 0);
             INSERT INTO records VALUES (1, 'old', 'r1', 'நட்பு', 'நட்பின் பெருமை', 'ta', '[]', 's');
             INSERT INTO record_keys VALUES ('old', 'kural 1', 1);
             INSERT INTO records_fts (rowid, title, body, keys) VALUES (1, 'நட்பு', 'நட்பின் பெருமை', 'kural 1');",
        )
        .unwrap();
    }
    let kb = KnowledgeBase::open(&path).unwrap();
    assert_eq!(
        ids(&kb, "நட்பை"),
        ["r1"],
        "the old record was not re-indexed"
    );
    assert_eq!(kb.lookup("old", "Kural 1").unwrap().unwrap().id, "r1");
    kb.integrity_check().unwrap();
    let conn = rusqlite::Connection::open(&path).unwrap();
    assert_eq!(schema::version(&conn).unwrap(), schema::VERSION);
    assert_eq!(
        schema::analyzer_version(&conn).unwrap(),
        vazhi_core::knowledge::analyzer::ANALYZER_VERSION
    );
}

#[test]
fn a_bad_line_after_good_ones_rolls_the_streamed_import_back() {
    let dir = tempfile::tempdir().unwrap();
    let kb = KnowledgeBase::open(&dir.path().join("k.db")).unwrap();
    let mut records: Vec<String> = (0..2000)
        .map(|i| record(&format!("r{i}"), &[], "T", "body"))
        .collect();
    records.push("{broken".into());
    let refs: Vec<&str> = records.iter().map(String::as_str).collect();
    write_pack(&dir.path().join("p"), "p", "1.0.0", &refs);
    match kb.import_dir(&dir.path().join("p"), &TrustPolicy::any()) {
        Err(KnowledgeError::Record { line: 2001, .. }) => {}
        other => panic!("{other:?}"),
    }
    assert!(kb.packs().unwrap().is_empty());
    assert!(ids(&kb, "body").is_empty());
}
