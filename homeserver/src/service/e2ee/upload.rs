//! /keys/upload, /keys/query, /keys/claim, and the one-time-key counts /sync reports.

use std::collections::BTreeMap;

use ruma::api::client::keys::{claim_keys, get_keys, upload_keys};
use ruma::encryption::{CrossSigningKey, DeviceKeys, OneTimeKey};
use ruma::serde::Raw;
use ruma::{OneTimeKeyAlgorithm, OwnedDeviceId, OwnedUserId, UInt, UserId};
use serde_json::Value;

use super::KeyService;
use crate::error::{Error, Result};
use crate::service::blocking;
use crate::service::users::Session;
use crate::store::StoreError;
use crate::store::keys::KeyUpload;

/// Who a key answer is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum View {
    /// A local client: device display names, and every uploaded signature.
    Client,
    /// Another server: no device display names (as Synapse's default: they often name a
    /// person or a ward), and only the owner's own signatures (who verified whom stays here).
    Federation,
}

/// Parsed key JSON with the fields that are not the key itself removed, for comparisons.
fn key_material(json: &str) -> Value {
    let mut v: Value = serde_json::from_str(json).unwrap_or_default();
    if let Some(o) = v.as_object_mut() {
        o.remove("signatures");
        o.remove("unsigned");
    }
    v
}

pub(super) fn raw<T>(json: &str) -> Result<Raw<T>> {
    let boxed =
        serde_json::value::RawValue::from_string(json.to_owned()).map_err(Error::internal)?;
    Ok(Raw::from_json(boxed))
}

/// Adds stored extra signatures `(signer user, key id, signature)` to a key's JSON.
pub(super) fn merge_signatures(json: &str, extra: &[(&str, &str, &str)]) -> String {
    if extra.is_empty() {
        return json.to_owned();
    }
    let mut v: Value = serde_json::from_str(json).unwrap_or_default();
    if let Some(o) = v.as_object_mut() {
        let sigs = o
            .entry("signatures")
            .or_insert_with(|| Value::Object(Default::default()));
        for (user, key_id, sig) in extra {
            if let Some(sigs) = sigs.as_object_mut() {
                let per_user = sigs
                    .entry(user.to_string())
                    .or_insert_with(|| Value::Object(Default::default()));
                per_user[*key_id] = Value::String(sig.to_string());
            }
        }
    }
    v.to_string()
}

impl KeyService {
    pub async fn upload_keys(
        &self,
        session: &Session,
        req: upload_keys::v3::Request,
    ) -> Result<upload_keys::v3::Response> {
        let (user, device) = (&session.user_id, &session.device_id);
        let mut upload = KeyUpload::default();
        if let Some(keys) = &req.device_keys {
            let parsed: DeviceKeys = keys
                .deserialize()
                .map_err(|e| Error::bad_json(format!("Invalid device_keys: {e}")))?;
            if parsed.user_id != *user || parsed.device_id != *device {
                return Err(Error::invalid_param(
                    "device_keys must be for the requesting user and device",
                ));
            }
            let new = keys.json().get();
            let store = self.store.clone();
            let (u, d) = (user.to_string(), device.to_string());
            let existing = blocking(move || Ok(store.device_keys(&u, &d)?)).await?;
            match existing {
                // A device's identity keys are fixed: clients must log in a new device instead.
                Some(old) if key_material(&old)["keys"] != key_material(new)["keys"] => {
                    return Err(Error::invalid_param(format!(
                        "Device {device} already has different identity keys"
                    )));
                }
                Some(old) if key_material(&old) == key_material(new) && old == new => {}
                _ => upload.device_keys = Some(new.to_owned()),
            }
        }
        upload.one_time_keys = split_keys(&req.one_time_keys)?;
        upload.fallback_keys = split_keys(&req.fallback_keys)?;
        let store = self.store.clone();
        let (u, d) = (user.to_string(), device.to_string());
        let keys_changed = upload.device_keys.is_some();
        blocking(move || match store.upload_keys(&u, &d, upload) {
            Err(StoreError::Conflict(_)) => Err(Error::invalid_param(
                "A one-time key with this id already exists with different content",
            )),
            other => Ok(other?),
        })
        .await?;
        if keys_changed {
            self.notify_key_change(user).await?;
            self.announce_devices(user, std::slice::from_ref(device))
                .await;
        }
        Ok(upload_keys::v3::Response::new(
            self.one_time_key_counts(user, device).await?,
        ))
    }

