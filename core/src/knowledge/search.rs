//! Ranked retrieval over the analyzed index: any query word may match, and records are ranked
//! by how much of the question they account for.
//!
//! 1. The query is analyzed like the records ([`analyzer::query_words`]); stop words drop
//!    out. Each remaining word weighs its inverse document frequency (BM25's idf of its most
//!    frequent term), so a word in nearly every record (`kural` in the Thirukkural pack)
//!    counts for little and a word the index has never seen counts for a lot.
//! 2. **Candidates, bounded.** The words' terms go into one FTS5 `OR` query, rarest first,
//!    until their postings reach [`POSTINGS_BUDGET`]: the work per query is bounded whatever
//!    the query, and the words left out are the commonest, which rank least. If even the
//!    rarest term is over the budget, its first [`CANDIDATES`] records are taken unranked.
//!    FTS5 ranks the candidates by bm25 (title × 4, body × 1, keys × 8); the best
//!    [`CANDIDATES`] go on.
//! 3. **Keys.** Every run of query words that begins and ends with a content word is looked
//!    up among the records' keys (compared as analyzed terms): a record whose key appears in
//!    the question joins the candidates with a key score (the idf share of the words its key
//!    covers).
//! 4. **Ranking.** Each candidate scores `COVERAGE_WEIGHT × coverage + KEY_WEIGHT × key +
//!    bm25 / best bm25`, where coverage is the idf-weighted share of the query's words the
//!    record holds (each word checked on its own).
//!
//! The [`Retrieval`]'s confidence is the best hit's coverage or key score, whichever is
//! larger: near 1 when the record accounts for the whole question, near 0 when it matched
//! only common words. The router compares it with its calibrated threshold. The packs the
//! question names by an alias are reported apart ([`Retrieval::named_packs`]): naming a pack
//! is a reason to answer from it whatever the confidence.

use std::collections::{HashMap, HashSet};

use rusqlite::{params, Connection, OptionalExtension};
use serde::Serialize;

use super::analyzer::{self, QueryWord};
use super::error::KnowledgeError;
use super::index::TermCache;
use super::query::quoted;
use super::snippet;
use super::store::{card_from_row, Hit, CARD_SELECT};
use crate::text::truncate_query;

/// Most words taken from one query.
pub const MAX_QUERY_WORDS: usize = 32;
/// Records ranked in full per query.
pub const CANDIDATES: usize = 50;
/// Most postings (term × record) the candidate query may rank: bm25 reads each matching
/// record's column sizes, about a microsecond each.
pub const POSTINGS_BUDGET: i64 = 1_500;
/// With a pack filter, how many times [`CANDIDATES`] are ranked before filtering.
const PACK_FILTER_CUT: usize = 8;
/// Longest key looked for inside a question, in words (no longer than the longest key
/// installed).
pub const MAX_KEY_WORDS: usize = 6;
/// Weight of coverage in a candidate's score.
pub const COVERAGE_WEIGHT: f64 = 3.0;
/// Weight of a key match in a candidate's score.
pub const KEY_WEIGHT: f64 = 2.0;
/// Added to the score of a record whose pack the question names by an alias.
pub const PACK_WEIGHT: f64 = 0.5;
/// Longest alias looked for, in words.
const MAX_ALIAS_WORDS: usize = 3;

/// bm25 column weights: title, body, keys.
const BM25: &str = "bm25(records_fts, 4.0, 1.0, 8.0)";

/// A record whose key is the whole question.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct KeyMatch {
    /// The pack.
    pub pack: String,
    /// The key, as stored (normalized).
    pub key: String,
}

/// What a search found, and how sure it is.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Retrieval {
    /// The hits, best first.
    pub hits: Vec<Hit>,
    /// How much of the question the best hit accounts for, 0 to 1 (see the module docs); 0
    /// without hits.
    pub confidence: f64,
    /// Set when the whole question (stop words aside) is a key of the best hit.
    pub key: Option<KeyMatch>,
    /// The packs the question names by an alias ("kural", "helpline"), sorted; they are not
    /// searched for, but their records rank higher.
    pub named_packs: Vec<String>,
}

