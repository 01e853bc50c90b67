//! Writing records into the full-text index: each record's title, body and keys analyzed
//! ([`analyzer`](super::analyzer)) into the contentless FTS5 table, its distinct terms into
//! `records.terms`, each key's terms into `record_keys.terms`. The same code serves import
//! and the rebuild after an analyzer change.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc;

use rusqlite::{params, Transaction};

use super::analyzer::{self, Script, ANALYZER_VERSION};
use super::error::KnowledgeError;
use super::pack::Record;
use super::query::is_word_char;

/// Most words an import's [`TermCache`] remembers before it starts over.
const CACHE_WORDS: usize = 200_000;
/// Most words a search's [`TermCache`] (kept between searches, for snippets) remembers.
pub const SEARCH_CACHE_WORDS: usize = 20_000;
/// Most vocabulary words kept per pack (for spelling correction).
const VOCABULARY_WORDS: usize = 500_000;
/// Shortest word kept in the vocabulary: shorter words are too ambiguous to correct to.
pub const MIN_VOCABULARY_LEN: usize = 4;

/// Remembers the term of each word seen, so that an import analyzes each distinct word once
/// (text repeats its words: most of an import's words are cache hits).
#[derive(Debug, Default)]
pub struct TermCache {
    /// Most words remembered (0: [`CACHE_WORDS`]).
    capacity: usize,
    /// Raw word (as written in the text) → its terms, space-separated (empty: none).
    terms: HashMap<String, String, FastHash>,
    /// Normalized key word → its key term.
    key_terms: HashMap<String, String, FastHash>,
    /// Latin words seen (the pack's vocabulary), when collecting.
    latin: Option<HashSet<String, FastHash>>,
    /// Records holding each term, when collecting.
    docs: HashMap<String, u32, FastHash>,
}

/// What an import learns about a pack besides its records.
#[derive(Debug, Default)]
pub struct PackStats {
    /// Its Latin words (for spelling correction).
    pub vocabulary: Vec<String>,
    /// How many of its records hold each term.
    pub term_docs: HashMap<String, u32, FastHash>,
}

impl PackStats {
    fn merge(&mut self, other: PackStats) {
        self.vocabulary.extend(other.vocabulary);
        for (term, n) in other.term_docs {
            *self.term_docs.entry(term).or_default() += n;
        }
    }
}

/// Whether `c` belongs to a raw word: a word character, or a character normalization removes
/// (a zero-width space inside a word joins its halves, as [`normalize_query`] does).
///
/// [`normalize_query`]: crate::text::normalize_query
fn in_raw_word(c: char) -> bool {
    is_word_char(c) || (!c.is_whitespace() && crate::text::is_dropped(c))
}

impl TermCache {
    /// A cache that also collects the Latin words it sees ([`take_vocabulary`](Self::take_vocabulary)).
    pub fn collecting() -> Self {
        Self {
            latin: Some(HashSet::default()),
            ..Self::default()
        }
    }

    /// A cache of at most `capacity` words that collects nothing.
    pub fn with_capacity(capacity: usize) -> Self {
        Self {
            capacity,
            ..Self::default()
        }
    }

    fn full(&self, len: usize) -> bool {
        len >= if self.capacity == 0 {
            CACHE_WORDS
        } else {
            self.capacity
        }
    }

    /// What was collected since the last call: the Latin words seen (of at least
    /// [`MIN_VOCABULARY_LEN`] letters) and the records per term.
    pub fn take_stats(&mut self) -> PackStats {
        PackStats {
            vocabulary: self
                .latin
                .as_mut()
                .map(|set| set.drain().collect())
                .unwrap_or_default(),
            term_docs: std::mem::take(&mut self.docs),
        }
    }

    fn count_docs(&mut self, distinct: &str) {
        if self.latin.is_none() {
            return;
        }
        for term in distinct.split(' ').filter(|t| !t.is_empty()) {
            match self.docs.get_mut(term) {
                Some(n) => *n += 1,
                None => {
                    self.docs.insert(term.to_owned(), 1);
                }
            }
        }
    }

