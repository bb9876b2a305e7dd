//! User directory search. Deliberately narrower than "every user on the server": only users who
//! share a joined room with the requester, plus the requester (no enumeration of staff lists).

use super::UserService;
use crate::error::Result;
use crate::service::blocking;
use crate::store::users::UserRecord;
use ruma::UserId;

/// Caps what one search may ask for, whatever `limit` the client sends.
const MAX_LIMIT: usize = 100;

impl UserService {
    /// Up to `limit` matches, and whether more were left out (`limited`).
    pub async fn search_directory(
        &self,
        requester: &UserId,
        term: &str,
        limit: usize,
    ) -> Result<(Vec<UserRecord>, bool)> {
        let limit = limit.min(MAX_LIMIT);
        let store = self.store.clone();
        let (uid, term) = (requester.to_owned(), term.trim().to_owned());
        // One row more than asked tells whether the result was cut.
        let mut found =
            blocking(move || Ok(store.search_users(uid.as_str(), &term, limit + 1)?)).await?;
        let limited = found.len() > limit;
        found.truncate(limit);
        Ok((found, limited))
    }
}
