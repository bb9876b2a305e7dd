//! Signing keys over federation: our own key response (`/_matrix/key/v2/server`), and the
//! verification of a remote server's key response before its keys enter the cache.

use std::collections::BTreeMap;

use ruma::api::federation::discovery::{ServerSigningKeys, VerifyKey};
use ruma::canonical_json::{CanonicalJsonObject, CanonicalJsonValue, to_canonical_value};
use ruma::serde::{Base64, Raw};
use ruma::signatures::{Ed25519KeyPair, PublicKeyMap, sign_json, verify_json};
use ruma::{MilliSecondsSinceUnixEpoch, OwnedServerSigningKeyId, ServerName, UInt};

use crate::store::server_keys::{CachedKey, KeyResponse};

/// How long others may cache our key response.
pub const OWN_VALIDITY_MS: i64 = 24 * 3600 * 1000;
/// The longest validity we accept from a remote response (the spec's 7-day cap).
pub const MAX_REMOTE_VALIDITY_MS: i64 = 7 * 24 * 3600 * 1000;

fn ts(ms: i64) -> MilliSecondsSinceUnixEpoch {
    MilliSecondsSinceUnixEpoch(UInt::new_saturating(ms.max(0) as u64))
}

fn ms(t: MilliSecondsSinceUnixEpoch) -> i64 {
    i64::try_from(u64::from(t.0)).unwrap_or(i64::MAX)
}

/// Our key response, valid for [`OWN_VALIDITY_MS`] from `now`, signed with our key.
pub fn own_response(
    server_name: &ServerName,
    key_pair: &Ed25519KeyPair,
    now: i64,
) -> Result<Raw<ServerSigningKeys>, String> {
    let mut keys = ServerSigningKeys::new(server_name.to_owned(), ts(now + OWN_VALIDITY_MS));
    let key_id: OwnedServerSigningKeyId = format!("ed25519:{}", key_pair.version())
        .try_into()
        .map_err(|e| format!("key id: {e}"))?;
    keys.verify_keys.insert(
        key_id,
        VerifyKey::new(Base64::new(key_pair.public_key().to_vec())),
    );
    let mut obj = to_object(&keys)?;
    obj.remove("signatures");
    sign(server_name, key_pair, obj)
}

/// Adds our signature to a (remote) key response, as a notary does.
pub fn countersign(
    raw: &str,
    server_name: &ServerName,
    key_pair: &Ed25519KeyPair,
) -> Result<Raw<ServerSigningKeys>, String> {
    let obj: CanonicalJsonObject = serde_json::from_str(raw).map_err(|e| e.to_string())?;
    sign(server_name, key_pair, obj)
}

fn sign(
    server_name: &ServerName,
    key_pair: &Ed25519KeyPair,
    mut obj: CanonicalJsonObject,
) -> Result<Raw<ServerSigningKeys>, String> {
    sign_json(server_name.as_str(), key_pair, &mut obj).map_err(|e| e.to_string())?;
    let raw = serde_json::value::to_raw_value(&obj).map_err(|e| e.to_string())?;
    Ok(Raw::from_json(raw))
}

fn to_object(keys: &ServerSigningKeys) -> Result<CanonicalJsonObject, String> {
    match to_canonical_value(keys).map_err(|e| e.to_string())? {
        CanonicalJsonValue::Object(o) => Ok(o),
        _ => Err("key response is not an object".into()),
    }
}

/// A remote key response that passed verification.
#[derive(Debug, Clone)]
pub struct VerifiedKeys {
    pub keys: Vec<CachedKey>,
    pub response: KeyResponse,
}

