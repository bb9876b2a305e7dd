//! Subject-access request exports (UK GDPR Art. 15; docs/GOVERNANCE.md, "Subject-access
//! requests"): everything the server holds about one local account, in a ZIP of JSON files, the
//! files they uploaded and a readable `index.html`. Asked for by the operator
//! (`handover admin sar`) or a server admin (the console); refused and audited for anyone else;
//! every export is audited as `sar.export`.
//!
//! What the server cannot read stays unread: encrypted events are exported as the ciphertext the
//! server holds, with a note. Secrets (password hash, token hashes, keys) are never read.

mod archive;
mod summary;
#[cfg(test)]
mod tests;

use std::io::{Seek, Write};
use std::path::PathBuf;
use std::sync::Arc;

use handover_compliance::{AuditRecord, Outcome};
use ruma::UserId;

use super::admin::AdminService;
use super::audit::{AuditService, entry};
use super::blocking;
use super::media::MediaService;
use super::rooms::RoomService;
use super::users::Session;
use crate::error::{Error, Result};
use crate::store::admin::{AdminStore, AdminUserRow};
use crate::store::audit::AuditQuery;
use crate::store::rooms::MembershipRow;
use crate::store::sar::{SarEvent, SarMedia, SarSession, SarStore};
use crate::store::threepids::{Threepid, ThreepidStore};

pub const ACTION_EXPORT: &str = "sar.export";
/// Audit entries read per page while gathering.
const AUDIT_PAGE: usize = 1000;

/// Who asked for the export.
#[derive(Clone, Copy)]
pub enum Requester<'a> {
    /// `handover admin sar` on the server (audited as `admin-cli`).
    Cli,
    /// A signed-in user: must be a server admin.
    Admin(&'a Session),
}

impl Requester<'_> {
    fn actor(&self) -> &str {
        match self {
            Requester::Cli => super::audit::ADMIN_CLI,
            Requester::Admin(s) => s.user_id.as_str(),
        }
    }

    fn via(&self) -> &'static str {
        match self {
            Requester::Cli => "cli",
            Requester::Admin(_) => "console",
        }
    }
}

/// Everything gathered about one person, typed; `archive.rs` turns it into files.
pub struct SarData {
    pub generated_ts: i64,
    pub server_name: String,
    pub requested_by: String,
    pub account: AdminUserRow,
    pub threepids: Vec<Threepid>,
    pub sessions: Vec<SarSession>,
    pub memberships: Vec<MembershipRow>,
    pub sent: Vec<SarEvent>,
    pub mentions: Vec<SarEvent>,
    /// Each upload and where its file is on disk.
    pub media: Vec<(SarMedia, Option<PathBuf>)>,
    pub audit: Vec<AuditRecord>,
}

/// What an export held (also the `sar.export` audit entry's details).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct SarCounts {
    pub rooms: usize,
    pub sessions: usize,
    pub events_sent: usize,
    pub events_mentioning: usize,
    pub encrypted_events: usize,
    pub media: usize,
    pub media_files: usize,
    pub audit_entries: usize,
}

pub struct SarDeps {
    pub admin: Arc<AdminService>,
    pub admin_store: Arc<dyn AdminStore>,
    pub threepids: Arc<dyn ThreepidStore>,
    pub store: Arc<dyn SarStore>,
    pub rooms: Arc<RoomService>,
    pub media: Arc<MediaService>,
    pub audit: Arc<AuditService>,
}

pub struct SarService {
    d: SarDeps,
}

impl SarService {
    pub fn new(d: SarDeps) -> Self {
        Self { d }
    }

    /// Writes the export of `user_id` as a ZIP into `out` and returns it with the counts. The
    /// export is audited once written; if that audit write fails, the export fails too.
    pub async fn export<W: Write + Seek + Send + 'static>(
        &self,
        by: Requester<'_>,
        user_id: &UserId,
        out: W,
    ) -> Result<(SarCounts, W)> {
        if let Requester::Admin(s) = by {
            (self.d.admin)
                .authorize(s, ACTION_EXPORT, Some(user_id.as_str()))
                .await?;
        }
        if user_id.server_name().as_str() != self.d.rooms.server_name().as_str() {
            return Err(Error::invalid_param(
                "A subject-access request covers accounts of this server only",
            ));
        }
        let data = self.gather(by, user_id).await?;
        let counts = archive::counts(&data);
        let out = blocking(move || archive::write(&data, out)).await?;
        let e = entry(by.actor(), ACTION_EXPORT, Outcome::Success)
            .target(user_id.as_str())
            .detail("via", by.via())
            .detail("counts", serde_json::to_value(&counts).unwrap_or_default());
        self.d.audit.record(e).await?;
        Ok((counts, out))
    }

    async fn gather(&self, by: Requester<'_>, user_id: &UserId) -> Result<SarData> {
        let (admin_store, threepids, store) = (
            self.d.admin_store.clone(),
            self.d.threepids.clone(),
            self.d.store.clone(),
        );
        let uid = user_id.to_owned();
        let (account, threepids, sessions, media) = blocking(move || {
            let Some(account) = admin_store.admin_user(uid.as_str())? else {
                return Err(Error::not_found("User not found"));
            };
            let threepids = threepids.threepids_of(uid.as_str())?;
            let sessions = store.sar_sessions(uid.as_str())?;
            let media = store.sar_media(uid.as_str())?;
            Ok((account, threepids, sessions, media))
        })
        .await?;
        let memberships = self.d.rooms.memberships(user_id).await?;
        let (store, uid) = (self.d.store.clone(), user_id.to_owned());
        let rooms: Vec<String> = memberships.iter().map(|m| m.room_id.to_string()).collect();
        let (sent, mentions) = blocking(move || {
            let (mut sent, mut mentions) = (Vec::new(), Vec::new());
            for room in &rooms {
                sent.extend(store.sar_events_sent(uid.as_str(), room)?);
                mentions.extend(store.sar_events_mentioning(uid.as_str(), room)?);
            }
            Ok((sent, mentions))
        })
        .await?;
        let media = media
            .into_iter()
            .map(|m| {
                let path = match m.quarantined {
                    true => None,
                    false => self.d.media.local_file_path(&m.media_id),
                };
                (m, path)
            })
            .collect();
        let audit = self.audit_about(user_id).await?;
        Ok(SarData {
            generated_ts: crate::store::now_ms(),
            server_name: self.d.rooms.server_name().to_string(),
            requested_by: by.actor().to_owned(),
            account,
            threepids,
            sessions,
            memberships,
            sent,
            mentions,
            media,
            audit,
        })
    }

    /// Every audit entry naming the person as actor or target, oldest first.
    async fn audit_about(&self, user_id: &UserId) -> Result<Vec<AuditRecord>> {
        let mut all = Vec::new();
        let mut before = None;
        loop {
            let q = AuditQuery {
                subject: Some(user_id.to_string()),
                before_seq: before,
                limit: AUDIT_PAGE,
                ..AuditQuery::default()
            };
            let page = self.d.audit.search(q).await?;
            let full = page.len() == AUDIT_PAGE;
            before = page.last().map(|r| r.seq);
            all.extend(page);
            if !full {
                break;
            }
        }
        all.reverse();
        Ok(all)
    }
}
