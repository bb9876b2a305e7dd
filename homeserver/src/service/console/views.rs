//! The data of each console page, gathered from the services that own it; each view audited.

use handover_compliance::AuditRecord;
use handover_compliance::time::parse_time;
use ruma::UserId;

use super::blocking;
use super::{ConsoleService, ConsoleSession, action};
use crate::error::{Error, Result};
use crate::service::audit::{Broken, ChainStatus, entry};
use crate::service::retention::ACTION_PURGE;
use crate::store::admin::{AdminUserRow, ReportListQuery, UserListQuery};
use crate::store::audit::AuditQuery;
use crate::store::console::QuarantinedMedia;
use crate::store::retention::Hold;
use crate::store::users::DeviceRecord;

/// Rows shown per list.
const LIST: usize = 100;

pub struct RoomOverride {
    pub room_id: String,
    /// The room's `m.room.retention` content as sent.
    pub requested: String,
    /// What the purge applies (after the server's bounds): ms, `None` = forever / no minimum.
    pub effective_max: Option<u64>,
    pub effective_min: Option<u64>,
}

pub struct RetentionView {
    /// `[retention]` keys and their values in force.
    pub settings: Vec<(&'static str, String)>,
    pub overrides: Vec<RoomOverride>,
    pub holds: Vec<Hold>,
    /// Recent `retention.purge` audit entries, newest first.
    pub purges: Vec<AuditRecord>,
    pub next_run_ts: Option<i64>,
}

pub struct Organisation {
    pub ods_code: String,
    pub name: Option<String>,
    pub servers: Vec<String>,
}

pub struct FederationView {
    /// `None`: no list configured (no federation).
    pub list: Option<(u64, bool, Vec<Organisation>)>,
    pub refusals: Vec<AuditRecord>,
    pub reloads: Vec<AuditRecord>,
}

/// The audit search form, as typed (times as RFC 3339, a date or Unix ms).
#[derive(Debug, Clone, Default)]
pub struct AuditSearch {
    pub user: Option<String>,
    pub rule: Option<String>,
    pub since: Option<String>,
    pub until: Option<String>,
}

pub struct AuditView {
    pub results: Vec<AuditRecord>,
    pub chain: std::result::Result<ChainStatus, Broken>,
}

pub struct UserView {
    pub users: Vec<AdminUserRow>,
    /// The selected user's devices (sessions), when one is selected.
    pub sessions: Option<(ruma::OwnedUserId, Vec<DeviceRecord>)>,
}

fn filled(s: &Option<String>) -> Option<String> {
    s.as_ref()
        .map(|v| v.trim().to_owned())
        .filter(|v| !v.is_empty())
}

impl AuditSearch {
    pub fn query(&self, limit: usize) -> Result<AuditQuery> {
        let time = |field: &str, v: &Option<String>| {
            filled(v)
                .map(|t| parse_time(&t).map_err(|e| Error::invalid_param(format!("{field}: {e}"))))
                .transpose()
        };
        Ok(AuditQuery {
            subject: filled(&self.user),
            rule: filled(&self.rule),
            since: time("since", &self.since)?,
            until: time("until", &self.until)?,
            limit,
            ..AuditQuery::default()
        })
    }
}

impl ConsoleService {
    pub async fn retention_view(&self, s: &ConsoleSession) -> Result<RetentionView> {
        self.viewed(s, "retention").await?;
        let r = &self.d.config.retention;
        let opt = |v: &Option<String>| v.clone().unwrap_or_else(|| "unset".into());
        let settings = vec![
            ("default_lifetime", opt(&r.default_lifetime)),
            ("min_lifetime", opt(&r.min_lifetime)),
            ("max_lifetime", opt(&r.max_lifetime)),
            ("purge_interval", r.purge_interval.clone()),
            ("redacted_grace", r.redacted_grace.clone()),
            ("to_device_lifetime", opt(&r.to_device_lifetime)),
            ("outbox_lifetime", opt(&r.outbox_lifetime)),
            ("remote_media_lifetime", opt(&r.remote_media_lifetime)),
            ("report_reason_lifetime", opt(&r.report_reason_lifetime)),
            ("remote_invite_lifetime", opt(&r.remote_invite_lifetime)),
            (
                "unreferenced_media_lifetime",
                opt(&r.unreferenced_media_lifetime),
            ),
        ];
        let store = self.d.store.clone();
        let rooms = blocking(move || Ok(store.retention_overrides()?)).await?;
        let mut overrides = Vec::new();
        for (room_id, requested) in rooms {
            let eff = self.d.retention.effective(&room_id).await?;
            overrides.push(RoomOverride {
                room_id,
                requested,
                effective_max: eff.max_lifetime,
                effective_min: eff.min_lifetime,
            });
        }
        let purges = (self.d.audit)
            .search(AuditQuery {
                action: Some(ACTION_PURGE.into()),
                limit: 20,
                ..AuditQuery::default()
            })
            .await?;
        let interval = r.purge_interval_ms().unwrap_or(0) as i64;
        let last_job = (purges.iter())
            .find(|p| p.actor == crate::service::retention::JOB_ACTOR)
            .map(|p| p.ts);
        let next_run_ts = (interval > 0).then(|| last_job.unwrap_or(self.started_ts) + interval);
        Ok(RetentionView {
            settings,
            overrides,
            holds: self.d.retention.holds().await?,
            purges,
            next_run_ts,
        })
    }