/// Checks a key response said to come from `origin`: it names `origin`, is self-signed by one of
/// its own `verify_keys`, and is still valid at `now` (validity capped at 7 days).
pub fn verify_response(origin: &ServerName, json: &str, now: i64) -> Result<VerifiedKeys, String> {
    let keys: ServerSigningKeys =
        serde_json::from_str(json).map_err(|e| format!("not a key response: {e}"))?;
    if keys.server_name != origin {
        return Err(format!(
            "response names {} instead of {origin}",
            keys.server_name
        ));
    }
    if keys.verify_keys.is_empty() {
        return Err("response has no verify_keys".into());
    }
    let mut obj: CanonicalJsonObject =
        serde_json::from_str(json).map_err(|e| format!("not canonical JSON: {e}"))?;
    // Only the origin's own signature is checked (and kept): notary signatures are not ours
    // to trust here.
    let own_sigs = obj
        .get("signatures")
        .and_then(|s| match s {
            CanonicalJsonValue::Object(m) => m.get(origin.as_str()).cloned(),
            _ => None,
        })
        .ok_or("response is not signed by its server")?;
    obj.insert(
        "signatures".into(),
        CanonicalJsonValue::Object(BTreeMap::from([(origin.to_string(), own_sigs)])),
    );
    let set = keys
        .verify_keys
        .iter()
        .map(|(id, k)| (id.to_string(), k.key.clone()))
        .collect();
    let map: PublicKeyMap = BTreeMap::from([(origin.to_string(), set)]);
    verify_json(&map, &obj).map_err(|e| format!("self-signature invalid: {e}"))?;

    let valid_until = ms(keys.valid_until_ts).min(now + MAX_REMOTE_VALIDITY_MS);
    if valid_until <= now {
        return Err("response has expired (valid_until_ts is in the past)".into());
    }
    let mut cached: Vec<CachedKey> = keys
        .verify_keys
        .iter()
        .map(|(id, k)| CachedKey {
            key_id: id.to_string(),
            public_key: k.key.encode(),
            valid_until_ts: valid_until,
            expired_ts: None,
        })
        .collect();
    for (id, old) in &keys.old_verify_keys {
        if keys.verify_keys.contains_key(id) {
            continue;
        }
        cached.push(CachedKey {
            key_id: id.to_string(),
            public_key: old.key.encode(),
            valid_until_ts: ms(old.expired_ts).min(valid_until),
            expired_ts: Some(ms(old.expired_ts)),
        });
    }
    let response_json = serde_json::to_string(&obj).map_err(|e| e.to_string())?;
    Ok(VerifiedKeys {
        keys: cached,
        response: KeyResponse {
            response_json,
            valid_until_ts: valid_until,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kp(v: &str) -> Ed25519KeyPair {
        Ed25519KeyPair::from_der(&Ed25519KeyPair::generate(), v.into()).unwrap()
    }

    #[test]
    fn own_response_verifies_as_a_remote_one() {
        let k = kp("a1");
        let name = <&ServerName>::try_from("b.nhs.uk:8448").unwrap();
        let raw = own_response(name, &k, 1_000).unwrap();
        let v = verify_response(name, raw.json().get(), 1_000).unwrap();
        assert_eq!(v.keys.len(), 1);
        assert_eq!(v.keys[0].key_id, "ed25519:a1");
        assert_eq!(v.keys[0].valid_until_ts, 1_000 + OWN_VALIDITY_MS);
        // Another server name, or a later time past validity, is refused.
        let other = <&ServerName>::try_from("c.nhs.uk:8448").unwrap();
        assert!(verify_response(other, raw.json().get(), 1_000).is_err());
        assert!(verify_response(name, raw.json().get(), 1_000 + OWN_VALIDITY_MS).is_err());
    }

    #[test]
    fn tampered_or_foreign_signed_responses_are_refused() {
        let k = kp("a1");
        let name = <&ServerName>::try_from("b.nhs.uk:8448").unwrap();
        let raw = own_response(name, &k, 1_000).unwrap();
        let mut v: serde_json::Value = serde_json::from_str(raw.json().get()).unwrap();
        v["valid_until_ts"] = serde_json::json!(9_999_999_999_999u64);
        assert!(verify_response(name, &v.to_string(), 1_000).is_err());
        // Keys swapped for an attacker's, signed by the attacker under the same name.
        let evil = kp("a1");
        let forged = own_response(name, &evil, 1_000).unwrap();
        let mut f: serde_json::Value = serde_json::from_str(forged.json().get()).unwrap();
        f["signatures"] = v["signatures"].clone();
        assert!(verify_response(name, &f.to_string(), 1_000).is_err());
        // A notary's countersignature does not change the verdict.
        let notary = kp("n1");
        let n = <&ServerName>::try_from("n.nhs.uk:8448").unwrap();
        let c = countersign(raw.json().get(), n, &notary).unwrap();
        assert!(verify_response(name, c.json().get(), 1_000).is_ok());
    }
}
