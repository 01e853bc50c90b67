use std::collections::HashSet;

use super::*;

struct Fixture {
    dir: tempfile::TempDir,
    provider: Arc<FileKeyProvider>,
}

impl Fixture {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let provider = Arc::new(FileKeyProvider::new(dir.path().join("keys")));
        Self { dir, provider }
    }
    fn db(&self) -> PathBuf {
        self.dir.path().join("feedback.db")
    }
    fn open(&self) -> Result<FeedbackStore, FeedbackError> {
        self.open_with(FeedbackConfig::default())
    }
    fn open_with(&self, config: FeedbackConfig) -> Result<FeedbackStore, FeedbackError> {
        FeedbackStore::open(&self.db(), self.provider.clone(), config)
    }
    fn raw(&self) -> Connection {
        Connection::open(self.db()).unwrap()
    }
}

fn item(n: usize) -> NewFeedback {
    NewFeedback {
        question: format!("question {n}: குறள் {n} என்ன?"),
        route: "exact:thirukkural".into(),
        answer: format!("answer {n}"),
        card_ids: vec![format!("kural-{n}")],
        rating: Some(if n.is_multiple_of(3) {
            Rating::Down
        } else {
            Rating::Up
        }),
        correction: n.is_multiple_of(2).then(|| format!("correction {n}")),
        model_id: Some("smollm2-135m-instruct-q4_1".into()),
        model_sha256: Some("b1".repeat(32)),
        pack_versions: [("thirukkural".to_string(), "1.0.0".to_string())].into(),
        created_at_ms: Some(1_700_000_000_000 + n as i64),
    }
}

fn all(store: &FeedbackStore) -> Listing {
    store.list(&Range::default()).unwrap()
}

#[test]
fn ten_thousand_records_round_trip() {
    let f = Fixture::new();
    let store = f.open().unwrap();
    let items: Vec<NewFeedback> = (0..10_000).map(item).collect();
    for batch in items.chunks(1000) {
        store.record_batch(batch).unwrap();
    }
    assert_eq!(store.count().unwrap(), 10_000);
    let listing = all(&store);
    assert!(listing.unreadable.is_empty());
    assert_eq!(listing.records.len(), 10_000);
    for (got, want) in listing.records.iter().zip(&items) {
        assert_eq!(got.question, want.question);
        assert_eq!(got.answer, want.answer);
        assert_eq!(got.card_ids, want.card_ids);
        assert_eq!(got.correction, want.correction);
        assert_eq!(Some(got.rating), want.rating);
        assert_eq!(got.pack_versions, want.pack_versions);
        assert_eq!(Some(got.created_at_ms), want.created_at_ms);
    }
    let nonces: HashSet<Vec<u8>> = f
        .raw()
        .prepare("SELECT nonce FROM feedback")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(nonces.len(), 10_000, "every stored nonce is distinct");
    let ranged = store
        .list(&Range {
            from_ms: Some(1_700_000_000_100),
            until_ms: Some(1_700_000_000_200),
            limit: Some(50),
        })
        .unwrap();
    assert_eq!(ranged.records.len(), 50);
    assert_eq!(ranged.records[0].created_at_ms, 1_700_000_000_100);
}

#[test]
fn a_million_nonces_are_distinct() {
    let mut seen = HashSet::with_capacity(1_000_000);
    for _ in 0..1_000_000 {
        assert!(seen.insert(random::<{ crypto::NONCE_LEN }>().unwrap()));
    }
}

#[test]
fn the_key_counter_survives_reopening() {
    let f = Fixture::new();
    let store = f.open().unwrap();
    let key = store.current_key_id().unwrap();
    store
        .record_batch(&(0..5).map(item).collect::<Vec<_>>())
        .unwrap();
    assert_eq!(store.key_messages(&key).unwrap(), 5);
    drop(store);
    let store = f.open().unwrap();
    assert_eq!(store.current_key_id().unwrap(), key);
    store
        .record_batch(&(5..8).map(item).collect::<Vec<_>>())
        .unwrap();
    assert_eq!(store.key_messages(&key).unwrap(), 8);
}