    /// The terms of one raw word, space-separated: normalized and analyzed once, then
    /// remembered.
    fn terms_of(&mut self, raw: &str) -> &str {
        if !self.terms.contains_key(raw) {
            if self.full(self.terms.len()) {
                self.terms.clear();
            }
            let mut terms = String::new();
            let latin = &mut self.latin;
            // (The cache's own maps are not touched while `for_each_word` runs.)
            analyzer::for_each_word(raw, |word, script| {
                if let (Script::Latin, Some(latin)) = (script, latin.as_mut()) {
                    if word.chars().count() >= MIN_VOCABULARY_LEN && latin.len() < VOCABULARY_WORDS
                    {
                        latin.insert(word.to_owned());
                    }
                }
                if let Some(term) = analyzer::index_term(word, script) {
                    if !terms.is_empty() {
                        terms.push(' ');
                    }
                    terms.push_str(&term);
                }
            });
            self.terms.insert(raw.to_owned(), terms);
        }
        self.terms.get(raw).map_or("", String::as_str)
    }

    /// [`analyzer::key_terms`] of `key`, word by word from the cache.
    pub fn key_terms(&mut self, key: &str) -> String {
        let mut out = String::new();
        if self.full(self.key_terms.len()) {
            self.key_terms.clear();
        }
        let cache = &mut self.key_terms;
        analyzer::for_each_word(key, |word, script| {
            if !out.is_empty() {
                out.push(' ');
            }
            if script == Script::Digits {
                out.push_str(word);
                return;
            }
            if !cache.contains_key(word) {
                cache.insert(word.to_owned(), analyzer::key_term(word, script));
            }
            out.push_str(cache.get(word).map_or("", String::as_str));
        });
        out
    }

    /// The analyzed form of `text`: its terms separated by spaces. The same as analyzing the
    /// whole text at once ([`analyzer::index_text`]), word by word from the cache.
    pub fn analyze(&mut self, text: &str) -> String {
        let mut out = String::with_capacity(text.len());
        for raw in text
            .split(|c: char| !in_raw_word(c))
            .filter(|w| !w.is_empty())
        {
            // Numbers are their own term, and too many are distinct to be worth remembering.
            let terms = if raw.bytes().all(|b| b.is_ascii_digit()) {
                raw
            } else {
                self.terms_of(raw)
            };
            if !terms.is_empty() {
                if !out.is_empty() {
                    out.push(' ');
                }
                out.push_str(terms);
            }
        }
        out
    }
}

/// A record's analyzed columns.
#[derive(Debug)]
pub struct RecordTerms {
    /// The title's terms.
    pub title: String,
    /// The body's terms.
    pub body: String,
    /// The keys' terms.
    pub keys: String,
    /// Every distinct term of the three, in order of first appearance.
    pub distinct: String,
}

impl RecordTerms {
    /// Analyzes one record.
    pub fn new(cache: &mut TermCache, title: &str, body: &str, keys: &[String]) -> Self {
        let title = cache.analyze(title);
        let body = cache.analyze(body);
        let keys = cache.analyze(&keys.join(" \n "));
        let mut seen: HashSet<&str, FastHash> = HashSet::default();
        let mut distinct = String::new();
        for term in [&title, &body, &keys]
            .into_iter()
            .flat_map(|s| s.split(' '))
            .filter(|t| !t.is_empty())
        {
            if seen.insert(term) {
                if !distinct.is_empty() {
                    distinct.push(' ');
                }
                distinct.push_str(term);
            }
        }
        cache.count_docs(&distinct);
        Self {
            title,
            body,
            keys,
            distinct,
        }
    }
}

/// A fast, non-cryptographic hash for short words (FxHash's multiply-rotate): the cache sees
/// millions of lookups per import and never untrusted-sized keys.
#[derive(Debug, Default, Clone, Copy)]
pub struct FastHasher(u64);

impl std::hash::Hasher for FastHasher {
    fn finish(&self) -> u64 {
        // The multiply leaves the low bits weak; the table indexes by them.
        self.0.rotate_left(26)
    }

