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

#[cfg(test)]
mod tests {
    use crate::service::test_services;
    use crate::service::users::test_login;

    #[tokio::test]
    async fn search_finds_self_but_not_strangers_and_sets_limited() {
        let (s, _d) = test_services();
        let (me, _) = test_login(&s.users, "nurse1", "correct horse").await;
        test_login(&s.users, "nurse2", "correct horse").await;
        // No shared room: only the requester is visible.
        let (found, limited) = s
            .users
            .search_directory(&me.user_id, "nurse", 10)
            .await
            .unwrap();
        let ids: Vec<_> = found.iter().map(|u| u.user_id.as_str()).collect();
        assert_eq!(ids, vec!["@nurse1:localhost"]);
        assert!(!limited);
        let (found, limited) = s
            .users
            .search_directory(&me.user_id, "nurse", 0)
            .await
            .unwrap();
        assert!(found.is_empty());
        assert!(limited);
    }
}
