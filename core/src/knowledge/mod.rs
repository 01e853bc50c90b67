//! The knowledge base: exact answers from data, verbatim and with their source.
//!
//! Knowledge packs (`pack.toml` + `records.jsonl`, see `docs/formats.md`) are imported into
//! SQLite transactionally and versioned; records are found by exact key ([`KnowledgeBase::lookup`],
//! keys normalized like queries, so Tamil numerals and case do not matter) or by full-text search
//! ([`KnowledgeBase::search`], FTS5 with bm25 ranking and snippets). Indic scripts search as
//! whole words ([`schema::FTS_TOKENIZER`]) and user text never becomes FTS syntax ([`query`]).

mod error;
pub mod pack;
pub mod query;
pub mod schema;
mod store;

pub use error::KnowledgeError;
pub use pack::{Manifest, Pack, Record};
pub use store::{Card, Hit, ImportReport, KnowledgeBase, PackInfo};
