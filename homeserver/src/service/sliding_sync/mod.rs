//! Simplified sliding sync (MSC4186), the sync Element X speaks. A connection (user, device,
//! conn_id) remembers which rooms the client was sent and up to which stream position
//! (`connection.rs`); each request computes the lists (`lists.rs`), the rooms that are new or
//! changed for the client (`rooms.rs`) and the extensions (`extensions.rs`). A long-poll waits
//! on the notifier like /sync v3: subscribe first, then read, so no commit is missed.

mod connection;
mod extensions;
mod lists;
mod required_state;
mod rooms;

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use http::StatusCode;
use ruma::OwnedRoomId;
use ruma::api::client::sync::sync_events::v5::{Request, Response, response};
use ruma::api::error::ErrorKind;

use self::connection::{ConnKey, Connections, SentRoom, Snapshot};
use self::extensions::ExtensionScope;
use super::account_data::AccountDataService;
use super::e2ee::KeyService;
use super::e2ee::to_device::ToDeviceService;
use super::ephemeral::presence::PresenceService;
use super::ephemeral::receipts::ReceiptService;
use super::ephemeral::typing::TypingService;
use super::notifier::Notifier;
use super::push::PushService;
use super::rooms::RoomService;
use super::users::Session;
use crate::error::{Error, Result};

pub struct SlidingSyncService {
    rooms: Arc<RoomService>,
    receipts: Arc<ReceiptService>,
    typing: Arc<TypingService>,
    presence: Arc<PresenceService>,
    account_data: Arc<AccountDataService>,
    push: Arc<PushService>,
    keys: Arc<KeyService>,
    to_device: Arc<ToDeviceService>,
    notifier: Arc<Notifier>,
    connections: Connections,
    max_timeout: Duration,
}

/// Everything a sliding-sync service needs, to keep `new` readable.
pub struct Deps {
    pub rooms: Arc<RoomService>,
    pub receipts: Arc<ReceiptService>,
    pub typing: Arc<TypingService>,
    pub presence: Arc<PresenceService>,
    pub account_data: Arc<AccountDataService>,
    pub push: Arc<PushService>,
    pub keys: Arc<KeyService>,
    pub to_device: Arc<ToDeviceService>,
    pub notifier: Arc<Notifier>,
}

/// One computed response, the client's knowledge after it, and whether any of it is news.
struct Computed {
    response: Response,
    snapshot: Snapshot,
    has_data: bool,
}

impl SlidingSyncService {
    pub fn new(d: Deps, max_timeout: Duration) -> Self {
        Self {
            rooms: d.rooms,
            receipts: d.receipts,
            typing: d.typing,
            presence: d.presence,
            account_data: d.account_data,
            push: d.push,
            keys: d.keys,
            to_device: d.to_device,
            notifier: d.notifier,
            connections: Connections::default(),
            max_timeout,
        }
    }

    pub async fn sync(&self, session: &Session, req: Request) -> Result<Response> {
        let key = ConnKey {
            user: session.user_id.clone(),
            device: session.device_id.clone(),
            conn_id: req.conn_id.clone().unwrap_or_default(),
        };
        let snapshot = self
            .connections
            .resume(&key, req.pos.as_deref())
            .ok_or_else(unknown_pos)?;
        // No timeout means "answer now" (as Synapse), never an unbounded wait.
        let wait = req.timeout.unwrap_or(Duration::ZERO).min(self.max_timeout);
        let deadline = Instant::now() + wait;
        self.presence
            .record_sync(&session.user_id, &req.set_presence)
            .await?;
        // Subscribe before reading anything, so a commit in between still wakes us.
        let mut wake = self.notifier.subscribe(&session.user_id);
        let c = loop {
            wake.borrow_and_update();
            let upto = self.rooms.current_pos();
            let c = self.compute(session, &req, &snapshot, upto).await?;
            if c.has_data || req.pos.is_none() || Instant::now() >= deadline {
                break c;
            }
            if tokio::time::timeout_at(deadline.into(), wake.changed())
                .await
                .is_err()
            {
                break c;
            }
        };
        let mut response = c.response;
        response.pos = self.connections.store(&key, c.snapshot);
        response.txn_id = req.txn_id.clone();
        Ok(response)
    }

    async fn compute(
        &self,
        session: &Session,
        req: &Request,
        prev: &Snapshot,
        upto: i64,
    ) -> Result<Computed> {
        let user = &session.user_id;
        let candidates = self.candidates(user, prev, upto).await?;
        let selection = lists::select(&candidates, &req.lists, &req.room_subscriptions);
        let mut response = Response::new(String::new());
        let mut has_data = selection.counts != prev.counts;
        for (name, count) in &selection.counts {
            let mut l = response::List::default();
            l.count = ruma::UInt::new_saturating(*count);
            response.lists.insert(name.clone(), l);
        }

        let mut next = Snapshot {
            pos: upto,
            rooms: prev.rooms.clone(),
            counts: selection.counts.clone(),
        };
        // Rooms the user no longer belongs to are forgotten, so a rejoin is a fresh send.
        let listed: HashSet<&OwnedRoomId> = candidates
            .iter()
            .filter(|c| c.in_lists())
            .map(|c| &c.room_id)
            .collect();
        next.rooms.retain(|r, _| listed.contains(r));
        let mut initial = HashSet::new();
        for cand in &candidates {
            let config = match selection.configs.get(&cand.room_id) {
                Some(c) => c.clone(),
                None if !cand.in_lists() => match prev.rooms.get(&cand.room_id) {
                    // Newly left: tell the client once, with what it was sent before.
                    Some(s) => lists::RoomConfig {
                        required_state: s.required_state.clone(),
                        timeline_limit: 1,
                    },
                    None => continue,
                },
                None => continue,
            };
            let sent = prev.rooms.get(&cand.room_id);
            if let Some(room) = self.room(session, cand, &config, sent, upto).await? {
                if room.initial == Some(true) {
                    initial.insert(cand.room_id.clone());
                }
                response.rooms.insert(cand.room_id.clone(), room);
            }
            if cand.in_lists() {
                next.rooms.insert(
                    cand.room_id.clone(),
                    SentRoom {
                        pos: upto,
                        membership: cand.membership.clone(),
                        required_state: config.required_state,
                    },
                );
            }
        }
        has_data |= !response.rooms.is_empty();

        let scope = ExtensionScope {
            user,
            device: &session.device_id,
            since: prev.pos,
            upto,
            selection: &selection,
            joined: candidates
                .iter()
                .filter(|c| c.membership == "join")
                .map(|c| &c.room_id)
                .collect(),
            initial: &initial,
        };
        response.extensions = self.extensions(&req.extensions, &scope).await?;
        let e = &response.extensions;
        has_data |= !(e.account_data.is_empty()
            && e.receipts.is_empty()
            && e.typing.is_empty()
            // Key counts are always there; only device-list changes are news.
            && e.e2ee.device_lists.is_empty()
            && e.to_device.as_ref().is_none_or(|t| t.events.is_empty()));
        Ok(Computed {
            response,
            snapshot: next,
            has_data,
        })
    }
}

/// MSC4186: an unknown or expired `pos` tells the client to start a new connection.
fn unknown_pos() -> Error {
    Error::new(
        StatusCode::BAD_REQUEST,
        ErrorKind::UnknownPos,
        "Unknown or expired sliding sync position; start a new connection",
    )
}

#[cfg(test)]
mod tests;
