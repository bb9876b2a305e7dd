//! Cross-signing: /keys/device_signing/upload (behind password UIA once a master key exists)
//! and /keys/signatures/upload (signatures merged into /keys/query answers).

use std::collections::BTreeMap;

use ruma::api::client::keys::{upload_signatures, upload_signing_keys};
use ruma::encryption::{CrossSigningKey, KeyUsage};
use ruma::serde::Raw;
use ruma::{OwnedUserId, UserId};
use serde_json::{Value, json};

use super::KeyService;
use super::upload::public_key_of;
use crate::error::{Error, Result};
use crate::service::blocking;
use crate::service::users::Session;
use crate::store::keys::SignatureRow;

type Failures = BTreeMap<OwnedUserId, BTreeMap<String, upload_signatures::v3::Failure>>;

fn failure(errcode: &str, error: &str) -> Result<upload_signatures::v3::Failure> {
    serde_json::from_value(json!({ "errcode": errcode, "error": error })).map_err(Error::internal)
}

/// Checks one uploaded cross-signing key: its owner, its usage, exactly one key.
fn parse_key(
    raw: &Raw<CrossSigningKey>,
    user: &UserId,
    usage: KeyUsage,
    name: &str,
) -> Result<(String, String)> {
    let key: CrossSigningKey = raw
        .deserialize()
        .map_err(|e| Error::bad_json(format!("Invalid {name}: {e}")))?;
    if key.user_id != user {
        return Err(Error::invalid_param(format!("{name} is for another user")));
    }
    if !key.usage.contains(&usage) {
        return Err(Error::invalid_param(format!("{name} has the wrong usage")));
    }
    if key.keys.len() != 1 {
        return Err(Error::invalid_param(format!(
            "{name} must hold exactly one key"
        )));
    }
    let json = raw.json().get().to_owned();
    let public = public_key_of(&json).ok_or_else(|| Error::bad_json("missing key"))?;
    Ok((public, json))
}

/// Checks `signatures[signer][key_id]` on `obj` against the ed25519 key `public` (unpadded
/// base64), over the canonical JSON without `signatures` and `unsigned`, as the spec signs.
pub(super) fn verify_signature(
    obj: &Value,
    signer: &str,
    key_id: &str,
    public: &str,
) -> std::result::Result<(), String> {
    use base64::Engine;
    use base64::engine::general_purpose::STANDARD_NO_PAD;
    use ruma::signatures::{
        SigningKeyAlgorithm, to_canonical_json_string_for_signing, verify_canonical_json_bytes,
    };
    let b64 = |s: &str| STANDARD_NO_PAD.decode(s.trim_end_matches('='));
    let sig = obj["signatures"][signer][key_id]
        .as_str()
        .ok_or_else(|| format!("no signature by {signer} with {key_id}"))?;
    let sig = b64(sig).map_err(|_| format!("signature {key_id} is not base64"))?;
    let public = b64(public).map_err(|_| format!("key {key_id} is not base64"))?;
    let obj: ruma::CanonicalJsonObject =
        serde_json::from_value(obj.clone()).map_err(|e| format!("not canonical JSON: {e}"))?;
    let canonical = to_canonical_json_string_for_signing(&obj).map_err(|e| e.to_string())?;
    verify_canonical_json_bytes(
        &SigningKeyAlgorithm::Ed25519,
        &public,
        &sig,
        canonical.as_bytes(),
    )
    .map_err(|_| format!("invalid signature {key_id} by {signer}"))
}

/// 400 `M_INVALID_SIGNATURE` (not a ruma `ErrorKind` variant: built from its errcode).
fn invalid_signature(message: String) -> Error {
    let kind = serde_json::from_value(json!({ "errcode": "M_INVALID_SIGNATURE" }))
        .unwrap_or(ruma::api::error::ErrorKind::InvalidParam);
    Error::new(http::StatusCode::BAD_REQUEST, kind, message)
}

/// A self-signing or user-signing key must be signed by the master key (the one uploaded with
/// it, else the stored one).
fn check_signed_by_master(json: &str, user: &UserId, master: &str, name: &str) -> Result<()> {
    let v: Value = serde_json::from_str(json).map_err(Error::internal)?;
    verify_signature(&v, user.as_str(), &format!("ed25519:{master}"), master)
        .map_err(|e| invalid_signature(format!("{name} is not signed by the master key: {e}")))
}