#[test]
fn keys_rotate_before_the_limit_and_reencryption_retires_old_keys() {
    let f = Fixture::new();
    let store = f.open_with(FeedbackConfig { rotate_after: 10 }).unwrap();
    let first = store.current_key_id().unwrap();
    for batch in (0..25).map(item).collect::<Vec<_>>().chunks(4) {
        store.record_batch(batch).unwrap();
    }
    let keys: Vec<(String, u64)> = f
        .raw()
        .prepare("SELECT key_id, messages FROM keys ORDER BY created_at, rowid")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(keys.len(), 3, "{keys:?}");
    assert!(keys.iter().all(|(_, n)| *n <= 10), "{keys:?}");
    assert_eq!(keys.iter().map(|(_, n)| n).sum::<u64>(), 25);
    assert_ne!(store.current_key_id().unwrap(), first);
    let listing = all(&store);
    assert_eq!((listing.records.len(), listing.unreadable.len()), (25, 0));
    assert!(listing.records.iter().any(|r| r.key_id == first));

    let moved = store.reencrypt().unwrap();
    let current = store.current_key_id().unwrap();
    assert_eq!(
        moved,
        25 - listing
            .records
            .iter()
            .filter(|r| r.key_id == current)
            .count() as u64
    );
    let after = all(&store);
    assert_eq!(after.records.len(), 25);
    assert!(after.records.iter().all(|r| r.key_id == current));
    assert!(f.provider.get(&first).unwrap().is_none(), "old key deleted");
    for (a, b) in after.records.iter().zip(&listing.records) {
        assert_eq!((&a.record_id, &a.question), (&b.record_id, &b.question));
    }
}

fn flip(f: &Fixture, column: &str, byte: usize, seq: i64) {
    let conn = f.raw();
    let mut value: Vec<u8> = conn
        .query_row(
            &format!("SELECT {column} FROM feedback WHERE seq = ?1"),
            [seq],
            |r| r.get(0),
        )
        .unwrap();
    let at = byte.min(value.len() - 1);
    value[at] ^= 0x01;
    conn.execute(
        &format!("UPDATE feedback SET {column} = ?1 WHERE seq = ?2"),
        params![value, seq],
    )
    .unwrap();
}

#[test]
fn flipped_bits_are_reported_per_record_and_nothing_else_is_lost() {
    let f = Fixture::new();
    let store = f.open().unwrap();
    store
        .record_batch(&(0..6).map(item).collect::<Vec<_>>())
        .unwrap();
    flip(&f, "nonce", 3, 1); // nonce
    flip(&f, "ciphertext", 0, 2); // ciphertext body
    flip(&f, "ciphertext", usize::MAX, 3); // last byte: the tag
    flip(&f, "record_id", 0, 4); // the row's identity (in the associated data)
    let listing = all(&store);
    assert_eq!(listing.records.len(), 2);
    assert_eq!(listing.unreadable.len(), 4);
    assert!(listing
        .unreadable
        .iter()
        .all(|u| u.reason == Unreadable::Tampered));
    assert_eq!(store.count().unwrap(), 6, "unreadable rows are kept");
}

#[test]
fn a_ciphertext_moved_to_another_row_fails_authentication() {
    let f = Fixture::new();
    let store = f.open().unwrap();
    store
        .record_batch(&(0..3).map(item).collect::<Vec<_>>())
        .unwrap();
    f.raw()
        .execute_batch(
            "UPDATE feedback SET (nonce, ciphertext) =
               (SELECT nonce, ciphertext FROM feedback WHERE seq = 1) WHERE seq = 2;",
        )
        .unwrap();
    let listing = all(&store);
    assert_eq!(listing.records.len(), 2);
    assert_eq!(listing.unreadable[0].reason, Unreadable::Tampered);
    assert_eq!(
        listing.unreadable[0].created_at_ms,
        item(1).created_at_ms.unwrap()
    );
}