    fn write(&mut self, bytes: &[u8]) {
        const K: u64 = 0x51_7c_c1_b7_27_22_0a_95;
        let mut chunks = bytes.chunks_exact(8);
        for chunk in &mut chunks {
            let mut word = [0u8; 8];
            word.copy_from_slice(chunk);
            self.0 = (self.0.rotate_left(5) ^ u64::from_le_bytes(word)).wrapping_mul(K);
        }
        for &b in chunks.remainder() {
            self.0 = (self.0.rotate_left(5) ^ u64::from(b)).wrapping_mul(K);
        }
    }
}

/// [`FastHasher`] for `HashMap`/`HashSet`.
pub type FastHash = std::hash::BuildHasherDefault<FastHasher>;

/// A record analyzed: its columns' terms and each key's terms.
#[derive(Debug)]
pub struct Analyzed {
    /// The record's terms.
    pub terms: RecordTerms,
    /// The terms of each key, in the record's key order.
    pub key_terms: Vec<String>,
}

/// Records per unit of work handed to an analysis thread.
const CHUNK_RECORDS: usize = 256;

/// Analyzes `records` on worker threads (one fewer than the cores, at most four, at least
/// one) while the calling thread hands each result, in record order, to `each` (which writes
/// it to the database): analysis and SQLite work overlap. Stops at the first error of `each`.
/// Returns what was learnt about the pack.
pub fn analyze_records<E>(
    records: &[Record],
    mut each: impl FnMut(&Record, Analyzed) -> Result<(), E>,
) -> Result<PackStats, E> {
    let workers = std::thread::available_parallelism()
        .map_or(1, std::num::NonZeroUsize::get)
        .saturating_sub(1)
        .clamp(1, 4);
    let chunks: Vec<&[Record]> = records.chunks(CHUNK_RECORDS).collect();
    let next = AtomicUsize::new(0);
    let stop = AtomicBool::new(false);
    std::thread::scope(|scope| {
        let (sender, receiver) = mpsc::sync_channel::<(usize, Vec<Analyzed>)>(workers * 2);
        let handles: Vec<_> = (0..workers)
            .map(|_| {
                let sender = sender.clone();
                let (chunks, next, stop) = (&chunks, &next, &stop);
                scope.spawn(move || {
                    let mut cache = TermCache::collecting();
                    while !stop.load(Ordering::Relaxed) {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        let Some(chunk) = chunks.get(i) else { break };
                        let batch = chunk.iter().map(|r| analyze(&mut cache, r)).collect();
                        if sender.send((i, batch)).is_err() {
                            break;
                        }
                    }
                    cache.take_stats()
                })
            })
            .collect();
        drop(sender);
        // Results arrive in any order; write them in record order.
        let mut pending = std::collections::BTreeMap::new();
        let mut wanted = 0;
        let mut result = Ok(());
        'receive: for (i, batch) in receiver.iter() {
            pending.insert(i, batch);
            while let Some(batch) = pending.remove(&wanted) {
                for (j, analyzed) in batch.into_iter().enumerate() {
                    if let Err(e) = each(&records[wanted * CHUNK_RECORDS + j], analyzed) {
                        result = Err(e);
                        stop.store(true, Ordering::Relaxed);
                        break 'receive;
                    }
                }
                wanted += 1;
            }
        }
        drop(receiver);
        let mut stats = PackStats::default();
        for handle in handles {
            match handle.join() {
                Ok(part) => stats.merge(part),
                Err(panic) => std::panic::resume_unwind(panic),
            }
        }
        stats.vocabulary.sort_unstable();
        stats.vocabulary.dedup();
        result.map(|()| stats)
    })
}

fn analyze(cache: &mut TermCache, r: &Record) -> Analyzed {
    Analyzed {
        terms: RecordTerms::new(cache, &r.title, &r.body, &r.keys),
        key_terms: r.keys.iter().map(|k| cache.key_terms(k)).collect(),
    }
}

