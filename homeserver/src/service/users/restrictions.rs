//! Locked and suspended accounts (spec v1.18 account locking and suspension). The flags live in
//! the users table; this in-memory copy is what every request checks, so a token lookup costs no
//! extra query. Only the admin service changes it (after the store), and loads it at start-up.

use std::collections::HashMap;
use std::sync::RwLock;

use http::StatusCode;
use ruma::api::error::ErrorKind;
use ruma::{OwnedUserId, UserId};

use super::UserService;
use crate::error::{Error, Result};

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Flags {
    pub locked: bool,
    pub suspended: bool,
}

#[derive(Default)]
pub struct Restrictions {
    by_user: RwLock<HashMap<OwnedUserId, Flags>>,
}

impl Restrictions {
    pub fn get(&self, user_id: &UserId) -> Flags {
        let map = self.by_user.read().expect("restrictions lock");
        map.get(user_id).copied().unwrap_or_default()
    }

    pub fn set(&self, user_id: &UserId, flags: Flags) {
        let mut map = self.by_user.write().expect("restrictions lock");
        if flags == Flags::default() {
            map.remove(user_id);
        } else {
            map.insert(user_id.to_owned(), flags);
        }
    }
}

/// `401 M_USER_LOCKED`: the spec's answer to a locked account's login or token.
pub fn locked_error() -> Error {
    Error::new(
        StatusCode::UNAUTHORIZED,
        ErrorKind::UserLocked,
        "This account has been locked by a server administrator",
    )
}

impl UserService {
    pub fn restrictions(&self) -> &Restrictions {
        &self.restrictions
    }

    /// `403 M_USER_SUSPENDED` for a suspended account's writes (sending, joining, inviting,
    /// creating rooms, changing its profile). Leaving rooms, redacting its own events and
    /// reading stay allowed, as the spec says.
    pub fn ensure_not_suspended(&self, user_id: &UserId) -> Result<()> {
        if self.restrictions.get(user_id).suspended {
            return Err(Error::new(
                StatusCode::FORBIDDEN,
                ErrorKind::UserSuspended,
                "This account is suspended: it can read but not make changes",
            ));
        }
        Ok(())
    }
}