#[test]
fn a_wrong_key_reads_nothing() {
    let f = Fixture::new();
    let store = f.open().unwrap();
    store
        .record_batch(&(0..3).map(item).collect::<Vec<_>>())
        .unwrap();
    let key_file = f
        .dir
        .path()
        .join(format!("keys/{}.key", store.current_key_id().unwrap()));
    drop(store);
    std::fs::write(&key_file, Key::generate().unwrap().as_bytes()).unwrap();
    let store = f.open().unwrap();
    let listing = all(&store);
    assert!(listing.records.is_empty());
    assert_eq!(listing.unreadable.len(), 3);
}

fn file_digest(path: &Path) -> Vec<u8> {
    std::fs::read(path).unwrap_or_default()
}

#[test]
fn a_lost_key_is_reported_changes_nothing_and_a_fresh_store_can_start() {
    let f = Fixture::new();
    let store = f.open().unwrap();
    store
        .record_batch(&(0..4).map(item).collect::<Vec<_>>())
        .unwrap();
    let key = store.current_key_id().unwrap();
    drop(store);
    f.provider.delete(&key).unwrap();
    let before = file_digest(&f.db());
    let err = f.open().unwrap_err();
    assert!(
        matches!(&err, FeedbackError::KeyUnavailable { key_id, records: 4 } if *key_id == key),
        "{err}"
    );
    assert_eq!(file_digest(&f.db()), before, "nothing changed");
    assert!(f.open().is_err(), "still refused: no silent fallback");

    let (fresh, aside) =
        FeedbackStore::open_fresh(&f.db(), f.provider.clone(), FeedbackConfig::default()).unwrap();
    assert_eq!(fresh.count().unwrap(), 0);
    assert_ne!(fresh.current_key_id().unwrap(), key);
    fresh.record(&item(9)).unwrap();
    let aside = aside.unwrap();
    let old: u64 = Connection::open(&aside)
        .unwrap()
        .query_row("SELECT count(*) FROM feedback", [], |r| r.get(0))
        .unwrap();
    assert_eq!(old, 4, "the unreadable rows are kept aside");
}

#[test]
fn open_fresh_folds_a_hot_wal_into_the_database_it_sets_aside() {
    let f = Fixture::new();
    let store = f.open().unwrap();
    store
        .record_batch(&(0..7).map(item).collect::<Vec<_>>())
        .unwrap();
    let key = store.current_key_id().unwrap();
    // As after a crash: the connection is never closed, the batch lives only in the -wal.
    std::mem::forget(store);
    let wal = PathBuf::from(format!("{}-wal", f.db().display()));
    assert!(std::fs::metadata(&wal).unwrap().len() > 0);
    f.provider.delete(&key).unwrap();
    let (fresh, aside) =
        FeedbackStore::open_fresh(&f.db(), f.provider.clone(), FeedbackConfig::default()).unwrap();
    let aside = aside.unwrap();
    assert!(!PathBuf::from(format!("{}-wal", aside.display())).exists());
    let old: u64 = Connection::open(&aside)
        .unwrap()
        .query_row("SELECT count(*) FROM feedback", [], |r| r.get(0))
        .unwrap();
    assert_eq!(old, 7, "the batch in the WAL went aside with the database");
    assert_eq!(fresh.count().unwrap(), 0);
    fresh.record(&item(1)).unwrap();
    assert_eq!(fresh.count().unwrap(), 1);
}

#[test]
fn a_truncated_database_is_refused_and_left_alone() {
    let f = Fixture::new();
    let store = f.open().unwrap();
    for batch in (0..3000).map(item).collect::<Vec<_>>().chunks(500) {
        store.record_batch(batch).unwrap();
    }
    drop(store); // checkpoints the WAL into the main file
    let len = std::fs::metadata(f.db()).unwrap().len();
    let file = std::fs::OpenOptions::new()
        .write(true)
        .open(f.db())
        .unwrap();
    file.set_len(len / 2).unwrap();
    drop(file);
    let before = file_digest(&f.db());
    let result = f.open().and_then(|s| s.list(&Range::default()).map(|_| s));
    match result {
        Err(FeedbackError::Corrupt(_)) => {}
        Err(other) => panic!("expected Corrupt, got {other}"),
        Ok(s) => assert!(matches!(
            s.integrity_check(),
            Err(FeedbackError::Corrupt(_))
        )),
    }
    assert_eq!(
        file_digest(&f.db()),
        before,
        "the damaged file is not rewritten"
    );
}