impl Retrieval {
    /// What the router weighs: the confidence, the key match and the pack named; `None`
    /// when nothing was found and no pack named.
    pub fn evidence(&self) -> Option<crate::router::Evidence> {
        (!self.hits.is_empty() || !self.named_packs.is_empty()).then(|| crate::router::Evidence {
            confidence: self.confidence,
            key: self.key.clone().map(|k| (k.pack, k.key)),
            named_pack: self.named_packs.first().cloned(),
        })
    }
}

/// One query word with its weight.
struct Word {
    analyzed: QueryWord,
    /// Its term for key comparison, by script reading: as written, and as romanized Tamil.
    key_terms: [Option<String>; 2],
    idf: f64,
    /// The pack this word names (an alias), if any.
    alias_of: Option<String>,
}

impl Word {
    /// Whether a record must hold this word to account for the question.
    fn is_content(&self) -> bool {
        !self.analyzed.stop && !self.analyzed.terms.is_empty() && self.alias_of.is_none()
    }
}

#[derive(Default)]
struct Candidate {
    pack: String,
    terms: String,
    bm25: f64,
    key: f64,
    exact_key: Option<KeyMatch>,
}

fn idf(df: i64, total: f64) -> f64 {
    let df = df.max(0) as f64;
    (1.0 + (total - df + 0.5) / (df + 0.5)).ln()
}

/// How many records hold `term` (counted at import).
fn doc_frequency(conn: &Connection, term: &str) -> rusqlite::Result<i64> {
    conn.prepare_cached("SELECT coalesce(sum(docs), 0) FROM term_docs WHERE term = ?1")?
        .query_row([term], |r| r.get(0))
}

/// A count kept in `kb_meta` (`records`, `key_words`); 0 when absent.
fn meta(conn: &Connection, name: &str) -> rusqlite::Result<i64> {
    conn.prepare_cached("SELECT value FROM kb_meta WHERE name = ?1")?
        .query_row([name], |r| r.get(0))
        .optional()
        .map(Option::unwrap_or_default)
}

