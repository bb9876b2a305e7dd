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

use handover_compliance::Outcome;
use ruma::UserId;

use self::archive::SarZip;
use super::admin::AdminService;
use super::audit::{AuditService, entry};
use super::blocking;
use super::media::MediaService;
use super::progress::{JobProgress, NoProgress};
use super::rooms::RoomService;
use super::users::Session;
use crate::error::{Error, Result};
use crate::store::admin::{AdminStore, AdminUserRow};
use crate::store::audit::AuditQuery;
use crate::store::rooms::MembershipRow;
use crate::store::sar::{SarCursor, SarEvent, SarMedia, SarSession, SarStore};
use crate::store::threepids::{Threepid, ThreepidStore};

pub const ACTION_EXPORT: &str = "sar.export";
/// Audit entries read per page while writing.
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

/// The bounded part of an export, gathered first: the account, sessions, memberships and the
/// list of uploads. Events and audit entries are read a page at a time while writing.
pub struct SarHead {
    pub generated_ts: i64,
    pub server_name: String,
    pub requested_by: String,
    pub account: AdminUserRow,
    pub threepids: Vec<Threepid>,
    pub sessions: Vec<SarSession>,
    pub memberships: Vec<MembershipRow>,
    /// Each upload and where its file is on disk.
    pub media: Vec<(SarMedia, Option<PathBuf>)>,
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
        self.export_with_progress(by, user_id, out, &mut NoProgress)
            .await
    }

    /// As `export`, telling `progress` how far it got (one unit per room and pass, plus the
    /// files and the audit trail).
    pub async fn export_with_progress<W: Write + Seek + Send + 'static>(
        &self,
        by: Requester<'_>,
        user_id: &UserId,
        out: W,
        progress: &mut dyn JobProgress,
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
        let head = Arc::new(self.head(by, user_id).await?);
        let rooms: Vec<String> = (head.memberships.iter())
            .map(|m| m.room_id.to_string())
            .collect();
        let mut steps = Steps {
            done: 0,
            total: 4 * rooms.len() as u64 + 3,
            progress,
        };
        let mut counts = SarCounts {
            rooms: head.memberships.len(),
            sessions: head.sessions.len(),
            media: head.media.len(),
            ..SarCounts::default()
        };
        let h = head.clone();
        let mut z = blocking(move || {
            let mut z = SarZip::new(out, h.generated_ts);
            archive::write_head(&mut z, &h)?;
            Ok(z)
        })
        .await?;

        // The JSON files, counting as they go.
        let mut sent = Tally::default();
        z = self
            .events(
                z,
                user_id,
                &rooms,
                Which::Sent,
                Pass::Json,
                &mut sent,
                &mut steps,
            )
            .await?;
        let mut mentions = Tally::default();
        z = self
            .events(
                z,
                user_id,
                &rooms,
                Which::Mentioning,
                Pass::Json,
                &mut mentions,
                &mut steps,
            )
            .await?;
        counts.events_sent = sent.events;
        counts.events_mentioning = mentions.events;
        counts.encrypted_events = sent.encrypted + mentions.encrypted;
        let h = head.clone();
        let (z2, included) = blocking(move || {
            let included = archive::write_media(&mut z, &h)?;
            Ok((z, included))
        })
        .await?;
        z = z2;
        counts.media_files = included.iter().filter(|i| **i).count();
        steps.step();
        (z, counts.audit_entries) = self.audit_pass(z, user_id, Pass::Json).await?;
        steps.step();

        // export.json, then index.html: a second pass over the same pages.
        let (h, c) = (head.clone(), counts.clone());
        z = blocking(move || {
            z.put_json("export.json", &archive::about(&h, &c))?;
            z.start("index.html")?;
            z.write(summary::head(&h, &c).as_bytes())?;
            z.write(summary::events_table_start("Sent by you").as_bytes())?;
            Ok(z)
        })
        .await?;
        z = self
            .events(
                z,
                user_id,
                &rooms,
                Which::Sent,
                Pass::Html,
                &mut Tally::default(),
                &mut steps,
            )
            .await?;
        z = blocking(move || {
            z.write(summary::TABLE_END.as_bytes())?;
            z.write(summary::events_table_start("Mentioning you").as_bytes())?;
            Ok(z)
        })
        .await?;
        z = self
            .events(
                z,
                user_id,
                &rooms,
                Which::Mentioning,
                Pass::Html,
                &mut Tally::default(),
                &mut steps,
            )
            .await?;
        let h = head.clone();
        z = blocking(move || {
            z.write(summary::TABLE_END.as_bytes())?;
            z.write(summary::files_and_audit_start(&h, &included).as_bytes())?;
            Ok(z)
        })
        .await?;
        (z, _) = self.audit_pass(z, user_id, Pass::Html).await?;
        let out = blocking(move || {
            z.write(summary::tail().as_bytes())?;
            z.finish()
        })
        .await?;
        steps.step();
        let e = entry(by.actor(), ACTION_EXPORT, Outcome::Success)
            .target(user_id.as_str())
            .detail("via", by.via())
            .detail("counts", serde_json::to_value(&counts).unwrap_or_default());
        self.d.audit.record(e).await?;
        Ok((counts, out))
    }

    async fn head(&self, by: Requester<'_>, user_id: &UserId) -> Result<SarHead> {
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
        Ok(SarHead {
            generated_ts: crate::store::now_ms(),
            server_name: self.d.rooms.server_name().to_string(),
            requested_by: by.actor().to_owned(),
            account,
            threepids,
            sessions,
            memberships,
            media,
        })
    }

    /// One pass over the person's events of one kind, room by room, a page at a time; each
    /// page is read and written (a JSON array's items, or index.html's rows) on a blocking
    /// thread.
    #[allow(clippy::too_many_arguments)]
    async fn events<W: Write + Seek + Send + 'static>(
        &self,
        mut z: SarZip<W>,
        user_id: &UserId,
        rooms: &[String],
        which: Which,
        pass: Pass,
        tally: &mut Tally,
        steps: &mut Steps<'_>,
    ) -> Result<SarZip<W>> {
        let json = pass == Pass::Json;
        if json {
            let name = match which {
                Which::Sent => "events_sent.json",
                Which::Mentioning => "events_mentioning.json",
            };
            z = blocking(move || {
                z.begin_array(name)?;
                Ok(z)
            })
            .await?;
        }
        for room in rooms {
            let mut after = SarCursor::Start;
            loop {
                let (store, uid, rid) = (self.d.store.clone(), user_id.to_string(), room.clone());
                let mut t = std::mem::take(tally);
                let (zz, tt, next) = blocking(move || {
                    let page = match which {
                        Which::Sent => store.sar_events_sent(&uid, &rid, &after, EVENT_PAGE)?,
                        Which::Mentioning => {
                            store.sar_events_mentioning(&uid, &rid, &after, EVENT_PAGE)?
                        }
                    };
                    match pass {
                        Pass::Json => json_page(&mut z, &page, &mut t)?,
                        Pass::Html => html_page(&mut z, &page)?,
                    }
                    let next = (page.len() == EVENT_PAGE)
                        .then(|| page.last().map(SarCursor::after))
                        .flatten();
                    Ok((z, t, next))
                })
                .await?;
                (z, *tally) = (zz, tt);
                match next {
                    Some(c) => after = c,
                    None => break,
                }
            }
            steps.step();
        }
        if json {
            z = blocking(move || {
                z.end_array()?;
                Ok(z)
            })
            .await?;
        }
        Ok(z)
    }

    /// Every audit entry naming the person as actor or target, oldest first, a page at a
    /// time: into audit.json, or as index.html's rows. Returns how many.
    async fn audit_pass<W: Write + Seek + Send + 'static>(
        &self,
        mut z: SarZip<W>,
        user_id: &UserId,
        pass: Pass,
    ) -> Result<(SarZip<W>, usize)> {
        if pass == Pass::Json {
            z = blocking(move || {
                z.begin_array("audit.json")?;
                Ok(z)
            })
            .await?;
        }
        let (mut after, mut n) = (0, 0);
        loop {
            let q = AuditQuery {
                subject: Some(user_id.to_string()),
                after_seq: Some(after),
                limit: AUDIT_PAGE,
                ..AuditQuery::default()
            };
            let page = self.d.audit.search(q).await?;
            let Some(last) = page.last() else { break };
            after = last.seq;
            n += page.len();
            let full = page.len() == AUDIT_PAGE;
            z = blocking(move || {
                for r in &page {
                    match pass {
                        Pass::Json => z.array_item(&archive::audit_json(r))?,
                        Pass::Html => z.write(summary::audit_row(r).as_bytes())?,
                    }
                }
                Ok(z)
            })
            .await?;
            if !full {
                break;
            }
        }
        if pass == Pass::Json {
            z = blocking(move || {
                z.end_array()?;
                Ok(z)
            })
            .await?;
        }
        Ok((z, n))
    }
}

/// Events read per page while writing.
const EVENT_PAGE: usize = 500;

#[derive(Clone, Copy)]
enum Which {
    Sent,
    Mentioning,
}

/// Which file a pass writes.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Pass {
    Json,
    Html,
}

/// What a pass over events counted.
#[derive(Default)]
struct Tally {
    events: usize,
    encrypted: usize,
}

fn json_page<W: Write + Seek>(z: &mut SarZip<W>, page: &[SarEvent], t: &mut Tally) -> Result<()> {
    for e in page {
        z.array_item(&archive::event_json(e))?;
        t.events += 1;
        t.encrypted += usize::from(archive::is_encrypted(e));
    }
    Ok(())
}

fn html_page<W: Write + Seek>(z: &mut SarZip<W>, page: &[SarEvent]) -> Result<()> {
    for e in page {
        z.write(summary::event_row(e).as_bytes())?;
    }
    Ok(())
}

/// The progress of one export.
struct Steps<'a> {
    done: u64,
    total: u64,
    progress: &'a mut dyn JobProgress,
}

impl Steps<'_> {
    fn step(&mut self) {
        self.done = (self.done + 1).min(self.total);
        self.progress.update(self.done, self.total);
    }
}