#[test]
fn oversized_empty_and_non_utf8_input_is_refused_and_nothing_written() {
    let f = Fixture::new();
    let store = f.open().unwrap();
    let mut big = item(1);
    big.correction = Some("x".repeat(1 << 20));
    let err = store.record_batch(&[item(0), big]).unwrap_err();
    assert!(
        matches!(err, FeedbackError::TooLarge { field: "correction", max: MAX_CORRECTION_BYTES, got } if got == 1 << 20),
        "{err}"
    );
    assert!(!err.to_string().contains("xxxx"));
    assert_eq!(
        store.count().unwrap(),
        0,
        "the valid item of the batch was not written either"
    );
    let mut empty = item(1);
    empty.question = "  ".into();
    assert!(matches!(
        store.record(&empty),
        Err(FeedbackError::Invalid {
            field: "question",
            ..
        })
    ));
    let mut early = item(1);
    early.created_at_ms = Some(-1);
    assert!(matches!(
        early.validate(),
        Err(FeedbackError::Invalid {
            field: "created_at_ms",
            ..
        })
    ));
    let mut unrated = item(1);
    unrated.rating = None;
    assert!(matches!(
        store.record(&unrated),
        Err(FeedbackError::Invalid {
            field: "rating",
            ..
        })
    ));
    assert!(matches!(
        text_from_bindings("question", b"caf\xc3"),
        Err(FeedbackError::InvalidUtf8 { field: "question" })
    ));
    assert_eq!(
        text_from_bindings("question", "கண்".as_bytes()).unwrap(),
        "கண்"
    );
}

#[test]
fn no_plaintext_reaches_the_disk() {
    let f = Fixture::new();
    let store = f.open().unwrap();
    let markers: Vec<String> = (0..4)
        .map(|i| format!("PLAINTEXT-MARKER-{i}-ரகசியம்"))
        .collect();
    let items: Vec<NewFeedback> = (0..50)
        .map(|n| NewFeedback {
            question: format!("{} q{n}", markers[0]),
            answer: format!("{} a{n}", markers[1]),
            correction: Some(format!("{} c{n}", markers[2])),
            card_ids: vec![format!("{}-{n}", markers[3])],
            ..item(n)
        })
        .collect();
    store.record_batch(&items).unwrap();
    let mut files = vec![f.db()];
    for suffix in ["-wal", "-shm"] {
        files.push(PathBuf::from(format!("{}{suffix}", f.db().display())));
    }
    assert!(
        files[1].exists(),
        "the WAL holds the batch before a checkpoint"
    );
    for entry in std::fs::read_dir(f.dir.path().join("keys")).unwrap() {
        files.push(entry.unwrap().path());
    }
    let scan = |files: &[PathBuf]| {
        for file in files {
            let bytes = std::fs::read(file).unwrap_or_default();
            for marker in &markers {
                let needle = marker.as_bytes();
                assert!(
                    !bytes.windows(needle.len()).any(|w| w == needle),
                    "{marker} found in {}",
                    file.display()
                );
            }
        }
    };
    scan(&files);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        for file in &files[..3] {
            let mode = std::fs::metadata(file).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600, "{}", file.display());
        }
    }
    drop(store); // checkpoint into the main file, then scan again
    scan(&files[..1]);
}

