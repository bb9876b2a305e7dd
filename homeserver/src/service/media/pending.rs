//! Media ids created by `POST /_matrix/media/v1/create` whose content has not arrived yet.
//!
//! Kept in memory on purpose: the spec lets a server expire unused ids, and a reservation holds
//! no content, so losing them on restart only means the client gets 404 on its PUT and creates a
//! new id. Downloads of a pending id wait here (up to their `timeout_ms`) for the upload.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ruma::{OwnedUserId, UserId};
use tokio::sync::Notify;

use crate::error::{Error, Result};

/// Spec: "servers should limit the number of concurrent pending media uploads a given user can
/// have", answering 429 M_LIMIT_EXCEEDED.
pub const MAX_PENDING_PER_USER: usize = 10;
/// The spec's recommended lifetime of an unused id.
pub const UNUSED_ID_LIFETIME: Duration = Duration::from_secs(24 * 60 * 60);

struct Reservation {
    owner: OwnedUserId,
    expires_at: i64,
    /// A PUT is writing the content now; a second PUT must not race it onto the same file.
    uploading: bool,
    uploaded: Arc<Notify>,
}

#[derive(Default)]
pub struct PendingUploads {
    map: Mutex<HashMap<String, Reservation>>,
}

impl PendingUploads {
    /// Reserves `media_id` for `owner` until `now + UNUSED_ID_LIFETIME`; returns that time.
    pub fn reserve(&self, owner: &UserId, media_id: &str, now: i64) -> Result<i64> {
        let mut map = self.map.lock().expect("pending uploads lock");
        map.retain(|_, r| r.uploading || r.expires_at > now);
        let mine: Vec<i64> = map
            .values()
            .filter(|r| r.owner == owner)
            .map(|r| r.expires_at)
            .collect();
        if mine.len() >= MAX_PENDING_PER_USER {
            let soonest = mine.into_iter().min().unwrap_or(now);
            return Err(Error::limit_exceeded(Duration::from_millis(
                (soonest - now).max(0) as u64,
            )));
        }
        let expires_at = now + UNUSED_ID_LIFETIME.as_millis() as i64;
        map.insert(
            media_id.to_owned(),
            Reservation {
                owner: owner.to_owned(),
                expires_at,
                uploading: false,
                uploaded: Arc::new(Notify::new()),
            },
        );
        Ok(expires_at)
    }

    /// Claims the reservation for an upload by `user`. On success the caller must call
    /// `finish` or `abort`.
    pub fn begin_upload(&self, user: &UserId, media_id: &str, now: i64) -> Result<()> {
        let mut map = self.map.lock().expect("pending uploads lock");
        match map.get_mut(media_id) {
            Some(r) if r.uploading => Err(cannot_overwrite()),
            Some(r) if r.expires_at <= now => {
                map.remove(media_id);
                Err(Error::not_found("Unknown or expired media ID"))
            }
            Some(r) if r.owner != user => Err(Error::forbidden(
                "This media ID was created by another user",
            )),
            Some(r) => {
                r.uploading = true;
                Ok(())
            }
            None => Err(Error::not_found("Unknown or expired media ID")),
        }
    }

    /// The content is stored: drop the reservation and wake waiting downloads.
    pub fn finish(&self, media_id: &str) {
        if let Some(r) = self
            .map
            .lock()
            .expect("pending uploads lock")
            .remove(media_id)
        {
            r.uploaded.notify_waiters();
        }
    }

    /// The upload failed: the id may be uploaded to again.
    pub fn abort(&self, media_id: &str) {
        if let Some(r) = self
            .map
            .lock()
            .expect("pending uploads lock")
            .get_mut(media_id)
        {
            r.uploading = false;
        }
    }

    /// The notifier to wait on if `media_id` is reserved and not expired.
    pub fn waiter(&self, media_id: &str, now: i64) -> Option<Arc<Notify>> {
        let map = self.map.lock().expect("pending uploads lock");
        map.get(media_id)
            .filter(|r| r.uploading || r.expires_at > now)
            .map(|r| r.uploaded.clone())
    }
}

pub fn cannot_overwrite() -> Error {
    Error::new(
        http::StatusCode::CONFLICT,
        ruma::api::error::ErrorKind::CannotOverwriteMedia,
        "Media already uploaded",
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use ruma::api::error::ErrorKind;

    fn user(s: &str) -> OwnedUserId {
        s.try_into().unwrap()
    }

    #[test]
    fn reservation_lifecycle() {
        let p = PendingUploads::default();
        let (alice, bob) = (user("@alice:x"), user("@bob:x"));
        let exp = p.reserve(&alice, "m1", 1000).unwrap();
        assert_eq!(exp, 1000 + UNUSED_ID_LIFETIME.as_millis() as i64);
        assert!(p.waiter("m1", 1000).is_some());
        let e = p.begin_upload(&bob, "m1", 1000).unwrap_err();
        assert_eq!(e.kind(), Some(&ErrorKind::Forbidden));
        p.begin_upload(&alice, "m1", 1000).unwrap();
        let e = p.begin_upload(&alice, "m1", 1000).unwrap_err();
        assert_eq!(e.kind(), Some(&ErrorKind::CannotOverwriteMedia));
        p.abort("m1");
        p.begin_upload(&alice, "m1", 1000).unwrap();
        p.finish("m1");
        assert!(p.waiter("m1", 1000).is_none());
        let e = p.begin_upload(&alice, "m1", 1000).unwrap_err();
        assert_eq!(e.kind(), Some(&ErrorKind::NotFound));
    }

    #[test]
    fn expiry_and_per_user_cap() {
        let p = PendingUploads::default();
        let alice = user("@alice:x");
        for i in 0..MAX_PENDING_PER_USER {
            p.reserve(&alice, &format!("m{i}"), 0).unwrap();
        }
        let e = p.reserve(&alice, "over", 0).unwrap_err();
        assert!(matches!(e.kind(), Some(ErrorKind::LimitExceeded(_))));
        p.reserve(&user("@bob:x"), "b", 0).unwrap();
        // Once expired, the ids are gone and the user may create new ones.
        let later = UNUSED_ID_LIFETIME.as_millis() as i64 + 1;
        assert!(p.waiter("m0", later).is_none());
        let e = p.begin_upload(&alice, "m0", later).unwrap_err();
        assert_eq!(e.kind(), Some(&ErrorKind::NotFound));
        p.reserve(&alice, "fresh", later).unwrap();
    }
}
