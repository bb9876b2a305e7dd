//! The NHS federation list: which organisations' servers this server may federate with.
//!
//! The list is a JSON document (docs/FEDERATION.md):
//! ```json
//! { "serial": 7,
//!   "organisations": [
//!     { "ods_code": "RRK", "name": "University Hospitals Birmingham",
//!       "servers": ["matrix.uhb.nhs.uk", "*.uhb.nhs.uk"] } ] }
//! ```
//! A server pattern is an exact server name (`host` or `host:port`, IP literals included) or a
//! `*.` wildcard standing for one or more whole leading labels (`*.uhb.nhs.uk` matches
//! `a.uhb.nhs.uk` and `a.b.uhb.nhs.uk`, never `uhb.nhs.uk`, `evil-uhb.nhs.uk` or
//! `uhb.nhs.uk.evil.example`). A port in the pattern must equal the server name's port; a
//! pattern without a port matches only server names without one.
//!
//! The list may be signed: a detached ed25519 signature over the list's canonical JSON (sorted
//! keys, no insignificant whitespace), base64 in a file beside it. When a signer key is pinned,
//! an unsigned or badly signed list is refused. [`LiveFederationList`] keeps the last good list
//! when a replacement is refused. This module does no I/O: the homeserver reads the files.

use std::sync::{Arc, RwLock};

use base64::Engine;
use ed25519_dalek::{Signature, VerifyingKey};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::{Decision, Denial};

/// Rule id: the peer server is not on the federation list.
pub const RULE_FEDERATION_NOT_LISTED: &str = "federation_not_listed";
/// Rule id: no federation list is configured, so no server may federate.
pub const RULE_FEDERATION_NO_LIST: &str = "federation_no_list";

/// Which way a federation exchange goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Direction {
    /// A remote server is asking us (its request has been received, not yet acted on).
    Inbound,
    /// We are about to contact a remote server (nothing has been sent yet).
    Outbound,
}

impl Direction {
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::Inbound => "inbound",
            Direction::Outbound => "outbound",
        }
    }
}

/// A federation exchange with `server_name` about to happen.
#[derive(Debug, Clone)]
pub struct FederationPeerRequest<'a> {
    pub server_name: &'a str,
    pub direction: Direction,
    /// What for, e.g. `request` (an inbound signed request), `key_fetch`, `notary`, `version`.
    pub purpose: &'a str,
}

/// Why a list document was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ListError {
    /// Not JSON, or not the list's shape.
    Format(String),
    /// A server pattern or ODS code is not acceptable; names it.
    Entry(String),
    /// A signer key is pinned but the list has no signature.
    Unsigned,
    /// The signature does not verify with the pinned key (or is malformed).
    BadSignature(String),
    /// The list's serial is lower than the one in force (a rollback).
    OlderSerial { current: u64, offered: u64 },
}

impl std::fmt::Display for ListError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ListError::Format(m) => write!(f, "federation list is malformed: {m}"),
            ListError::Entry(m) => write!(f, "federation list entry refused: {m}"),
            ListError::Unsigned => write!(
                f,
                "federation list has no signature but a signer key is pinned"
            ),
            ListError::BadSignature(m) => write!(f, "federation list signature invalid: {m}"),
            ListError::OlderSerial { current, offered } => write!(
                f,
                "federation list serial {offered} is older than the list in force ({current})"
            ),
        }
    }
}

impl std::error::Error for ListError {}

/// The list document as written.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct ListDoc {
    serial: u64,
    organisations: Vec<OrgDoc>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct OrgDoc {
    ods_code: String,
    #[serde(default)]
    name: Option<String>,
    servers: Vec<String>,
}

/// One listed organisation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Organisation {
    /// The NHS Organisation Data Service code (e.g. `RRK`, `X26`).
    pub ods_code: String,
    pub name: Option<String>,
    pub servers: Vec<ServerPattern>,
}

/// A parsed server pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerPattern {
    /// Lowercased host (without `*.` for a wildcard; IPv6 in brackets).
    host: String,
    port: Option<u16>,
    wildcard: bool,
    text: String,
}

