//! Encrypted appservices: for a registration with `org.matrix.msc3202: true`, each transaction
//! also carries what a `/sync` would give its users' devices (MSC3202, MSC4203):
//! - `de.sorunome.msc2409.to_device`: to-device messages queued for devices of its users (with
//!   `to_user_id` / `to_device_id`). They stay queued (`to_device_messages`) until a transaction
//!   carrying them is accepted, and the open transaction records their bound, so a retry (also
//!   after a restart) carries the same messages under the same txnId.
//! - `org.matrix.msc3202.device_lists`: users whose devices changed, or who newly share or no
//!   longer share a room, from the point of view of its users that have device keys; read from
//!   the device-list stream after the position the appservice last accepted (stored, v19).
//! - `org.matrix.msc3202.device_one_time_keys_count` / `device_unused_fallback_key_types`:
//!   current counts for its users' keyed devices: all of them in the first transaction after a
//!   start and in every retry, then those of users something happened to (a key claim, a
//!   to-device message, an event in their rooms: the sync notifier's wake-ups).

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};

use ruma::api::appservice::event::push_events::v1::{
    AnyAppserviceToDeviceEvent, DeviceLists, Request,
};
use ruma::serde::Raw;
use ruma::{OneTimeKeyAlgorithm, OwnedDeviceId, OwnedUserId, UInt, UserId};

use super::AppserviceService;
use super::registration::Appservice;
use super::registry::Registry;
use crate::error::Result;
use crate::service::blocking;
use crate::service::notifier::NotifyObserver;
use crate::store::appservice_crypto::{CryptoAck, CryptoUpto};

/// Most to-device messages in one transaction (one sendToDevice is never split).
const MAX_TO_DEVICE: usize = 1000;

pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Device-list changes seen by one user between two stream positions (the e2ee key service;
/// a trait so this lower layer does not call up into it).
pub trait DeviceListSource: Send + Sync {
    /// `(changed, left)` for `user` over `(since, upto]`.
    fn changes_for<'a>(
        &'a self,
        user: &'a UserId,
        since: i64,
        upto: i64,
    ) -> BoxFuture<'a, Result<(Vec<OwnedUserId>, Vec<OwnedUserId>)>>;
}

/// Users of encrypted appservices something happened to since their last transaction, fed by
/// the sync notifier (`Notifier::set_observer`).
#[derive(Default)]
pub struct CryptoWatch {
    dirty: Mutex<HashMap<String, BTreeSet<OwnedUserId>>>,
    /// Appservices that had their first transaction since this process started.
    started: Mutex<HashSet<String>>,
    /// Device-list position known to hold nothing new for the appservice (not stored: after a
    /// restart the range is read again, which finds the same nothing).
    floor: Mutex<HashMap<String, i64>>,
}

impl CryptoWatch {
    fn take(&self, id: &str) -> BTreeSet<OwnedUserId> {
        let mut d = self.dirty.lock().expect("crypto watch lock");
        d.remove(id).unwrap_or_default()
    }
}

/// The encryption part of one transaction and what its acceptance settles.
pub(super) struct CryptoPart {
    pub upto: CryptoUpto,
    to_device: Vec<Raw<AnyAppserviceToDeviceEvent>>,
    device_lists: DeviceLists,
    otk: BTreeMap<OwnedUserId, BTreeMap<OwnedDeviceId, BTreeMap<OneTimeKeyAlgorithm, UInt>>>,
    fallback: BTreeMap<OwnedUserId, BTreeMap<OwnedDeviceId, Vec<OneTimeKeyAlgorithm>>>,
    pub ack: CryptoAck,
}

impl CryptoPart {
    /// Nothing to send. Counts make a transaction too: after a claim of its last one-time
    /// key the appservice must hear it even when nothing else happens.
    pub fn is_empty(&self) -> bool {
        self.to_device.is_empty() && self.device_lists.is_empty() && self.otk.is_empty()
    }

    pub fn apply(&self, req: &mut Request) {
        req.to_device = self.to_device.clone();
        req.device_lists = self.device_lists.clone();
        req.device_one_time_keys_count = self.otk.clone();
        req.device_unused_fallback_key_types = self.fallback.clone();
    }
}

