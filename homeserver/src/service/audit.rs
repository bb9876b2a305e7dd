//! The IG audit trail: services record security-relevant actions here, one line per call site.
//!
//! A failed audit write fails the action it records: `record` returns the error and callers
//! pass it on (`?`), so nothing the trail should show happens unrecorded without the client
//! seeing a failure. Policy denials go through `enforce`, which audits the denial and returns
//! the client's `M_FORBIDDEN` in one step (a failed write still denies, as a 500).
//!
//! Every `[audit] checkpoint_every` entries (and on the `checkpoint_interval` timer) the chain's
//! head is signed with the audit key (`audit_checkpoint`), so a rewritten chain is detected.

use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;

use handover_compliance::{
    AuditRecord, Checkpoint, CheckpointChecker, NewEntry, Outcome, Verifier,
};
use handover_policy::{Decision, Denial};

use super::audit_checkpoint::{self as cp, AuditPublicKey};
use super::blocking;
use super::signing_key::ServerKeys;
use crate::config::AuditConfig;
use crate::error::{Error, Result};
use crate::store::audit::{AuditQuery, AuditStore};
use crate::store::now_ms;

/// Entries read per page when verifying or exporting, bounding memory on long trails.
const PAGE: usize = 5000;

/// Stable action names (listed in docs/GOVERNANCE.md).
pub mod action {
    pub const LOGIN: &str = "login";
    pub const LOGOUT: &str = "logout";
    pub const LOGOUT_ALL: &str = "logout_all";
    /// Every session of an account ended by someone (remote wipe): the account page, the
    /// admin CLI; the actor is who asked, the target the account.
    pub const END_ALL_SESSIONS: &str = "sessions.end_all";
    pub const REGISTER: &str = "register";
    pub const ADMIN_CREATE_USER: &str = "admin.create_user";
    pub const ACCOUNT_KIND: &str = "account.kind";
    pub const DEVICE_DELETE: &str = "device.delete";
    pub const PASSWORD_CHANGE: &str = "password.change";
    pub const DEACTIVATE: &str = "account.deactivate";
    pub const POLICY_DENIAL: &str = "policy.denial";
    pub const ROOM_CREATE: &str = "room.create";
    pub const ROOM_INVITE: &str = "room.invite";
    pub const ROOM_UPGRADE: &str = "room.upgrade";
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
    /// Signed checkpoints checked (table and external file).
    pub checkpoints: usize,
    pub last_checkpoint_seq: i64,
    /// Entries after the last checkpoint, vouched for by the keyless chain only.
    pub unsigned_tail: i64,
}

/// The first thing verification found wrong: a chain entry, or a checkpoint (`checkpoint`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Broken {
    pub seq: i64,
    pub reason: String,
    pub checkpoint: bool,
}

impl std::fmt::Display for Broken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.checkpoint {
            write!(
                f,
                "audit checkpoint at seq {} fails: {}",
                self.seq, self.reason
            )
        } else {
            write!(f, "audit chain broken at seq {}: {}", self.seq, self.reason)
        }
    }
}

/// Makes checkpoints: the audit key, how often, the external copy.
struct Signer {
    keys: ServerKeys,
    every: i64,
    /// The last checkpointed seq; held while one is made so two never race.
    last: tokio::sync::Mutex<i64>,
}

pub struct AuditService {
    store: Arc<dyn AuditStore>,
    signer: Option<Signer>,
    /// Checks checkpoint signatures; without it checkpoints cannot be trusted and verify fails.
    verify_key: Option<AuditPublicKey>,
    checkpoint_file: Option<PathBuf>,
    /// The syslog socket each checkpoint is also sent to (`[audit] checkpoint_syslog`).
    checkpoint_syslog: Option<PathBuf>,
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
    /// A trail without checkpoints (tests).
    pub fn new(store: Arc<dyn AuditStore>) -> Self {
        Self {
            store,
            signer: None,
            verify_key: None,
            checkpoint_file: None,
            checkpoint_syslog: None,
        }
    }

    /// The server's trail: checkpoints signed with `keys` per `cfg`.
    pub fn signing(
        store: Arc<dyn AuditStore>,
        keys: ServerKeys,
        cfg: &AuditConfig,
    ) -> Result<Self> {
        let last = store.checkpoints()?.last().map(|c| c.seq).unwrap_or(0);
        Ok(Self {
            verify_key: Some(AuditPublicKey::of(&keys)),
            signer: Some(Signer {
                keys,
                every: cfg.checkpoint_every.min(i64::MAX as u64) as i64,
                last: tokio::sync::Mutex::new(last),
            }),
            checkpoint_file: cfg.checkpoint_file.clone(),
            checkpoint_syslog: cfg.checkpoint_syslog.clone(),
            store,
        })
    }

    /// For `handover audit verify`: checks checkpoints with `key` (and reads `cfg`'s file).
    pub fn verifying(
        store: Arc<dyn AuditStore>,
        key: Option<AuditPublicKey>,
        cfg: &AuditConfig,
    ) -> Self {
        Self {
            store,
            signer: None,
            verify_key: key,
            checkpoint_file: cfg.checkpoint_file.clone(),
            checkpoint_syslog: None,
        }
    }