impl ServerPattern {
    /// Parses one pattern; refuses anything that is not an exact server name or a `*.` wildcard
    /// over at least two whole labels.
    pub fn parse(s: &str) -> Result<Self, ListError> {
        let bad = |why: &str| ListError::Entry(format!("server pattern `{s}`: {why}"));
        let lower = s.trim().to_ascii_lowercase();
        let (wildcard, rest) = match lower.strip_prefix("*.") {
            Some(r) => (true, r),
            None => (false, lower.as_str()),
        };
        let (host, port) = split_host_port(rest).ok_or_else(|| bad("not a server name"))?;
        if host.starts_with('[') {
            if wildcard {
                return Err(bad("an IP literal cannot have a wildcard"));
            }
            if host[1..host.len() - 1]
                .parse::<std::net::Ipv6Addr>()
                .is_err()
            {
                return Err(bad("invalid IPv6 literal"));
            }
        } else {
            let labels: Vec<&str> = host.split('.').collect();
            for l in &labels {
                if l.is_empty() || l.len() > 63 {
                    return Err(bad("empty or over-long label"));
                }
                if !l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
                    return Err(bad(
                        "only letters, digits and `-` are allowed; `*` only as a whole first label",
                    ));
                }
            }
            let is_ip = host.parse::<std::net::Ipv4Addr>().is_ok();
            if wildcard && (is_ip || labels.len() < 2) {
                return Err(bad(
                    "a wildcard must cover at least two whole labels, e.g. `*.trust.nhs.uk`",
                ));
            }
        }
        Ok(Self {
            host: host.to_owned(),
            port,
            wildcard,
            text: s.trim().to_owned(),
        })
    }

    /// Whether `server_name` (as sent by a peer or named as a destination) matches.
    pub fn matches(&self, server_name: &str) -> bool {
        let lower = server_name.to_ascii_lowercase();
        let Some((host, port)) = split_host_port(&lower) else {
            return false;
        };
        if port != self.port {
            return false;
        }
        if self.wildcard {
            // Anchored at a label boundary: `x.<host>`, with at least one non-empty label before.
            match host.strip_suffix(self.host.as_str()) {
                Some(prefix) => {
                    prefix.len() >= 2
                        && prefix.ends_with('.')
                        && prefix[..prefix.len() - 1]
                            .split('.')
                            .all(|l| !l.is_empty() && l != "*")
                }
                None => false,
            }
        } else {
            host == self.host
        }
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }
}

/// `host[:port]` -> (host, port). IPv6 literals keep their brackets. `None` if malformed.
fn split_host_port(s: &str) -> Option<(&str, Option<u16>)> {
    if s.is_empty() || s.ends_with('.') {
        return None;
    }
    if s.starts_with('[') {
        let end = s.find(']')?;
        let host = &s[..=end];
        let rest = &s[end + 1..];
        if rest.is_empty() {
            return Some((host, None));
        }
        let port = rest.strip_prefix(':')?.parse().ok()?;
        return Some((host, Some(port)));
    }
    match s.rsplit_once(':') {
        Some((h, p)) => {
            if h.is_empty()
                || h.contains(':')
                || p.is_empty()
                || !p.bytes().all(|b| b.is_ascii_digit())
            {
                return None;
            }
            Some((h, Some(p.parse().ok()?)))
        }
        None => Some((s, None)),
    }
}

/// A validated federation list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FederationList {
    pub serial: u64,
    pub organisations: Vec<Organisation>,
    /// Whether the list was verified against a pinned signer key.
    pub signed: bool,
}

impl FederationList {
    /// Parses and validates a list; with `signer`, `signature` (the detached signature file's
    /// contents) must verify over the list's canonical JSON.
    pub fn parse(
        bytes: &[u8],
        signature: Option<&[u8]>,
        signer: Option<&VerifyingKey>,
    ) -> Result<Self, ListError> {
        let value: Value =
            serde_json::from_slice(bytes).map_err(|e| ListError::Format(e.to_string()))?;
        let signed = match signer {
            Some(key) => {
                let sig = signature.ok_or(ListError::Unsigned)?;
                verify_detached(&value, sig, key)?;
                true
            }
            None => false,
        };
        let doc: ListDoc =
            serde_json::from_value(value).map_err(|e| ListError::Format(e.to_string()))?;
        let mut organisations = Vec::with_capacity(doc.organisations.len());
        for org in doc.organisations {
            let code = org.ods_code.trim();
            if code.len() < 3
                || code.len() > 10
                || !code
                    .bytes()
                    .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
            {
                return Err(ListError::Entry(format!(
                    "ODS code `{}` must be 3 to 10 upper-case letters or digits",
                    org.ods_code
                )));
            }
            if org.servers.is_empty() {
                return Err(ListError::Entry(format!(
                    "organisation {code} lists no servers"
                )));
            }
            let servers = org
                .servers
                .iter()
                .map(|s| ServerPattern::parse(s))
                .collect::<Result<Vec<_>, _>>()?;
            organisations.push(Organisation {
                ods_code: code.to_owned(),
                name: org.name,
                servers,
            });
        }
        Ok(Self {
            serial: doc.serial,
            organisations,
            signed,
        })
    }

