//! Signed webhooks: `X-Handover-Signature: sha256=<hex HMAC-SHA256(secret, timestamp + "." + payload)>`
//! with `X-Handover-Timestamp: <unix seconds>`. The timestamp inside the MAC binds the
//! signature to a moment, and the replay window refuses old captures; within the window a
//! replay is only a retry (the alerts bridge is idempotent by alert id).

use hmac::{Hmac, Mac};
use sha2::Sha256;

pub const TIMESTAMP_HEADER: &str = "x-handover-timestamp";
pub const SIGNATURE_HEADER: &str = "x-handover-signature";

type HmacSha256 = Hmac<Sha256>;

/// Why a signature was refused (the message is safe to show the caller).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("missing X-Handover-Timestamp header")]
    MissingTimestamp,
    #[error("X-Handover-Timestamp must be Unix seconds")]
    BadTimestamp,
    #[error("timestamp is {skew_secs}s away from now; the replay window is {window_secs}s")]
    Stale { skew_secs: i64, window_secs: i64 },
    #[error("missing X-Handover-Signature header")]
    MissingSignature,
    #[error("X-Handover-Signature must be sha256=<64 hex digits>")]
    MalformedSignature,
    #[error("signature does not match")]
    Mismatch,
}

impl SignatureError {
    /// A short machine-readable code for the JSON error and the audit row.
    pub fn code(&self) -> &'static str {
        match self {
            Self::MissingTimestamp | Self::BadTimestamp => "bad_timestamp",
            Self::Stale { .. } => "stale_timestamp",
            Self::MissingSignature | Self::MalformedSignature => "bad_signature",
            Self::Mismatch => "bad_signature",
        }
    }
}

fn mac(secret: &[u8], timestamp: &str, payload: &[u8]) -> HmacSha256 {
    let mut m = HmacSha256::new_from_slice(secret).expect("HMAC takes keys of any length");
    m.update(timestamp.as_bytes());
    m.update(b".");
    m.update(payload);
    m
}

/// The header value for `payload` signed at `timestamp` (senders and the callback use it).
pub fn sign(secret: &[u8], timestamp: i64, payload: &[u8]) -> String {
    let tag = mac(secret, &timestamp.to_string(), payload)
        .finalize()
        .into_bytes();
    format!("sha256={}", hex::encode(tag))
}

/// Checks the headers against `payload`: timestamp within `window_secs` of `now_secs` (both
/// ways: a clock ahead is as suspicious as a replay) and the MAC, compared in constant time.
pub fn verify(
    secret: &[u8],
    timestamp: Option<&str>,
    signature: Option<&str>,
    payload: &[u8],
    now_secs: i64,
    window_secs: i64,
) -> Result<(), SignatureError> {
    let ts_str = timestamp.ok_or(SignatureError::MissingTimestamp)?.trim();
    let ts: i64 = ts_str.parse().map_err(|_| SignatureError::BadTimestamp)?;
    let skew = now_secs - ts;
    if skew.abs() > window_secs {
        return Err(SignatureError::Stale {
            skew_secs: skew,
            window_secs,
        });
    }
    let sig = signature.ok_or(SignatureError::MissingSignature)?.trim();
    let hex_tag = sig
        .strip_prefix("sha256=")
        .ok_or(SignatureError::MalformedSignature)?;
    let tag = hex::decode(hex_tag).map_err(|_| SignatureError::MalformedSignature)?;
    if tag.len() != 32 {
        return Err(SignatureError::MalformedSignature);
    }
    mac(secret, ts_str, payload)
        .verify_slice(&tag)
        .map_err(|_| SignatureError::Mismatch)
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_750_000_000;

    #[test]
    fn matches_openssl() {
        // printf '%s' '1750000000.{"a":1}' | openssl dgst -sha256 -hmac secret
        assert_eq!(
            sign(b"secret", NOW, br#"{"a":1}"#),
            "sha256=801fe104511cda3cd833e99ab98bd20d3ccdc9e83aa6a23d988ac197ac58bc30"
        );
    }

    #[test]
    fn round_trip_and_every_refusal() {
        let body = br#"{"alert_id":"1"}"#;
        let sig = sign(b"k", NOW, body);
        let ts = NOW.to_string();
        assert_eq!(
            verify(b"k", Some(&ts), Some(&sig), body, NOW + 10, 300),
            Ok(())
        );
        // Wrong secret, changed body, changed timestamp.
        assert_eq!(
            verify(b"other", Some(&ts), Some(&sig), body, NOW, 300),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify(b"k", Some(&ts), Some(&sig), b"{}", NOW, 300),
            Err(SignatureError::Mismatch)
        );
        let ts2 = (NOW + 1).to_string();
        assert_eq!(
            verify(b"k", Some(&ts2), Some(&sig), body, NOW, 300),
            Err(SignatureError::Mismatch)
        );
        // Replay outside the window, either direction.
        assert!(matches!(
            verify(b"k", Some(&ts), Some(&sig), body, NOW + 301, 300),
            Err(SignatureError::Stale { skew_secs: 301, .. })
        ));
        assert!(matches!(
            verify(b"k", Some(&ts), Some(&sig), body, NOW - 301, 300),
            Err(SignatureError::Stale { .. })
        ));
        assert_eq!(
            verify(b"k", None, Some(&sig), body, NOW, 300),
            Err(SignatureError::MissingTimestamp)
        );
        assert_eq!(
            verify(b"k", Some("yesterday"), Some(&sig), body, NOW, 300),
            Err(SignatureError::BadTimestamp)
        );
        assert_eq!(
            verify(b"k", Some(&ts), None, body, NOW, 300),
            Err(SignatureError::MissingSignature)
        );
        for bad in ["md5=00", "sha256=zz", "sha256=abcd", &sig[7..]] {
            assert_eq!(
                verify(b"k", Some(&ts), Some(bad), body, NOW, 300),
                Err(SignatureError::MalformedSignature),
                "{bad}"
            );
        }
    }
}
