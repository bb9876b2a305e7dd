//! Rooms (Synapse's `/_synapse/admin/v1/rooms...`): the list with search, ordering and paging,
//! one room's details, its members and its current state. Names, aliases and counts come from
//! each room's current state (held in memory by the room service), so the list is built there.

use ruma::events::StateEventType;
use ruma::{OwnedUserId, RoomId};
use serde_json::{Value, json};

use super::{AdminService, action};
use crate::error::{Error, Result};
use crate::service::blocking;
use crate::service::rooms::state::RoomState;
use crate::service::users::Session;
use crate::store::admin::AdminRoomRow;

/// One room as Synapse's room list shows it.
#[derive(Debug, Clone)]
pub struct RoomSummary {
    pub row: AdminRoomRow,
    pub name: Option<String>,
    pub topic: Option<String>,
    pub avatar: Option<String>,
    pub canonical_alias: Option<String>,
    pub joined_members: u64,
    pub joined_local_members: u64,
    pub encryption: Option<String>,
    pub federatable: bool,
    pub join_rules: Option<String>,
    pub guest_access: Option<String>,
    pub history_visibility: Option<String>,
    pub room_type: Option<String>,
    pub state_events: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RoomOrder {
    #[default]
    Name,
    CanonicalAlias,
    JoinedMembers,
    JoinedLocalMembers,
    Version,
    Creator,
    Encryption,
    Federatable,
    Public,
    JoinRules,
    GuestAccess,
    HistoryVisibility,
    StateEvents,
}

#[derive(Debug, Clone, Default)]
pub struct RoomListQuery {
    pub from: u64,
    pub limit: u64,
    pub order: RoomOrder,
    pub backwards: bool,
    /// Substring of the name, canonical alias or room id (case-insensitive).
    pub search_term: Option<String>,
}

fn text(state: &RoomState, kind: StateEventType, field: &str) -> Option<String> {
    let c = state.content_json(&kind, "")?;
    c.get(field)?.as_str().map(str::to_owned)
}

fn summarise(row: AdminRoomRow, state: &RoomState, server: &str) -> RoomSummary {
    let joined: Vec<&str> = (state.state.iter())
        .filter(|((k, _), p)| {
            *k == StateEventType::RoomMember
                && serde_json::from_str::<Value>(p.content.get())
                    .is_ok_and(|c| c["membership"] == "join")
        })
        .map(|((_, key), _)| key.as_str())
        .collect();
    let suffix = format!(":{server}");
    let create = state.content_json(&StateEventType::RoomCreate, "");
    RoomSummary {
        name: text(state, StateEventType::RoomName, "name"),
        topic: text(state, StateEventType::RoomTopic, "topic"),
        avatar: text(state, StateEventType::RoomAvatar, "url"),
        canonical_alias: text(state, StateEventType::RoomCanonicalAlias, "alias"),
        joined_members: joined.len() as u64,
        joined_local_members: joined.iter().filter(|u| u.ends_with(&suffix)).count() as u64,
        encryption: text(state, StateEventType::RoomEncryption, "algorithm"),
        federatable: create
            .as_ref()
            .is_none_or(|c| c.get("m.federate") != Some(&Value::Bool(false))),
        join_rules: text(state, StateEventType::RoomJoinRules, "join_rule"),
        guest_access: text(state, StateEventType::RoomGuestAccess, "guest_access"),
        history_visibility: text(
            state,
            StateEventType::RoomHistoryVisibility,
            "history_visibility",
        ),
        room_type: create.and_then(|c| c.get("type")?.as_str().map(str::to_owned)),
        state_events: state.state.len() as u64,
        row,
    }
}

fn sort_key(s: &RoomSummary, o: RoomOrder) -> Value {
    match o {
        RoomOrder::Name => json!(s.name.as_deref().map(str::to_lowercase)),
        RoomOrder::CanonicalAlias => json!(s.canonical_alias),
        RoomOrder::JoinedMembers => json!(s.joined_members),
        RoomOrder::JoinedLocalMembers => json!(s.joined_local_members),
        RoomOrder::Version => json!(s.row.version),
        RoomOrder::Creator => json!(s.row.creator),
        RoomOrder::Encryption => json!(s.encryption),
        RoomOrder::Federatable => json!(s.federatable),
        RoomOrder::Public => json!(s.row.is_public),
        RoomOrder::JoinRules => json!(s.join_rules),
        RoomOrder::GuestAccess => json!(s.guest_access),
        RoomOrder::HistoryVisibility => json!(s.history_visibility),
        RoomOrder::StateEvents => json!(s.state_events),
    }
}

/// Orders JSON scalars: null first, then numbers, booleans, strings.
fn cmp_values(a: &Value, b: &Value) -> std::cmp::Ordering {
    use std::cmp::Ordering::*;
    match (a, b) {
        (Value::Null, Value::Null) => Equal,
        (Value::Null, _) => Less,
        (_, Value::Null) => Greater,
        (Value::Number(x), Value::Number(y)) => {
            (x.as_f64().unwrap_or(0.0)).total_cmp(&y.as_f64().unwrap_or(0.0))
        }
        (Value::Bool(x), Value::Bool(y)) => x.cmp(y),
        _ => a.to_string().cmp(&b.to_string()),
    }
}

impl AdminService {
    async fn summary(&self, row: AdminRoomRow) -> Result<RoomSummary> {
        let state = self.rooms.current_state(&row.room_id).await?;
        Ok(summarise(row, &state, self.users.server_name()))
    }

