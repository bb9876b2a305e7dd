//! The content repository: uploads, downloads and thumbnails. Bytes live on disk (`files`),
//! metadata in the store (`MediaStore`), images are resized by `resize.rs` (served by `thumbnails.rs`).
//!
//! Media of another server is fetched over federation for a local user's download and cached
//! (`remote`); our own media is served to listed servers under the clinical media rules
//! (`federation`). docs/FEDERATION.md, "Federation media".

mod binding;
mod clinical;
#[cfg(test)]
mod clinical_tests;
mod disposition;
mod expiry;
mod federation;
mod files;
mod pending;
mod remote;
#[cfg(test)]
mod remote_tests;
mod resize;
mod scan;
mod staged;
mod strip;
#[cfg(test)]
mod tests;
mod thumbnails;

// What still refers to a file, for retention (it follows `binding`'s rules).
mod references;

use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use handover_policy::Policy;
use http::StatusCode;
use ruma::api::error::ErrorKind;
use ruma::http_headers::ContentDisposition;
use ruma::{MilliSecondsSinceUnixEpoch, OwnedMxcUri, OwnedServerName, ServerName, UInt, UserId};
use sha2::{Digest, Sha256};
use tokio::sync::Semaphore;

pub use self::binding::MediaBinder;
use self::clinical::Vetted;
use self::disposition::{DEFAULT_CONTENT_TYPE, disposition_for};
use self::files::{FileStore, is_valid_media_id};
use self::pending::PendingUploads;
pub use self::references::References;
use self::scan::Scanner;
pub use self::staged::{Staged, TempUpload};
use super::audit::AuditService;
use super::blocking;
use super::federation::client::FederationClient;
use super::rooms::RoomService;
use crate::config::Config;
use crate::error::{Error, Result};
use crate::store::media::{MediaRecord, MediaStore};
use crate::store::remote_media::RemoteMediaStore;
use crate::store::{StoreError, now_ms};

/// Rule id of the refused URL previews.
pub const URL_PREVIEWS_OFF: &str = "url_previews_off";
/// Longest a download of a not-yet-uploaded id waits, whatever `timeout_ms` the client asks for.
const MAX_DOWNLOAD_WAIT: Duration = Duration::from_secs(20);
/// Thumbnails decoded at once: each may hold up to `resize::MAX_DECODE_BYTES`.
const THUMBNAIL_CONCURRENCY: usize = 2;
/// Longest a decode (thumbnail or metadata stripping) waits for a slot before 429.
const DECODE_WAIT: Duration = Duration::from_secs(2);

/// Bytes plus the headers to serve them with.
#[derive(Debug)]
pub struct Content {
    pub bytes: Vec<u8>,
    pub content_type: String,
    pub disposition: ContentDisposition,
}

pub struct MediaService {
    server_name: OwnedServerName,
    max_upload_bytes: u64,
    max_thumbnail_size: u32,
    store: Arc<dyn MediaStore>,
    files: Arc<FileStore>,
    pending: PendingUploads,
    thumbnailing: Semaphore,
    /// Clinical media rules (`check_media_upload`, `check_media_download`).
    policy: Arc<dyn Policy>,
    audit: Arc<AuditService>,
    /// Memberships, for room-bound media.
    rooms: Arc<RoomService>,
    /// `clinical_media.scanner_command`, if set.
    scanner: Option<Scanner>,
    /// Cached copies of other servers' media: rows and files (under `media/remote`).
    remote_store: Arc<dyn RemoteMediaStore>,
    remote_files: Arc<FileStore>,
    /// Fetches other servers' media (gated by the federation list).
    federation: Arc<FederationClient>,
}

/// What the media service is built with.
pub struct MediaDeps {
    pub store: Arc<dyn MediaStore>,
    pub policy: Arc<dyn Policy>,
    pub audit: Arc<AuditService>,
    pub rooms: Arc<RoomService>,
    pub remote_store: Arc<dyn RemoteMediaStore>,
    pub federation: Arc<FederationClient>,
}

