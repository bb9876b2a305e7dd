//! Presence: in memory only (not persisted: after a restart everyone is offline until they next
//! sync), each change stamped with a position in the global stream so /sync can say "changed
//! since", as typing does.
//!
//! Only a change of state or status message takes a stream position and wakes anyone. A sync
//! that merely confirms "still online" refreshes `last_active` in place: otherwise every sync
//! would wake every contact's sync, whose own presence refresh would wake this one, forever.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use ruma::api::client::filter::Filter;
use ruma::presence::PresenceState;
use ruma::serde::Raw;
use ruma::{OwnedUserId, UserId};
use serde_json::{Value, json};

use crate::error::{Error, Result};
use crate::service::blocking;
use crate::service::notifier::Notifier;
use crate::service::peer::fanout::EduFanout;
use crate::service::rooms::RoomService;
use crate::store::now_ms;
use crate::store::receipts::ReceiptStore;

/// Activity this recent counts as `currently_active` (clients long-poll for up to ~30 s).
const ACTIVE_WINDOW_MS: i64 = 60_000;

#[derive(Debug, Clone)]
struct Entry {
    state: PresenceState,
    status_msg: Option<String>,
    last_active_ms: i64,
    pos: i64,
    /// Set by the user's own /sync `set_presence`: news to others, not to the user themself.
    from_sync: bool,
}

/// A user's presence as shown to clients.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PresenceView {
    pub state: PresenceState,
    pub status_msg: Option<String>,
    pub last_active_ago_ms: Option<u64>,
    pub currently_active: bool,
}

impl Entry {
    fn view(&self, now: i64) -> PresenceView {
        let ago = (now - self.last_active_ms).max(0);
        PresenceView {
            state: self.state.clone(),
            status_msg: self.status_msg.clone(),
            last_active_ago_ms: Some(ago as u64),
            currently_active: self.state == PresenceState::Online && ago < ACTIVE_WINDOW_MS,
        }
    }
}

type PresenceMap = Arc<Mutex<HashMap<OwnedUserId, Entry>>>;

pub struct PresenceService {
    map: PresenceMap,
    store: Arc<dyn ReceiptStore>,
    rooms: Arc<RoomService>,
    notifier: Arc<Notifier>,
    /// Local users' changes go to the other servers sharing a room with them.
    fanout: Arc<EduFanout>,
}

impl PresenceService {
    pub fn new(
        store: Arc<dyn ReceiptStore>,
        rooms: Arc<RoomService>,
        notifier: Arc<Notifier>,
        fanout: Arc<EduFanout>,
    ) -> Self {
        Self {
            map: Arc::default(),
            store,
            rooms,
            notifier,
            fanout,
        }
    }

    /// `PUT /presence/{userId}/status`: only one's own presence can be set.
    pub async fn set(
        &self,
        requester: &UserId,
        target: &UserId,
        state: &PresenceState,
        status_msg: Option<String>,
    ) -> Result<()> {
        if requester != target {
            return Err(Error::forbidden(
                "You cannot set the presence of another user",
            ));
        }
        if !matches!(
            state,
            PresenceState::Online | PresenceState::Offline | PresenceState::Unavailable
        ) {
            return Err(Error::invalid_param(format!(
                "Unknown presence state '{}'",
                state.as_str()
            )));
        }
        self.update(requester, state.clone(), Some(status_msg), false)
            .await
    }

    /// `GET /presence/{userId}/status`: one's own, or that of someone sharing a joined room.
    /// A user who never set presence is offline.
    pub async fn get(&self, requester: &UserId, target: &UserId) -> Result<PresenceView> {
        if requester != target && !self.rooms.shares_room(requester, target).await? {
            return Err(Error::forbidden(
                "You are not allowed to see their presence",
            ));
        }
        let map = self.map.lock().expect("presence lock");
        Ok(map.get(target).map_or(
            PresenceView {
                state: PresenceState::Offline,
                status_msg: None,
                last_active_ago_ms: None,
                currently_active: false,
            },
            |e| e.view(now_ms()),
        ))
    }

    /// /sync's `set_presence`. `offline` means "do not mark me online" (spec), so it changes
    /// nothing; `online` is also activity, `unavailable` (idle) is not.
    pub async fn record_sync(&self, user: &UserId, set_presence: &PresenceState) -> Result<()> {
        match set_presence {
            PresenceState::Online | PresenceState::Unavailable => {
                self.update(user, set_presence.clone(), None, true).await
            }
            _ => Ok(()),
        }
    }

    /// Applies a new state (and status message, if given). A real change takes a stream
    /// position and wakes everyone sharing a room with the user.
    async fn update(
        &self,
        user: &UserId,
        state: PresenceState,
        status_msg: Option<Option<String>>,
        from_sync: bool,
    ) -> Result<()> {
        let now = now_ms();
        let active = !from_sync || state == PresenceState::Online;
        let next = {
            let mut map = self.map.lock().expect("presence lock");
            let old = map.get_mut(user);
            let msg = match (&status_msg, &old) {
                (Some(m), _) => m.clone(),
                (None, Some(o)) => o.status_msg.clone(),
                (None, None) => None,
            };
            match old {
                Some(o) if o.state == state && o.status_msg == msg => {
                    if active {
                        o.last_active_ms = now;
                    }
                    return Ok(());
                }
                o => Entry {
                    last_active_ms: match o {
                        Some(o) if !active => o.last_active_ms,
                        _ => now,
                    },
                    state,
                    status_msg: msg,
                    pos: 0,
                    from_sync,
                },
            }
        };
        let view = next.view(now);
        self.commit(user, next, from_sync).await?;
        // Another server's user sharing a room sees the change as well (presence from sync
        // included: that is how most clients say they are online).
        self.fanout.presence(user, &view).await;
        Ok(())
    }

