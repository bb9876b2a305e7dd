//! Typing notifications: in memory only (they expire in seconds), each change stamped with a
//! position in the global stream so /sync can say "changed since".

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ruma::{OwnedRoomId, OwnedUserId, RoomId, UserId};

use crate::error::Result;
use crate::service::appservice::ephemeral::EphemeralBuffer;
use crate::service::blocking;
use crate::service::notifier::Notifier;
use crate::service::peer::fanout::EduFanout;
use crate::service::rooms::RoomService;
use crate::store::receipts::ReceiptStore;

/// Longest typing timeout honoured, whatever the client asks.
const MAX_TIMEOUT: Duration = Duration::from_secs(120);

/// How long a remote user's typing lasts without a refresh: `m.typing` carries no timeout
/// (Synapse uses the same 60 s and refreshes every 40 s while the user types).
const FEDERATION_TIMEOUT: Duration = Duration::from_secs(60);

#[derive(Default)]
struct RoomTyping {
    users: HashMap<OwnedUserId, Instant>,
    pos: i64,
}

#[derive(Default)]
struct TypingMap(Mutex<HashMap<OwnedRoomId, RoomTyping>>);

pub struct TypingService {
    map: Arc<TypingMap>,
    store: Arc<dyn ReceiptStore>,
    rooms: Arc<RoomService>,
    notifier: Arc<Notifier>,
    /// Local typing goes to the room's other servers.
    fanout: Arc<EduFanout>,
    /// Appservices that asked for ephemeral events.
    appservices: Arc<EphemeralBuffer>,
}

impl TypingService {
    pub fn new(
        store: Arc<dyn ReceiptStore>,
        rooms: Arc<RoomService>,
        notifier: Arc<Notifier>,
        fanout: Arc<EduFanout>,
        appservices: Arc<EphemeralBuffer>,
    ) -> Arc<Self> {
        Arc::new(Self {
            map: Arc::default(),
            store,
            rooms,
            notifier,
            fanout,
            appservices,
        })
    }

    /// Sets or clears a local `user` typing in `room_id`; a typing state expires after
    /// `timeout`. The room's other servers are told.
    pub async fn set(
        self: &Arc<Self>,
        room_id: &RoomId,
        user: &UserId,
        typing: Option<Duration>,
    ) -> Result<()> {
        self.rooms.require_joined(room_id, user).await?;
        if self.apply(room_id, user, typing).await? {
            self.fanout.typing(room_id, user, typing.is_some()).await;
        }
        Ok(())
    }

    /// A typing notification from another server (`m.typing`). The caller has checked that the
    /// user belongs to the sending server and is joined to the room. Not sent on to anyone.
    pub async fn set_remote(
        self: &Arc<Self>,
        room_id: &RoomId,
        user: &UserId,
        typing: bool,
    ) -> Result<()> {
        self.apply(room_id, user, typing.then_some(FEDERATION_TIMEOUT))
            .await
            .map(|_| ())
    }

    /// Records the change; whether there was one.
    async fn apply(
        self: &Arc<Self>,
        room_id: &RoomId,
        user: &UserId,
        typing: Option<Duration>,
    ) -> Result<bool> {
        let until = typing.map(|t| Instant::now() + t.min(MAX_TIMEOUT));
        let changed = {
            let map = self.map.0.lock().expect("typing lock");
            let was = map.get(room_id).and_then(|r| r.users.get(user)).is_some();
            was || until.is_some()
        };
        if !changed {
            return Ok(false);
        }
        let who = user.to_owned();
        self.bump(room_id, move |users| match until {
            Some(t) => {
                users.insert(who, t);
            }
            None => {
                users.remove(&who);
            }
        })
        .await?;
        if let Some(t) = typing {
            let me = self.clone();
            let (r, u) = (room_id.to_owned(), user.to_owned());
            tokio::spawn(async move {
                tokio::time::sleep(t.min(MAX_TIMEOUT)).await;
                me.expire(&r, &u).await;
            });
        }
        Ok(true)
    }

    async fn expire(&self, room_id: &RoomId, user: &UserId) {
        let expired = {
            let map = self.map.0.lock().expect("typing lock");
            map.get(room_id)
                .and_then(|r| r.users.get(user))
                .is_some_and(|t| *t <= Instant::now())
        };
        if expired {
            let _ = self
                .bump(room_id, |users| {
                    users.retain(|_, t| *t > Instant::now());
                })
                .await;
            // Other servers hear that a local user stopped, rather than timing out later.
            if user.server_name() == self.rooms.server_name() {
                self.fanout.typing(room_id, user, false).await;
            }
        }
    }

    /// Applies `change` under a fresh stream position (before it commits), then wakes members.
    async fn bump(
        &self,
        room_id: &RoomId,
        change: impl FnOnce(&mut HashMap<OwnedUserId, Instant>) + Send + 'static,
    ) -> Result<()> {
        let map = self.map.clone();
        let store = self.store.clone();
        let rid = room_id.to_owned();
        blocking(move || {
            Ok(store.allocate_pos(Box::new(move |pos| {
                let mut m = map.0.lock().expect("typing lock");
                let room = m.entry(rid).or_default();
                change(&mut room.users);
                room.pos = pos;
            }))?)
        })
        .await?;
        let targets = self.rooms.current_state(room_id).await?.interested_users();
        self.notifier.notify(targets.iter().map(|u| &**u));
        if let Some(first) = targets.first() {
            let now = Instant::now();
            let typing: Vec<OwnedUserId> = (self.map.0.lock().expect("typing lock"))
                .get(room_id)
                .map(|r| {
                    r.users
                        .iter()
                        .filter(|(_, t)| **t > now)
                        .map(|(u, _)| u.clone())
                        .collect()
                })
                .unwrap_or_default();
            let event = serde_json::json!({
                "type": "m.typing",
                "room_id": room_id,
                "content": { "user_ids": typing },
            });
            let members = targets.iter().map(|u| &**u).collect();
            // No single sender (someone may have stopped): judged on the room's members.
            self.appservices.offer(room_id, first, members, event);
        }
        Ok(())
    }

    /// Users typing now, if the room's typing set changed after `since`.
    pub fn typing_since(&self, room_id: &RoomId, since: i64) -> Option<Vec<OwnedUserId>> {
        let map = self.map.0.lock().expect("typing lock");
        let room = map.get(room_id)?;
        (room.pos > since).then(|| {
            let now = Instant::now();
            room.users
                .iter()
                .filter(|(_, t)| **t > now)
                .map(|(u, _)| u.clone())
                .collect()
        })
    }
}