/// Searches `conn`'s index (see the module docs). `limit` 0 finds nothing.
pub fn retrieve(
    conn: &Connection,
    cache: &mut TermCache,
    query: &str,
    limit: usize,
    pack: Option<&str>,
) -> Result<Retrieval, KnowledgeError> {
    if limit == 0 {
        return Ok(Retrieval::default());
    }
    let mut analyzed = analyzer::query_words(truncate_query(query));
    analyzed.truncate(MAX_QUERY_WORDS);
    if analyzed.iter().all(|w| w.stop || w.terms.is_empty()) {
        return Ok(Retrieval::default());
    }
    let total = meta(conn, "records")? as f64;
    let mut words: Vec<Word> = analyzed
        .into_iter()
        .map(|w| Word {
            key_terms: key_terms(&w.word),
            analyzed: w,
            idf: 0.0,
            alias_of: None,
        })
        .collect();
    let named_packs = mark_aliases(conn, &mut words, pack)?;
    let nothing = || {
        let mut named: Vec<String> = named_packs.iter().cloned().collect();
        named.sort();
        Retrieval {
            named_packs: named,
            ..Retrieval::default()
        }
    };
    let mut df: HashMap<String, i64> = HashMap::new();
    for w in &mut words {
        if w.analyzed.stop {
            continue;
        }
        let mut most = 0;
        for term in &w.analyzed.terms {
            most = most.max(cached_df(conn, &mut df, term)?);
        }
        // A word the index has never seen may be misspelt: take the nearest word of the
        // packs' vocabulary instead.
        if most == 0 && w.alias_of.is_none() {
            if let Some(corrected) = correct_spelling(conn, &w.analyzed.word, pack)? {
                let Some(fixed) = analyzer::query_words(&corrected).into_iter().next() else {
                    continue;
                };
                if fixed.stop {
                    // "abut" was "about": nothing to search for.
                    w.analyzed.stop = true;
                    w.analyzed.terms.clear();
                    continue;
                }
                let mut fixed_most = 0;
                for term in &fixed.terms {
                    fixed_most = fixed_most.max(cached_df(conn, &mut df, term)?);
                }
                if fixed_most > 0 {
                    tracing::trace!(word = %w.analyzed.word, %corrected, "spelling corrected");
                    w.analyzed.terms = fixed.terms;
                    most = fixed_most;
                }
            }
        }
        w.idf = idf(most, total);
    }
    if !words.iter().any(Word::is_content) {
        // The question is only pack names ("thirukkural"): search for them after all.
        for w in &mut words {
            w.alias_of = None;
        }
    }
    // Only the words a record must hold are searched for (not pack names).
    let searched: HashMap<String, i64> = words
        .iter()
        .filter(|w| w.is_content())
        .flat_map(|w| &w.analyzed.terms)
        .filter_map(|t| df.get(t).map(|n| (t.clone(), *n)))
        .collect();
    // A word repeated counts once.
    let mut seen = HashSet::new();
    let content: Vec<usize> = (0..words.len())
        .filter(|&i| words[i].is_content() && seen.insert(words[i].analyzed.terms.clone()))
        .collect();
    let total_idf: f64 = content.iter().map(|&i| words[i].idf).sum();
    if content.is_empty() || total_idf <= 0.0 {
        return Ok(nothing());
    }

    let mut candidates = fts_candidates(conn, &searched, pack)?;
    let key_words = usize::try_from(meta(conn, "key_words")?)
        .unwrap_or(0)
        .min(MAX_KEY_WORDS);
    key_candidates(
        conn,
        &words,
        &content,
        total_idf,
        pack,
        key_words,
        &mut candidates,
    )?;
    if candidates.is_empty() {
        return Ok(nothing());
    }

    // Rank.
    let best_bm25 = candidates.values().map(|c| c.bm25).fold(0.0f64, f64::max);
    let mut ranked: Vec<(i64, f64, f64, Candidate)> = candidates
        .into_iter()
        .map(|(rowid, c)| {
            let held: HashSet<&str> = c.terms.split(' ').collect();
            let covered: f64 = content
                .iter()
                .map(|&i| &words[i])
                .filter(|w| w.analyzed.terms.iter().any(|t| held.contains(t.as_str())))
                .map(|w| w.idf)
                .sum();
            let coverage = covered / total_idf;
            let bm25 = if best_bm25 > 0.0 {
                c.bm25 / best_bm25
            } else {
                0.0
            };
            let named = if named_packs.contains(&c.pack) {
                PACK_WEIGHT
            } else {
                0.0
            };
            let score = COVERAGE_WEIGHT * coverage + KEY_WEIGHT * c.key + bm25 + named;
            let confidence = coverage.max(c.key).min(1.0);
            (rowid, score, confidence, c)
        })
        .collect();
    ranked.sort_by(|a, b| {
        b.1.total_cmp(&a.1)
            .then(b.3.bm25.total_cmp(&a.3.bm25))
            .then(a.0.cmp(&b.0))
    });
    ranked.truncate(limit);

    let query_terms =
        snippet::query_terms(&words.iter().map(|w| w.analyzed.clone()).collect::<Vec<_>>());
    let mut card = conn.prepare_cached(&format!(
        "{CARD_SELECT} FROM records r JOIN packs p ON p.name = r.pack WHERE r.rowid = ?1"
    ))?;
    let mut hits = Vec::with_capacity(ranked.len());
    for (rowid, score, _, _) in &ranked {
        let card = card.query_row([rowid], card_from_row)?;
        let snippet = snippet::snippet(&card.body, &query_terms, cache);
        hits.push(Hit {
            card,
            score: *score,
            snippet,
        });
    }
    let (confidence, key) = ranked
        .into_iter()
        .next()
        .map(|(_, _, confidence, c)| match c.exact_key {
            Some(key) => (1.0, Some(key)),
            None => (confidence, None),
        })
        .unwrap_or_default();
    Ok(Retrieval {
        hits,
        confidence,
        key,
        ..nothing()
    })
}

/// A word's key terms: as written, and (Latin words) as romanized Tamil.
fn key_terms(word: &str) -> [Option<String>; 2] {
    let written = analyzer::key_terms(word);
    let romanized = analyzer::romanized_key_term(word).filter(|r| *r != written);
    [Some(written), romanized]
}