    /// Presence of a user of another server (`m.presence`); the caller has checked the user
    /// belongs to the sending server. Kept only for users in a room with us (a local user
    /// could see it). Not sent on to anyone.
    pub async fn set_remote(
        &self,
        user: &UserId,
        state: PresenceState,
        status_msg: Option<String>,
        last_active_ago_ms: u64,
    ) -> Result<()> {
        if !matches!(
            state,
            PresenceState::Online | PresenceState::Offline | PresenceState::Unavailable
        ) || self.rooms.joined_rooms(user).await?.is_empty()
        {
            return Ok(());
        }
        let last_active_ms = now_ms() - i64::try_from(last_active_ago_ms).unwrap_or(i64::MAX / 2);
        let next = {
            let mut map = self.map.lock().expect("presence lock");
            match map.get_mut(user) {
                Some(o) if o.state == state && o.status_msg == status_msg => {
                    o.last_active_ms = o.last_active_ms.max(last_active_ms);
                    return Ok(());
                }
                _ => Entry {
                    state,
                    status_msg,
                    last_active_ms,
                    pos: 0,
                    from_sync: false,
                },
            }
        };
        self.commit(user, next, false).await
    }

    /// Stores `next` under a fresh stream position and wakes everyone sharing a room with the
    /// user (not the user themself for a change their own sync made).
    async fn commit(&self, user: &UserId, next: Entry, from_sync: bool) -> Result<()> {
        let map = self.map.clone();
        let store = self.store.clone();
        let who = user.to_owned();
        // The entry is stored with its position before the position commits, so a sync can
        // never see the position without the entry.
        blocking(move || {
            Ok(store.allocate_pos(Box::new(move |pos| {
                let mut m = map.lock().expect("presence lock");
                m.insert(who, Entry { pos, ..next });
            }))?)
        })
        .await?;
        let mut targets = self.rooms.users_sharing_rooms(user).await?;
        if from_sync {
            targets.remove(user);
        }
        self.notifier.notify(targets.iter().map(|u| &**u));
        Ok(())
    }

    /// The `m.presence` events for /sync: users sharing a joined room with `user` whose presence
    /// changed in `(since, upto]`. The flag says whether any of it is news that should end a
    /// long-poll (the user's own change made by their own sync is not).
    pub async fn events_for(
        &self,
        user: &UserId,
        since: i64,
        upto: i64,
        filter: &Filter,
    ) -> Result<(Vec<Raw<ruma::events::presence::PresenceEvent>>, bool)> {
        let changed: Vec<(OwnedUserId, Entry)> = {
            let map = self.map.lock().expect("presence lock");
            map.iter()
                .filter(|(u, e)| e.pos > since && e.pos <= upto && presence_allowed(filter, u))
                .map(|(u, e)| (u.clone(), e.clone()))
                .collect()
        };
        if changed.is_empty() {
            return Ok((vec![], false));
        }
        let sharing = self.rooms.users_sharing_rooms(user).await?;
        let now = now_ms();
        let mut news = false;
        let mut events = Vec::new();
        for (who, e) in changed.iter().filter(|(u, _)| sharing.contains(u)) {
            news |= *who != user || !e.from_sync;
            events.push(crate::service::rooms::format::to_raw(&presence_event(
                who,
                &e.view(now),
            )));
        }
        if let Some(limit) = filter.limit {
            events.truncate(u64::from(limit) as usize);
        }
        Ok((events, news))
    }
}

/// The `presence` filter of a sync filter: `types` / `senders` and their negations.
fn presence_allowed(f: &Filter, sender: &UserId) -> bool {
    let type_ok = |p: &String| match p.strip_suffix('*') {
        Some(prefix) => "m.presence".starts_with(prefix),
        None => p == "m.presence",
    };
    !f.not_types.iter().any(type_ok)
        && f.types.as_ref().is_none_or(|t| t.iter().any(type_ok))
        && !f.not_senders.iter().any(|s| s == sender)
        && f.senders
            .as_ref()
            .is_none_or(|s| s.iter().any(|s| s == sender))
}

fn presence_event(user: &UserId, v: &PresenceView) -> Value {
    let mut content = json!({
        "presence": v.state.as_str(),
        "currently_active": v.currently_active,
    });
    if let Some(ago) = v.last_active_ago_ms {
        content["last_active_ago"] = ago.into();
    }
    if let Some(m) = &v.status_msg {
        content["status_msg"] = m.clone().into();
    }
    json!({ "type": "m.presence", "sender": user, "content": content })
}

#[cfg(test)]
#[path = "presence_tests.rs"]
mod tests;