    pub async fn federation_view(&self, s: &ConsoleSession) -> Result<FederationView> {
        self.viewed(s, "federation").await?;
        let list = self.d.federation_list.as_ref().map(|live| {
            let l = live.current();
            let orgs = (l.organisations.iter())
                .map(|o| Organisation {
                    ods_code: o.ods_code.clone(),
                    name: o.name.clone(),
                    servers: o.servers.iter().map(|p| p.as_str().to_owned()).collect(),
                })
                .collect();
            (l.serial, l.signed, orgs)
        });
        let search = |a: &str| AuditQuery {
            action: Some(a.into()),
            limit: 20,
            ..AuditQuery::default()
        };
        Ok(FederationView {
            list,
            refusals: self.d.audit.search(search("federation.denial")).await?,
            reloads: self
                .d
                .audit
                .search(search("federation.list_reload"))
                .await?,
        })
    }

    pub async fn audit_view(&self, s: &ConsoleSession, q: &AuditSearch) -> Result<AuditView> {
        let query = q.query(LIST)?;
        self.audit_searched(s, action::AUDIT_SEARCH, q).await?;
        Ok(AuditView {
            results: self.d.audit.search(query).await?,
            chain: self.d.audit.verify().await?,
        })
    }

    /// Every entry matching the search, oldest first, as JSON lines (the same format as
    /// `handover audit export`, re-verifiable with `handover_compliance::verify` from seq 1).
    pub async fn audit_export(&self, s: &ConsoleSession, q: &AuditSearch) -> Result<Vec<u8>> {
        let mut query = q.query(5000)?;
        self.audit_searched(s, action::AUDIT_EXPORT, q).await?;
        let mut all = Vec::new();
        loop {
            let page = self.d.audit.search(query.clone()).await?;
            let done = page.len() < query.limit;
            query.before_seq = page.last().map(|r| r.seq);
            all.extend(page);
            if done {
                break;
            }
        }
        all.reverse();
        let mut out = Vec::new();
        handover_compliance::write_json_lines(&mut out, &all).map_err(Error::internal)?;
        Ok(out)
    }

    async fn audit_searched(&self, s: &ConsoleSession, what: &str, q: &AuditSearch) -> Result<()> {
        let mut e = entry(
            s.session.user_id.as_str(),
            what,
            handover_compliance::Outcome::Success,
        );
        for (k, v) in [
            ("user", &q.user),
            ("rule", &q.rule),
            ("since", &q.since),
            ("until", &q.until),
        ] {
            if let Some(v) = filled(v) {
                e = e.detail(k, v);
            }
        }
        self.d.audit.record(e).await
    }

    /// Accounts (the admin API's list, audited there) and, for `selected`, its sessions.
    pub async fn users_view(
        &self,
        s: &ConsoleSession,
        search: Option<String>,
        selected: Option<&UserId>,
    ) -> Result<UserView> {
        let q = UserListQuery {
            limit: LIST as u64,
            name: search.filter(|n| !n.trim().is_empty()),
            include_deactivated: true,
            include_locked: true,
            ..UserListQuery::default()
        };
        let (users, _) = self.d.admin.list_users(&s.session, q).await?;
        let sessions = match selected {
            Some(u) => Some((u.to_owned(), self.d.admin.devices(&s.session, u).await?)),
            None => None,
        };
        Ok(UserView { users, sessions })
    }

    pub async fn reports_view(
        &self,
        s: &ConsoleSession,
    ) -> Result<Vec<crate::service::admin::LabelledReport>> {
        let q = ReportListQuery {
            limit: LIST as u64,
            backwards: true,
            ..ReportListQuery::default()
        };
        Ok(self.d.admin.event_reports(&s.session, q).await?.0)
    }

    pub async fn quarantine_view(&self, s: &ConsoleSession) -> Result<Vec<QuarantinedMedia>> {
        self.viewed(s, "quarantine").await?;
        let store = self.d.store.clone();
        blocking(move || Ok(store.quarantined_media(LIST)?)).await
    }
}
