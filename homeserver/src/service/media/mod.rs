//! The content repository: uploads, downloads and thumbnails. Bytes live on disk (`files`),
//! metadata in the store (`MediaStore`), images are resized by `thumbnail`.
//!
//! Only media of this server is served. Federation is not implemented yet, so media of another
//! server answers 404 (see `local_media`); nothing is ever fetched from elsewhere.

mod disposition;
mod files;
mod pending;
#[cfg(test)]
mod tests;
mod thumbnail;

use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use http::StatusCode;
use ruma::api::error::ErrorKind;
use ruma::http_headers::{ContentDisposition, ContentDispositionType};
use ruma::{MilliSecondsSinceUnixEpoch, OwnedMxcUri, OwnedServerName, ServerName, UInt, UserId};
use sha2::{Digest, Sha256};
use tokio::sync::Semaphore;

use self::disposition::{DEFAULT_CONTENT_TYPE, disposition_for};
use self::files::{FileStore, is_valid_media_id};
use self::pending::PendingUploads;
use self::thumbnail::{Method, Spec, ThumbnailError};
use super::blocking;
use crate::config::Config;
use crate::error::{Error, Result};
use crate::store::media::{MediaRecord, MediaStore, ThumbnailRecord};
use crate::store::{StoreError, now_ms};

/// Longest a download of a not-yet-uploaded id waits, whatever `timeout_ms` the client asks for.
const MAX_DOWNLOAD_WAIT: Duration = Duration::from_secs(20);
/// Thumbnails decoded at once: each may hold up to `thumbnail::MAX_DECODE_BYTES`.
const THUMBNAIL_CONCURRENCY: usize = 2;

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
}