    /// Unclaimed one-time keys per algorithm (for /keys/upload and /sync).
    pub async fn one_time_key_counts(
        &self,
        user_id: &UserId,
        device_id: &ruma::DeviceId,
    ) -> Result<BTreeMap<OneTimeKeyAlgorithm, UInt>> {
        let store = self.store.clone();
        let (u, d) = (user_id.to_string(), device_id.to_string());
        let counts = blocking(move || Ok(store.one_time_key_counts(&u, &d)?)).await?;
        let mut out: BTreeMap<OneTimeKeyAlgorithm, UInt> = counts
            .into_iter()
            .map(|(a, n)| {
                (
                    OneTimeKeyAlgorithm::from(a.as_str()),
                    UInt::new_saturating(n),
                )
            })
            .collect();
        // Clients read a missing signed_curve25519 as "unknown"; zero makes them upload.
        out.entry(OneTimeKeyAlgorithm::SignedCurve25519)
            .or_insert(UInt::MIN);
        Ok(out)
    }

    /// Algorithms with an unused fallback key (/sync `device_unused_fallback_key_types`).
    pub async fn unused_fallback_key_types(
        &self,
        user_id: &UserId,
        device_id: &ruma::DeviceId,
    ) -> Result<Vec<OneTimeKeyAlgorithm>> {
        let store = self.store.clone();
        let (u, d) = (user_id.to_string(), device_id.to_string());
        let algs = blocking(move || Ok(store.unused_fallback_algorithms(&u, &d)?)).await?;
        Ok(algs.iter().map(|a| a.as_str().into()).collect())
    }

    pub async fn query_keys(
        &self,
        session: &Session,
        req: get_keys::v3::Request,
    ) -> Result<get_keys::v3::Response> {
        let mut res = get_keys::v3::Response::new();
        let (local, remote): (Vec<_>, Vec<_>) =
            req.device_keys.iter().partition(|(u, _)| self.is_local(u));
        let remote = remote.into_iter().map(|(u, d)| (u.clone(), d.clone()));
        self.query_remote(remote.collect(), req.timeout, &mut res)
            .await?;
        for (user, wanted) in local {
            let devices = self.device_keys_of(user, wanted, View::Client).await?;
            if !devices.is_empty() || self.users.get_user(user).await?.is_some() {
                res.device_keys.insert(user.clone(), devices);
            }
            for (ty, key) in self.cross_signing_of(user).await? {
                let map = match ty.as_str() {
                    "master" => &mut res.master_keys,
                    "self_signing" => &mut res.self_signing_keys,
                    // Only the owner may see their user-signing key.
                    "user_signing" if user == &session.user_id => &mut res.user_signing_keys,
                    _ => continue,
                };
                map.insert(user.clone(), key);
            }
        }
        Ok(res)
    }

    /// The user's device keys (all when `wanted` is empty) with uploaded signatures merged in
    /// and, for a client, the device's display name under `unsigned`.
    pub(super) async fn device_keys_of(
        &self,
        user: &UserId,
        wanted: &[OwnedDeviceId],
        view: View,
    ) -> Result<BTreeMap<OwnedDeviceId, Raw<DeviceKeys>>> {
        let store = self.store.clone();
        let u = user.to_string();
        let (keys, sigs) =
            blocking(move || Ok((store.all_device_keys(&u)?, store.signatures_of(&u)?))).await?;
        let names: BTreeMap<OwnedDeviceId, Option<String>> = match view {
            View::Client => self
                .users
                .list_devices(user)
                .await?
                .into_iter()
                .map(|d| (d.device_id, d.display_name))
                .collect(),
            View::Federation => BTreeMap::new(),
        };
        let mut out = BTreeMap::new();
        for (device, json) in keys {
            let device: OwnedDeviceId = device.into();
            if !wanted.is_empty() && !wanted.contains(&device) {
                continue;
            }
            let extra: Vec<_> = sigs
                .iter()
                .filter(|s| s.0 == device.as_str() && shown(view, user, &s.1))
                .map(|s| (s.1.as_str(), s.2.as_str(), s.3.as_str()))
                .collect();
            let mut v: Value =
                serde_json::from_str(&merge_signatures(&json, &extra)).map_err(Error::internal)?;
            if let Some(Some(name)) = names.get(&device) {
                v["unsigned"]["device_display_name"] = Value::String(name.clone());
            }
            out.insert(device, raw(&v.to_string())?);
        }
        Ok(out)
    }