/// The FTS5 candidates: rarest terms first within the postings budget, best bm25 first.
fn fts_candidates(
    conn: &Connection,
    df: &HashMap<String, i64>,
    pack: Option<&str>,
) -> Result<HashMap<i64, Candidate>, KnowledgeError> {
    let mut terms: Vec<(&String, i64)> = df
        .iter()
        .filter(|(_, n)| **n > 0)
        .map(|(t, n)| (t, *n))
        .collect();
    terms.sort_by(|a, b| a.1.cmp(&b.1).then(a.0.cmp(b.0)));
    let mut chosen = Vec::new();
    let mut postings = 0;
    for (term, n) in terms {
        if chosen.is_empty() || postings + n <= POSTINGS_BUDGET {
            chosen.push(quoted(term));
            postings += n;
        }
    }
    let mut out = HashMap::new();
    if chosen.is_empty() {
        return Ok(out);
    }
    let ranked = postings <= POSTINGS_BUDGET;
    let order = if ranked { BM25 } else { "rowid" };
    // Rank inside the index first and join the few best with their records: joining every
    // match before sorting costs a record read per match. A pack filter, applied after the
    // join, takes a wider cut.
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT r.rowid, r.terms, f.score, r.pack
           FROM (SELECT rowid, -{BM25} AS score FROM records_fts
                  WHERE records_fts MATCH ?1 ORDER BY {order} LIMIT ?3) f
           JOIN records r ON r.rowid = f.rowid
          WHERE (?2 IS NULL OR r.pack = ?2)"
    ))?;
    let cut = if pack.is_some() {
        CANDIDATES * PACK_FILTER_CUT
    } else {
        CANDIDATES
    };
    let rows = stmt.query_map(params![chosen.join(" OR "), pack, cut as i64], |r| {
        Ok((
            r.get::<_, i64>(0)?,
            r.get::<_, String>(1)?,
            r.get::<_, f64>(2)?,
            r.get::<_, String>(3)?,
        ))
    })?;
    for row in rows {
        let (rowid, terms, bm25, pack) = row?;
        out.insert(
            rowid,
            Candidate {
                pack,
                terms,
                bm25: if ranked { bm25.max(0.0) } else { 0.0 },
                ..Candidate::default()
            },
        );
    }
    Ok(out)
}

/// Keys found inside the question (see the module docs).
fn key_candidates(
    conn: &Connection,
    words: &[Word],
    content: &[usize],
    total_idf: f64,
    pack: Option<&str>,
    key_words: usize,
    candidates: &mut HashMap<i64, Candidate>,
) -> Result<(), KnowledgeError> {
    // Runs may begin and end at pack names too: `kural 5` is a key.
    let is_content = |i: usize| !words[i].analyzed.stop && !words[i].analyzed.terms.is_empty();
    // A key is the whole question when it spans every word that is not a stop word, pack
    // names included: `kural 5` is, `hospitality` in "kural for hospitality" is not.
    let spanned: Vec<usize> = (0..words.len()).filter(|&i| is_content(i)).collect();
    let (Some(&first_content), Some(&last_content)) = (spanned.first(), spanned.last()) else {
        return Ok(());
    };
    if content.is_empty() {
        return Ok(());
    }
    let mut lookup = conn.prepare_cached(
        "SELECT k.record, k.pack, k.key, r.terms FROM record_keys k
           JOIN records r ON r.rowid = k.record
          WHERE k.terms = ?1 AND (?2 IS NULL OR k.pack = ?2)",
    )?;
    for start in (0..words.len()).filter(|&i| is_content(i)) {
        for end in (start..words.len().min(start + key_words)).filter(|&i| is_content(i)) {
            let run = &words[start..=end];
            let covered: f64 = {
                let mut seen = HashSet::new();
                run.iter()
                    .filter(|w| w.is_content() && seen.insert(&w.analyzed.terms))
                    .map(|w| w.idf)
                    .sum()
            };
            let whole = start <= first_content && end >= last_content;
            for reading in 0..2 {
                // Reading 1 (romanized Tamil) only where some word has such a reading.
                if reading == 1 && run.iter().all(|w| w.key_terms[1].is_none()) {
                    continue;
                }
                let rows = lookup.query_map(params![run_key(run, reading), pack], |r| {
                    Ok((
                        r.get::<_, i64>(0)?,
                        r.get::<_, String>(1)?,
                        r.get::<_, String>(2)?,
                        r.get::<_, String>(3)?,
                    ))
                })?;
                for row in rows {
                    let (rowid, pack, key, terms) = row?;
                    let c = candidates.entry(rowid).or_insert_with(|| Candidate {
                        pack: pack.clone(),
                        terms,
                        ..Candidate::default()
                    });
                    c.key = c.key.max(covered / total_idf);
                    if whole && c.exact_key.is_none() {
                        c.exact_key = Some(KeyMatch { pack, key });
                    }
                }
            }
        }
    }
    Ok(())
}