impl MediaService {
    /// Opens (creating if needed) the media directory `config.media_dir()`.
    pub fn new(config: &Config, store: Arc<dyn MediaStore>) -> Result<Self> {
        let server_name = ServerName::parse(&config.server_name)
            .map_err(|e| Error::internal(format!("invalid server name: {e}")))?;
        let files = FileStore::open(&config.media_dir()).map_err(|e| {
            Error::internal(format!(
                "cannot open media directory {}: {e}",
                config.media_dir().display()
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
        })
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
                let row = store.delete_media(id)?;
                let file = files.delete_all(id).map_err(io_error)?;
                if row || file {
                    n += 1;
                }
            }
            Ok(n)
        })
        .await
    }

    /// Who uploaded a local media id, if it has content (retention: holds and dry runs).
    pub async fn local_uploader(&self, media_id: &str) -> Result<Option<String>> {
        let (store, id) = (self.store.clone(), media_id.to_owned());
        blocking(move || Ok(store.get_media(&id)?.map(|m| m.uploader.to_string()))).await
    }

    /// `POST /upload`: stores the content under a new id.
    pub async fn upload(
        &self,
        uploader: &UserId,
        file: Vec<u8>,
        content_type: Option<String>,
        filename: Option<String>,
    ) -> Result<OwnedMxcUri> {
        self.check_upload_size(file.len())?;
        let media_id = new_media_id();
        self.store_content(uploader, &media_id, file, content_type, filename)
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
        file: Vec<u8>,
        content_type: Option<String>,
        filename: Option<String>,
    ) -> Result<()> {
        if server_name != self.server_name || !is_valid_media_id(media_id) {
            return Err(Error::not_found("Unknown media ID"));
        }
        self.check_upload_size(file.len())?;
        if let Err(e) = self.pending.begin_upload(uploader, media_id, now_ms()) {
            // The reservation is removed once its content is stored.
            if e.kind() == Some(&ErrorKind::NotFound) && self.lookup(media_id).await?.is_some() {
                return Err(pending::cannot_overwrite());
            }
            return Err(e);
        }
        let res = self
            .store_content(uploader, media_id, file, content_type, filename)
            .await;
        match res {
            Ok(()) => self.pending.finish(media_id),
            Err(_) => self.pending.abort(media_id),
        }
        res
    }

    /// The content of `mxc://server_name/media_id`; `filename` overrides the uploaded name.
    pub async fn download(
        &self,
        server_name: &ServerName,
        media_id: &str,
        filename: Option<String>,
        timeout: Duration,
    ) -> Result<Content> {
        let rec = self.local_media(server_name, media_id, timeout).await?;
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

    /// A thumbnail of an image, generated once per (size, method) and then served from disk.
    pub async fn thumbnail(
        &self,
        server_name: &ServerName,
        media_id: &str,
        (width, height): (UInt, UInt),
        method: Option<&ruma::media::Method>,
        timeout: Duration,
    ) -> Result<Content> {
        let spec = self.thumbnail_spec(width, height, method)?;
        let rec = self.local_media(server_name, media_id, timeout).await?;
        let (bytes, content_type) = match self.cached_thumbnail(&rec.media_id, spec).await? {
            Some(hit) => hit,
            None => {
                let _permit = self.thumbnailing.acquire().await.map_err(Error::internal)?;
                // Another request may have made it while we waited for the permit.
                match self.cached_thumbnail(&rec.media_id, spec).await? {
                    Some(hit) => hit,
                    None => self.generate_thumbnail(rec.media_id, spec).await?,
                }
            }
        };
        let ext = if content_type == "image/png" {
            "png"
        } else {
            "jpg"
        };
        Ok(Content {
            bytes,
            content_type,
            disposition: ContentDisposition::new(ContentDispositionType::Inline)
                .with_filename(Some(format!("thumbnail.{ext}"))),
        })
    }

    /// Policy: this server never fetches URLs on a user's behalf (it would leak what clinicians
    /// read to third parties and let users probe internal hosts). Spec-shaped refusal.
    pub fn url_previews_disabled(&self) -> Error {
        Error::forbidden("URL previews are disabled")
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

    fn check_upload_size(&self, len: usize) -> Result<()> {
        if len as u64 > self.max_upload_bytes {
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

    /// Writes the bytes durably, then records them; an acknowledged upload is on disk.
    async fn store_content(
        &self,
        uploader: &UserId,
        media_id: &str,
        file: Vec<u8>,
        content_type: Option<String>,
        filename: Option<String>,
    ) -> Result<()> {
        let (files, store) = (self.files.clone(), self.store.clone());
        // `?filename=` or an empty header mean "none"; an empty name would render oddly.
        let content_type = content_type.filter(|c| !c.trim().is_empty());
        let filename = filename.filter(|f| !f.is_empty());
        let rec = MediaRecord {
            media_id: media_id.to_owned(),
            uploader: uploader.to_owned(),
            content_type,
            filename,
            size: file.len() as u64,
            sha256: String::new(),
            created_ts: now_ms(),
        };
        blocking(move || {
            let rec = MediaRecord {
                sha256: sha256_hex(&file),
                ..rec
            };
            let path = files.original_path(&rec.media_id);
            files.write(&path, &file).map_err(io_error)?;
            drop(file);
            match store.insert_media(&rec) {
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
        .await
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
            // Federation is not implemented: remote media is never fetched.
            return Err(Error::not_found(
                "Media from other servers is not available on this server",
            ));
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

    /// Validates the request and caps the box at `max_thumbnail_size`, keeping its aspect.
    fn thumbnail_spec(
        &self,
        width: UInt,
        height: UInt,
        method: Option<&ruma::media::Method>,
    ) -> Result<Spec> {
        let method = match method {
            None | Some(ruma::media::Method::Scale) => Method::Scale,
            Some(ruma::media::Method::Crop) => Method::Crop,
            Some(_) => return Err(Error::invalid_param("method must be \"crop\" or \"scale\"")),
        };
        let (w, h) = (u64::from(width), u64::from(height));
        if w == 0 || h == 0 {
            return Err(Error::invalid_param("width and height must be positive"));
        }
        let cap = u64::from(self.max_thumbnail_size);
        let (w, h) = if w.max(h) > cap {
            let shrink = |d: u64| ((d as f64 * cap as f64 / w.max(h) as f64).round() as u64).max(1);
            (shrink(w), shrink(h))
        } else {
            (w, h)
        };
        Ok(Spec {
            width: w as u32,
            height: h as u32,
            method,
        })
    }

    async fn cached_thumbnail(
        &self,
        media_id: &str,
        spec: Spec,
    ) -> Result<Option<(Vec<u8>, String)>> {
        let (files, store, id) = (self.files.clone(), self.store.clone(), media_id.to_owned());
        blocking(move || {
            let Some(t) =
                store.get_thumbnail(&id, spec.width, spec.height, spec.method.as_str())?
            else {
                return Ok(None);
            };
            // A row without its file (e.g. a partial restore) is regenerated by the caller.
            let bytes = files
                .read(&files.thumbnail_path(&id, &thumbnail_key(spec)))
                .map_err(io_error)?;
            Ok(bytes.map(|b| (b, t.content_type)))
        })
        .await
    }

    async fn generate_thumbnail(&self, media_id: String, spec: Spec) -> Result<(Vec<u8>, String)> {
        let (files, store) = (self.files.clone(), self.store.clone());
        blocking(move || {
            let original = files
                .read(&files.original_path(&media_id))
                .map_err(io_error)?
                .ok_or_else(|| Error::internal(format!("media {media_id} has no file")))?;
            let thumb = thumbnail::generate(&original, spec).map_err(thumbnail_error)?;
            drop(original);
            // File first, then the row: a row always has its file.
            let path = files.thumbnail_path(&media_id, &thumbnail_key(spec));
            files.write(&path, &thumb.bytes).map_err(io_error)?;
            store.put_thumbnail(&ThumbnailRecord {
                media_id,
                width: spec.width,
                height: spec.height,
                method: spec.method.as_str().to_owned(),
                content_type: thumb.content_type.to_owned(),
                size: thumb.bytes.len() as u64,
            })?;
            Ok((thumb.bytes, thumb.content_type.to_owned()))
        })
        .await
    }
}

fn thumbnail_key(spec: Spec) -> String {
    format!("{}x{}-{}", spec.width, spec.height, spec.method.as_str())
}

fn thumbnail_error(e: ThumbnailError) -> Error {
    match e {
        ThumbnailError::Unsupported(detail) => {
            tracing::debug!(%detail, "cannot thumbnail media");
            Error::new(
                StatusCode::BAD_REQUEST,
                ErrorKind::Unknown,
                "Cannot generate thumbnails for the requested content",
            )
        }
        ThumbnailError::TooLarge(detail) => {
            tracing::debug!(%detail, "media too large to thumbnail");
            Error::too_large("Content is too large to thumbnail")
        }
        ThumbnailError::Internal(detail) => Error::internal(format!("thumbnailing: {detail}")),
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

fn io_error(e: std::io::Error) -> Error {
    Error::internal(format!("media file i/o: {e}"))
}
