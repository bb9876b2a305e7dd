//! Other servers' media for local users: `/_matrix/client/v1/media/download/{serverName}/…` and
//! `/thumbnail/…` for a server that is not us.
//!
//! The file (or a thumbnail the other server makes) is fetched over federation through the
//! gated client (a server not on the federation list is never contacted: 403 naming the rule),
//! vetted by the clinical media rules exactly like an upload (type allowlist, magic bytes,
//! per-type caps, the scanner, metadata stripping), stored under `media/remote` and served from
//! there afterwards.
//!
//! Who may fetch: any signed-in local user, for media on a listed server. The room binding that
//! guards our own media cannot be checked for another server's file until events from federated
//! rooms are stored here; membership-bound access to remote media arrives with federated rooms
//! (docs/FEDERATION.md). A "location" answer (a redirect to another URL) is refused: following
//! it could leave the federation list.

use std::time::Duration;

use handover_compliance::Outcome;
use handover_policy::Denial;
use handover_policy::media::RULE_MEDIA_QUARANTINED;
use http::StatusCode;
use ruma::api::error::ErrorKind;
use ruma::api::federation::authenticated_media::{
    Content as RemoteContent, FileOrLocation, get_content, get_content_thumbnail,
};
use ruma::{ServerName, UInt, UserId};

use super::clinical::Vetted;
use super::disposition::{DEFAULT_CONTENT_TYPE, disposition_for};
use super::files::is_valid_media_id;
use super::resize::{Method, Spec};
use super::thumbnails::{thumbnail_key, thumbnail_served};
use super::{Content, MAX_DOWNLOAD_WAIT, MediaService, io_error, new_media_id, sha256_hex};
use crate::error::{Error, Result};
use crate::service::audit::{action, entry};
use crate::service::blocking;
use crate::service::federation::client::{FederationError, Sign};
use crate::service::federation::client_error::to_client_error;
use crate::store::now_ms;
use crate::store::remote_media::RemoteMediaRecord;

/// Room for the multipart framing and the JSON part around a file of the largest allowed size.
const MULTIPART_SLACK: usize = 64 * 1024;

fn not_found() -> Error {
    Error::not_found("Media not found")
}

impl MediaService {
    /// `mxc://origin/media_id` for a local user; `filename` overrides the remote's name.
    pub(super) async fn remote_download(
        &self,
        user: &UserId,
        origin: &ServerName,
        media_id: &str,
        filename: Option<String>,
        timeout: Duration,
    ) -> Result<Content> {
        let (rec, bytes) = self
            .remote_copy(user, origin, media_id, None, timeout)
            .await?;
        let content_type = rec
            .content_type
            .unwrap_or_else(|| DEFAULT_CONTENT_TYPE.to_owned());
        // Our own inline/attachment choice, never the other server's.
        let disposition = disposition_for(&content_type, filename.or(rec.filename));
        Ok(Content {
            bytes,
            content_type,
            disposition,
        })
    }

    /// A thumbnail of `mxc://origin/media_id`, made by the other server.
    pub(super) async fn remote_thumbnail(
        &self,
        user: &UserId,
        origin: &ServerName,
        media_id: &str,
        spec: Spec,
        timeout: Duration,
    ) -> Result<Content> {
        let (rec, bytes) = self
            .remote_copy(user, origin, media_id, Some(spec), timeout)
            .await?;
        let content_type = rec.content_type.unwrap_or_else(|| "image/jpeg".to_owned());
        Ok(thumbnail_served(bytes, content_type))
    }

    /// The cached copy, or a new one fetched now.
    async fn remote_copy(
        &self,
        user: &UserId,
        origin: &ServerName,
        media_id: &str,
        thumb: Option<Spec>,
        timeout: Duration,
    ) -> Result<(RemoteMediaRecord, Vec<u8>)> {
        if !is_valid_media_id(media_id) {
            return Err(not_found());
        }
        let variant = thumb.map(thumbnail_key).unwrap_or_default();
        if let Some(hit) = self.cached_remote(origin, media_id, &variant).await? {
            return Ok(hit);
        }
        let rec = self
            .fetch_remote(user, origin, media_id, thumb, &variant, timeout)
            .await?;
        self.cached_remote(origin, media_id, &variant)
            .await?
            .ok_or_else(|| {
                Error::internal(format!("cached remote media {} vanished", rec.local_id))
            })
    }

    /// The row and its bytes; a row whose file is gone is forgotten (and fetched again).
    async fn cached_remote(
        &self,
        origin: &ServerName,
        media_id: &str,
        variant: &str,
    ) -> Result<Option<(RemoteMediaRecord, Vec<u8>)>> {
        let (store, files) = (self.remote_store.clone(), self.remote_files.clone());
        let (o, m, v) = (origin.to_string(), media_id.to_owned(), variant.to_owned());
        blocking(move || {
            let Some(rec) = store.get_remote_media(&o, &m, &v)? else {
                return Ok(None);
            };
            match files
                .read(&files.original_path(&rec.local_id))
                .map_err(io_error)?
            {
                Some(bytes) => Ok(Some((rec, bytes))),
                None => {
                    store.delete_remote_media(&o, &m, &v)?;
                    Ok(None)
                }
            }
        })
        .await
    }