impl AppserviceService {
    /// The callback for `Notifier::set_observer`: marks users of encrypted appservices and
    /// wakes their workers. `None` when no registration asks for MSC3202.
    pub fn crypto_observer(&self) -> Option<NotifyObserver> {
        if !self
            .registry
            .all()
            .iter()
            .any(|a| a.msc3202 && a.url().is_some())
        {
            return None;
        }
        let (registry, watch): (Arc<Registry>, Arc<CryptoWatch>) =
            (self.registry.clone(), self.crypto_watch.clone());
        Some(Arc::new(move |user: &UserId| {
            for a in registry.all() {
                if a.msc3202 && a.url().is_some() && a.controls_user(user) {
                    {
                        let mut d = watch.dirty.lock().expect("crypto watch lock");
                        d.entry(a.id().to_owned())
                            .or_default()
                            .insert(user.to_owned());
                    }
                    registry.wake_id(a.id());
                }
            }
        }))
    }

    /// Gives the device-list computation (the key service, built after this one).
    pub fn set_device_lists(&self, source: Arc<dyn DeviceListSource>) {
        let _ = self.device_lists.set(source);
    }

    /// The accepted device-list position of `a` (from where a new transaction reads).
    pub(super) async fn device_list_from(&self, a: &Appservice) -> Result<i64> {
        let (store, id, start) = (
            self.crypto_store.clone(),
            a.id().to_owned(),
            self.rooms.current_pos(),
        );
        let stored = blocking(move || Ok(store.device_list_pos(&id, start)?)).await?;
        let floor = self.crypto_watch.floor.lock().expect("crypto watch lock");
        Ok(floor.get(a.id()).copied().unwrap_or(i64::MIN).max(stored))
    }

    /// A new transaction's encryption part, up to now.
    pub(super) async fn new_crypto_part(&self, a: &Appservice) -> Result<CryptoPart> {
        let from = self.device_list_from(a).await?;
        let now = self.rooms.current_pos();
        let upto = CryptoUpto {
            device_lists: now.max(from),
            to_device: now,
        };
        let first = self
            .crypto_watch
            .started
            .lock()
            .expect("crypto watch lock")
            .insert(a.id().to_owned());
        let dirty = self.crypto_watch.take(a.id());
        let part = self.crypto_part(a, from, upto, first, dirty).await?;
        if part.is_empty() {
            let mut floor = self.crypto_watch.floor.lock().expect("crypto watch lock");
            floor.insert(a.id().to_owned(), part.upto.device_lists);
        }
        Ok(part)
    }

