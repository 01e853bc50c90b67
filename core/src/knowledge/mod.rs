//! The knowledge base: exact answers from data, verbatim and with their source.
//!
//! Knowledge packs (`pack.toml` + `records.jsonl`, see `docs/formats.md`) are imported into
//! SQLite transactionally and versioned, only when trusted ([`trust`]: shipped by digest, or
//! signed by a key the app configured, or unsigned where the app allows it); records are found by exact key ([`KnowledgeBase::lookup`],
//! keys normalized like queries, so Tamil numerals and case do not matter) or by full-text search
//! ([`KnowledgeBase::search`]: any query word may match, ranked by how much of the question a
//! record holds, [`search`]). Text is analyzed the same way at import and at query time
//! ([`analyzer`]: English stems, Tamil stems over a phonetic key that romanized Tamil also
//! reaches, stop words), and user text never becomes FTS syntax ([`query`]).

pub mod analyzer;
mod error;
mod index;
pub mod pack;
pub mod query;
pub mod schema;
pub mod search;
mod snippet;
mod store;
pub mod trust;

pub use error::KnowledgeError;
pub use pack::{Manifest, Pack, Record};
pub use search::{KeyMatch, Retrieval};
pub use store::{Card, Hit, ImportReport, KnowledgeBase, PackInfo};
pub use trust::Provenance;