impl MediaService {
    /// Opens (creating if needed) the media directory `config.media_dir()`.
    pub fn new(config: &Config, deps: MediaDeps) -> Result<Self> {
        let MediaDeps {
            store,
            policy,
            audit,
            rooms,
            remote_store,
            federation,
        } = deps;
        let server_name = ServerName::parse(&config.server_name)
            .map_err(|e| Error::internal(format!("invalid server name: {e}")))?;
        let files = FileStore::open(&config.media_dir()).map_err(|e| {
            Error::internal(format!(
                "cannot open media directory {}: {e}",
                config.media_dir().display()
            ))
        })?;
        let remote_dir = config.media_dir().join("remote");
        let remote_files = FileStore::open(&remote_dir).map_err(|e| {
            Error::internal(format!(
                "cannot open media directory {}: {e}",
                remote_dir.display()
            ))
        })?;
        Ok(Self {
            server_name,
            max_upload_bytes: config.media.max_upload_bytes,
            max_thumbnail_size: config.media.max_thumbnail_size.max(1),
            store,
            files: Arc::new(files),
            pending: PendingUploads::default(),
            thumbnailing: Semaphore::new(THUMBNAIL_CONCURRENCY),
            policy,
            audit,
            rooms,
            scanner: Scanner::new(
                &config.clinical_media.scanner_command,
                Duration::from_secs(config.clinical_media.scanner_timeout_secs),
                config.media_dir(),
            ),
            remote_store,
            remote_files: Arc::new(remote_files),
            federation,
        })
    }

    /// Where a local upload's original lives on disk (subject-access request exports read it
    /// directly); `None` for an invalid id.
    pub fn local_file_path(&self, media_id: &str) -> Option<std::path::PathBuf> {
        is_valid_media_id(media_id).then(|| self.files.original_path(media_id))
    }

    /// `m.upload.size` for the config endpoints.
    pub fn upload_size(&self) -> UInt {
        UInt::new_saturating(self.max_upload_bytes)
    }

    /// Retention: deletes local media (rows, original and thumbnail files). Unknown or invalid
    /// ids are skipped. Returns how many existed.
    pub async fn delete_local(&self, media_ids: Vec<String>) -> Result<usize> {
        let (files, store) = (self.files.clone(), self.store.clone());
        blocking(move || {
            let mut n = 0;
            for id in media_ids.iter().filter(|id| is_valid_media_id(id)) {
                // The row goes first (the file is no longer served) and, in the same
                // transaction, the id is recorded as pending: a file whose unlink fails is
                // retried by `retry_pending_deletions`, never forgotten.
                let row = store.delete_media(id)?;
                let file = unlink(&files, store.as_ref(), id)?;
                if row || file == Some(true) {
                    n += 1;
                }
            }
            Ok(n)
        })
        .await
    }

    /// Unlinks the files of earlier deletions that failed: `(done, still failing)`.
    pub async fn retry_pending_deletions(&self) -> Result<(usize, usize)> {
        let (files, store) = (self.files.clone(), self.store.clone());
        blocking(move || {
            let (mut done, mut failing) = (0, 0);
            for id in store.pending_media_deletions()? {
                match unlink(&files, store.as_ref(), &id)? {
                    Some(_) => done += 1,
                    None => failing += 1,
                }
            }
            Ok((done, failing))
        })
        .await
    }

    /// A temp file for a client's upload body to be streamed into (see `staged.rs`).
    pub async fn begin_upload(&self) -> Result<TempUpload> {
        TempUpload::create(self.files.tmp_dir())
            .await
            .map_err(io_error)
    }

    /// `POST /upload`: stores the content under a new id.
    pub async fn upload(
        &self,
        uploader: &UserId,
        file: impl Into<Staged>,
        content_type: Option<String>,
        filename: Option<String>,
    ) -> Result<OwnedMxcUri> {
        let file = file.into();
        self.check_upload_size(file.len())?;
        let vetted = self
            .vet_upload(uploader, file, content_type.as_deref())
            .await?;
        let media_id = new_media_id();
        self.store_content(uploader, &media_id, vetted, content_type, filename)
            .await?;
        tracing::info!(%uploader, %media_id, "media uploaded");
        Ok(self.mxc(&media_id))
    }

    /// `POST /create`: reserves an id for a later `PUT /upload/{serverName}/{mediaId}`.
    pub fn create_pending(
        &self,
        uploader: &UserId,
    ) -> Result<(OwnedMxcUri, MilliSecondsSinceUnixEpoch)> {
        let media_id = new_media_id();
        let expires_at = self.pending.reserve(uploader, &media_id, now_ms())?;
        let expires_at = MilliSecondsSinceUnixEpoch(UInt::new_saturating(expires_at as u64));
        Ok((self.mxc(&media_id), expires_at))
    }