#[test]
fn export_writes_private_json_lines_and_purge_deletes() {
    let f = Fixture::new();
    let store = f.open().unwrap();
    store
        .record_batch(&(0..10).map(item).collect::<Vec<_>>())
        .unwrap();
    flip(&f, "ciphertext", 0, 10);
    let out = f.dir.path().join("export.jsonl");
    let report = store.export(&out, &Range::default()).unwrap();
    assert_eq!((report.exported, report.unreadable), (9, 1));
    let lines: Vec<Feedback> = std::fs::read_to_string(&out)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 9);
    assert_eq!(lines[0].question, item(0).question);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&out).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }
    assert!(store
        .export(Path::new("/nonexistent/dir/x.jsonl"), &Range::default())
        .is_err());
    assert_eq!(store.purge(item(5).created_at_ms.unwrap()).unwrap(), 5);
    assert_eq!(store.count().unwrap(), 5);
    assert_eq!(all(&store).records[0].question, item(5).question);
    store.integrity_check().unwrap();
    assert_eq!(store.purge_all().unwrap(), 5);
    assert_eq!(store.count().unwrap(), 0);
}

#[test]
fn concurrent_writers_and_readers() {
    let f = Fixture::new();
    let store = Arc::new(f.open().unwrap());
    let writers: Vec<_> = (0..4)
        .map(|w| {
            let store = Arc::clone(&store);
            std::thread::spawn(move || {
                for b in 0..20 {
                    let batch: Vec<NewFeedback> =
                        (0..10).map(|i| item(w * 1000 + b * 10 + i)).collect();
                    store.record_batch(&batch).unwrap();
                }
            })
        })
        .collect();
    let readers: Vec<_> = (0..2)
        .map(|_| {
            let store = Arc::clone(&store);
            std::thread::spawn(move || {
                let mut last = 0;
                for _ in 0..30 {
                    let listing = store.list(&Range::default()).unwrap();
                    assert!(listing.unreadable.is_empty());
                    assert_eq!(listing.records.len() % 10, 0, "batches are all or nothing");
                    assert!(listing.records.len() >= last);
                    last = listing.records.len();
                }
            })
        })
        .collect();
    for t in writers.into_iter().chain(readers) {
        t.join().unwrap();
    }
    assert_eq!(store.count().unwrap(), 800);
    store.integrity_check().unwrap();
}

#[test]
fn a_newer_schema_is_refused() {
    let f = Fixture::new();
    drop(f.open().unwrap());
    f.raw().pragma_update(None, "user_version", 99).unwrap();
    assert!(matches!(
        f.open(),
        Err(FeedbackError::NewerSchema { found: 99 })
    ));
}

#[test]
fn every_column_is_sealed_editing_one_is_tampering() {
    let f = Fixture::new();
    let store = f.open().unwrap();
    store
        .record_batch(&(0..8).map(item).collect::<Vec<_>>())
        .unwrap();
    // The review's attack, an UPDATE of the rating column, one edit of every other
    // plaintext column, and another record id (a sealed triple moved between rows is
    // `a_ciphertext_moved_to_another_row_fails_authentication`).
    let edits = [
        "UPDATE feedback SET rating = -rating WHERE seq = 1",
        "UPDATE feedback SET route = 'model' WHERE seq = 2",
        "UPDATE feedback SET created_at = created_at + 1 WHERE seq = 3",
        "UPDATE feedback SET model_id = 'other' WHERE seq = 4",
        "UPDATE feedback SET model_sha256 = NULL WHERE seq = 5",
        "UPDATE feedback SET pack_versions = '{}' WHERE seq = 6",
        "UPDATE feedback SET format = 1 WHERE seq = 7",
    ];
    let raw = f.raw();
    for sql in edits {
        raw.execute_batch(sql).unwrap();
    }
    raw.execute_batch(
        "UPDATE feedback SET record_id = x'00112233445566778899aabbccddeeff' WHERE seq = 8;",
    )
    .unwrap();
    let listing = all(&store);
    let tampered: Vec<_> = listing
        .unreadable
        .iter()
        .filter(|u| u.reason == Unreadable::Tampered)
        .collect();
    assert_eq!(tampered.len(), 8, "{:?}", listing.unreadable);
    assert!(listing.records.is_empty(), "{:?}", listing.records);
}