/// The key without its signatures and unsigned data: what a signature covers.
fn signed_part(v: &Value) -> Value {
    let mut v = v.clone();
    if let Some(o) = v.as_object_mut() {
        o.remove("signatures");
        o.remove("unsigned");
    }
    v
}

impl KeyService {
    pub async fn upload_signing_keys(
        &self,
        session: &Session,
        req: upload_signing_keys::v3::Request,
    ) -> Result<upload_signing_keys::v3::Response> {
        let user = &session.user_id;
        let existing = self.cross_signing_of(user).await?;
        let has_master = existing.iter().any(|(t, _)| t == "master");
        // First-time setup (matrix-sdk's bootstrap) needs no UIA, as in Synapse; replacing
        // keys does, so a stolen access token cannot take over the user's identity.
        if has_master {
            self.users
                .require_cross_signing_uia(session, req.auth.as_ref())
                .await?;
        }
        let mut keys = Vec::new();
        if let Some(k) = &req.master_key {
            let (public, json) = parse_key(k, user, KeyUsage::Master, "master_key")?;
            keys.push(("master".to_owned(), public, json));
        }
        if !has_master && keys.is_empty() {
            return Err(Error::missing_param("A master key must be uploaded first"));
        }
        let master = keys
            .first()
            .map(|(_, p, _)| p.clone())
            .or_else(|| {
                existing
                    .iter()
                    .find(|(t, _)| t == "master")
                    .and_then(|(_, j)| public_key_of(j.json().get()))
            })
            .ok_or_else(|| Error::internal("stored master key has no key"))?;
        if let Some(k) = &req.self_signing_key {
            let (public, json) = parse_key(k, user, KeyUsage::SelfSigning, "self_signing_key")?;
            check_signed_by_master(&json, user, &master, "self_signing_key")?;
            keys.push(("self_signing".to_owned(), public, json));
        }
        if let Some(k) = &req.user_signing_key {
            let (public, json) = parse_key(k, user, KeyUsage::UserSigning, "user_signing_key")?;
            check_signed_by_master(&json, user, &master, "user_signing_key")?;
            keys.push(("user_signing".to_owned(), public, json));
        }
        if keys.is_empty() {
            return Ok(upload_signing_keys::v3::Response::new());
        }
        // Other servers see the master and self-signing keys, never the user-signing key.
        let public_changed = keys.iter().any(|(t, _, _)| t != "user_signing");
        let store = self.store.clone();
        let u = user.to_string();
        blocking(move || Ok(store.set_cross_signing_keys(&u, keys)?)).await?;
        self.notify_key_change(user).await?;
        if public_changed {
            self.announce_signing_keys(user).await;
        }
        Ok(upload_signing_keys::v3::Response::new())
    }

    pub async fn upload_signatures(
        &self,
        session: &Session,
        req: upload_signatures::v3::Request,
    ) -> Result<upload_signatures::v3::Response> {
        let signer = &session.user_id;
        let mut failures: Failures = BTreeMap::new();
        for (target, signed) in &req.signed_keys {
            let mut rows: Vec<SignatureRow> = Vec::new();
            for (key_id, json) in signed.iter() {
                match self
                    .check_signed_key(signer, target, key_id, json.get())
                    .await?
                {
                    Ok(mut new) => rows.append(&mut new),
                    Err((code, msg)) => {
                        failures
                            .entry(target.clone())
                            .or_default()
                            .insert(key_id.to_owned(), failure(code, &msg)?);
                    }
                }
            }
            if !rows.is_empty() {
                // Only the owner's own signatures are shown to other servers (`View`).
                let signed: Vec<String> = if target == signer {
                    rows.iter().map(|r| r.0.clone()).collect()
                } else {
                    vec![]
                };
                let store = self.store.clone();
                let t = target.to_string();
                blocking(move || Ok(store.add_signatures(&t, rows)?)).await?;
                self.notify_key_change(target).await?;
                self.announce_signed(target, signed).await;
            }
        }
        let mut res = upload_signatures::v3::Response::new();
        res.failures = failures;
        Ok(res)
    }