    /// The organisation `server_name` belongs to, if it is listed.
    pub fn find(&self, server_name: &str) -> Option<&Organisation> {
        self.organisations
            .iter()
            .find(|o| o.servers.iter().any(|p| p.matches(server_name)))
    }
}

/// Parses a pinned signer key: unpadded or padded standard base64 of the 32-byte public key.
pub fn parse_verifying_key(b64: &str) -> Result<VerifyingKey, String> {
    let bytes = decode_b64(b64)?;
    let arr: [u8; 32] = bytes
        .try_into()
        .map_err(|_| "an ed25519 public key is 32 bytes".to_owned())?;
    VerifyingKey::from_bytes(&arr).map_err(|e| e.to_string())
}

fn decode_b64(s: &str) -> Result<Vec<u8>, String> {
    let t = s.trim().trim_end_matches('=');
    base64::engine::general_purpose::STANDARD_NO_PAD
        .decode(t)
        .map_err(|e| format!("bad base64: {e}"))
}

fn verify_detached(value: &Value, sig: &[u8], key: &VerifyingKey) -> Result<(), ListError> {
    let text = std::str::from_utf8(sig)
        .map_err(|_| ListError::BadSignature("signature file is not text".into()))?;
    let raw = decode_b64(text).map_err(ListError::BadSignature)?;
    let arr: [u8; 64] = raw
        .try_into()
        .map_err(|_| ListError::BadSignature("an ed25519 signature is 64 bytes".into()))?;
    let canonical = canonical_json(value).map_err(ListError::Format)?;
    key.verify_strict(canonical.as_bytes(), &Signature::from_bytes(&arr))
        .map_err(|_| ListError::BadSignature("does not verify with the pinned key".into()))
}

/// Matrix canonical JSON: object keys sorted by code point, no insignificant whitespace,
/// integers only. Independent of serde_json's map ordering features.
pub fn canonical_json(value: &Value) -> Result<String, String> {
    let mut out = String::new();
    write_canonical(value, &mut out)?;
    Ok(out)
}

fn write_canonical(v: &Value, out: &mut String) -> Result<(), String> {
    match v {
        Value::Null | Value::Bool(_) | Value::String(_) => {
            out.push_str(&serde_json::to_string(v).map_err(|e| e.to_string())?)
        }
        Value::Number(n) => {
            if !(n.is_i64() || n.is_u64()) {
                return Err(format!("non-integer number {n} in canonical JSON"));
            }
            out.push_str(&n.to_string());
        }
        Value::Array(a) => {
            out.push('[');
            for (i, x) in a.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(x, out)?;
            }
            out.push(']');
        }
        Value::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            out.push('{');
            for (i, k) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&serde_json::to_string(k).map_err(|e| e.to_string())?);
                out.push(':');
                write_canonical(&m[k], out)?;
            }
            out.push('}');
        }
    }
    Ok(())
}

/// The list in force, shared between the policy and whoever reloads it. A refused replacement
/// leaves the last good list in force.
#[derive(Debug, Clone)]
pub struct LiveFederationList {
    current: Arc<RwLock<Arc<FederationList>>>,
    signer: Option<VerifyingKey>,
}

impl LiveFederationList {
    /// Starts with an already validated list (use [`Self::load`] to parse the first one).
    pub fn new(list: FederationList, signer: Option<VerifyingKey>) -> Self {
        Self {
            current: Arc::new(RwLock::new(Arc::new(list))),
            signer,
        }
    }

    /// Parses the first list (refusing a bad one: there is no last good list yet).
    pub fn load(
        bytes: &[u8],
        signature: Option<&[u8]>,
        signer: Option<VerifyingKey>,
    ) -> Result<Self, ListError> {
        let list = FederationList::parse(bytes, signature, signer.as_ref())?;
        Ok(Self::new(list, signer))
    }