/// A run of words as a key, each word read as written (`reading` 0) or, where it can be, as
/// romanized Tamil (1).
fn run_key(run: &[Word], reading: usize) -> String {
    run.iter()
        .map(|w| {
            w.key_terms[reading]
                .as_deref()
                .or(w.key_terms[0].as_deref())
                .unwrap_or_default()
        })
        .collect::<Vec<_>>()
        .join(" ")
}

fn cached_df(
    conn: &Connection,
    df: &mut HashMap<String, i64>,
    term: &str,
) -> rusqlite::Result<i64> {
    if let Some(n) = df.get(term) {
        return Ok(*n);
    }
    let n = doc_frequency(conn, term)?;
    df.insert(term.to_owned(), n);
    Ok(n)
}

/// Marks the words that are a pack's alias (runs of up to [`MAX_ALIAS_WORDS`]); the packs
/// so named.
fn mark_aliases(
    conn: &Connection,
    words: &mut [Word],
    pack: Option<&str>,
) -> rusqlite::Result<HashSet<String>> {
    let aliases: HashMap<String, String> = conn
        .prepare_cached("SELECT terms, pack FROM pack_aliases WHERE (?1 IS NULL OR pack = ?1)")?
        .query_map([pack], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<Result<_, _>>()?;
    let mut named = HashSet::new();
    if aliases.is_empty() {
        return Ok(named);
    }
    for start in 0..words.len() {
        for end in (start..words.len().min(start + MAX_ALIAS_WORDS)).rev() {
            let run = &words[start..=end];
            let found = (0..2).find_map(|reading| aliases.get(&run_key(run, reading)));
            if let Some(p) = found {
                named.insert(p.clone());
                for w in &mut words[start..=end] {
                    w.alias_of = Some(p.clone());
                }
                break;
            }
        }
    }
    Ok(named)
}

/// `text` normalized, each word the index has never seen (Latin, four letters or more, not a
/// stop word) replaced by the nearest word of the packs' vocabulary (see `correct_spelling`):
/// what a question looks like when its typos are fixed, for routing rules to read.
pub fn correct_query(conn: &Connection, text: &str) -> rusqlite::Result<String> {
    let normalized = crate::text::normalize_query(crate::text::truncate_query(text));
    let mut out = String::with_capacity(normalized.len());
    let mut last = 0;
    let mut df = HashMap::new();
    let mut words = 0;
    for (start, word) in word_spans(&normalized) {
        words += 1;
        if words > MAX_QUERY_WORDS {
            break;
        }
        let unknown_latin = word.len() >= super::index::MIN_VOCABULARY_LEN
            && word.bytes().all(|b| b.is_ascii_lowercase())
            && !analyzer::is_stop_word(word);
        if !unknown_latin {
            continue;
        }
        let mut known = false;
        for q in analyzer::query_words(word) {
            for term in &q.terms {
                known |= cached_df(conn, &mut df, term)? > 0;
            }
        }
        if known {
            continue;
        }
        if let Some(fixed) = correct_spelling(conn, word, None)? {
            out.push_str(&normalized[last..start]);
            out.push_str(&fixed);
            last = start + word.len();
        }
    }
    out.push_str(&normalized[last..]);
    Ok(out)
}

/// The words of `text` with their byte offsets.
fn word_spans(text: &str) -> impl Iterator<Item = (usize, &str)> {
    let mut start = None;
    let mut spans = Vec::new();
    for (i, c) in text.char_indices() {
        match (super::query::is_word_char(c), start) {
            (true, None) => start = Some(i),
            (false, Some(s)) => {
                spans.push((s, &text[s..i]));
                start = None;
            }
            _ => {}
        }
    }
    if let Some(s) = start {
        spans.push((s, &text[s..]));
    }
    spans.into_iter()
}

/// Words shorter than this are corrected only into a pack alias, a stop word or a word
/// common in a pack.
const SHORT_WORD_LETTERS: usize = 6;
/// A word is common in a pack when at least one record in this many holds it: the pack's
/// own phrasing ("number" in a pack of helplines), which people mistype in questions about
/// it ("numbr").
const COMMON_IN_PACK: i64 = 4;

/// The vocabulary word nearest to `word` (same first letter; one edit for words of up to
/// seven letters, two for longer ones; a word under [`SHORT_WORD_LETTERS`] only into a pack
/// alias, a stop word or a word [common](COMMON_IN_PACK) in a pack), if `word` is Latin and
/// long enough to correct.
fn correct_spelling(
    conn: &Connection,
    word: &str,
    pack: Option<&str>,
) -> rusqlite::Result<Option<String>> {
    let len = word.chars().count();
    let Some(first) = word.chars().next() else {
        return Ok(None);
    };
    if len < super::index::MIN_VOCABULARY_LEN || !word.chars().all(|c| c.is_ascii_lowercase()) {
        return Ok(None);
    }
    let max = if len >= 8 { 2 } else { 1 };
    let upper = char::from_u32(u32::from(first) + 1).unwrap_or(char::MAX);
    let mut stmt = conn.prepare_cached(
        "SELECT DISTINCT word FROM vocabulary
          WHERE word >= ?1 AND word < ?2 AND length(word) BETWEEN ?3 AND ?4
            AND (?5 IS NULL OR pack = ?5)",
    )?;
    let rows = stmt.query_map(
        params![
            first.to_string(),
            upper.to_string(),
            (len - max) as i64,
            (len + max) as i64,
            pack
        ],
        |r| r.get::<_, String>(0),
    )?;
    let short = len < SHORT_WORD_LETTERS;
    let mut is_alias =
        conn.prepare_cached("SELECT EXISTS (SELECT 1 FROM pack_aliases WHERE terms = ?1)")?;
    let mut is_common = conn.prepare_cached(
        "SELECT EXISTS (SELECT 1 FROM term_docs t JOIN kb_meta m ON m.name = 'records/' || t.pack
                         WHERE t.term = ?1 AND t.docs * ?2 >= m.value)",
    )?;
    let mut best: Option<(usize, String)> = None;
    for candidate in rows {
        let candidate = candidate?;
        let bound = best.as_ref().map_or(max, |(d, _)| *d);
        let Some(d) = crate::text::edit_distance(word, &candidate, bound) else {
            continue;
        };
        // Ties go to the earlier word, which is alphabetical: deterministic.
        if best.as_ref().is_some_and(|(b, _)| d >= *b) {
            continue;
        }
        // A short word has many neighbours, and may well be a real word the packs lack
        // ("hello" is not "hell"): it is only corrected into a pack's name, a stop word or a
        // word the pack itself keeps using. (Checked after the distance: only near words
        // cost a lookup.)
        if short
            && !analyzer::is_stop_word(&candidate)
            && !is_alias.query_row([analyzer::key_terms(&candidate)], |r| r.get::<_, bool>(0))?
            && !common_in_a_pack(&mut is_common, &candidate)?
        {
            continue;
        }
        best = Some((d, candidate));
    }
    Ok(best.map(|(_, w)| w))
}

/// Whether a term of `word` is held by at least one record in [`COMMON_IN_PACK`] of some pack.
fn common_in_a_pack(
    stmt: &mut rusqlite::CachedStatement<'_>,
    word: &str,
) -> rusqlite::Result<bool> {
    for q in analyzer::query_words(word) {
        for term in &q.terms {
            if stmt.query_row(params![term, COMMON_IN_PACK], |r| r.get::<_, bool>(0))? {
                return Ok(true);
            }
        }
    }
    Ok(false)
}