/// Like [`analyze_records`] for records still being read (a pack file): one thread reads,
/// checks and analyzes them while the calling thread hands each to `each`. The first error,
/// of reading or of `each`, stops both. Returns the number of records and what was learnt
/// about the pack.
pub fn analyze_stream<I>(
    records: I,
    mut each: impl FnMut(&Record, Analyzed) -> Result<(), KnowledgeError>,
) -> Result<(usize, PackStats), KnowledgeError>
where
    I: Iterator<Item = Result<Record, KnowledgeError>> + Send,
{
    type Batch = Result<Vec<(Record, Analyzed)>, KnowledgeError>;
    std::thread::scope(|scope| {
        let (sender, receiver) = mpsc::sync_channel::<Batch>(4);
        let producer = scope.spawn(move || {
            let mut cache = TermCache::collecting();
            let mut batch = Vec::with_capacity(CHUNK_RECORDS);
            for record in records {
                match record {
                    Ok(r) => {
                        let analyzed = analyze(&mut cache, &r);
                        batch.push((r, analyzed));
                        if batch.len() == CHUNK_RECORDS
                            && sender.send(Ok(std::mem::take(&mut batch))).is_err()
                        {
                            return PackStats::default();
                        }
                    }
                    Err(e) => {
                        let _ = sender.send(Err(e));
                        return PackStats::default();
                    }
                }
            }
            if !batch.is_empty() {
                let _ = sender.send(Ok(batch));
            }
            cache.take_stats()
        });
        let mut count = 0;
        let mut result = Ok(());
        'receive: for batch in receiver.iter() {
            match batch {
                Ok(batch) => {
                    for (record, analyzed) in batch {
                        if let Err(e) = each(&record, analyzed) {
                            result = Err(e);
                            break 'receive;
                        }
                        count += 1;
                    }
                }
                Err(e) => {
                    result = Err(e);
                    break;
                }
            }
        }
        drop(receiver);
        let stats = match producer.join() {
            Ok(stats) => stats,
            Err(panic) => std::panic::resume_unwind(panic),
        };
        result.map(|()| (count, stats))
    })
}

/// Adds the record at `rowid` to the full-text index.
pub fn insert_fts(tx: &Transaction<'_>, rowid: i64, terms: &RecordTerms) -> rusqlite::Result<()> {
    tx.prepare_cached(
        "INSERT INTO records_fts (rowid, title, body, keys) VALUES (?1, ?2, ?3, ?4)",
    )?
    .execute(params![rowid, terms.title, terms.body, terms.keys])?;
    Ok(())
}