    pub fn current(&self) -> Arc<FederationList> {
        self.current
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// Replaces the list if the new one parses, verifies and is not older; otherwise keeps the
    /// list in force and says why.
    pub fn reload(
        &self,
        bytes: &[u8],
        signature: Option<&[u8]>,
    ) -> Result<Arc<FederationList>, ListError> {
        let list = FederationList::parse(bytes, signature, self.signer.as_ref())?;
        let mut guard = self
            .current
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if list.serial < guard.serial {
            return Err(ListError::OlderSerial {
                current: guard.serial,
                offered: list.serial,
            });
        }
        *guard = Arc::new(list);
        Ok(guard.clone())
    }

    /// The federation decision for one peer.
    pub fn check(&self, req: &FederationPeerRequest<'_>) -> Decision {
        let list = self.current();
        match list.find(req.server_name) {
            Some(_) => Ok(()),
            None => Err(Denial::new(
                RULE_FEDERATION_NOT_LISTED,
                format!(
                    "server {} is not on the NHS federation list (serial {})",
                    req.server_name, list.serial
                ),
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use ed25519_dalek::{Signer, SigningKey};

    use super::*;

    fn matches(pattern: &str, name: &str) -> bool {
        ServerPattern::parse(pattern).unwrap().matches(name)
    }

    #[test]
    fn wildcards_are_anchored_on_whole_labels() {
        assert!(matches("*.nhs.uk", "trust.nhs.uk"));
        assert!(matches("*.nhs.uk", "a.b.nhs.uk"));
        assert!(matches("*.nhs.uk", "TRUST.NHS.UK"));
        assert!(!matches("*.nhs.uk", "nhs.uk"));
        assert!(!matches("*.nhs.uk", "evilnhs.uk"));
        assert!(!matches("*.nhs.uk", "nhs.uk.evil.example"));
        assert!(!matches("*.nhs.uk", "trust.nhs.uk.evil.example"));
        assert!(!matches("*.nhs.uk", ".nhs.uk"));
        assert!(!matches("*.nhs.uk", "a..nhs.uk"));
        assert!(!matches("*.nhs.uk", "trust.nhs.uk."));
        // Ports must agree.
        assert!(!matches("*.nhs.uk", "trust.nhs.uk:8448"));
        assert!(matches("*.nhs.uk:8448", "trust.nhs.uk:8448"));
        assert!(!matches("*.nhs.uk:8448", "trust.nhs.uk:443"));
    }

    #[test]
    fn exact_names_match_exactly() {
        assert!(matches("matrix.uhb.nhs.uk", "matrix.uhb.nhs.uk"));
        assert!(!matches("matrix.uhb.nhs.uk", "x.matrix.uhb.nhs.uk"));
        assert!(!matches(
            "matrix.uhb.nhs.uk",
            "matrix.uhb.nhs.uk.evil.example"
        ));
        assert!(!matches("matrix.uhb.nhs.uk", "matrix.uhb.nhs.uk:8448"));
        assert!(matches("127.0.0.1:8448", "127.0.0.1:8448"));
        assert!(!matches("127.0.0.1:8448", "127.0.0.1:8449"));
        assert!(!matches("127.0.0.1:8448", "127.0.0.1"));
        assert!(matches("[::1]:8448", "[::1]:8448"));
    }

    #[test]
    fn bad_patterns_are_refused() {
        for p in [
            "*",
            "*.uk",
            "*nhs.uk",
            "a.*.nhs.uk",
            "nhs.*",
            "*.*.nhs.uk",
            "",
            "a..b",
            "x.nhs.uk.",
            "*.127.0.0.1",
            "*.[::1]",
            "[zz]",
            "a b.nhs.uk",
            "x:port",
        ] {
            assert!(ServerPattern::parse(p).is_err(), "{p} should be refused");
        }
    }

    fn doc(serial: u64, servers: &[&str]) -> Vec<u8> {
        serde_json::to_vec_pretty(&serde_json::json!({
            "serial": serial,
            "organisations": [{ "ods_code": "RRK", "name": "UHB", "servers": servers }]
        }))
        .unwrap()
    }

    fn sign(key: &SigningKey, bytes: &[u8]) -> Vec<u8> {
        let v: Value = serde_json::from_slice(bytes).unwrap();
        let sig = key.sign(canonical_json(&v).unwrap().as_bytes());
        base64::engine::general_purpose::STANDARD_NO_PAD
            .encode(sig.to_bytes())
            .into_bytes()
    }

    fn key(seed: u8) -> SigningKey {
        SigningKey::from_bytes(&[seed; 32])
    }

    #[test]
    fn find_names_the_organisation() {
        let l = FederationList::parse(&doc(1, &["*.uhb.nhs.uk"]), None, None).unwrap();
        assert_eq!(l.find("matrix.uhb.nhs.uk").unwrap().ods_code, "RRK");
        assert!(l.find("matrix.other.nhs.uk").is_none());
        assert!(!l.signed);
    }

    #[test]
    fn ods_codes_and_shape_are_checked() {
        let bad = br#"{"serial":1,"organisations":[{"ods_code":"r r","servers":["a.nhs.uk"]}]}"#;
        assert!(matches!(
            FederationList::parse(bad, None, None),
            Err(ListError::Entry(_))
        ));
        let extra = br#"{"serial":1,"organisations":[],"allow_all":true}"#;
        assert!(matches!(
            FederationList::parse(extra, None, None),
            Err(ListError::Format(_))
        ));
    }

    #[test]
    fn signature_verifies_and_tampering_fails() {
        let k = key(7);
        let pinned = k.verifying_key();
        let bytes = doc(1, &["*.uhb.nhs.uk"]);
        let sig = sign(&k, &bytes);
        let l = FederationList::parse(&bytes, Some(&sig), Some(&pinned)).unwrap();
        assert!(l.signed);
        // Whitespace and key order do not matter (canonical JSON)...
        let reordered = br#"{ "organisations": [ { "servers": ["*.uhb.nhs.uk"], "name": "UHB", "ods_code": "RRK" } ], "serial": 1 }"#;
        assert!(FederationList::parse(reordered, Some(&sig), Some(&pinned)).is_ok());
        // ...but any change of content does.
        let tampered = doc(1, &["*.uhb.nhs.uk", "*.evil.example"]);
        assert!(matches!(
            FederationList::parse(&tampered, Some(&sig), Some(&pinned)),
            Err(ListError::BadSignature(_))
        ));
        // Signed by someone else.
        let other = sign(&key(8), &bytes);
        assert!(matches!(
            FederationList::parse(&bytes, Some(&other), Some(&pinned)),
            Err(ListError::BadSignature(_))
        ));
        // Missing or garbage signature.
        assert_eq!(
            FederationList::parse(&bytes, None, Some(&pinned)),
            Err(ListError::Unsigned)
        );
        assert!(matches!(
            FederationList::parse(&bytes, Some(b"not base64!"), Some(&pinned)),
            Err(ListError::BadSignature(_))
        ));
    }

    #[test]
    fn reload_keeps_the_last_good_list() {
        let k = key(9);
        let first = doc(1, &["a.nhs.uk"]);
        let live =
            LiveFederationList::load(&first, Some(&sign(&k, &first)), Some(k.verifying_key()))
                .unwrap();
        let req = |name: &'static str| FederationPeerRequest {
            server_name: name,
            direction: Direction::Inbound,
            purpose: "request",
        };
        assert!(live.check(&req("a.nhs.uk")).is_ok());
        assert_eq!(
            live.check(&req("b.nhs.uk")).unwrap_err().rule,
            RULE_FEDERATION_NOT_LISTED
        );

        // Invalid JSON, bad signature, unsigned, older serial: all refused, list unchanged.
        assert!(live.reload(b"{not json", None).is_err());
        let second = doc(2, &["b.nhs.uk"]);
        assert!(live.reload(&second, Some(&sign(&key(1), &second))).is_err());
        assert!(live.reload(&second, None).is_err());
        let old = doc(0, &["b.nhs.uk"]);
        assert!(matches!(
            live.reload(&old, Some(&sign(&k, &old))),
            Err(ListError::OlderSerial { .. })
        ));
        assert!(live.check(&req("a.nhs.uk")).is_ok());
        assert!(live.check(&req("b.nhs.uk")).is_err());

        // A good one replaces it.
        live.reload(&second, Some(&sign(&k, &second))).unwrap();
        assert!(live.check(&req("b.nhs.uk")).is_ok());
        assert!(live.check(&req("a.nhs.uk")).is_err());
        assert_eq!(live.current().serial, 2);
    }

    #[test]
    fn canonical_json_sorts_and_compacts() {
        let v: Value =
            serde_json::from_str(r#"{ "b": [1, {"z": "é", "a": null}], "a": true }"#).unwrap();
        assert_eq!(
            canonical_json(&v).unwrap(),
            r#"{"a":true,"b":[1,{"a":null,"z":"é"}]}"#
        );
        let f: Value = serde_json::from_str(r#"{"x": 1.5}"#).unwrap();
        assert!(canonical_json(&f).is_err());
    }
}