    /// `PUT /upload/{serverName}/{mediaId}`: the content for an id from `create_pending`.
    pub async fn upload_pending(
        &self,
        uploader: &UserId,
        server_name: &ServerName,
        media_id: &str,
        file: impl Into<Staged>,
        content_type: Option<String>,
        filename: Option<String>,
    ) -> Result<()> {
        if server_name != self.server_name || !is_valid_media_id(media_id) {
            return Err(Error::not_found("Unknown media ID"));
        }
        let file = file.into();
        self.check_upload_size(file.len())?;
        if let Err(e) = self.pending.begin_upload(uploader, media_id, now_ms()) {
            // The reservation is removed once its content is stored.
            if e.kind() == Some(&ErrorKind::NotFound) && self.lookup(media_id).await?.is_some() {
                return Err(pending::cannot_overwrite());
            }
            return Err(e);
        }
        let res = match self
            .vet_upload(uploader, file, content_type.as_deref())
            .await
        {
            Ok(vetted) => {
                self.store_content(uploader, media_id, vetted, content_type, filename)
                    .await
            }
            Err(e) => Err(e),
        };
        match res {
            Ok(()) => self.pending.finish(media_id),
            // A quarantined file is stored: the id is used up, as for any stored content.
            Err(_) if self.lookup(media_id).await?.is_some() => self.pending.finish(media_id),
            Err(_) => self.pending.abort(media_id),
        }
        res
    }

    /// The content of `mxc://server_name/media_id`; `filename` overrides the uploaded name.
    pub async fn download(
        &self,
        user: &UserId,
        server_name: &ServerName,
        media_id: &str,
        filename: Option<String>,
        timeout: Duration,
    ) -> Result<Content> {
        if server_name != self.server_name {
            return (self.remote_download(user, server_name, media_id, filename, timeout)).await;
        }
        let rec = self.local_media(server_name, media_id, timeout).await?;
        self.check_access(user, &rec).await?;
        self.original_content(rec, filename).await
    }

    /// The bytes of local media, with the headers to serve them with.
    async fn original_content(
        &self,
        rec: MediaRecord,
        filename: Option<String>,
    ) -> Result<Content> {
        let files = self.files.clone();
        let id = rec.media_id.clone();
        let bytes = blocking(move || files.read(&files.original_path(&id)).map_err(io_error))
            .await?
            .ok_or_else(|| {
                Error::internal(format!("media {} has metadata but no file", rec.media_id))
            })?;
        let content_type = rec
            .content_type
            .unwrap_or_else(|| DEFAULT_CONTENT_TYPE.to_owned());
        let disposition = disposition_for(&content_type, filename.or(rec.filename));
        Ok(Content {
            bytes,
            content_type,
            disposition,
        })
    }

    /// Policy (rule `url_previews_off`): this server never fetches URLs on a user's behalf (it
    /// would leak what clinicians read to third parties and let users probe internal hosts).
    /// Spec-shaped refusal naming the rule. Not audited: clients ask by themselves for every
    /// link they display, so entries would record no one's decision and bury the trail.
    pub fn url_previews_disabled(&self) -> Error {
        Error::forbidden(format!(
            "Denied by policy rule `{URL_PREVIEWS_OFF}`: URL previews are disabled; this server \
             never fetches web pages on a user's behalf"
        ))
    }

    /// The deprecated unauthenticated download and thumbnail endpoints. The spec asks servers to
    /// "freeze" them: media uploaded before the freeze stays reachable, media uploaded after it
    /// answers 404 M_NOT_FOUND. This server was frozen from its first start, so every piece of
    /// media (and, once federation exists, every remote media cached) is after the freeze.
    pub fn unauthenticated_media_frozen(&self) -> Error {
        Error::not_found(
            "Unauthenticated media access is frozen; use /_matrix/client/v1/media/download",
        )
    }

    fn check_upload_size(&self, len: u64) -> Result<()> {
        if len > self.max_upload_bytes {
            return Err(Error::too_large(format!(
                "Cannot upload files larger than {} bytes",
                self.max_upload_bytes
            )));
        }
        Ok(())
    }

    fn mxc(&self, media_id: &str) -> OwnedMxcUri {
        OwnedMxcUri::from(format!("mxc://{}/{media_id}", self.server_name))
    }