#[test]
fn format_1_records_are_resealed_where_their_key_is_present_and_reported_where_not() {
    let f = Fixture::new();
    let store = f.open().unwrap();
    store
        .record_batch(&(0..4).map(item).collect::<Vec<_>>())
        .unwrap();
    let key_id = store.current_key_id().unwrap();
    drop(store);
    // Rewrite the rows as format 1 wrote them (associated data: id, key id, format only).
    let key = f.provider.get(&key_id).unwrap().unwrap();
    let sealer = Sealer::new(&key);
    let raw = f.raw();
    let rows: Vec<(i64, Vec<u8>)> = raw
        .prepare("SELECT seq, record_id FROM feedback")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    for (seq, id) in &rows {
        let id: [u8; RECORD_ID_LEN] = id.as_slice().try_into().unwrap();
        let nonce = random::<{ crypto::NONCE_LEN }>().unwrap();
        let plain = br#"{"q":"old question","a":"old answer","c":[],"x":null}"#;
        let sealed = sealer.seal(&nonce, &crypto::associated_data(&id, &key_id, 1), plain);
        raw.execute(
            "UPDATE feedback SET format = 1, nonce = ?1, ciphertext = ?2 WHERE seq = ?3",
            params![&nonce[..], sealed, seq],
        )
        .unwrap();
    }
    // One row under a key that is gone: it stays format 1.
    raw.execute_batch(
        "INSERT INTO keys (key_id, created_at, messages) VALUES ('k-gone', 0, 1);
         UPDATE feedback SET key_id = 'k-gone' WHERE seq = 4;",
    )
    .unwrap();
    let store = f.open().unwrap();
    let formats: Vec<i64> = raw
        .prepare("SELECT format FROM feedback ORDER BY seq")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(formats, [2, 2, 2, 1]);
    let listing = all(&store);
    assert_eq!(listing.records.len(), 3);
    assert!(listing
        .records
        .iter()
        .all(|r| r.question == "old question" && r.format == 2));
    assert_eq!(listing.unreadable.len(), 1);
    assert_eq!(listing.unreadable[0].reason, Unreadable::KeyMissing);
    assert_eq!(listing.unreadable[0].format, 1);
    // Re-sealed rows are bound like new ones: editing one is tampering.
    raw.execute_batch("UPDATE feedback SET rating = -rating WHERE seq = 1")
        .unwrap();
    assert_eq!(all(&store).unreadable.len(), 2);
}

/// A provider that records the key ids it is asked for.
#[derive(Debug)]
struct Recording {
    inner: FileKeyProvider,
    asked: Mutex<Vec<String>>,
}

impl KeyProvider for Recording {
    fn get(&self, key_id: &str) -> Result<Option<Key>, KeyError> {
        self.asked.lock().unwrap().push(key_id.to_owned());
        self.inner.get(key_id)
    }
    fn create(&self, key_id: &str) -> Result<Key, KeyError> {
        self.inner.create(key_id)
    }
    fn delete(&self, key_id: &str) -> Result<(), KeyError> {
        self.inner.delete(key_id)
    }
}

#[test]
fn a_malformed_row_is_reported_and_the_rest_still_read_and_exported() {
    let f = Fixture::new();
    let provider = Arc::new(Recording {
        inner: FileKeyProvider::new(f.dir.path().join("keys")),
        asked: Mutex::new(Vec::new()),
    });
    let store = FeedbackStore::open(&f.db(), provider.clone(), FeedbackConfig::default()).unwrap();
    store
        .record_batch(&(0..6).map(item).collect::<Vec<_>>())
        .unwrap();
    let raw = f.raw();
    raw.execute_batch(
        "PRAGMA foreign_keys = OFF;
         UPDATE feedback SET format = 99 WHERE seq = 1;
         UPDATE feedback SET format = -5 WHERE seq = 2;
         UPDATE feedback SET key_id = '../../etc/passwd' WHERE seq = 3;
         UPDATE feedback SET route = x'ff00' WHERE seq = 4;",
    )
    .unwrap();
    provider.asked.lock().unwrap().clear();
    let listing = all(&store);
    assert_eq!(listing.records.len(), 2);
    let malformed = listing
        .unreadable
        .iter()
        .filter(|u| u.reason == Unreadable::Malformed)
        .count();
    assert_eq!(malformed, 4, "{:?}", listing.unreadable);
    assert!(
        provider
            .asked
            .lock()
            .unwrap()
            .iter()
            .all(|k| keys::is_valid_key_id(k)),
        "an invalid key id reached the provider"
    );
    let out = f.dir.path().join("export.jsonl");
    let report = store.export(&out, &Range::default()).unwrap();
    assert_eq!((report.exported, report.unreadable), (2, 4));
}

