//! Storage seam for full-text search (`POST /search`). The index follows the events table by
//! itself (schema `v11_spec.sql`); this trait only queries it. What a user may see is decided by
//! the service and handed in as position ranges per room.

use super::StoreResult;
use super::rooms::StoredEvent;

/// The event fields searched, as the spec names them.
pub const SEARCH_KEYS: [&str; 3] = ["content.body", "content.name", "content.topic"];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SearchOrder {
    /// Newest first; continue below this stream position.
    Recent { before: Option<i64> },
    /// Best match first; skip this many.
    Rank { offset: u64 },
}

#[derive(Debug, Clone)]
pub struct SearchQuery {
    /// An FTS5 match expression (built by the service from the user's words, quoted).
    pub fts: String,
    /// Subset of `SEARCH_KEYS`.
    pub keys: Vec<&'static str>,
    /// `(room_id, from, to)`: stream positions (both ends included) the searcher may read.
    pub ranges: Vec<(String, i64, i64)>,
    pub senders: Option<Vec<String>>,
    pub not_senders: Vec<String>,
    /// `Some(true)`: only events with `content.url`; `Some(false)`: only without.
    pub with_url: Option<bool>,
    pub order: SearchOrder,
    pub limit: usize,
}

#[derive(Debug, Clone)]
pub struct SearchHit {
    pub event: StoredEvent,
    /// Higher is better (FTS5's bm25, negated).
    pub rank: f64,
}

pub trait SearchStore: Send + Sync {
    /// One page of hits in the query's order, and how many hits there are in all.
    fn search(&self, q: &SearchQuery) -> StoreResult<(Vec<SearchHit>, u64)>;
}
