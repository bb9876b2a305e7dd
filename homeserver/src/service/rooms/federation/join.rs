//! A user of another server joining one of our rooms: `make_join` hands out an event template
//! built on our current state, `send_join` checks the signed join, appends it, sends it on to
//! the room's other servers and answers with the state before it and its auth chain.

use ruma::api::federation::membership::create_join_event::v2::RoomState as JoinState;
use ruma::events::{StateEventType, TimelineEventType};
use ruma::{EventId, OwnedEventId, RoomId, RoomVersionId, ServerName, UserId};
use serde_json::json;
use serde_json::value::RawValue as RawJsonValue;

use super::super::RoomService;
use super::super::pdu::Pdu;
use super::super::state::rules_for;
use super::super::timeline::build::{EventSpec, authorize, event_template};
use crate::error::{Error, Result};
use crate::service::blocking;
use crate::service::commit::CommitOrigin;
use crate::service::federation::pdu::parse_pdu;

/// The membership events a remote server may ask us to template.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Membership {
    Join,
    Leave,
}

impl Membership {
    fn as_str(self) -> &'static str {
        match self {
            Membership::Join => "join",
            Membership::Leave => "leave",
        }
    }
}

fn raw(json: String) -> Result<Box<RawJsonValue>> {
    RawJsonValue::from_string(json).map_err(Error::internal)
}

impl RoomService {
    /// `make_join` / `make_leave`: an unsigned membership event for `user_id` (of `origin`) on
    /// our current state, checked against the room's rules as if it were sent now.
    pub async fn make_membership(
        &self,
        origin: &ServerName,
        room_id: &RoomId,
        user_id: &UserId,
        membership: Membership,
        supported: &[RoomVersionId],
    ) -> Result<(RoomVersionId, Box<RawJsonValue>)> {
        if user_id.server_name() != origin {
            return Err(Error::forbidden(format!(
                "{user_id} does not belong to {origin}"
            )));
        }
        if membership == Membership::Join {
            self.check_not_blocked(room_id, user_id.as_str(), "federation.make_join")
                .await?;
        }
        let version = self
            .room_version(room_id)
            .await
            .map_err(|_| Error::not_found(format!("Unknown room {room_id}")))?;
        if membership == Membership::Join && !supported.contains(&version) {
            return Err(Error::new(
                http::StatusCode::BAD_REQUEST,
                ruma::api::error::ErrorKind::IncompatibleRoomVersion(
                    ruma::api::error::IncompatibleRoomVersionErrorData::new(version.clone()),
                ),
                format!("Room {room_id} is version {version}, which {origin} does not support"),
            ));
        }
        if !self.is_resident(room_id).await? {
            return Err(Error::not_found(format!(
                "{} is not in room {room_id}",
                self.server_name
            )));
        }
        self.check_acl(room_id, origin).await?;
        let state = self.current_state(room_id).await?;
        let spec = EventSpec::state(
            StateEventType::RoomMember,
            user_id.as_str(),
            json!({ "membership": membership.as_str() }),
        );
        let mut template = event_template(&state, Some(room_id), user_id, &spec)?;
        // Checked now so a refused join fails at make_join, with the reason.
        let placeholder: OwnedEventId = "$template".try_into().map_err(Error::internal)?;
        let pdu = Pdu::from_canonical(placeholder, room_id, &template)?;
        authorize(&state, &pdu)?;
        template.insert(
            "origin".into(),
            ruma::CanonicalJsonValue::String(self.server_name.to_string()),
        );
        let json = serde_json::to_string(&template).map_err(Error::internal)?;
        Ok((version, raw(json)?))
    }

