//! `[clinical_media]`: the clinical media rules' settings.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// `[clinical_media]` (docs/GOVERNANCE.md, "Clinical media"). Every key has a default so
/// configs written before the section existed still load.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClinicalMediaConfig {
    /// Content types (essence, e.g. `image/png`) that may be uploaded.
    #[serde(default = "default_allowed_types")]
    pub allowed_types: Vec<String>,
    /// Per-type caps in bytes, below `media.max_upload_bytes`; unlisted types get only that.
    #[serde(default = "default_max_bytes_by_type")]
    pub max_bytes_by_type: BTreeMap<String, u64>,
    /// Re-encode unencrypted JPEG/PNG/WebP uploads so EXIF (GPS, device) and other metadata
    /// never reach storage.
    #[serde(default = "super::yes")]
    pub strip_image_metadata: bool,
    /// Unbound `application/octet-stream` media (encrypted attachments) is served to users
    /// sharing a room with the uploader; off: only the uploader until it is bound.
    #[serde(default = "super::yes")]
    pub unbound_attachments_to_room_mates: bool,
    /// A malware scanner run on every upload: argv, the file on stdin, or in a temporary file
    /// named by a `{path}` argument. Exit 0 = clean; anything else quarantines. Empty: off.
    #[serde(default)]
    pub scanner_command: Vec<String>,
    /// A scan running longer than this quarantines the file (fail closed).
    #[serde(default = "default_scanner_timeout_secs")]
    pub scanner_timeout_secs: u64,
}

fn default_allowed_types() -> Vec<String> {
    [
        "image/jpeg",
        "image/png",
        "image/webp",
        "image/gif",
        "application/pdf",
        "text/plain",
        "video/mp4",
        "audio/ogg",
        "audio/mp4",
        // Encrypted attachments: the server cannot see inside them.
        "application/octet-stream",
    ]
    .map(String::from)
    .to_vec()
}

fn default_max_bytes_by_type() -> BTreeMap<String, u64> {
    const MIB: u64 = 1024 * 1024;
    [
        ("image/jpeg", 20 * MIB),
        ("image/png", 20 * MIB),
        ("image/webp", 20 * MIB),
        ("image/gif", 10 * MIB),
        ("text/plain", MIB),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect()
}

fn default_scanner_timeout_secs() -> u64 {
    60
}

impl Default for ClinicalMediaConfig {
    fn default() -> Self {
        Self {
            allowed_types: default_allowed_types(),
            max_bytes_by_type: default_max_bytes_by_type(),
            strip_image_metadata: true,
            unbound_attachments_to_room_mates: true,
            scanner_command: vec![],
            scanner_timeout_secs: default_scanner_timeout_secs(),
        }
    }
}

impl ClinicalMediaConfig {
    /// The policy-side rules (types normalised to lower case).
    pub fn rules(&self) -> handover_policy::MediaRules {
        handover_policy::MediaRules {
            allowed_types: self
                .allowed_types
                .iter()
                .map(|t| t.trim().to_ascii_lowercase())
                .collect(),
            max_bytes_by_type: self
                .max_bytes_by_type
                .iter()
                .map(|(k, v)| (k.trim().to_ascii_lowercase(), *v))
                .collect(),
            strip_image_metadata: self.strip_image_metadata,
            unbound_attachments_to_room_mates: self.unbound_attachments_to_room_mates,
        }
    }
}