/// Rebuilds the whole index with this analyzer and records its version. Runs inside the
/// caller's transaction, so a failure leaves the old index.
pub fn rebuild(tx: &Transaction<'_>) -> rusqlite::Result<u64> {
    let _span = tracing::info_span!("knowledge_reindex", analyzer = ANALYZER_VERSION).entered();
    tx.execute("DELETE FROM records_fts", [])?;
    tx.execute("DELETE FROM vocabulary", [])?;
    tx.execute("DELETE FROM term_docs", [])?;
    tx.execute("DELETE FROM pack_aliases", [])?;
    let packs: Vec<(String, String)> = tx
        .prepare("SELECT name, aliases FROM packs ORDER BY name")?
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<Result<_, _>>()?;
    let mut count = 0u64;
    // Every key, re-analyzed, grouped by record.
    let keys: Vec<(String, String, i64)> = tx
        .prepare("SELECT pack, key, record FROM record_keys")?
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
        .collect::<Result<_, _>>()?;
    tx.execute("DELETE FROM record_keys", [])?;
    let mut keys_of: HashMap<i64, Vec<String>> = HashMap::new();
    for (pack, key, record) in keys {
        insert_key(tx, &pack, &key, record)?;
        keys_of.entry(record).or_default().push(key);
    }
    for (pack, aliases) in &packs {
        let aliases: Vec<String> = serde_json::from_str(aliases).unwrap_or_default();
        store_aliases(tx, pack, &aliases)?;
        let mut cache = TermCache::collecting();
        let records: Vec<(i64, String, String)> = tx
            .prepare("SELECT rowid, title, body FROM records WHERE pack = ?1 ORDER BY rowid")?
            .query_map([pack], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
            .collect::<Result<_, _>>()?;
        for (rowid, title, body) in &records {
            let keys = keys_of.remove(rowid).unwrap_or_default();
            let terms = RecordTerms::new(&mut cache, title, body, &keys);
            tx.prepare_cached("UPDATE records SET terms = ?2 WHERE rowid = ?1")?
                .execute(params![rowid, terms.distinct])?;
            insert_fts(tx, *rowid, &terms)?;
        }
        store_stats(tx, pack, cache.take_stats())?;
        count += records.len() as u64;
    }
    tx.execute(
        "INSERT OR REPLACE INTO kb_meta (name, value) VALUES ('analyzer', ?1)",
        [ANALYZER_VERSION],
    )?;
    update_record_count(tx)?;
    tracing::info!(records = count, "index rebuilt");
    Ok(count)
}

/// Adds one key of `record` (normalized as the pack reader leaves it).
pub fn insert_key(
    tx: &Transaction<'_>,
    pack: &str,
    key: &str,
    record: i64,
) -> rusqlite::Result<()> {
    tx.prepare_cached(
        "INSERT OR IGNORE INTO record_keys (terms, pack, key, record) VALUES (?1, ?2, ?3, ?4)",
    )?
    .execute(params![analyzer::key_terms(key), pack, key, record])?;
    Ok(())
}

/// Stores `pack`'s aliases as terms.
pub fn store_aliases(tx: &Transaction<'_>, pack: &str, aliases: &[String]) -> rusqlite::Result<()> {
    let mut insert =
        tx.prepare_cached("INSERT OR IGNORE INTO pack_aliases (pack, terms) VALUES (?1, ?2)")?;
    for alias in aliases {
        let terms = analyzer::key_terms(alias);
        if !terms.is_empty() {
            insert.execute(params![pack, terms])?;
        }
    }
    Ok(())
}

/// Stores what an import learnt about `pack`: its vocabulary and records per term.
pub fn store_stats(tx: &Transaction<'_>, pack: &str, stats: PackStats) -> rusqlite::Result<()> {
    let mut word =
        tx.prepare_cached("INSERT OR IGNORE INTO vocabulary (word, pack) VALUES (?1, ?2)")?;
    for w in &stats.vocabulary {
        word.execute(params![w, pack])?;
    }
    let mut docs =
        tx.prepare_cached("INSERT INTO term_docs (term, pack, docs) VALUES (?1, ?2, ?3)")?;
    for (term, n) in &stats.term_docs {
        docs.execute(params![term, pack, n])?;
    }
    Ok(())
}

/// Stores in `kb_meta` the number of records, in all (search weighs terms by it: a `count(*)`
/// per query would cost milliseconds at 100k records) and per pack (`records/NAME`: spelling
/// correction asks which words are common in a pack), and the most words in a key (search
/// looks for keys no longer than that inside a question).
pub fn update_record_count(tx: &Transaction<'_>) -> rusqlite::Result<()> {
    tx.execute_batch(
        "INSERT OR REPLACE INTO kb_meta (name, value)
             VALUES ('records', (SELECT count(*) FROM records));
         DELETE FROM kb_meta WHERE name LIKE 'records/%';
         INSERT INTO kb_meta (name, value)
             SELECT 'records/' || pack, count(*) FROM records GROUP BY pack;
         INSERT OR REPLACE INTO kb_meta (name, value)
             VALUES ('key_words', (SELECT coalesce(max(length(terms) - length(replace(terms, ' ', '')) + 1), 0)
                                     FROM record_keys));",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn word_by_word_analysis_equals_whole_text_analysis() {
        let texts = [
            "Kural 1 · கடவுள் வாழ்த்து\nஅகர முதல எழுத்தெல்லாம் ஆதி",
            "THE Friendship of 25வது குறள், and ௧௨ — x\u{200B}y; a'b \"c\"",
            "நட்பை\u{200B}ப் பற்றி; கொ\u{0BC6}\u{0BBE}ம்பு",
            "\u{0}\u{1b}[31m red \u{00AD}soft",
        ];
        let mut cache = TermCache::default();
        for text in texts {
            let mut whole = String::new();
            analyzer::index_text(text, &mut whole);
            assert_eq!(cache.analyze(text), whole, "{text:?}");
        }
    }
}