    pub async fn list_rooms(
        &self,
        who: &Session,
        q: RoomListQuery,
    ) -> Result<(Vec<RoomSummary>, u64)> {
        self.authorize(who, action::ROOMS_LIST, None).await?;
        let store = self.room_store.clone();
        let rows = blocking(move || Ok(store.all_rooms()?)).await?;
        let mut all = Vec::with_capacity(rows.len());
        for row in rows {
            match self.summary(row).await {
                Ok(s) => all.push(s),
                // A room we only know by an invite has no state to show.
                Err(e) => tracing::debug!(error = %e, "room left out of the admin list"),
            }
        }
        if let Some(term) = q.search_term.as_deref().map(str::to_lowercase) {
            all.retain(|s| {
                [
                    s.name.as_deref(),
                    s.canonical_alias.as_deref(),
                    Some(s.row.room_id.as_str()),
                ]
                .into_iter()
                .flatten()
                .any(|t| t.to_lowercase().contains(&term))
            });
        }
        // The room id breaks ties, so pages never overlap or skip.
        all.sort_by(|a, b| {
            cmp_values(&sort_key(a, q.order), &sort_key(b, q.order))
                .then_with(|| a.row.room_id.cmp(&b.row.room_id))
        });
        if q.backwards {
            all.reverse();
        }
        let total = all.len() as u64;
        let page = (all.into_iter())
            .skip(usize::try_from(q.from).unwrap_or(usize::MAX))
            .take(usize::try_from(q.limit).unwrap_or(usize::MAX))
            .collect();
        let server = self.users.server_name().to_owned();
        self.audited(who, action::ROOMS_LIST, &server, None).await?;
        Ok((page, total))
    }

    async fn room_row(&self, room_id: &RoomId) -> Result<AdminRoomRow> {
        let store = self.room_store.clone();
        let rows = blocking(move || Ok(store.all_rooms()?)).await?;
        (rows.into_iter())
            .find(|r| r.room_id == room_id)
            .ok_or_else(|| Error::not_found("Room not found"))
    }

    pub async fn room_details(&self, who: &Session, room_id: &RoomId) -> Result<RoomSummary> {
        self.authorize(who, action::ROOM_GET, Some(room_id.as_str()))
            .await?;
        let row = self.room_row(room_id).await?;
        let s = self.summary(row).await?;
        self.audited(who, action::ROOM_GET, room_id.as_str(), None)
            .await?;
        Ok(s)
    }

    /// The joined members, as Synapse's members endpoint lists them.
    pub async fn room_members(&self, who: &Session, room_id: &RoomId) -> Result<Vec<OwnedUserId>> {
        self.authorize(who, action::ROOM_MEMBERS, Some(room_id.as_str()))
            .await?;
        self.room_row(room_id).await?;
        let rows = self.rooms.member_rows(room_id).await?;
        let members = (rows.into_iter())
            .filter(|m| m.membership == "join")
            .map(|m| m.user_id)
            .collect();
        self.audited(who, action::ROOM_MEMBERS, room_id.as_str(), None)
            .await?;
        Ok(members)
    }

    /// The current state events (state is room metadata, not message content).
    pub async fn room_state(&self, who: &Session, room_id: &RoomId) -> Result<Vec<Value>> {
        self.authorize(who, action::ROOM_STATE, Some(room_id.as_str()))
            .await?;
        self.room_row(room_id).await?;
        let state = self.rooms.current_state(room_id).await?;
        let events = (state.state.values())
            .map(|p| {
                json!({
                    "type": p.kind.to_string(),
                    "state_key": p.state_key,
                    "content": serde_json::from_str::<Value>(p.content.get()).unwrap_or(Value::Null),
                    "sender": p.sender,
                    "event_id": p.event_id,
                    "room_id": p.room_id,
                    "origin_server_ts": p.origin_server_ts,
                })
            })
            .collect();
        self.audited(who, action::ROOM_STATE, room_id.as_str(), None)
            .await?;
        Ok(events)
    }
}
