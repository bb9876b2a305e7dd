//! Keys of users on other servers, for /keys/query and /keys/claim: one request per server,
//! all servers at once, within the client's timeout, through the gated federation client (a
//! server off the federation list is never contacted and lands in `failures`, as does one that
//! does not answer in time or answers with an error).
//!
//! Device lists are cached (`remote_device_lists`) for users sharing a room with a local user:
//! their server then tells us of every change (`m.device_list_update`, `m.signing_key_update`).
//! A cached list is used only if (a) the user's device list has not changed since it was
//! fetched, and (b) since then, without a break, the user and a local user have both been
//! joined to one room (a membership row older than the fetch proves it: a leave would have
//! replaced it). Otherwise the server is asked again. Claims are never cached.
//!
//! Answers are checked: only users we asked about, on the server we asked, and keys whose
//! `user_id` / `device_id` match where they are filed.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use ruma::api::client::keys::{claim_keys as client_claim, get_keys as client_query};
use ruma::api::federation::keys::{claim_keys, get_keys};
use ruma::encryption::{CrossSigningKey, DeviceKeys};
use ruma::serde::Raw;
use ruma::{OwnedDeviceId, OwnedServerName, OwnedUserId, UserId};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tokio::task::JoinSet;

use super::KeyService;
use crate::error::{Error, Result};
use crate::service::blocking;
use crate::service::federation::client::{FederationError, Sign};

/// The spec's default for a client that names no timeout.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
/// The longest a client may make /keys/query or /keys/claim wait for other servers.
const MAX_TIMEOUT: Duration = Duration::from_secs(30);

/// One remote user's keys as their server answered (also the cached JSON).
#[derive(Debug, Default, Clone, Serialize, Deserialize)]
pub(super) struct UserKeys {
    device_keys: BTreeMap<OwnedDeviceId, Raw<DeviceKeys>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    master_key: Option<Raw<CrossSigningKey>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    self_signing_key: Option<Raw<CrossSigningKey>>,
}

type Wanted = BTreeMap<OwnedUserId, Vec<OwnedDeviceId>>;

fn timeout_of(t: Option<Duration>) -> Duration {
    t.unwrap_or(DEFAULT_TIMEOUT).min(MAX_TIMEOUT)
}

/// The `failures` entry for a server (status and message, as Synapse reports them).
fn failure(e: &FederationError) -> Value {
    let (status, message) = match e {
        FederationError::Denied { .. } => (403, e.to_string()),
        FederationError::Discovery(_) => (503, e.to_string()),
        FederationError::Remote { status, .. } => (*status, "the server refused".to_owned()),
        _ => (503, "the server could not be reached".to_owned()),
    };
    json!({ "status": status, "message": message })
}

fn timed_out() -> Value {
    json!({ "status": 504, "message": "the server did not answer in time" })
}

impl KeyService {
    /// Adds the keys of remote users to a /keys/query answer (failures by server).
    pub(super) async fn query_remote(
        &self,
        wanted: Wanted,
        timeout: Option<Duration>,
        res: &mut client_query::v3::Response,
    ) -> Result<()> {
        let fetched_pos = self.rooms.current_pos();
        let mut ask: BTreeMap<OwnedServerName, Wanted> = BTreeMap::new();
        let mut cacheable = BTreeSet::new();
        for (user, devices) in &wanted {
            if let Some(keys) = self.usable_cache(user).await? {
                merge(res, user, devices, keys);
                continue;
            }
            // For a list we will cache, ask for every device; the client's choice is applied here.
            let ask_for = if self.shares_room_since(user, i64::MAX).await? {
                cacheable.insert(user.clone());
                vec![]
            } else {
                devices.clone()
            };
            ask.entry(user.server_name().to_owned())
                .or_default()
                .insert(user.clone(), ask_for);
        }
        let mut tasks = JoinSet::new();
        for (server, users) in ask {
            let client = self.fed.client.clone();
            let limit = timeout_of(timeout);
            tasks.spawn(async move {
                let req = get_keys::v1::Request::new(users.clone());
                let sent = client.send(&server, req, "keys_query", Sign::AsRequired);
                let answer = tokio::time::timeout(limit, sent).await;
                (server, users, answer)
            });
        }
        while let Some(done) = tasks.join_next().await {
            let Ok((server, users, answer)) = done else {
                tracing::warn!(target: "handover::federation", "key query task failed");
                continue;
            };
            let answer = match answer {
                Ok(Ok(a)) => a,
                Ok(Err(e)) => {
                    tracing::info!(target: "handover::federation", %server, error = %e, "key query failed");
                    res.failures.insert(server.to_string(), failure(&e));
                    continue;
                }
                Err(_) => {
                    res.failures.insert(server.to_string(), timed_out());
                    continue;
                }
            };
            for (user, keys) in checked_query(&server, &users, answer) {
                if cacheable.contains(&user) {
                    self.save_cache(&user, fetched_pos, &keys).await?;
                }
                let devices = wanted.get(&user).map(Vec::as_slice).unwrap_or_default();
                merge(res, &user, devices, keys);
            }
        }
        Ok(())
    }

