//! Retention and legal hold (docs/GOVERNANCE.md, "Retention and purge"): the effective lifetime
//! of each room (`policy.rs`), the purge job (`purge.rs`) and legal holds (`hold.rs`). Time comes
//! from an injected [`Clock`], so tests move it forward instead of waiting.

#[cfg(test)]
mod backfilled_tests;
mod copies;
#[cfg(test)]
mod copies_tests;
#[cfg(test)]
mod files_tests;
mod history;
mod hold;
#[cfg(test)]
mod holds_tests;
#[cfg(test)]
mod lifetimes_tests;
mod media;
mod policy;
mod purge;
#[cfg(test)]
mod search_tests;
#[cfg(test)]
mod tests;

use std::sync::Arc;

use handover_policy::{Policy, RetentionBounds};
use ruma::OwnedServerName;

pub use self::history::{ACTION_PURGE_HISTORY, ACTION_ROOM_DELETE, HistoryPurge};
pub use self::hold::HoldTarget;
pub use self::policy::parse_room_retention;
pub use self::purge::{ACTION_PURGE, PurgeReport};
use super::audit::AuditService;
use super::media::MediaService;
use super::rooms::RoomService;
use crate::store::retention::RetentionStore;

/// The actor of the server's own purge runs (`server::serve`'s timer).
pub const JOB_ACTOR: &str = "retention-job";

/// The time source of the retention service.
pub trait Clock: Send + Sync {
    /// Milliseconds since the Unix epoch.
    fn now_ms(&self) -> i64;
}

/// The real clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> i64 {
        crate::store::now_ms()
    }
}

/// The server's retention settings, already parsed (`[retention]`).
#[derive(Debug, Clone, Copy)]
pub struct RetentionSettings {
    pub bounds: RetentionBounds,
    pub redacted_grace_ms: u64,
    /// Undelivered to-device messages older than this are dropped (`None`: kept).
    pub to_device_lifetime_ms: Option<u64>,
    /// Outbox rows, cached remote media, report reasons.
    pub copies: crate::config::CopyLifetimes,
    pub batch_size: usize,
}

impl RetentionSettings {
    pub fn from_config(c: &crate::config::RetentionConfig) -> std::result::Result<Self, String> {
        Ok(Self {
            bounds: c.bounds()?,
            redacted_grace_ms: c.redacted_grace_ms()?,
            to_device_lifetime_ms: c.to_device_lifetime_ms()?,
            copies: c.copy_lifetimes_ms()?,
            batch_size: c.batch_size.max(1),
        })
    }
}

pub struct RetentionService {
    server_name: OwnedServerName,
    store: Arc<dyn RetentionStore>,
    policy: Arc<dyn Policy>,
    audit: Arc<AuditService>,
    media: Arc<MediaService>,
    rooms: Arc<RoomService>,
    clock: Arc<dyn Clock>,
    settings: RetentionSettings,
}

/// What the retention service is built with.
pub struct RetentionDeps {
    pub server_name: OwnedServerName,
    pub store: Arc<dyn RetentionStore>,
    pub policy: Arc<dyn Policy>,
    pub audit: Arc<AuditService>,
    pub media: Arc<MediaService>,
    pub rooms: Arc<RoomService>,
    pub clock: Arc<dyn Clock>,
    pub settings: RetentionSettings,
}

impl RetentionService {
    pub fn new(d: RetentionDeps) -> Self {
        Self {
            server_name: d.server_name,
            store: d.store,
            policy: d.policy,
            audit: d.audit,
            media: d.media,
            rooms: d.rooms,
            clock: d.clock,
            settings: d.settings,
        }
    }
}