    /// Appends an entry once it is durable (and a checkpoint when one is due). A failure is
    /// logged loudly and returned: the caller fails the action it was recording.
    pub async fn record(&self, e: NewEntry) -> Result<()> {
        let store = self.store.clone();
        let action = e.action.clone();
        let rec = blocking(move || Ok(store.append(e)?))
            .await
            .inspect_err(|err| {
                tracing::error!(target: "handover::audit", action, error = %err, "AUDIT WRITE FAILED");
            })?;
        if let Some(s) = &self.signer
            && s.every > 0
            && rec.seq - *s.last.lock().await >= s.every
        {
            self.checkpoint().await?;
        }
        Ok(())
    }

    /// Signs the current head if it moved since the last checkpoint: the external file first
    /// (fsync'd), then the table. Returns the new checkpoint, if one was made.
    pub async fn checkpoint(&self) -> Result<Option<Checkpoint>> {
        let Some(s) = &self.signer else {
            return Ok(None);
        };
        let mut last = s.last.lock().await;
        let store = self.store.clone();
        let Some((seq, hash)) = blocking(move || Ok(store.head()?)).await? else {
            return Ok(None);
        };
        if seq <= *last {
            return Ok(None);
        }
        let c = cp::sign(&s.keys, seq, &hash, now_ms()).map_err(Error::internal)?;
        let fail = |err: &Error| {
            tracing::error!(target: "handover::audit", seq, error = %err, "AUDIT CHECKPOINT WRITE FAILED");
        };
        if let Some(path) = self.checkpoint_file.clone() {
            let line = c.clone();
            blocking(move || {
                cp::append_line(&path, &line)
                    .map_err(|e| Error::internal(format!("{}: {e}", path.display())))
            })
            .await
            .inspect_err(fail)?;
        }
        #[cfg(unix)]
        if let Some(socket) = self.checkpoint_syslog.clone() {
            let line = c.clone();
            blocking(move || {
                super::audit_syslog::send(&socket, &line)
                    .map_err(|e| Error::internal(format!("syslog {}: {e}", socket.display())))
            })
            .await
            .inspect_err(fail)?;
        }
        let (store, row) = (self.store.clone(), c.clone());
        blocking(move || Ok(store.append_checkpoint(&row)?))
            .await
            .inspect_err(fail)?;
        *last = seq;
        Ok(Some(c))
    }

    /// Signs a checkpoint every `every` while the server runs (when entries were added).
    pub fn spawn_checkpoint_job(self: &Arc<Self>, every: std::time::Duration) {
        if self.signer.is_none() || every.is_zero() {
            return;
        }
        let audit = self.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                // Logged inside; the next tick retries.
                let _ = audit.checkpoint().await;
            }
        });
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
        self.record_denial(&denial, hook, actor, target).await?;
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
    ) -> Result<()> {
        crate::metrics::policy_denial(&denial.rule);
        let mut e = entry(actor, action::POLICY_DENIAL, Outcome::Denied)
            .rule(&denial.rule)
            .detail("hook", hook);
        if let Some(t) = target {
            e = e.target(t);
        }
        self.record(e).await
    }

    /// Verifies the whole stored chain and every checkpoint (table and external file): each
    /// signature, then that the chain still has the signed hash at the signed seq. Returns the
    /// status, or the first entry or checkpoint found broken.
    pub async fn verify(&self) -> Result<std::result::Result<ChainStatus, Broken>> {
        let store = self.store.clone();
        let (key, file) = (self.verify_key.clone(), self.checkpoint_file.clone());
        blocking(move || {
            let mut checkpoints = store.checkpoints()?;
            if let Some(path) = &file {
                checkpoints.extend(cp::read_file(path).map_err(Error::internal)?);
            }
            let broken = |seq, reason| Broken {
                seq,
                reason,
                checkpoint: true,
            };
            for c in &checkpoints {
                let Some(key) = &key else {
                    let why = "no audit key to check its signature (audit_signing.key missing; \
                               pass --public-key)";
                    return Ok(Err(broken(c.seq, why.into())));
                };
                if let Err(why) = cp::verify_signature(c, key) {
                    return Ok(Err(broken(c.seq, why)));
                }
            }
            let mut v = Verifier::default();
            let mut checker = CheckpointChecker::new(checkpoints);
            let mut after = 0;
            loop {
                let page = store.read_after(after, PAGE)?;
                for r in &page {
                    if let Err(b) = v.push(r) {
                        return Ok(Err(Broken {
                            seq: b.seq,
                            reason: b.reason,
                            checkpoint: false,
                        }));
                    }
                    if let Err(b) = checker.observe(r) {
                        return Ok(Err(broken(b.seq, b.reason)));
                    }
                }
                match page.last() {
                    Some(last) if page.len() == PAGE => after = last.seq,
                    _ => break,
                }
            }
            let summary = match checker.finish() {
                Ok(s) => s,
                Err(b) => return Ok(Err(broken(b.seq, b.reason))),
            };
            Ok(Ok(ChainStatus {
                entries: v.count(),
                head: v.head().to_owned(),
                checkpoints: summary.checkpoints,
                last_checkpoint_seq: summary.last_checkpoint_seq,
                unsigned_tail: summary.unsigned_tail,
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

    /// Entries matching `q`, newest first (the console's search, subject-access requests).
    pub async fn search(&self, q: AuditQuery) -> Result<Vec<AuditRecord>> {
        let store = self.store.clone();
        blocking(move || Ok(store.search(&q)?)).await
    }

    /// Every entry in seq order (tests and small trails).
    pub async fn all(&self) -> Result<Vec<AuditRecord>> {
        self.page_between(i64::MIN, i64::MAX, 0).await
    }
}
