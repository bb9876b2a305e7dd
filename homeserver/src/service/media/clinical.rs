//! The clinical media rules inside the media service (docs/GOVERNANCE.md, "Clinical media"):
//! vetting an upload (policy, scanner, metadata stripping) and checking who may fetch a file.

use handover_compliance::Outcome;
use handover_policy::media::{
    OCTET_STREAM, RULE_MEDIA_QUARANTINED, RULE_MEDIA_TOO_LARGE, RULE_MEDIA_TYPE_MISMATCH,
};
use handover_policy::{Denial, MediaDownloadRequest, MediaTransform, MediaUploadRequest};
use ruma::{RoomId, UserId};

use super::MediaService;
use super::resize::ThumbnailError;
use super::scan::ScanOutcome;
use super::staged::Staged;
use super::strip::strip_metadata;
use crate::error::{Error, Result};
use crate::service::audit::{action, entry};
use crate::service::blocking;
use crate::store::media::MediaRecord;

/// What to store after vetting.
pub(super) enum Vetted {
    /// Allowed (and, for images, stripped of metadata).
    Store(Staged),
    /// Flagged by the scanner: kept as uploaded, never served; the reason is for the IG lead.
    Quarantine(Staged, String),
}

/// The declared type as the rules compare it: lower-case essence, octet-stream when absent.
pub(super) fn essence(content_type: Option<&str>) -> String {
    let t = content_type
        .and_then(|c| c.split(';').next())
        .map(|c| c.trim().to_ascii_lowercase())
        .unwrap_or_default();
    if t.is_empty() {
        OCTET_STREAM.to_owned()
    } else {
        t
    }
}

impl MediaService {
    /// Policy first (type, size, magic bytes), then the scanner on the bytes as uploaded, then
    /// metadata stripping, so nothing unstripped is ever written to disk.
    pub(super) async fn vet_upload(
        &self,
        uploader: &UserId,
        file: Staged,
        content_type: Option<&str>,
    ) -> Result<Vetted> {
        self.vet(uploader.as_str(), None, file, content_type).await
    }

    /// The same rules for any file about to be stored: an upload by `actor`, or another
    /// server's file fetched for `actor` (`target` its `mxc://` URI, named in the audit entry).
    pub(super) async fn vet(
        &self,
        actor: &str,
        target: Option<&str>,
        file: Staged,
        content_type: Option<&str>,
    ) -> Result<Vetted> {
        let declared = essence(content_type);
        let decision = self.policy.check_media_upload(&MediaUploadRequest {
            uploader: actor,
            content_type: &declared,
            head: file.head(),
            size: file.len(),
        });
        let transform = match decision {
            Ok(t) => t,
            Err(denial) => return Err(self.refuse_upload(actor, target, denial).await),
        };
        if let Some(scanner) = &self.scanner
            && let ScanOutcome::Flagged(reason) = scanner.scan(&file).await
        {
            return Ok(Vetted::Quarantine(file, reason));
        }
        if transform == MediaTransform::Keep {
            return Ok(Vetted::Store(file));
        }
        // A decode slot shared with thumbnailing: each decode may hold up to 256 MiB.
        let permit = self.decode_permit().await?;
        let stripped = blocking(move || {
            let file = file
                .into_bytes()
                .map_err(|e| Error::internal(format!("upload: {e}")))?;
            Ok(strip_metadata(&file).map_err(|e| (e, file)))
        })
        .await?;
        drop(permit);
        let denial = match stripped {
            Ok(bytes) => return Ok(Vetted::Store(bytes.into())),
            Err((ThumbnailError::TooLarge(_), _)) => Denial::new(
                RULE_MEDIA_TOO_LARGE,
                "the image's dimensions are too large to process",
            ),
            // Ciphertext may start like an image by chance; it cannot carry readable metadata.
            Err((ThumbnailError::Unsupported(_), file)) if declared == OCTET_STREAM => {
                return Ok(Vetted::Store(file.into()));
            }
            Err((ThumbnailError::Unsupported(_), _)) => Denial::new(
                RULE_MEDIA_TYPE_MISMATCH,
                format!("the file's contents are not a valid {declared}"),
            ),
            Err((ThumbnailError::Internal(e), _)) => {
                return Err(Error::internal(format!("metadata stripping: {e}")));
            }
        };
        Err(self.refuse_upload(actor, target, denial).await)
    }