    /// `send_join` (v2): see the module comment. `omit_members` is not honoured (full state).
    pub async fn send_join(
        &self,
        origin: &ServerName,
        room_id: &RoomId,
        event_id: &EventId,
        pdu: &RawJsonValue,
    ) -> Result<JoinState> {
        self.check_not_blocked(room_id, origin.as_str(), "federation.send_join")
            .await?;
        let checked = self
            .receive_membership(origin, room_id, event_id, pdu, "join")
            .await?;
        // The state the joiner needs is the state before its join.
        let store = self.store.clone();
        let id = checked.to_string();
        let rid = room_id.to_owned();
        let state_events = blocking(move || {
            let pos = store
                .event_pos(&id)?
                .ok_or_else(|| Error::internal("join has no position"))?;
            Ok(store.state_at(rid.as_str(), pos - 1)?)
        })
        .await?;
        let join = self
            .load_pdus(room_id, std::slice::from_ref(&checked))
            .await?;
        let mut roots: Vec<OwnedEventId> =
            state_events.iter().map(|e| e.event_id.clone()).collect();
        roots.extend(join.iter().flat_map(|p| p.auth_events.clone()));
        let chain = self.auth_chain(&roots).await?;
        let mut res = JoinState::new();
        res.state = state_events
            .into_iter()
            .map(|e| raw(e.json))
            .collect::<Result<_>>()?;
        res.auth_chain = chain.into_iter().map(raw).collect::<Result<_>>()?;
        let joined = self.load_json(&checked).await?;
        res.event = Some(raw(joined)?);
        let state = self.current_state(room_id).await?;
        res.servers_in_room = Some(
            state
                .joined_servers()
                .iter()
                .map(|s| s.to_string())
                .collect(),
        );
        Ok(res)
    }

    /// Checks a signed membership event handed to `send_join`/`send_leave`, appends it and sends
    /// it on to the room's other servers. Returns its id.
    pub(crate) async fn receive_membership(
        &self,
        origin: &ServerName,
        room_id: &RoomId,
        event_id: &EventId,
        pdu: &RawJsonValue,
        membership: &str,
    ) -> Result<OwnedEventId> {
        let version = self
            .room_version(room_id)
            .await
            .map_err(|_| Error::not_found(format!("Unknown room {room_id}")))?;
        let rules = rules_for(&version)?;
        let (id, obj) = parse_pdu(pdu, &rules)?;
        if id != event_id {
            return Err(Error::bad_json(format!(
                "the event's id is {id}, not {event_id}"
            )));
        }
        let p = Pdu::from_canonical(id.clone(), room_id, &obj)?;
        let content: serde_json::Value =
            serde_json::from_str(p.content.get()).map_err(Error::internal)?;
        if p.kind != TimelineEventType::RoomMember
            || content["membership"].as_str() != Some(membership)
            || p.state_key.as_deref() != Some(p.sender.as_str())
            || p.sender.server_name() != origin
            || p.room_id != room_id
        {
            return Err(Error::bad_json(format!(
                "expected a {membership} of a user of {origin} in {room_id}"
            )));
        }
        if !self.is_resident(room_id).await? {
            return Err(Error::not_found(format!(
                "{} is not in room {room_id}",
                self.server_name
            )));
        }
        self.check_acl(room_id, origin).await?;
        self.gate_pdu(origin, room_id, &obj).await?;
        let checked = self.federation.check_pdu(id.clone(), obj, &rules).await?;
        if checked.redacted {
            return Err(Error::bad_json("the event's content hash is wrong"));
        }
        // As resident we pass it on to the room's other servers (the commit pipeline's outbox).
        let relay = CommitOrigin::RemoteRelay(origin.to_owned());
        self.append_remote(room_id, &checked, relay).await?;
        Ok(id)
    }

    /// The stored JSON of an event we hold.
    pub(crate) async fn load_json(&self, id: &EventId) -> Result<String> {
        let store = self.store.clone();
        let id = id.to_owned();
        blocking(move || {
            Ok(store
                .get_event(id.as_str())?
                .ok_or_else(|| Error::not_found(format!("Unknown event {id}")))?
                .json)
        })
        .await
    }

    /// Every event reachable from `roots` through `auth_events` (the roots' own auth events
    /// included, the roots themselves only if reached), as stored JSON.
    pub(crate) async fn auth_chain(&self, roots: &[OwnedEventId]) -> Result<Vec<String>> {
        let store = self.fed_events.clone();
        let roots = roots.to_vec();
        let chain = blocking(move || Ok(store.auth_chain(&roots)?)).await?;
        Ok(chain.into_iter().map(|e| e.json).collect())
    }
}
