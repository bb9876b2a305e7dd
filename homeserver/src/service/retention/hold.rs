//! Legal holds: a held room, and every event a held user sent, is never purged. Placing and
//! releasing a hold is audited.

use handover_compliance::Outcome;
use ruma::{RoomId, UserId};

use super::RetentionService;
use crate::error::{Error, Result};
use crate::service::audit::entry;
use crate::service::blocking;
use crate::store::retention::{Hold, HoldKind};

pub const ACTION_HOLD: &str = "retention.hold";
pub const ACTION_RELEASE: &str = "retention.release";

/// What a hold covers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HoldTarget {
    Room(String),
    User(String),
}

impl HoldTarget {
    /// Parses a room id (`!..`) or user id (`@..`) for `kind` "room" or "user".
    pub fn parse(kind: &str, id: &str) -> Result<Self> {
        match kind {
            "room" => RoomId::parse(id)
                .map(|r| HoldTarget::Room(r.to_string()))
                .map_err(|e| Error::invalid_param(format!("bad room id: {e}"))),
            "user" => UserId::parse(id)
                .map(|u| HoldTarget::User(u.to_string()))
                .map_err(|e| Error::invalid_param(format!("bad user id: {e}"))),
            _ => Err(Error::invalid_param("a hold is on a room or a user")),
        }
    }

    fn parts(&self) -> (HoldKind, &str) {
        match self {
            HoldTarget::Room(r) => (HoldKind::Room, r),
            HoldTarget::User(u) => (HoldKind::User, u),
        }
    }
}

impl RetentionService {
    /// Places a hold (idempotent); audited either way. Returns false if it was already held.
    pub async fn place_hold(
        &self,
        actor: &str,
        target: HoldTarget,
        reason: Option<String>,
    ) -> Result<bool> {
        let (kind, id) = target.parts();
        let mut e = entry(actor, ACTION_HOLD, Outcome::Success)
            .target(id)
            .detail("kind", kind.as_str());
        if let Some(r) = &reason {
            e = e.detail("reason", r.as_str());
        }
        let hold = Hold {
            kind,
            target: id.to_owned(),
            reason,
            placed_by: actor.to_owned(),
            placed_ts: self.clock.now_ms(),
        };
        let store = self.store.clone();
        let placed = blocking(move || Ok(store.place_hold(hold)?)).await?;
        self.audit.record(e.detail("already_held", !placed)).await?;
        Ok(placed)
    }

    /// Releases a hold; audited (with why, when given). Returns false if there was none.
    pub async fn release_hold(
        &self,
        actor: &str,
        target: HoldTarget,
        reason: Option<String>,
    ) -> Result<bool> {
        let (kind, id) = target.parts();
        let store = self.store.clone();
        let idc = id.to_owned();
        let released = blocking(move || Ok(store.release_hold(kind, &idc)?)).await?;
        let outcome = if released {
            Outcome::Success
        } else {
            Outcome::Failure
        };
        let mut e = entry(actor, ACTION_RELEASE, outcome)
            .target(id)
            .detail("kind", kind.as_str());
        if let Some(r) = reason {
            e = e.detail("reason", r);
        }
        self.audit.record(e).await?;
        Ok(released)
    }

    pub async fn holds(&self) -> Result<Vec<Hold>> {
        let store = self.store.clone();
        blocking(move || Ok(store.holds()?)).await
    }
}
