//! Clinical media rules (docs/GOVERNANCE.md, "Clinical media"): which files may be uploaded and
//! who may fetch them. Pure decisions on facts the homeserver gathers (declared type, the
//! file's first bytes, size, room binding, memberships).

use std::collections::BTreeMap;

use crate::{Decision, Denial, Policy};

pub const RULE_MEDIA_TYPE_NOT_ALLOWED: &str = "media_type_not_allowed";
pub const RULE_MEDIA_TYPE_MISMATCH: &str = "media_type_mismatch";
pub const RULE_MEDIA_TOO_LARGE: &str = "media_too_large";
pub const RULE_MEDIA_NOT_IN_YOUR_ROOMS: &str = "media_not_in_your_rooms";
pub const RULE_MEDIA_QUARANTINED: &str = "media_quarantined";

/// The binding of a user's profile avatar: any signed-in user may fetch it (avatars show in
/// every room, the user directory and invites). Room ids start with `!`, so it cannot collide.
pub const PROFILE_BINDING: &str = "profile";

/// What encrypted attachments (and uploads without a type) are declared as.
pub const OCTET_STREAM: &str = "application/octet-stream";

/// An upload about to be stored.
#[derive(Debug, Clone)]
pub struct MediaUploadRequest<'a> {
    pub uploader: &'a str,
    /// The declared type's essence, lower case, without parameters (`OCTET_STREAM` if none).
    pub content_type: &'a str,
    /// The first bytes of the file (at least 1 KiB when the file is that long).
    pub head: &'a [u8],
    pub size: u64,
}

/// What the server must do to an allowed upload before storing it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MediaTransform {
    Keep,
    /// Re-encode the image so only pixels survive (EXIF/GPS, XMP, comments dropped).
    StripMetadata,
}

pub type UploadDecision = Result<MediaTransform, Denial>;

/// A download or thumbnail request, with the facts the server looked up.
#[derive(Debug, Clone)]
pub struct MediaDownloadRequest<'a> {
    pub user: &'a str,
    pub uploader: &'a str,
    pub content_type: &'a str,
    /// The room the media was first sent in, if it has been sent yet.
    pub bound_room: Option<&'a str>,
    /// The user is joined to `bound_room` now.
    pub member_of_bound_room: bool,
    /// The user is joined to some room the uploader is joined to (looked up for unbound media).
    pub shares_room_with_uploader: bool,
}

/// The type the bytes say they are, for the formats we check (magic numbers).
pub fn sniff(head: &[u8]) -> Option<&'static str> {
    let at = |i: usize, m: &[u8]| head.get(i..i + m.len()) == Some(m);
    if at(0, b"\x89PNG\r\n\x1a\n") {
        Some("image/png")
    } else if at(0, b"\xff\xd8\xff") {
        Some("image/jpeg")
    } else if at(0, b"GIF87a") || at(0, b"GIF89a") {
        Some("image/gif")
    } else if at(0, b"RIFF") && at(8, b"WEBP") {
        Some("image/webp")
    } else if head[..head.len().min(1024)]
        .windows(5)
        .any(|w| w == b"%PDF-")
    {
        // Readers accept the header anywhere in the first 1 KiB, so we must too.
        Some("application/pdf")
    } else if at(4, b"ftyp") {
        Some("video/mp4")
    } else if at(0, b"OggS") {
        Some("audio/ogg")
    } else {
        None
    }
}

/// Declared types whose bytes must carry their magic number; the value is what `sniff` says.
fn expected_signature(declared: &str) -> Option<&'static str> {
    Some(match declared {
        "image/png" => "image/png",
        "image/jpeg" => "image/jpeg",
        "image/gif" => "image/gif",
        "image/webp" => "image/webp",
        "application/pdf" => "application/pdf",
        "video/mp4" => "video/mp4",
        // MP4 audio shares the ISO container signature.
        "audio/mp4" => "video/mp4",
        "audio/ogg" => "audio/ogg",
        _ => return None,
    })
}

/// The configured rules (`[clinical_media]`).
#[derive(Debug, Clone, Default)]
pub struct MediaRules {
    /// Allowed type essences, lower case.
    pub allowed_types: Vec<String>,
    /// Per-type size caps in bytes (types not listed: only the global upload cap).
    pub max_bytes_by_type: BTreeMap<String, u64>,
    pub strip_image_metadata: bool,
    /// Unbound `application/octet-stream` media (encrypted attachments, whose event the server
    /// cannot read and so never binds) is served to users sharing a room with the uploader.
    pub unbound_attachments_to_room_mates: bool,
}

impl MediaRules {
    pub fn check_upload(&self, req: &MediaUploadRequest<'_>) -> UploadDecision {
        let declared = req.content_type;
        if !self.allowed_types.iter().any(|t| t == declared) {
            return Err(Denial::new(
                RULE_MEDIA_TYPE_NOT_ALLOWED,
                format!("files of type {declared} may not be uploaded"),
            ));
        }
        if let Some(&max) = self.max_bytes_by_type.get(declared)
            && req.size > max
        {
            return Err(Denial::new(
                RULE_MEDIA_TOO_LARGE,
                format!("files of type {declared} may be at most {max} bytes"),
            ));
        }
        let sniffed = sniff(req.head);
        let mismatch = match expected_signature(declared) {
            Some(expected) => sniffed != Some(expected),
            // Text that is really an image or PDF would dodge the checks above (and stripping).
            None => declared == "text/plain" && sniffed.is_some(),
        };
        if mismatch {
            return Err(Denial::new(
                RULE_MEDIA_TYPE_MISMATCH,
                format!("the file's contents are not {declared}"),
            ));
        }
        // Keyed on the bytes, not the label: an image sent as octet-stream is stripped too.
        let strippable = matches!(sniffed, Some("image/png" | "image/jpeg" | "image/webp"));
        Ok(if self.strip_image_metadata && strippable {
            MediaTransform::StripMetadata
        } else {
            MediaTransform::Keep
        })
    }

