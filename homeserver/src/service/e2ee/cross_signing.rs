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
                .require_password_uia(user, req.auth.as_ref())
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
        if let Some(k) = &req.self_signing_key {
            let (public, json) = parse_key(k, user, KeyUsage::SelfSigning, "self_signing_key")?;
            keys.push(("self_signing".to_owned(), public, json));
        }
        if let Some(k) = &req.user_signing_key {
            let (public, json) = parse_key(k, user, KeyUsage::UserSigning, "user_signing_key")?;
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
        Ok(Ok(new))
    }
}
