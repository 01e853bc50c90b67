//! `vazhi feedback` as a process: the commands round trip, imports killed with SIGKILL mid-batch,
//! a full disk, an oversized correction, a lost key and a damaged database.

#![allow(clippy::unwrap_used)]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Instant;

use serde_json::Value;

fn vazhi(data_dir: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_vazhi"));
    cmd.env_remove("VAZHI_LOG")
        .env_remove("VAZHI_DATA_DIR")
        .arg("--data-dir")
        .arg(data_dir)
        .arg("feedback");
    cmd
}

fn run(data_dir: &Path, args: &[&str]) -> Output {
    vazhi(data_dir).args(args).output().unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Runs a command that must succeed; returns its stdout.
fn ok(data_dir: &Path, args: &[&str]) -> String {
    let out = run(data_dir, args);
    assert!(
        out.status.success(),
        "vazhi feedback {args:?}: {:?}\n{}",
        out.status,
        text(&out.stderr)
    );
    text(&out.stdout)
}

fn count(data_dir: &Path) -> u64 {
    ok(data_dir, &["count"]).trim().parse().unwrap()
}

fn json_lines(stdout: &str) -> Vec<Value> {
    stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

/// `n` realistic import lines (Tamil and English), the i-th question ending in ` #i`.
fn write_jsonl(path: &Path, n: usize, seed: u64) {
    const WORDS: &[&str] = &[
        "திருக்குறள்",
        "அறம்",
        "பொருள்",
        "மழை",
        "காய்ச்சல்",
        "உதவி",
        "எண்",
        "kural",
        "meaning",
        "scheme",
        "helpline",
        "fever",
        "crop",
        "price",
        "explain",
        "scam",
    ];
    let mut rng = fastrand::Rng::with_seed(seed);
    let mut words = |k: usize| {
        (0..k)
            .map(|_| WORDS[rng.usize(..WORDS.len())])
            .collect::<Vec<_>>()
            .join(" ")
    };
    let mut out = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    for i in 0..n {
        let mut line = serde_json::json!({
            "question": format!("{} #{i}", words(6)),
            "answer": words(20),
            "rating": if i % 3 == 0 { "down" } else { "up" },
            "route": "model",
            "card_ids": [format!("thirukkural/kural-{}", i % 1330 + 1)],
        });
        if i % 5 == 0 {
            line["correction"] = words(8).into();
        }
        writeln!(out, "{line}").unwrap();
    }
    out.flush().unwrap();
}

#[test]
fn add_list_export_purge_count_round_trip() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path().join("data");
    let id = ok(
        &d,
        &[
            "add",
            "--question",
            "குறள் 1 பொருள் என்ன?",
            "--answer",
            "அகர முதல எழுத்தெல்லாம்…",
            "--rating",
            "down",
            "--route",
            "exact:thirukkural",
            "--correction",
            "first line\nsecond line",
            "--card",
            "thirukkural/kural-1",
            "--card",
            "thirukkural/kural-2",
            "--model-id",
            "smollm2",
            "--model-sha256",
            "abc123",
            "--pack",
            "thirukkural=1.2.0",
        ],
    );
    let id = id.trim();
    assert_eq!(id.len(), 32, "{id}");
    let added = ok(
        &d,
        &[
            "add",
            "--json",
            "--question",
            "women helpline number",
            "--answer",
            "181",
            "--rating",
            "up",
        ],
    );
    let added = json_lines(&added);
    assert_eq!(added[0]["record_id"].as_str().unwrap().len(), 32);
    assert_eq!(count(&d), 2);

    let listed = ok(&d, &["list"]);
    assert!(listed.contains("குறள் 1 பொருள் என்ன?"), "{listed}");
    assert!(
        listed.contains("correction: first line second line"),
        "{listed}"
    );
    assert!(listed.contains("down  exact:thirukkural"), "{listed}");
    assert!(listed.contains("women helpline number"), "{listed}");

    let records = json_lines(&ok(&d, &["list", "--json"]));
    assert_eq!(records.len(), 2);
    let first = &records[0];
    assert_eq!(first["record_id"], id);
    assert_eq!(first["rating"], "down");
    assert_eq!(first["route"], "exact:thirukkural");
    assert_eq!(first["correction"], "first line\nsecond line");
    assert_eq!(
        first["card_ids"],
        serde_json::json!(["thirukkural/kural-1", "thirukkural/kural-2"])
    );
    assert_eq!(first["pack_versions"]["thirukkural"], "1.2.0");
    assert_eq!(first["model_id"], "smollm2");
    assert_eq!(records[1]["rating"], "up");
    assert_eq!(records[1]["route"], "model");
    assert_eq!(
        json_lines(&ok(&d, &["list", "--json", "--limit", "1"])).len(),
        1
    );

    let export = tmp.path().join("export.jsonl");
    let said = ok(&d, &["export", export.to_str().unwrap()]);
    assert!(said.starts_with("exported 2 records"), "{said}");
    let exported = json_lines(&std::fs::read_to_string(&export).unwrap());
    assert_eq!(exported.len(), 2);
    assert_eq!(exported[0]["question"], "குறள் 1 பொருள் என்ன?");
    assert_eq!(exported[1]["question"], "women helpline number");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&export).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }

    // Old records by time: --since/--until select them, purge --before deletes them.
    let old = tmp.path().join("old.jsonl");
    std::fs::write(
        &old,
        "{\"question\":\"old one\",\"answer\":\"a\",\"rating\":\"up\",\"created_at_ms\":1000}\n\n\
         {\"question\":\"old two\",\"answer\":\"b\",\"rating\":\"down\",\"created_at_ms\":2000,\
          \"route\":\"search:helplines\"}\n",
    )
    .unwrap();
    assert_eq!(
        ok(&d, &["import", old.to_str().unwrap()]).trim(),
        "imported 2 records"
    );
    assert_eq!(count(&d), 4);
    let window = json_lines(&ok(
        &d,
        &["list", "--json", "--since", "1500", "--until", "5000"],
    ));
    assert_eq!(window.len(), 1);
    assert_eq!(window[0]["question"], "old two");
    assert_eq!(window[0]["route"], "search:helplines");
    let since = export.with_file_name("since.jsonl");
    let said = ok(
        &d,
        &[
            "export",
            since.to_str().unwrap(),
            "--until",
            "5000",
            "--json",
        ],
    );
    assert_eq!(json_lines(&said)[0]["exported"], 2);
    // An export can be imported again (its record and key ids are ignored).
    let d2 = tmp.path().join("data2");
    ok(&d2, &["import", since.to_str().unwrap()]);
    assert_eq!(count(&d2), 2);

    assert_eq!(
        ok(&d, &["purge", "--before", "5000"]).trim(),
        "deleted 2 records"
    );
    assert_eq!(count(&d), 2);

    // A bad line: named, its batch not written, the batches before it kept.
    let bad = tmp.path().join("bad.jsonl");
    std::fs::write(
        &bad,
        "{\"question\":\"q1\",\"answer\":\"a\",\"rating\":\"up\"}\n\
         {\"question\":\"q2\",\"answer\":\"a\",\"rating\":\"up\"}\n\
         {\"question\":\"q3\",\"answer\":\"a\",\"rating\":\"up\"}\n\
         {\"question\":\"q4\",\"answer\":\"a\",\"rating\":\"sideways\"}\n",
    )
    .unwrap();
    let out = run(&d, &["import", bad.to_str().unwrap(), "--batch", "2"]);
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    assert!(err.contains("line 4: \"rating\" must be"), "{err}");
    assert!(err.contains("lines 3–4"), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert_eq!(count(&d), 4, "q1 and q2 written, q3 not");

    assert!(ok(&d, &["reencrypt"]).starts_with("re-encrypted 0 records with key k-"));
    assert_eq!(ok(&d, &["check"]).trim(), "ok");
    // reset refuses to set a readable store aside without --force.
    let out = run(&d, &["reset"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert_eq!(count(&d), 4);

    assert_eq!(ok(&d, &["purge", "--all"]).trim(), "deleted 4 records");
    assert_eq!(count(&d), 0);
    assert_eq!(
        json_lines(&ok(&d, &["purge", "--all", "--json"]))[0]["deleted"],
        0
    );
}

/// Frames written to the WAL after its last commit frame: a transaction in progress when the
/// writer died (SQLite ignores them on recovery). Frames of an older WAL generation (other
/// salts) are not counted.
fn uncommitted_wal_frames(wal: &Path) -> usize {
    let Ok(bytes) = std::fs::read(wal) else {
        return 0;
    };
    if bytes.len() < 32 {
        return 0;
    }
    let be = |at: usize| u32::from_be_bytes(bytes[at..at + 4].try_into().unwrap());
    let page = match be(8) {
        1 => 65_536,
        n => n as usize,
    };
    let (salt1, salt2) = (be(16), be(20));
    let (mut at, mut since_commit) = (32, 0);
    while at + 24 + page <= bytes.len() && be(at + 8) == salt1 && be(at + 12) == salt2 {
        since_commit = if be(at + 4) != 0 { 0 } else { since_commit + 1 };
        at += 24 + page;
    }
    since_commit
}

/// SIGKILL during `import --batch 5000` at 24 random moments: after each kill the count is a
/// whole number of batches, `integrity_check` passes and every record decrypts. The WAL left by
/// the killed process shows whether the kill landed inside a transaction.
#[test]
fn kill_9_during_import_keeps_whole_batches_only() {
    const RECORDS: usize = 100_000;
    const BATCH: u64 = 5000;
    const ROUNDS: usize = 24;
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("ratings.jsonl");
    write_jsonl(&file, RECORDS, 11);
    let import = |d: &Path| {
        let mut cmd = vazhi(d);
        cmd.arg("import")
            .arg(&file)
            .args(["--batch", &BATCH.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        cmd
    };
    // One full import: the whole file goes in, and its duration bounds the kill delays.
    let full = tmp.path().join("full");
    let started = Instant::now();
    assert!(import(&full).status().unwrap().success());
    let duration = started.elapsed();
    assert_eq!(count(&full), RECORDS as u64);
    std::fs::remove_dir_all(&full).unwrap();

    let seed = fastrand::u64(..);
    eprintln!("seed {seed}; a full import takes {duration:.2?}");
    let mut rng = fastrand::Rng::with_seed(seed);
    let (mut while_running, mut mid_transaction) = (0, 0);
    for round in 0..ROUNDS {
        let d = tmp.path().join(format!("round{round}"));
        let delay = duration.mul_f64(rng.f64());
        let mut child = import(&d).spawn().unwrap();
        std::thread::sleep(delay);
        let running = child.try_wait().unwrap().is_none();
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        let pending = uncommitted_wal_frames(&d.join("feedback.db-wal"));
        while_running += usize::from(running);
        mid_transaction += usize::from(pending > 0);

        let n = count(&d);
        eprintln!(
            "round {round}: killed after {delay:.2?} ({}), {pending} uncommitted WAL frames, \
             {n} records kept",
            if running { "running" } else { "already done" }
        );
        assert_eq!(n % BATCH, 0, "round {round} (seed {seed}): {n} records");
        assert!(n <= RECORDS as u64);
        assert_eq!(
            ok(&d, &["check"]).trim(),
            "ok",
            "round {round} (seed {seed})"
        );
        let listed = run(&d, &["list", "--json"]);
        assert!(listed.status.success(), "{}", text(&listed.stderr));
        let lines = json_lines(&text(&listed.stdout));
        assert_eq!(lines.len() as u64, n, "round {round} (seed {seed})");
        assert!(
            lines.iter().all(|l| l.get("unreadable").is_none()),
            "round {round} (seed {seed}): unreadable records"
        );
        // Whole batches, in file order.
        if let Some(last) = lines.last() {
            let q = last["question"].as_str().unwrap();
            assert!(q.ends_with(&format!(" #{}", n - 1)), "{q}");
        }
        std::fs::remove_dir_all(&d).unwrap();
    }
    eprintln!(
        "{ROUNDS} kills (seed {seed}): {while_running} while importing, {mid_transaction} inside \
         a transaction (uncommitted WAL frames)"
    );
    assert!(
        while_running >= ROUNDS / 2,
        "kills should land during the import"
    );
    assert!(
        mid_transaction >= ROUNDS / 6,
        "kills should land inside a batch"
    );
}

fn shell_quote(s: &std::ffi::OsStr) -> String {
    format!("'{}'", s.to_string_lossy().replace('\'', "'\\''"))
}

/// Whether this process may create a mount namespace (root or user namespaces); if not, the
/// test is skipped, except on CI where it must run.
fn can_unshare() -> bool {
    let probe = Command::new("unshare")
        .args(["-m", "true"])
        .stderr(Stdio::null())
        .status();
    if probe.is_ok_and(|s| s.success()) {
        return true;
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "CI must run the disk-full tests (needs unshare -m: root or user namespaces)"
    );
    eprintln!("skipping: cannot create a mount namespace here");
    false
}

/// `sh -c` in a private mount namespace with an 8 MiB tmpfs at `mnt`; returns `key=value` lines.
fn in_small_tmpfs(mnt: &Path, script: &str) -> (String, impl Fn(&str) -> String) {
    std::fs::create_dir_all(mnt).unwrap();
    let script = format!(
        "set -u\nmount -t tmpfs -o size=8m tmpfs {} || exit 99\n{script}",
        shell_quote(mnt.as_os_str())
    );
    let out = Command::new("unshare")
        .args(["-m", "sh", "-c", &script])
        .env_remove("VAZHI_LOG")
        .env_remove("VAZHI_DATA_DIR")
        .output()
        .unwrap();
    let stdout = text(&out.stdout);
    let all = format!("{stdout}\n--- stderr\n{}", text(&out.stderr));
    let get = move |key: &str| {
        stdout
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{key}=")))
            .unwrap_or_default()
            .to_owned()
    };
    (all, get)
}

/// A real full disk: the store lives on an 8 MiB tmpfs in a private mount namespace. An import
/// opens the store, a filler file then eats the space, and the import's batch arrives: exit 8,
/// one error line, nothing of the batch written; once space is back the store is intact and
/// takes new records.
#[test]
fn disk_full_mid_import_writes_nothing_and_keeps_the_store() {
    if !can_unshare() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let mnt = tmp.path().join("tmpfs");
    let (small, big) = (tmp.path().join("small.jsonl"), tmp.path().join("big.jsonl"));
    write_jsonl(&small, 200, 1);
    write_jsonl(&big, 5000, 2);
    let fifo = tmp.path().join("fifo");
    let errf = tmp.path().join("err"); // outside the tmpfs: a full disk would truncate it
    let v = |args: &str| {
        format!(
            "{} --data-dir {} feedback {args}",
            shell_quote(env!("CARGO_BIN_EXE_vazhi").as_ref()),
            shell_quote(mnt.as_os_str())
        )
    };
    let q = |p: &PathBuf| shell_quote(p.as_os_str());
    let script = format!(
        r#"{import_small} > /dev/null; echo "small=$?"
mkfifo {fifo}
{import_fifo} > /dev/null 2> {errf} &
pid=$!
# The store is open once its WAL index exists; then the disk fills, then the batch comes.
while [ ! -e {mnt}/feedback.db-shm ] && kill -0 $pid 2>/dev/null; do sleep 0.01; done
sleep 0.3
dd if=/dev/zero of={mnt}/filler bs=64k 2>/dev/null
echo "free=$(df --output=avail {mnt} | tail -1 | tr -d ' ')"
cat {big} > {fifo}
wait $pid; echo "first=$?"
echo "err=$(cat {errf})"
echo "errlines=$(wc -l < {errf})"
rm {mnt}/filler
echo "count=$({count})"
echo "check=$({check})"
echo "listed=$({list} | wc -l)"
echo "unreadable=$({list} | grep -c unreadable)"
{add} > /dev/null; echo "added=$?"
echo "count2=$({count})"
"#,
        import_small = v(&format!("import {}", q(&small))),
        import_fifo = v(&format!("import {} --batch 100000", q(&fifo))),
        fifo = q(&fifo),
        errf = q(&errf),
        mnt = q(&mnt),
        big = q(&big),
        count = v("count"),
        check = v("check"),
        list = v("list --json"),
        add = v("add --question 'after the disk was full' --answer a --rating up"),
    );
    let (all, get) = in_small_tmpfs(&mnt, &script);
    assert_eq!(get("small"), "0", "{all}");
    assert_eq!(get("free"), "0", "{all}");
    assert_eq!(get("first"), "8", "{all}");
    assert!(get("err").contains("storage is full"), "{all}");
    assert!(
        get("err").contains("lines 1–5000 were not written"),
        "{all}"
    );
    assert_eq!(get("errlines"), "1", "{all}");
    assert_eq!(get("count"), "200", "{all}");
    assert_eq!(get("check"), "ok", "{all}");
    assert_eq!(get("listed"), "200", "{all}");
    assert_eq!(get("unreadable"), "0", "{all}");
    assert_eq!(get("added"), "0", "{all}");
    assert_eq!(get("count2"), "201", "{all}");
}

/// Opening the store on a disk that is already full: creating the WAL index (`-shm`) fails with
/// `SQLITE_IOERR_SHMSIZE`, which the library reports as `StorageFull` (exit 8).
#[test]
fn disk_full_before_open_exits_8() {
    if !can_unshare() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let mnt = tmp.path().join("tmpfs");
    let small = tmp.path().join("small.jsonl");
    write_jsonl(&small, 200, 1);
    let vz = |args: String| {
        format!(
            "{} --data-dir {} feedback {args}",
            shell_quote(env!("CARGO_BIN_EXE_vazhi").as_ref()),
            shell_quote(mnt.as_os_str())
        )
    };
    let script = format!(
        r#"{import} > /dev/null; echo "small=$?"
dd if=/dev/zero of={mnt}/filler bs=64k 2>/dev/null
{import} > /dev/null 2> {errf}; echo "first=$?"
echo "err=$(cat {errf})"
"#,
        import = vz(format!("import {}", shell_quote(small.as_os_str()))),
        mnt = shell_quote(mnt.as_os_str()),
        errf = shell_quote(tmp.path().join("err").as_os_str()),
    );
    let (all, get) = in_small_tmpfs(&mnt, &script);
    assert_eq!(get("small"), "0", "{all}");
    assert_eq!(get("first"), "8", "{all}");
    assert!(get("err").contains("storage is full"), "{all}");
}

/// A 1 MB correction is refused with exit 2; the error names the field and the limit and does
/// not echo the text. Linux caps one argument at 128 KiB, so the megabyte comes on stdin
/// (`--correction-file -`, read no further than the cap) and a 100 KiB one as an argument.
#[test]
fn an_oversized_correction_is_refused_without_echoing_it() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path().join("data");
    let secret = "my private correction ";
    let big = secret.repeat((1 << 20) / secret.len() + 1);
    let out = run_with_stdin(
        &d,
        &[
            "add",
            "--question",
            "q",
            "--answer",
            "a",
            "--rating",
            "down",
            "--correction-file",
            "-",
        ],
        big.as_bytes(),
    );
    let medium = &big[..100 << 10];
    let out2 = run(
        &d,
        &[
            "add",
            "--question",
            "q",
            "--answer",
            "a",
            "--rating",
            "down",
            "--correction",
            medium,
        ],
    );
    for (out, said) in [
        (
            out,
            "the correction is longer than 16384 bytes, the most accepted".to_owned(),
        ),
        (
            out2,
            format!("correction is {} bytes; at most 16384", medium.len()),
        ),
    ] {
        assert_eq!(out.status.code(), Some(2));
        let err = text(&out.stderr);
        assert!(err.contains(&said), "{err}");
        assert!(!err.contains("private"), "the text is not echoed");
        assert!(out.stdout.is_empty());
    }
    // Not UTF-8: refused as bad usage too.
    let latin1 = tmp.path().join("latin1.txt");
    std::fs::write(&latin1, b"caf\xe9").unwrap();
    let out = run(
        &d,
        &[
            "add",
            "--question",
            "q",
            "--answer",
            "a",
            "--rating",
            "up",
            "--correction-file",
            latin1.to_str().unwrap(),
        ],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("correction is not valid UTF-8"));
    assert_eq!(count(&d), 0);
}

/// The key files are lost: the store refuses to open (exit 9, changing nothing) and says how to
/// start over; `reset` sets the database aside and a new store takes records.
#[test]
fn a_lost_key_exits_9_and_reset_starts_over() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path().join("data");
    for i in 0..3 {
        ok(
            &d,
            &[
                "add",
                "--question",
                &format!("question {i}"),
                "--answer",
                "a",
                "--rating",
                "up",
            ],
        );
    }
    let db = d.join("feedback.db");
    let before = std::fs::read(&db).unwrap();
    let mut removed = 0;
    for entry in std::fs::read_dir(d.join("keys")).unwrap() {
        std::fs::remove_file(entry.unwrap().path()).unwrap();
        removed += 1;
    }
    assert_eq!(removed, 1);
    for args in [
        &["list"][..],
        &["count"],
        &["add", "--question", "q", "--answer", "a", "--rating", "up"],
    ] {
        let out = run(&d, args);
        assert_eq!(out.status.code(), Some(9), "{args:?}");
        let err = text(&out.stderr);
        assert!(
            err.contains("is unavailable; 3 records cannot be read"),
            "{err}"
        );
        assert!(err.contains("vazhi feedback reset"), "{err}");
    }
    assert_eq!(std::fs::read(&db).unwrap(), before, "nothing was changed");

    let said = ok(&d, &["reset"]);
    let aside = said
        .trim()
        .rsplit_once("the old database is at ")
        .map(|(_, p)| PathBuf::from(p))
        .unwrap_or_else(|| panic!("{said}"));
    assert_eq!(
        std::fs::read(&aside).unwrap(),
        before,
        "set aside as it was"
    );
    ok(
        &d,
        &[
            "add",
            "--question",
            "after reset",
            "--answer",
            "a",
            "--rating",
            "down",
        ],
    );
    assert_eq!(count(&d), 1);
    let records = json_lines(&ok(&d, &["list", "--json"]));
    assert_eq!(records[0]["question"], "after reset");

    // A damaged database: exit 10, left as it is; reset sets it aside too.
    let damaged = tmp.path().join("damaged");
    std::fs::create_dir_all(&damaged).unwrap();
    std::fs::write(damaged.join("feedback.db"), vec![0x5a; 8192]).unwrap();
    let out = run(&damaged, &["count"]);
    assert_eq!(out.status.code(), Some(10), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("damaged"));
    assert_eq!(
        std::fs::read(damaged.join("feedback.db")).unwrap(),
        vec![0x5a; 8192]
    );
    assert!(ok(&damaged, &["reset"]).contains("the old database is at"));
    assert_eq!(count(&damaged), 0);
}

/// Runs `vazhi feedback ARGS` with `stdin` on standard input (a write cut short because the
/// command stopped reading is not an error).
fn run_with_stdin(data_dir: &Path, args: &[&str], stdin: &[u8]) -> Output {
    let mut child = vazhi(data_dir)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut pipe = child.stdin.take().unwrap();
    let stdin = stdin.to_vec();
    let writer = std::thread::spawn(move || {
        let _ = pipe.write_all(&stdin);
    });
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap();
    out
}

/// `--question-file`, `--answer-file` and `--correction-file` keep the texts out of argv: from
/// files or standard input they are stored byte for byte (Tamil, new lines, a final newline,
/// spaces at the ends), as `list --json` and `export` show.
#[test]
fn add_takes_the_texts_from_files_and_stdin_exactly() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path().join("data");
    let question = "குறள் 1 பொருள் என்ன?\nஅகர முதல — explain  \n";
    let answer = "  அகர முதல எழுத்தெல்லாம் ஆதி\nபகவன் முதற்றே உலகு.";
    let correction = "முதல் வரி\r\nsecond line\n\n";
    let (qf, af, cf) = (
        tmp.path().join("question.txt"),
        tmp.path().join("answer.txt"),
        tmp.path().join("correction.txt"),
    );
    std::fs::write(&qf, question).unwrap();
    std::fs::write(&af, answer).unwrap();
    std::fs::write(&cf, correction).unwrap();
    let path = |p: &PathBuf| p.to_str().unwrap().to_owned();

    // All three from files.
    let (q, a, c) = (path(&qf), path(&af), path(&cf));
    let id1 = ok(
        &d,
        &[
            "add",
            "--question-file",
            &q,
            "--answer-file",
            &a,
            "--correction-file",
            &c,
            "--rating",
            "down",
        ],
    );
    // The question on standard input, the answer from a file.
    let out = run_with_stdin(
        &d,
        &[
            "add",
            "--question-file",
            "-",
            "--answer-file",
            &a,
            "--rating",
            "up",
        ],
        question.as_bytes(),
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let id2 = text(&out.stdout);
    // The answer on standard input, the correction from a file, the question in argv.
    let out = run_with_stdin(
        &d,
        &[
            "add",
            "--question",
            "in argv",
            "--answer-file",
            "-",
            "--correction-file",
            &c,
            "--rating",
            "down",
        ],
        answer.as_bytes(),
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let id3 = text(&out.stdout);
    // The correction on standard input.
    let out = run_with_stdin(
        &d,
        &[
            "add",
            "--question-file",
            &q,
            "--answer-file",
            &a,
            "--correction-file",
            "-",
            "--rating",
            "down",
        ],
        correction.as_bytes(),
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let id4 = text(&out.stdout);

    let records = json_lines(&ok(&d, &["list", "--json"]));
    assert_eq!(records.len(), 4);
    let expected = [
        (id1.trim(), question, answer, Some(correction), "down"),
        (id2.trim(), question, answer, None, "up"),
        (id3.trim(), "in argv", answer, Some(correction), "down"),
        (id4.trim(), question, answer, Some(correction), "down"),
    ];
    let export = tmp.path().join("export.jsonl");
    ok(&d, &["export", export.to_str().unwrap()]);
    let exported = json_lines(&std::fs::read_to_string(&export).unwrap());
    for listing in [&records, &exported] {
        for (record, (id, q, a, c, rating)) in listing.iter().zip(expected) {
            assert_eq!(record["record_id"], id);
            assert_eq!(record["question"], q);
            assert_eq!(record["answer"], a);
            assert_eq!(record["correction"].as_str(), c);
            assert_eq!(record["rating"], rating);
        }
    }

    // A text from argv and from a file at once, or none at all: bad usage, nothing stored.
    for args in [
        &[
            "add",
            "--question",
            "q",
            "--question-file",
            &q,
            "--answer",
            "a",
        ][..],
        &[
            "add",
            "--question",
            "q",
            "--answer",
            "a",
            "--answer-file",
            &a,
        ],
        &["add", "--answer", "a"],
        &["add", "--question-file", &q],
    ] {
        let out = run(&d, &[args, &["--rating", "up"]].concat());
        assert_eq!(
            out.status.code(),
            Some(2),
            "{args:?}: {}",
            text(&out.stderr)
        );
    }
    assert_eq!(count(&d), 4);
}

/// Standard input can carry one text only: two `-` are refused before anything is read, with
/// one line that says why (exit 2).
#[test]
fn add_refuses_two_texts_on_stdin() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path().join("data");
    let c = tmp.path().join("correction.txt");
    std::fs::write(&c, "c").unwrap();
    let c = c.to_str().unwrap();
    for args in [
        &["--question-file", "-", "--answer-file", "-"][..],
        &[
            "--question-file",
            "-",
            "--answer",
            "a",
            "--correction-file",
            "-",
        ],
        &[
            "--question",
            "q",
            "--answer-file",
            "-",
            "--correction-file",
            "-",
        ],
        &[
            "--question-file",
            "-",
            "--answer-file",
            "-",
            "--correction-file",
            c,
        ],
    ] {
        let out = run_with_stdin(
            &d,
            &[&["add", "--rating", "up"][..], args].concat(),
            b"private text",
        );
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let err = text(&out.stderr);
        assert!(
            err.contains("at most one of --question-file, --answer-file and --correction-file"),
            "{err}"
        );
        assert!(err.contains("standard input"), "{err}");
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(out.stdout.is_empty());
    }
    assert_eq!(count(&d), 0);
}

/// A text file that is not there: one line naming the option and the file, exit 2, nothing
/// stored (the data directory is not even created).
#[test]
fn add_reports_a_missing_text_file_in_one_line() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path().join("data");
    let missing = tmp.path().join("no-such-question.txt");
    let missing = missing.to_str().unwrap();
    let a = tmp.path().join("answer.txt");
    std::fs::write(&a, "a").unwrap();
    let a = a.to_str().unwrap();
    for (flag, args) in [
        (
            "--question-file",
            ["--question-file", missing, "--answer-file", a],
        ),
        (
            "--answer-file",
            ["--question-file", a, "--answer-file", missing],
        ),
    ] {
        let out = run(&d, &[&["add", "--rating", "up"][..], &args].concat());
        assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
        let err = text(&out.stderr);
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(
            err.starts_with(&format!("vazhi: error: {flag} {missing}: ")),
            "{err}"
        );
        assert!(err.contains("No such file or directory"), "{err}");
        assert!(out.stdout.is_empty());
        assert!(!d.exists(), "nothing was created");
    }
}

/// A text file is read no further than its field's cap: an endless one (`/dev/zero`) is
/// refused at once (exit 2) instead of filling memory, and a question one byte over its cap of
/// 8192 is refused without echoing it.
#[cfg(target_os = "linux")]
#[test]
fn add_reads_a_text_file_no_further_than_its_cap() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path().join("data");
    let mut child = vazhi(&d)
        .args(["add", "--question", "q", "--answer-file", "/dev/zero"])
        .args(["--rating", "up"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if started.elapsed().as_secs() > 30 {
            child.kill().unwrap();
            child.wait().unwrap();
            panic!("--answer-file /dev/zero was still being read after 30 s");
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    let mut err = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err).unwrap();
    assert_eq!(status.code(), Some(2), "{err}");
    assert!(
        err.contains("the answer is longer than 65536 bytes"),
        "{err}"
    );

    let q = tmp.path().join("question.txt");
    std::fs::write(&q, "private ".repeat(1025)).unwrap();
    let out = run(
        &d,
        &[
            "add",
            "--question-file",
            q.to_str().unwrap(),
            "--answer",
            "a",
            "--rating",
            "up",
        ],
    );
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    assert!(
        err.contains("the question is longer than 8192 bytes"),
        "{err}"
    );
    assert!(!err.contains("private"), "{err}");
    // Exactly at the cap: taken.
    std::fs::write(&q, "x".repeat(8192)).unwrap();
    ok(
        &d,
        &[
            "add",
            "--question-file",
            q.to_str().unwrap(),
            "--answer",
            "a",
            "--rating",
            "up",
        ],
    );
    assert_eq!(count(&d), 1);
}