    /// The encryption part of a transaction over `(from, upto]`, with every keyed device's
    /// counts when `all_counts`, else those of `dirty` users and to-device recipients.
    pub(super) async fn crypto_part(
        &self,
        a: &Appservice,
        from: i64,
        mut upto: CryptoUpto,
        all_counts: bool,
        dirty: BTreeSet<OwnedUserId>,
    ) -> Result<CryptoPart> {
        let store = self.crypto_store.clone();
        let td_upto = upto.to_device;
        let (recipients, keyed) = blocking(move || {
            Ok((
                store.to_device_recipients()?,
                store.users_with_device_keys()?,
            ))
        })
        .await?;
        let mine = |list: Vec<String>| -> Vec<OwnedUserId> {
            list.into_iter()
                .filter_map(|u| OwnedUserId::try_from(u).ok())
                .filter(|u| a.controls_user(u))
                .collect()
        };
        let (recipients, keyed) = (mine(recipients), mine(keyed));

        // To-device messages, whole sendToDevice calls at a time.
        let store = self.crypto_store.clone();
        let users: Vec<String> = recipients.iter().map(|u| u.to_string()).collect();
        let rows =
            blocking(move || Ok(store.to_device_of(&users, td_upto, MAX_TO_DEVICE)?)).await?;
        if rows.len() >= MAX_TO_DEVICE
            && let Some(last) = rows.last()
        {
            upto.to_device = last.pos;
        }
        let mut ack = CryptoAck {
            device_lists: upto.device_lists,
            to_device: vec![],
        };
        let mut reached: BTreeMap<(String, String), i64> = BTreeMap::new();
        let mut to_device = Vec::with_capacity(rows.len());
        let mut got_messages: BTreeSet<OwnedUserId> = BTreeSet::new();
        for r in rows {
            let content: serde_json::Value =
                serde_json::from_str(&r.content).unwrap_or_else(|_| serde_json::json!({}));
            let ev = serde_json::json!({
                "type": r.event_type, "sender": r.sender, "content": content,
                "to_user_id": r.user_id, "to_device_id": r.device_id,
            });
            to_device.push(Raw::from_json(
                serde_json::value::to_raw_value(&ev).expect("JSON value serialises"),
            ));
            if let Ok(u) = OwnedUserId::try_from(r.user_id.as_str()) {
                got_messages.insert(u);
            }
            let e = reached.entry((r.user_id, r.device_id)).or_insert(r.pos);
            *e = (*e).max(r.pos);
        }
        ack.to_device = reached.into_iter().map(|((u, d), p)| (u, d, p)).collect();

        // Device lists, from the point of view of its users with keys.
        let mut device_lists = DeviceLists::new();
        if let Some(source) = self.device_lists.get()
            && from < upto.device_lists
            && !keyed.is_empty()
        {
            let (mut changed, mut left, mut sharing) =
                (BTreeSet::new(), BTreeSet::new(), HashSet::new());
            for u in &keyed {
                let (c, l) = source.changes_for(u, from, upto.device_lists).await?;
                changed.extend(c);
                left.extend(l);
                sharing.extend(self.rooms.users_sharing_rooms(u).await?);
            }
            left.retain(|u| !sharing.contains(u) && !changed.contains(u));
            device_lists.changed = changed.into_iter().collect();
            device_lists.left = left.into_iter().collect();
        }

        // One-time key counts and unused fallback key types of keyed devices.
        let counted: Vec<OwnedUserId> = keyed
            .into_iter()
            .filter(|u| all_counts || dirty.contains(u) || got_messages.contains(u))
            .collect();
        let (otk, fallback) = self.key_counts(counted).await?;
        Ok(CryptoPart {
            upto,
            to_device,
            device_lists,
            otk,
            fallback,
            ack,
        })
    }

    #[allow(clippy::type_complexity)] // the two maps of the transaction body, as ruma types them
    async fn key_counts(
        &self,
        users: Vec<OwnedUserId>,
    ) -> Result<(
        BTreeMap<OwnedUserId, BTreeMap<OwnedDeviceId, BTreeMap<OneTimeKeyAlgorithm, UInt>>>,
        BTreeMap<OwnedUserId, BTreeMap<OwnedDeviceId, Vec<OneTimeKeyAlgorithm>>>,
    )> {
        let keys = self.key_store.clone();
        let rows = blocking(move || {
            let mut out = Vec::new();
            for u in users {
                for (device, _) in keys.all_device_keys(u.as_str())? {
                    let counts = keys.one_time_key_counts(u.as_str(), &device)?;
                    let unused = keys.unused_fallback_algorithms(u.as_str(), &device)?;
                    out.push((u.clone(), device, counts, unused));
                }
            }
            Ok(out)
        })
        .await?;
        let (mut otk, mut fallback) = (BTreeMap::new(), BTreeMap::new());
        for (user, device, counts, unused) in rows {
            let device = OwnedDeviceId::from(device);
            let mut c: BTreeMap<OneTimeKeyAlgorithm, UInt> = counts
                .into_iter()
                .map(|(alg, n)| (alg.as_str().into(), UInt::new_saturating(n)))
                .collect();
            // As in /sync: a missing signed_curve25519 reads as "unknown"; zero asks for keys.
            c.entry(OneTimeKeyAlgorithm::SignedCurve25519)
                .or_insert(UInt::MIN);
            otk.entry(user.clone())
                .or_insert_with(BTreeMap::new)
                .insert(device.clone(), c);
            fallback
                .entry(user)
                .or_insert_with(BTreeMap::new)
                .insert(device, unused.iter().map(|a| a.as_str().into()).collect());
        }
        Ok((otk, fallback))
    }
}
