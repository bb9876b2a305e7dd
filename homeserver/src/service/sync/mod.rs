//! /sync (v3): everything for a user after a stream position, read with indexed queries per
//! room the user is in. A long-poll waits on the notifier, never on a timer loop.

mod e2ee;
mod joined;
mod other_rooms;

pub(crate) use other_rooms::invite_state;

use std::sync::Arc;
use std::time::{Duration, Instant};

use ruma::api::client::filter::FilterDefinition;
use ruma::api::client::sync::sync_events::v3::{Response, Rooms};
use ruma::presence::PresenceState;

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
use crate::error::Result;

pub struct SyncRequest {
    /// Position of the previous sync's `next_batch`; `None` for an initial sync.
    pub since: Option<i64>,
    pub full_state: bool,
    pub timeout: Duration,
    pub filter: FilterDefinition,
    /// MSC4222: report state at the end of the timeline instead of its start.
    pub use_state_after: bool,
    /// Recorded as the user's presence (`offline`: left unchanged).
    pub set_presence: PresenceState,
}

pub struct SyncService {
    rooms: Arc<RoomService>,
    e2ee: Arc<KeyService>,
    to_device: Arc<ToDeviceService>,
    receipts: Arc<ReceiptService>,
    typing: Arc<TypingService>,
    presence: Arc<PresenceService>,
    account_data: Arc<AccountDataService>,
    push: Arc<PushService>,
    notifier: Arc<Notifier>,
    max_timeout: Duration,
}

/// What one computation produced, and whether any of it is news.
struct Computed {
    response: Response,
    has_data: bool,
}

/// The services a sync reads from.
pub struct SyncDeps {
    pub rooms: Arc<RoomService>,
    pub e2ee: Arc<KeyService>,
    pub to_device: Arc<ToDeviceService>,
    pub receipts: Arc<ReceiptService>,
    pub typing: Arc<TypingService>,
    pub presence: Arc<PresenceService>,
    pub account_data: Arc<AccountDataService>,
    pub push: Arc<PushService>,
    pub notifier: Arc<Notifier>,
}

impl SyncService {
    pub fn new(deps: SyncDeps, max_timeout: Duration) -> Self {
        let SyncDeps {
            rooms,
            e2ee,
            to_device,
            receipts,
            typing,
            presence,
            account_data,
            push,
            notifier,
        } = deps;
        Self {
            rooms,
            e2ee,
            to_device,
            receipts,
            typing,
            presence,
            account_data,
            push,
            notifier,
            max_timeout,
        }
    }

    pub async fn sync(&self, session: &Session, req: SyncRequest) -> Result<Response> {
        let deadline = Instant::now() + req.timeout.min(self.max_timeout);
        self.presence
            .record_sync(&session.user_id, &req.set_presence)
            .await?;
        // Subscribe before reading anything, so a commit in between still wakes us.
        let mut wake = self.notifier.subscribe(&session.user_id);
        loop {
            wake.borrow_and_update();
            let upto = self.rooms.current_pos();
            // To-device first: when more are queued than one sync carries, the whole response
            // stops at the last one delivered, so the next `since` acknowledges only those.
            let delivery = self
                .to_device
                .deliver(&session.user_id, &session.device_id, req.since, upto)
                .await?;
            let upto = match delivery.last_pos {
                Some(last) if delivery.more => last,
                _ => upto,
            };
            let mut c = self.compute(session, &req, upto).await?;
            if !delivery.events.is_empty() {
                c.has_data = true;
                c.response.to_device.events = delivery.events;
            }
            let initial = req.since.is_none() || req.full_state;
            if c.has_data || initial || Instant::now() >= deadline {
                return Ok(c.response);
            }
            if tokio::time::timeout_at(deadline.into(), wake.changed())
                .await
                .is_err()
            {
                return Ok(c.response);
            }
        }
    }

    async fn compute(&self, session: &Session, req: &SyncRequest, upto: i64) -> Result<Computed> {
        let since = req.since.unwrap_or(0).min(upto);
        let mut rooms = Rooms::new();
        let mut has_data = false;
        let mut account_data = self
            .account_data
            .changes_since(&session.user_id, since, upto)
            .await?;
        let include_leave = req.filter.room.include_leave;
        for m in self.rooms.memberships(&session.user_id).await? {
            if !crate::service::filter::room_matches_room_filter(&req.filter.room, &m.room_id) {
                continue;
            }
            let changed_since = req.since.is_some() && m.pos > since;
            match m.membership.as_str() {
                "join" => {
                    let room_data = account_data.rooms.remove(&m.room_id).unwrap_or_default();
                    if let Some(j) = self
                        .joined_room(session, req, &m, since, upto, room_data)
                        .await?
                    {
                        rooms.join.insert(m.room_id.clone(), j);
                        has_data = true;
                    }
                }
                "invite" if req.since.is_none() || changed_since || req.full_state => {
                    rooms.invite.insert(
                        m.room_id.clone(),
                        self.invited_room(&m.room_id, &session.user_id).await?,
                    );
                    has_data = true;
                }
                "knock" if req.since.is_none() || changed_since || req.full_state => {
                    rooms.knock.insert(
                        m.room_id.clone(),
                        self.knocked_room(&m.room_id, &session.user_id).await?,
                    );
                    has_data = true;
                }
                "leave" | "ban"
                    if !m.forgotten
                        && (changed_since || (req.since.is_none() && include_leave)) =>
                {
                    rooms
                        .leave
                        .insert(m.room_id.clone(), self.left_room(session, req, &m).await?);
                    has_data = true;
                }
                _ => {}
            }
        }
        let mut response = Response::new(format!("s{upto}"));
        response.rooms = rooms;
        if !account_data.global.is_empty() {
            has_data = true;
            response.account_data.events = account_data.global;
        }
        // Presence of people sharing a room; one's own sync-set presence is not news.
        let (presence, news) = self
            .presence
            .events_for(&session.user_id, since, upto, &req.filter.presence)
            .await?;
        has_data |= news;
        response.presence.events = presence;
        has_data |= self
            .e2ee_sections(session, req, since, upto, &mut response)
            .await?;
        Ok(Computed { response, has_data })
    }
}