    /// Adds one-time keys claimed from other servers to a /keys/claim answer.
    pub(super) async fn claim_remote(
        &self,
        wanted: claim_keys::v1::OneTimeKeyClaims,
        timeout: Option<Duration>,
        res: &mut client_claim::v3::Response,
    ) {
        let mut ask: BTreeMap<OwnedServerName, claim_keys::v1::OneTimeKeyClaims> = BTreeMap::new();
        for (user, devices) in wanted {
            ask.entry(user.server_name().to_owned())
                .or_default()
                .insert(user, devices);
        }
        let mut tasks = JoinSet::new();
        for (server, users) in ask {
            let client = self.fed.client.clone();
            let limit = timeout_of(timeout);
            tasks.spawn(async move {
                let req = claim_keys::v1::Request::new(users.clone());
                let sent = client.send(&server, req, "keys_claim", Sign::AsRequired);
                let answer = tokio::time::timeout(limit, sent).await;
                (server, users, answer)
            });
        }
        while let Some(done) = tasks.join_next().await {
            let Ok((server, asked, answer)) = done else {
                tracing::warn!(target: "handover::federation", "key claim task failed");
                continue;
            };
            match answer {
                Ok(Ok(a)) => {
                    for (user, devices) in a.one_time_keys {
                        let Some(asked_devices) = asked.get(&user) else {
                            continue;
                        };
                        let devices: BTreeMap<_, _> = devices
                            .into_iter()
                            .filter(|(d, _)| asked_devices.contains_key(d))
                            .collect();
                        if !devices.is_empty() {
                            res.one_time_keys.insert(user, devices);
                        }
                    }
                }
                Ok(Err(e)) => {
                    tracing::info!(target: "handover::federation", %server, error = %e, "key claim failed");
                    res.failures.insert(server.to_string(), failure(&e));
                }
                Err(_) => {
                    res.failures.insert(server.to_string(), timed_out());
                }
            }
        }
    }

    /// The cached keys of a remote user, if still trustworthy (module docs); a stale entry is
    /// dropped.
    pub(super) async fn usable_cache(&self, user: &UserId) -> Result<Option<UserKeys>> {
        let store = self.fed.store.clone();
        let u = user.to_string();
        let found =
            blocking(move || Ok((store.cached_device_list(&u)?, store.device_list_pos(&u)?)))
                .await?;
        let (Some(cached), changed_at) = found else {
            return Ok(None);
        };
        let keys = serde_json::from_str::<UserKeys>(&cached.json).ok();
        if changed_at <= cached.fetched_pos
            && keys.is_some()
            && self.shares_room_since(user, cached.fetched_pos).await?
        {
            return Ok(keys);
        }
        let store = self.fed.store.clone();
        let u = user.to_string();
        blocking(move || Ok(store.drop_device_list(&u)?)).await?;
        Ok(None)
    }

    pub(super) async fn save_cache(
        &self,
        user: &UserId,
        fetched_pos: i64,
        keys: &UserKeys,
    ) -> Result<()> {
        let json = serde_json::to_string(keys).map_err(Error::internal)?;
        let store = self.fed.store.clone();
        let u = user.to_string();
        blocking(move || Ok(store.save_device_list(&u, fetched_pos, &json)?)).await
    }

    /// Whether the remote `user` and some local user have both been joined to one room since
    /// stream position `pos` or earlier (`i64::MAX`: joined now).
    async fn shares_room_since(&self, user: &UserId, pos: i64) -> Result<bool> {
        for m in self.rooms.memberships(user).await? {
            if m.membership != "join" || m.pos > pos {
                continue;
            }
            let rows = self.rooms.member_rows(&m.room_id).await?;
            if rows
                .iter()
                .any(|r| r.membership == "join" && r.pos <= pos && self.is_local(&r.user_id))
            {
                return Ok(true);
            }
        }
        Ok(false)
    }
}

/// The users of `server`'s answer that we asked about, with only well-filed keys.
fn checked_query(
    server: &OwnedServerName,
    asked: &Wanted,
    answer: get_keys::v1::Response,
) -> BTreeMap<OwnedUserId, UserKeys> {
    let ours = |u: &OwnedUserId| u.server_name() == server && asked.contains_key(u);
    let mut out: BTreeMap<OwnedUserId, UserKeys> = BTreeMap::new();
    for (user, devices) in answer.device_keys.into_iter().filter(|(u, _)| ours(u)) {
        let devices = devices
            .into_iter()
            .filter(|(d, raw)| {
                let ok = raw
                    .deserialize()
                    .is_ok_and(|k| k.user_id == user && k.device_id == *d);
                if !ok {
                    tracing::debug!(target: "handover::federation", %server, %user, device = %d, "misfiled device keys dropped");
                }
                ok
            })
            .collect();
        out.entry(user).or_default().device_keys = devices;
    }
    let key_ok = |user: &OwnedUserId, raw: &Raw<CrossSigningKey>| {
        ours(user) && raw.deserialize().is_ok_and(|k| k.user_id == *user)
    };
    for (user, key) in answer.master_keys {
        if key_ok(&user, &key) {
            out.entry(user).or_default().master_key = Some(key);
        }
    }
    for (user, key) in answer.self_signing_keys {
        if key_ok(&user, &key) {
            out.entry(user).or_default().self_signing_key = Some(key);
        }
    }
    out
}

/// Adds one user's keys (the `devices` asked for; all when empty) to a /keys/query answer.
fn merge(
    res: &mut client_query::v3::Response,
    user: &OwnedUserId,
    devices: &[OwnedDeviceId],
    keys: UserKeys,
) {
    let filtered: BTreeMap<_, _> = keys
        .device_keys
        .into_iter()
        .filter(|(d, _)| devices.is_empty() || devices.contains(d))
        .collect();
    res.device_keys.insert(user.clone(), filtered);
    if let Some(k) = keys.master_key {
        res.master_keys.insert(user.clone(), k);
    }
    if let Some(k) = keys.self_signing_key {
        res.self_signing_keys.insert(user.clone(), k);
    }
}