    /// `(key type, key)` of the user's cross-signing keys, uploaded signatures merged in.
    pub(super) async fn cross_signing_of(
        &self,
        user: &UserId,
    ) -> Result<Vec<(String, Raw<CrossSigningKey>)>> {
        self.cross_signing_view(user, View::Client).await
    }

    /// As `cross_signing_of`, with the signatures `view` may see.
    pub(super) async fn cross_signing_view(
        &self,
        user: &UserId,
        view: View,
    ) -> Result<Vec<(String, Raw<CrossSigningKey>)>> {
        let store = self.store.clone();
        let u = user.to_string();
        let (keys, sigs) =
            blocking(move || Ok((store.cross_signing_keys(&u)?, store.signatures_of(&u)?))).await?;
        keys.into_iter()
            .map(|(ty, json)| {
                let public = public_key_of(&json).unwrap_or_default();
                let extra: Vec<_> = sigs
                    .iter()
                    .filter(|s| s.0 == public && shown(view, user, &s.1))
                    .map(|s| (s.1.as_str(), s.2.as_str(), s.3.as_str()))
                    .collect();
                Ok((ty, raw(&merge_signatures(&json, &extra))?))
            })
            .collect()
    }

    pub async fn claim_keys(
        &self,
        req: claim_keys::v3::Request,
    ) -> Result<claim_keys::v3::Response> {
        let (local, remote): (Vec<_>, Vec<_>) = req
            .one_time_keys
            .into_iter()
            .partition(|(u, _)| self.is_local(u));
        let mut res = claim_keys::v3::Response::new(self.claim_local(local).await?);
        self.claim_remote(remote.into_iter().collect(), req.timeout, &mut res)
            .await;
        Ok(res)
    }

    /// Claims one key per wanted device of local users; users with nothing claimed are left out.
    pub(super) async fn claim_local(
        &self,
        wanted: impl IntoIterator<Item = (OwnedUserId, BTreeMap<OwnedDeviceId, OneTimeKeyAlgorithm>)>,
    ) -> Result<BTreeMap<OwnedUserId, claim_keys::v3::OneTimeKeys>> {
        let mut claimed = BTreeMap::new();
        for (user, devices) in wanted {
            let mut per_user = BTreeMap::new();
            for (device, algorithm) in devices {
                let store = self.store.clone();
                let (u, d, a) = (user.to_string(), device.to_string(), algorithm.to_string());
                if let Some((key_id, json)) =
                    blocking(move || Ok(store.claim_key(&u, &d, &a)?)).await?
                {
                    let key_id = key_id.try_into().map_err(Error::internal)?;
                    let key: Raw<OneTimeKey> = raw(&json)?;
                    per_user.insert(device, BTreeMap::from([(key_id, key)]));
                }
            }
            if !per_user.is_empty() {
                claimed.insert(user, per_user);
            }
        }
        // The owners' one-time key counts changed: their syncs (and an encrypted appservice
        // owning them, MSC3202) hear it.
        self.notifier.notify(claimed.keys().map(|u| &**u));
        Ok(claimed)
    }
}

/// Whether a stored signature by `signer` on a key of `owner` is shown to `view`.
fn shown(view: View, owner: &UserId, signer: &str) -> bool {
    view == View::Client || owner.as_str() == signer
}

/// `(algorithm, key name, JSON)` for each uploaded one-time or fallback key.
fn split_keys(
    keys: &BTreeMap<ruma::OwnedOneTimeKeyId, Raw<OneTimeKey>>,
) -> Result<Vec<(String, String, String)>> {
    keys.iter()
        .map(|(id, key)| {
            key.deserialize()
                .map_err(|e| Error::bad_json(format!("Invalid key {id}: {e}")))?;
            Ok((
                id.algorithm().to_string(),
                id.key_name().to_string(),
                key.json().get().to_owned(),
            ))
        })
        .collect()
}

/// The public key of a cross-signing key JSON: the one entry of `keys`, without `ed25519:`.
pub(super) fn public_key_of(json: &str) -> Option<String> {
    let v: Value = serde_json::from_str(json).ok()?;
    let (id, _) = v["keys"].as_object()?.iter().next()?;
    Some(id.strip_prefix("ed25519:").unwrap_or(id).to_owned())
}