    /// Asks `origin` for the file or thumbnail, vets it and stores it durably.
    async fn fetch_remote(
        &self,
        user: &UserId,
        origin: &ServerName,
        media_id: &str,
        thumb: Option<Spec>,
        variant: &str,
        timeout: Duration,
    ) -> Result<RemoteMediaRecord> {
        let limit = usize::try_from(self.max_upload_bytes)
            .unwrap_or(usize::MAX)
            .saturating_add(MULTIPART_SLACK);
        let timeout = timeout.min(MAX_DOWNLOAD_WAIT);
        let client = &self.federation;
        let answer = match thumb {
            None => {
                let mut req = get_content::v1::Request::new(media_id.to_owned());
                req.timeout_ms = timeout;
                client
                    .send_limited(origin, req, "media", Sign::AsRequired, limit)
                    .await
                    .map(|r| r.content)
            }
            Some(spec) => {
                let mut req = get_content_thumbnail::v1::Request::new(
                    media_id.to_owned(),
                    UInt::from(spec.width),
                    UInt::from(spec.height),
                );
                req.method = Some(match spec.method {
                    Method::Crop => ruma::media::Method::Crop,
                    Method::Scale => ruma::media::Method::Scale,
                });
                req.timeout_ms = timeout;
                client
                    .send_limited(origin, req, "media", Sign::AsRequired, limit)
                    .await
                    .map(|r| r.content)
            }
        };
        let file = match answer.map_err(remote_media_error)? {
            FileOrLocation::File(file) => file,
            FileOrLocation::Location(_) => {
                return Err(Error::new(
                    StatusCode::BAD_GATEWAY,
                    ErrorKind::Unknown,
                    format!("{origin} answered with a redirect, which this server does not follow"),
                ));
            }
            _ => return Err(not_found()),
        };
        let RemoteContent {
            file: bytes,
            content_type,
            content_disposition,
            ..
        } = file;
        if bytes.len() as u64 > self.max_upload_bytes {
            return Err(Error::too_large(format!(
                "The file is larger than this server accepts ({} bytes)",
                self.max_upload_bytes
            )));
        }
        let content_type = content_type.filter(|c| !c.trim().is_empty());
        let mxc = format!("mxc://{origin}/{media_id}");
        let bytes = match (self.vet(
            user.as_str(),
            Some(&mxc),
            bytes.into(),
            content_type.as_deref(),
        ))
        .await?
        {
            // Fetched whole (`Staged::Bytes`): no file is read here.
            Vetted::Store(staged) => staged.into_bytes().map_err(io_error)?,
            Vetted::Quarantine(_, reason) => {
                // Not kept: the file stays on the other server, which is told nothing.
                tracing::warn!(%user, media = %mxc, %reason, "remote media flagged by the scanner");
                let e = entry(user.as_str(), action::MEDIA_QUARANTINE, Outcome::Denied)
                    .rule(RULE_MEDIA_QUARANTINED)
                    .target(&mxc)
                    .detail("reason", reason)
                    .detail("remote", true);
                self.audit.record(e).await?;
                return Err(Error::policy(&Denial::new(
                    RULE_MEDIA_QUARANTINED,
                    "the file was flagged by the malware scanner",
                )));
            }
        };
        let rec = RemoteMediaRecord {
            origin: origin.to_string(),
            media_id: media_id.to_owned(),
            variant: variant.to_owned(),
            local_id: new_media_id(),
            content_type,
            filename: content_disposition
                .and_then(|d| d.filename)
                .filter(|f| !f.is_empty()),
            size: bytes.len() as u64,
            sha256: sha256_hex(&bytes),
            fetched_ts: now_ms(),
            requested_by: user.to_string(),
        };
        let (store, files, r) = (
            self.remote_store.clone(),
            self.remote_files.clone(),
            rec.clone(),
        );
        blocking(move || {
            // File first, then the row: a row always has its file.
            let path = files.original_path(&r.local_id);
            files.write(&path, &bytes).map_err(io_error)?;
            match store.insert_remote_media(&r) {
                Ok(true) => Ok(()),
                // A concurrent fetch stored it first: keep that copy.
                Ok(false) => {
                    files.remove(&path);
                    Ok(())
                }
                Err(e) => {
                    files.remove(&path);
                    Err(e.into())
                }
            }
        })
        .await?;
        tracing::info!(%user, media = %mxc, size = rec.size, "remote media cached");
        Ok(rec)
    }
}

/// A failed fetch as the client sees it: the spec's 504 for content not uploaded yet, 404 for
/// anything the other server does not have (or will not give us), else as for any query.
fn remote_media_error(e: FederationError) -> Error {
    match e {
        FederationError::Remote { status: 504, .. } => Error::new(
            StatusCode::GATEWAY_TIMEOUT,
            ErrorKind::NotYetUploaded,
            "Content has not yet been uploaded",
        ),
        FederationError::Remote { status: 404, .. } => not_found(),
        FederationError::TooLarge { .. } => {
            Error::too_large("The file is larger than this server accepts")
        }
        other => to_client_error(other),
    }
}