#[cfg(unix)]
#[test]
fn export_never_writes_through_a_planted_link() {
    use std::os::unix::fs::PermissionsExt;
    let f = Fixture::new();
    let store = f.open().unwrap();
    store.record(&item(1)).unwrap();
    let out = f.dir.path().join("export.jsonl");
    let victim = f.dir.path().join("victim");
    std::fs::write(&victim, b"keep").unwrap();
    // The old predictable temporary name, and the target itself, as links to the victim.
    std::os::unix::fs::symlink(
        &victim,
        format!("{}.tmp-{}", out.display(), std::process::id()),
    )
    .unwrap();
    std::os::unix::fs::symlink(&victim, f.dir.path().join("export.jsonl.tmp")).unwrap();
    store.export(&out, &Range::default()).unwrap();
    assert_eq!(std::fs::read(&victim).unwrap(), b"keep");
    let meta = std::fs::symlink_metadata(&out).unwrap();
    assert!(meta.file_type().is_file());
    assert_eq!(meta.permissions().mode() & 0o777, 0o600);
    assert!(std::fs::read_to_string(&out)
        .unwrap()
        .contains("question 1"));
}

/// A provider that calls back into the store (as a keystore wrapper might, to count what it
/// protects): before issue 20 the store called it under its writer lock, and it deadlocked.
#[derive(Debug)]
struct ReEntrant {
    inner: FileKeyProvider,
    store: std::sync::OnceLock<std::sync::Weak<FeedbackStore>>,
}

impl KeyProvider for ReEntrant {
    fn get(&self, key_id: &str) -> Result<Option<Key>, KeyError> {
        if let Some(store) = self.store.get().and_then(std::sync::Weak::upgrade) {
            let _ = store.current_key_id();
        }
        self.inner.get(key_id)
    }
    fn create(&self, key_id: &str) -> Result<Key, KeyError> {
        if let Some(store) = self.store.get().and_then(std::sync::Weak::upgrade) {
            let _ = store.key_messages(key_id);
        }
        self.inner.create(key_id)
    }
    fn delete(&self, key_id: &str) -> Result<(), KeyError> {
        self.inner.delete(key_id)
    }
}

#[test]
fn a_provider_that_calls_back_into_the_store_does_not_deadlock() {
    let f = Fixture::new();
    let provider = Arc::new(ReEntrant {
        inner: FileKeyProvider::new(f.dir.path().join("keys")),
        store: std::sync::OnceLock::new(),
    });
    let store = Arc::new(
        FeedbackStore::open(
            &f.db(),
            provider.clone(),
            FeedbackConfig { rotate_after: 2 },
        )
        .unwrap(),
    );
    provider.store.set(Arc::downgrade(&store)).unwrap();
    let (done, wait) = std::sync::mpsc::channel();
    let worker = store.clone();
    std::thread::spawn(move || {
        // Writes (with a rotation), a re-encryption, reads.
        let result = (|| {
            for n in 0..5 {
                worker.record(&item(n))?;
            }
            worker.reencrypt()?;
            Ok::<_, FeedbackError>(worker.list(&Range::default())?.records.len())
        })();
        let _ = done.send(result.map_err(|e| e.to_string()));
    });
    let result = wait
        .recv_timeout(std::time::Duration::from_secs(60))
        .expect("deadlocked: a key-provider callback waited for the store's lock");
    assert_eq!(result, Ok(5));
}
