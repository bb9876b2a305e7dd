//! The IG audit trail: services record security-relevant actions here, one line per call site.
//!
//! Recording never fails the caller's request (the action already happened), but a failure is
//! logged at error level so it cannot go unnoticed. Policy denials go through `enforce`, which
//! audits the denial and returns the client's `M_FORBIDDEN` in one step.

use std::net::IpAddr;
use std::sync::Arc;

use handover_compliance::{AuditRecord, BrokenAt, NewEntry, Outcome, Verifier};
use handover_policy::{Decision, Denial};

use super::blocking;
use crate::error::{Error, Result};
use crate::store::audit::AuditStore;
use crate::store::now_ms;

/// Entries read per page when verifying or exporting, bounding memory on long trails.
const PAGE: usize = 5000;

/// Stable action names (listed in docs/GOVERNANCE.md).
pub mod action {
    pub const LOGIN: &str = "login";
    pub const LOGOUT: &str = "logout";
    pub const LOGOUT_ALL: &str = "logout_all";
    pub const REGISTER: &str = "register";
    pub const ADMIN_CREATE_USER: &str = "admin.create_user";
    pub const DEVICE_DELETE: &str = "device.delete";
    pub const PASSWORD_CHANGE: &str = "password.change";
    pub const DEACTIVATE: &str = "account.deactivate";
    pub const POLICY_DENIAL: &str = "policy.denial";
    pub const ROOM_CREATE: &str = "room.create";
    pub const ROOM_INVITE: &str = "room.invite";
    pub const MEDIA_QUARANTINE: &str = "media.quarantine";
}

/// The actor of operator commands run on the server itself.
pub const ADMIN_CLI: &str = "admin-cli";

/// The outcome of a full verification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainStatus {
    pub entries: u64,
    /// Hash of the last entry; recorded elsewhere it lets a later check detect truncation.
    pub head: String,
}

pub struct AuditService {
    store: Arc<dyn AuditStore>,
}

/// A new entry stamped now: `entry(actor, action, outcome).target(..).detail(..)`.
pub fn entry(actor: &str, action: &str, outcome: Outcome) -> NewEntry {
    NewEntry::new(now_ms(), actor, action, outcome)
}

/// Adds the client address, when known, to an entry.
pub fn with_ip(e: NewEntry, ip: Option<IpAddr>) -> NewEntry {
    match ip {
        Some(ip) => e.detail("ip", ip.to_string()),
        None => e,
    }
}

impl AuditService {
    pub fn new(store: Arc<dyn AuditStore>) -> Self {
        Self { store }
    }

    /// Appends an entry once it is durable. Never fails the caller; a failure is logged loudly.
    pub async fn record(&self, e: NewEntry) {
        let store = self.store.clone();
        let action = e.action.clone();
        if let Err(err) = blocking(move || Ok(store.append(e)?)).await {
            tracing::error!(target: "handover::audit", action, error = %err, "AUDIT WRITE FAILED");
        }
    }

    /// Obeys a policy decision taken at `hook`: a denial is audited (rule, hook, target) and
    /// becomes `M_FORBIDDEN` naming the rule.
    pub async fn enforce(
        &self,
        decision: Decision,
        hook: &str,
        actor: &str,
        target: Option<&str>,
    ) -> Result<()> {
        let Err(denial) = decision else {
            return Ok(());
        };
        self.record_denial(&denial, hook, actor, target).await;
        Err(Error::policy(&denial))
    }

    /// Audits a denial whose client error is not the usual `M_FORBIDDEN` (e.g. 413, or 404 so
    /// as not to reveal that media exists).
    pub async fn record_denial(
        &self,
        denial: &Denial,
        hook: &str,
        actor: &str,
        target: Option<&str>,
    ) {
        let mut e = entry(actor, action::POLICY_DENIAL, Outcome::Denied)
            .rule(&denial.rule)
            .detail("hook", hook);
        if let Some(t) = target {
            e = e.target(t);
        }
        self.record(e).await;
    }

    /// Verifies the whole stored chain: its status, or the first broken entry.
    pub async fn verify(&self) -> Result<std::result::Result<ChainStatus, BrokenAt>> {
        let store = self.store.clone();
        blocking(move || {
            let mut v = Verifier::default();
            let mut after = 0;
            loop {
                let page = store.read_after(after, PAGE)?;
                for r in &page {
                    if let Err(broken) = v.push(r) {
                        return Ok(Err(broken));
                    }
                }
                match page.last() {
                    Some(last) if page.len() == PAGE => after = last.seq,
                    _ => break,
                }
            }
            Ok(Ok(ChainStatus {
                entries: v.count(),
                head: v.head().to_owned(),
            }))
        })
        .await
    }

    /// Entries with `since <= ts < until` (Unix ms) after `after_seq`, one page in seq order.
    pub async fn page_between(
        &self,
        since: i64,
        until: i64,
        after_seq: i64,
    ) -> Result<Vec<AuditRecord>> {
        let store = self.store.clone();
        blocking(move || Ok(store.read_between(since, until, after_seq, PAGE)?)).await
    }

    /// Every entry in seq order (tests and small trails).
    pub async fn all(&self) -> Result<Vec<AuditRecord>> {
        self.page_between(i64::MIN, i64::MAX, 0).await
    }
}