    pub fn check_download(&self, req: &MediaDownloadRequest<'_>) -> Decision {
        let allowed = match req.bound_room {
            Some(PROFILE_BINDING) => true,
            Some(_) => req.member_of_bound_room,
            None => {
                req.user == req.uploader
                    || (self.unbound_attachments_to_room_mates
                        && req.content_type == OCTET_STREAM
                        && req.shares_room_with_uploader)
            }
        };
        if allowed {
            Ok(())
        } else {
            Err(Denial::new(
                RULE_MEDIA_NOT_IN_YOUR_ROOMS,
                "this media was not shared in a room you are in",
            ))
        }
    }
}

/// The clinical media rules, one layer of `Layers`: uploads and downloads only; every other
/// hook keeps the trait's default.
pub struct ClinicalMedia {
    pub rules: MediaRules,
}

impl Policy for ClinicalMedia {
    fn name(&self) -> &str {
        "clinical-media"
    }
    fn check_media_upload(&self, req: &MediaUploadRequest<'_>) -> UploadDecision {
        self.rules.check_upload(req)
    }
    fn check_media_download(&self, req: &MediaDownloadRequest<'_>) -> Decision {
        self.rules.check_download(req)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules() -> MediaRules {
        MediaRules {
            allowed_types: ["image/png", "image/jpeg", "text/plain", OCTET_STREAM]
                .map(String::from)
                .to_vec(),
            max_bytes_by_type: [("image/png".to_owned(), 100)].into(),
            strip_image_metadata: true,
            unbound_attachments_to_room_mates: true,
        }
    }

    fn up<'a>(content_type: &'a str, head: &'a [u8], size: u64) -> MediaUploadRequest<'a> {
        MediaUploadRequest {
            uploader: "@a:x",
            content_type,
            head,
            size,
        }
    }

    const PNG: &[u8] = b"\x89PNG\r\n\x1a\n....";

    #[test]
    fn upload_rules() {
        let r = rules();
        let rule = |d: UploadDecision| d.unwrap_err().rule;
        assert_eq!(
            r.check_upload(&up("image/png", PNG, 10)),
            Ok(MediaTransform::StripMetadata)
        );
        assert_eq!(
            rule(r.check_upload(&up("image/svg+xml", b"<svg", 4))),
            RULE_MEDIA_TYPE_NOT_ALLOWED
        );
        assert_eq!(
            rule(r.check_upload(&up("image/png", PNG, 101))),
            RULE_MEDIA_TOO_LARGE
        );
        assert_eq!(
            rule(r.check_upload(&up("image/png", b"GIF89a..", 8))),
            RULE_MEDIA_TYPE_MISMATCH
        );
        assert_eq!(
            rule(r.check_upload(&up("image/jpeg", PNG, 8))),
            RULE_MEDIA_TYPE_MISMATCH
        );
        assert_eq!(
            rule(r.check_upload(&up("text/plain", PNG, 8))),
            RULE_MEDIA_TYPE_MISMATCH
        );
        assert_eq!(
            r.check_upload(&up("text/plain", b"hello", 5)),
            Ok(MediaTransform::Keep)
        );
        // Ciphertext is opaque: allowed; an image labelled octet-stream is still stripped.
        assert_eq!(
            r.check_upload(&up(OCTET_STREAM, b"\x13\x37", 2)),
            Ok(MediaTransform::Keep)
        );
        assert_eq!(
            r.check_upload(&up(OCTET_STREAM, PNG, 2)),
            Ok(MediaTransform::StripMetadata)
        );
        assert_eq!(
            crate::AllowAll.check_media_upload(&up("x/y", b"", 0)),
            Ok(MediaTransform::Keep)
        );
    }

    #[test]
    fn sniffs_formats() {
        assert_eq!(sniff(b"\xff\xd8\xff\xe0"), Some("image/jpeg"));
        assert_eq!(sniff(b"RIFF\0\0\0\0WEBPVP8 "), Some("image/webp"));
        assert_eq!(sniff(b"\n\n%PDF-1.7"), Some("application/pdf"));
        assert_eq!(sniff(b"\0\0\0\x18ftypmp42"), Some("video/mp4"));
        assert_eq!(sniff(b"plain text"), None);
        assert_eq!(sniff(b""), None);
    }

    #[test]
    fn download_rules() {
        let r = rules();
        let mut req = MediaDownloadRequest {
            user: "@b:x",
            uploader: "@a:x",
            content_type: "image/png",
            bound_room: Some("!r:x"),
            member_of_bound_room: true,
            shares_room_with_uploader: true,
        };
        assert!(r.check_download(&req).is_ok());
        req.member_of_bound_room = false;
        assert_eq!(
            r.check_download(&req).unwrap_err().rule,
            RULE_MEDIA_NOT_IN_YOUR_ROOMS
        );
        // Bound media: even the uploader needs to be in the room.
        req.user = "@a:x";
        assert!(r.check_download(&req).is_err());
        req.bound_room = None;
        assert!(r.check_download(&req).is_ok());
        req.user = "@b:x";
        assert!(r.check_download(&req).is_err());
        req.content_type = OCTET_STREAM;
        assert!(r.check_download(&req).is_ok());
        req.shares_room_with_uploader = false;
        assert!(r.check_download(&req).is_err());
        req.bound_room = Some(PROFILE_BINDING);
        assert!(r.check_download(&req).is_ok());
    }
}