    /// The new signatures by `signer` on `target`'s key `key_id`, or why it is refused.
    async fn check_signed_key(
        &self,
        signer: &UserId,
        target: &UserId,
        key_id: &str,
        json: &str,
    ) -> Result<std::result::Result<Vec<SignatureRow>, (&'static str, String)>> {
        if !self.is_local(target) {
            return Ok(Err((
                "M_UNRECOGNIZED",
                "Signing keys of users on other servers needs federation".into(),
            )));
        }
        let Ok(uploaded) = serde_json::from_str::<Value>(json) else {
            return Ok(Err(("M_BAD_JSON", "Not a JSON object".into())));
        };
        // The target: a device of the signer's own, or a cross-signing key of the target.
        let store = self.store.clone();
        let (t, k) = (target.to_string(), key_id.to_owned());
        let own = signer == target;
        let stored = blocking(move || {
            if own && let Some(d) = store.device_keys(&t, &k)? {
                return Ok(Some(d));
            }
            Ok(store
                .cross_signing_keys(&t)?
                .into_iter()
                .filter(|(ty, _)| own || ty == "master")
                .map(|(_, j)| j)
                .find(|j| public_key_of(j).as_deref() == Some(k.as_str())))
        })
        .await?;
        let Some(stored) = stored else {
            return Ok(Err(("M_NOT_FOUND", format!("Unknown key {key_id}"))));
        };
        let stored: Value = serde_json::from_str(&stored).map_err(Error::internal)?;
        if signed_part(&stored) != signed_part(&uploaded) {
            return Ok(Err((
                "M_INVALID_SIGNATURE",
                "The signed key does not match the stored key".into(),
            )));
        }
        let new: Vec<SignatureRow> = uploaded["signatures"][signer.as_str()]
            .as_object()
            .into_iter()
            .flatten()
            .filter(|(id, _)| {
                stored["signatures"][signer.as_str()]
                    .get(id.as_str())
                    .is_none()
            })
            .filter_map(|(id, sig)| {
                Some((
                    key_id.to_owned(),
                    signer.to_string(),
                    id.clone(),
                    sig.as_str()?.to_owned(),
                ))
            })
            .collect();
        if new.is_empty() {
            return Ok(Err((
                "M_INVALID_SIGNATURE",
                format!("No new signature by {signer}"),
            )));
        }
        // Every new signature must verify with the signer's key it names: one of their devices
        // (`ed25519:<device id>`) or cross-signing keys (`ed25519:<public key>`).
        for (_, _, sig_id, _) in &new {
            let Some(name) = sig_id.strip_prefix("ed25519:") else {
                return Ok(Err((
                    "M_INVALID_SIGNATURE",
                    format!("{sig_id}: not ed25519"),
                )));
            };
            let Some(public) = self.signer_key(signer, name).await? else {
                return Ok(Err((
                    "M_INVALID_SIGNATURE",
                    format!("{sig_id} is not a key of {signer}"),
                )));
            };
            if let Err(e) = verify_signature(&uploaded, signer.as_str(), sig_id, &public) {
                return Ok(Err(("M_INVALID_SIGNATURE", e)));
            }
        }
        Ok(Ok(new))
    }

    /// The public ed25519 key `signer` signs with as `ed25519:<name>`: their device `name`'s
    /// key, or their cross-signing key whose public key is `name`.
    async fn signer_key(&self, signer: &UserId, name: &str) -> Result<Option<String>> {
        let store = self.store.clone();
        let (u, n) = (signer.to_string(), name.to_owned());
        blocking(move || {
            if let Some(d) = store.device_keys(&u, &n)? {
                let v: Value = serde_json::from_str(&d).map_err(Error::internal)?;
                if let Some(k) = v["keys"][format!("ed25519:{n}")].as_str() {
                    return Ok(Some(k.to_owned()));
                }
            }
            Ok(store
                .cross_signing_keys(&u)?
                .into_iter()
                .any(|(_, j)| public_key_of(&j).as_deref() == Some(n.as_str()))
                .then_some(n))
        })
        .await
    }
}