    /// One of the `THUMBNAIL_CONCURRENCY` image-decode slots (thumbnails and metadata
    /// stripping). Waits at most `DECODE_WAIT`, then 429 `M_LIMIT_EXCEEDED`: a burst of large
    /// images is refused rather than queued without bound.
    pub(super) async fn decode_permit(&self) -> Result<tokio::sync::SemaphorePermit<'_>> {
        match tokio::time::timeout(super::DECODE_WAIT, self.thumbnailing.acquire()).await {
            Ok(permit) => permit.map_err(Error::internal),
            Err(_) => Err(Error::limit_exceeded(super::DECODE_WAIT)),
        }
    }

    /// Audits an upload denial; over-size is 413 `M_TOO_LARGE`, the rest 403, both naming it.
    async fn refuse_upload(&self, actor: &str, target: Option<&str>, denial: Denial) -> Error {
        if let Err(e) = self
            .audit
            .record_denial(&denial, "check_media_upload", actor, target)
            .await
        {
            return e;
        }
        if denial.rule == RULE_MEDIA_TOO_LARGE {
            tracing::warn!(target: "handover::policy", rule = %denial.rule, "policy denial");
            Error::too_large(format!(
                "Denied by policy rule `{}`: {}",
                denial.rule, denial.reason
            ))
        } else {
            Error::policy(&denial)
        }
    }

    /// After a flagged file is stored: the audit entry and the uploader's refusal.
    pub(super) async fn quarantined(
        &self,
        uploader: &UserId,
        media_id: &str,
        reason: &str,
    ) -> Error {
        tracing::warn!(%uploader, %media_id, %reason, "media quarantined");
        let e = entry(uploader.as_str(), action::MEDIA_QUARANTINE, Outcome::Denied)
            .rule(RULE_MEDIA_QUARANTINED)
            .target(self.mxc(media_id).as_str())
            .detail("reason", reason);
        if let Err(e) = self.audit.record(e).await {
            return e;
        }
        Error::policy(&Denial::new(
            RULE_MEDIA_QUARANTINED,
            "the file was flagged by the malware scanner and is held for review",
        ))
    }

    /// May `user` fetch this file (or its thumbnails)? Refusals are audited with their rule but
    /// answer 404 `M_NOT_FOUND`, exactly as unknown media: the spec's download endpoints define
    /// no 403, and a 403 would confirm to an outsider holding an mxc URI that the file exists.
    pub(super) async fn check_access(&self, user: &UserId, rec: &MediaRecord) -> Result<()> {
        let (store, id) = (self.store.clone(), rec.media_id.clone());
        let access = blocking(move || Ok(store.media_access(&id)?)).await?;
        let target = self.mxc(&rec.media_id);
        let hook = "check_media_download";
        if access.quarantined {
            // Never served, whatever the policy says and whoever asks.
            let denial = Denial::new(RULE_MEDIA_QUARANTINED, "the file is quarantined");
            self.audit
                .record_denial(&denial, hook, user.as_str(), Some(target.as_str()))
                .await?;
            return Err(not_found());
        }
        let bound = access
            .bound_room
            .as_deref()
            .and_then(|r| RoomId::parse(r).ok());
        let member_of_bound_room = match &bound {
            Some(room) => self.rooms.membership_of(room, user).await?.as_deref() == Some("join"),
            None => false,
        };
        let content_type = essence(rec.content_type.as_deref());
        let shares_room_with_uploader = bound.is_none()
            && user != rec.uploader
            && content_type == OCTET_STREAM
            && self.shares_room(user, &rec.uploader).await?;
        let decision = self.policy.check_media_download(&MediaDownloadRequest {
            user: user.as_str(),
            uploader: rec.uploader.as_str(),
            content_type: &content_type,
            bound_room: access.bound_room.as_deref(),
            member_of_bound_room,
            shares_room_with_uploader,
        });
        if let Err(denial) = decision {
            self.audit
                .record_denial(&denial, hook, user.as_str(), Some(target.as_str()))
                .await?;
            return Err(not_found());
        }
        Ok(())
    }

    async fn shares_room(&self, a: &UserId, b: &UserId) -> Result<bool> {
        let mine = self.rooms.joined_rooms(a).await?;
        if mine.is_empty() {
            return Ok(false);
        }
        let theirs = self.rooms.joined_rooms(b).await?;
        Ok(mine.iter().any(|r| theirs.contains(r)))
    }
}

/// Same answer as for media that does not exist.
fn not_found() -> Error {
    Error::not_found("Media not found")
}
