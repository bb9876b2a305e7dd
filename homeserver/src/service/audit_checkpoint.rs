//! Signing, storing and reading audit checkpoints (`handover_compliance::checkpoint`).
//!
//! The audit key is its own ed25519 key (`data_dir/audit_signing.key`), not the federation key:
//! the federation key is published, used for every PDU and rotated when a peer needs it, and a
//! rotation would orphan every checkpoint signed before it. The audit key only signs
//! checkpoints; its public half is printed by `handover audit public-key` so the IG lead can
//! keep it away from the server and check against it (`audit verify --public-key`).

use std::io::Write;
use std::path::Path;

use base64::Engine;
use base64::engine::general_purpose::STANDARD_NO_PAD;
use handover_compliance::Checkpoint;
use handover_compliance::checkpoint::SIGNER;
use ruma::canonical_json::CanonicalJsonObject;
use ruma::serde::Base64;
use ruma::signatures::{PublicKeyMap, sign_json, verify_json};

use super::signing_key::{AUDIT_KEY_FILE, ServerKeys};

/// The public half of an audit key: `ed25519:<version> <unpadded base64>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditPublicKey {
    pub key_id: String,
    pub key: Vec<u8>,
}

impl AuditPublicKey {
    pub fn parse(line: &str) -> Result<Self, String> {
        let mut parts = line.split_whitespace();
        let (Some(key_id), Some(b64), None) = (parts.next(), parts.next(), parts.next()) else {
            return Err("expected `ed25519:<version> <base64 public key>`".into());
        };
        if !key_id.starts_with("ed25519:") {
            return Err(format!("{key_id}: not an ed25519 key id"));
        }
        let key = STANDARD_NO_PAD
            .decode(b64.trim_end_matches('='))
            .map_err(|e| format!("bad base64: {e}"))?;
        if key.len() != 32 {
            return Err(format!(
                "an ed25519 public key has 32 bytes, not {}",
                key.len()
            ));
        }
        Ok(Self {
            key_id: key_id.to_owned(),
            key,
        })
    }

    pub fn of(keys: &ServerKeys) -> Self {
        Self {
            key_id: keys.key_id(),
            key: keys.keypair.public_key().to_vec(),
        }
    }
}

/// The audit key's file in `data_dir`, made on first use.
pub fn load_or_generate(data_dir: &Path) -> anyhow::Result<ServerKeys> {
    ServerKeys::load_or_generate_file(&data_dir.join(AUDIT_KEY_FILE), "audit signing key")
}

/// The public half of the stored audit key, if there is one (never creates it).
pub fn stored_public_key(data_dir: &Path) -> anyhow::Result<Option<AuditPublicKey>> {
    if !data_dir.join(AUDIT_KEY_FILE).exists() {
        return Ok(None);
    }
    Ok(Some(AuditPublicKey::of(&load_or_generate(data_dir)?)))
}

fn to_canonical(
    m: serde_json::Map<String, serde_json::Value>,
) -> Result<CanonicalJsonObject, String> {
    serde_json::from_value(serde_json::Value::Object(m)).map_err(|e| e.to_string())
}

/// Signs (seq, hash, ts) with the audit key.
pub fn sign(keys: &ServerKeys, seq: i64, hash: &str, ts: i64) -> Result<Checkpoint, String> {
    let mut obj = to_canonical(Checkpoint::payload(seq, hash, ts))?;
    sign_json(SIGNER, &keys.keypair, &mut obj).map_err(|e| e.to_string())?;
    let key_id = keys.key_id();
    let signature = obj
        .get("signatures")
        .and_then(|s| serde_json::to_value(s).ok())
        .and_then(|s| s[SIGNER][&key_id].as_str().map(str::to_owned))
        .ok_or("sign_json left no signature")?;
    Ok(Checkpoint {
        seq,
        hash: hash.to_owned(),
        ts,
        key_id,
        signature,
    })
}

/// Checks a checkpoint's signature with `key`.
pub fn verify_signature(cp: &Checkpoint, key: &AuditPublicKey) -> Result<(), String> {
    if cp.key_id != key.key_id {
        return Err(format!(
            "signed by {} but the audit key is {}",
            cp.key_id, key.key_id
        ));
    }
    let obj = to_canonical(cp.signed_object())?;
    let map: PublicKeyMap = [(
        SIGNER.to_owned(),
        [(key.key_id.clone(), Base64::new(key.key.clone()))]
            .into_iter()
            .collect(),
    )]
    .into_iter()
    .collect();
    verify_json(&map, &obj).map_err(|e| format!("signature does not verify: {e}"))
}

/// Appends one checkpoint as a JSON line (Matrix signed-JSON form) and fsyncs it, so a
/// checkpoint the database holds is never missing from the external copy after a crash.
pub fn append_line(path: &Path, cp: &Checkpoint) -> std::io::Result<()> {
    let mut line = serde_json::to_string(&cp.signed_object())?;
    line.push('\n');
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .open(path)?;
    f.write_all(line.as_bytes())?;
    f.sync_data()
}

/// Every checkpoint in an external file (missing file: none). A line that does not parse is an
/// error: a damaged external copy must be looked at, not skipped.
pub fn read_file(path: &Path) -> Result<Vec<Checkpoint>, String> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(vec![]),
        Err(e) => return Err(format!("{}: {e}", path.display())),
    };
    let bad = |n: usize, why: &str| format!("{} line {}: {why}", path.display(), n + 1);
    let mut out = vec![];
    for (n, line) in text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
    {
        let v: serde_json::Value =
            serde_json::from_str(line).map_err(|e| bad(n, &e.to_string()))?;
        let sigs = v["signatures"][SIGNER]
            .as_object()
            .ok_or_else(|| bad(n, "no signature"))?;
        let (key_id, sig) = sigs.iter().next().ok_or_else(|| bad(n, "no signature"))?;
        out.push(Checkpoint {
            seq: v["seq"].as_i64().ok_or_else(|| bad(n, "no seq"))?,
            hash: v["hash"]
                .as_str()
                .ok_or_else(|| bad(n, "no hash"))?
                .to_owned(),
            ts: v["ts"].as_i64().ok_or_else(|| bad(n, "no ts"))?,
            key_id: key_id.clone(),
            signature: sig
                .as_str()
                .ok_or_else(|| bad(n, "bad signature"))?
                .to_owned(),
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signed_checkpoints_verify_and_tampered_ones_do_not() {
        let dir = tempfile::tempdir().unwrap();
        let keys = ServerKeys::load_or_generate_file(&dir.path().join("a.key"), "k").unwrap();
        let public = AuditPublicKey::parse(&keys.public_line()).unwrap();
        let cp = sign(&keys, 7, "abc", 1000).unwrap();
        verify_signature(&cp, &public).unwrap();
        let forged = Checkpoint {
            hash: "abd".into(),
            ..cp.clone()
        };
        assert!(verify_signature(&forged, &public).is_err());
        let other = ServerKeys::load_or_generate_file(&dir.path().join("b.key"), "k").unwrap();
        let mut other_public = AuditPublicKey::of(&other);
        other_public.key_id = public.key_id.clone();
        assert!(verify_signature(&cp, &other_public).is_err());

        let file = dir.path().join("cp.jsonl");
        append_line(&file, &cp).unwrap();
        append_line(&file, &sign(&keys, 9, "def", 2000).unwrap()).unwrap();
        let read = read_file(&file).unwrap();
        assert_eq!(read[0], cp);
        assert_eq!(read.len(), 2);
        verify_signature(&read[1], &public).unwrap();
    }
}