    /// Writes the bytes durably, then records them; an acknowledged upload is on disk. A
    /// quarantined file is stored with its flag in the same write, then refused.
    async fn store_content(
        &self,
        uploader: &UserId,
        media_id: &str,
        vetted: Vetted,
        content_type: Option<String>,
        filename: Option<String>,
    ) -> Result<()> {
        let (file, quarantine) = match vetted {
            Vetted::Store(file) => (file, None),
            Vetted::Quarantine(file, reason) => (file, Some(reason)),
        };
        let flag = quarantine.clone();
        let (files, store) = (self.files.clone(), self.store.clone());
        // `?filename=` or an empty header mean "none"; an empty name would render oddly.
        let content_type = content_type.filter(|c| !c.trim().is_empty());
        let filename = filename.filter(|f| !f.is_empty());
        let rec = MediaRecord {
            media_id: media_id.to_owned(),
            uploader: uploader.to_owned(),
            content_type,
            filename,
            size: file.len(),
            sha256: file.sha256_hex(),
            created_ts: now_ms(),
        };
        blocking(move || {
            let path = files.original_path(&rec.media_id);
            match file {
                Staged::Bytes(bytes) => files.write(&path, &bytes).map_err(io_error)?,
                // Streamed and needing no transform (e.g. an encrypted attachment): renamed into
                // place, never read back into memory.
                Staged::File(temp) => temp.persist(&path).map_err(io_error)?,
            }
            let inserted = match &flag {
                None => store.insert_media(&rec),
                Some(reason) => store.insert_quarantined_media(&rec, reason),
            };
            match inserted {
                Ok(()) => Ok(()),
                Err(e) => {
                    // Random ids never collide in practice; either way the file is not ours.
                    files.remove(&path);
                    match e {
                        StoreError::Conflict(_) => Err(pending::cannot_overwrite()),
                        e => Err(e.into()),
                    }
                }
            }
        })
        .await?;
        match quarantine {
            None => Ok(()),
            Some(reason) => Err(self.quarantined(uploader, media_id, &reason).await),
        }
    }

    async fn lookup(&self, media_id: &str) -> Result<Option<MediaRecord>> {
        let (store, id) = (self.store.clone(), media_id.to_owned());
        blocking(move || Ok(store.get_media(&id)?)).await
    }

    /// The record of local media, waiting up to `timeout` if the id was created but its content
    /// has not arrived yet.
    async fn local_media(
        &self,
        server_name: &ServerName,
        media_id: &str,
        timeout: Duration,
    ) -> Result<MediaRecord> {
        if server_name != self.server_name {
            // Callers route other servers' media to `remote` first.
            return Err(Error::not_found("Media not found"));
        }
        if !is_valid_media_id(media_id) {
            return Err(Error::not_found("Media not found"));
        }
        if let Some(rec) = self.lookup(media_id).await? {
            return Ok(rec);
        }
        let Some(uploaded) = self.pending.waiter(media_id, now_ms()) else {
            return Err(Error::not_found("Media not found"));
        };
        // Register before re-checking, so an upload finishing in between still wakes us.
        let notified = uploaded.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        if let Some(rec) = self.lookup(media_id).await? {
            return Ok(rec);
        }
        let _ = tokio::time::timeout(timeout.min(MAX_DOWNLOAD_WAIT), notified).await;
        self.lookup(media_id).await?.ok_or_else(|| {
            Error::new(
                StatusCode::GATEWAY_TIMEOUT,
                ErrorKind::NotYetUploaded,
                "Content has not yet been uploaded",
            )
        })
    }
}

/// 144 random bits as 24 URL-safe characters (`[A-Za-z0-9_-]`, as media ids must be).
fn new_media_id() -> String {
    URL_SAFE_NO_PAD.encode(rand::random::<[u8; 18]>())
}

fn sha256_hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    Sha256::digest(bytes)
        .iter()
        .fold(String::with_capacity(64), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}

/// A media file operation failed. A full or read-only disk is the operator's to fix and says
/// that nothing was stored (503, as for the database), not a server bug.
pub fn io_error(e: std::io::Error) -> Error {
    match e.kind() {
        std::io::ErrorKind::StorageFull => StoreError::Full.into(),
        std::io::ErrorKind::ReadOnlyFilesystem => StoreError::ReadOnly.into(),
        _ => Error::internal(format!("media file i/o: {e}")),
    }
}

/// Unlinks every file of a deleted id and clears its pending record: `Some(found)` once done,
/// `None` if the filesystem refused (logged; the record stays for the next retry).
fn unlink(files: &FileStore, store: &dyn MediaStore, media_id: &str) -> Result<Option<bool>> {
    match files.delete_all(media_id) {
        Ok(found) => {
            store.clear_pending_media_deletion(media_id)?;
            Ok(Some(found))
        }
        Err(e) => {
            tracing::warn!(%media_id, error = %e, "media file not deleted; retried by the next purge");
            Ok(None)
        }
    }
}
