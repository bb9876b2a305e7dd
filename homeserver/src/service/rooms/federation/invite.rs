//! Invites across servers. Outbound: an invite of a user on another server is built on our
//! state, sent to the invitee's server (`/invite` v2), and stored with its countersignature.
//! Inbound: an invite of one of our users passes the same rules as a local invite (the
//! policy's `check_invite`, the invitee's MSC4155 config), is countersigned, and — for a room
//! we are not in — kept with its stripped state so the invitee's sync shows it.

use handover_policy::InviteRequest;
use ruma::api::federation::membership::{RawStrippedState, create_invite};
use ruma::events::StateEventType;
use ruma::signatures::sign_json;
use ruma::{CanonicalJsonObject, EventId, OwnedEventId, RoomId, RoomVersionId, ServerName, UserId};
use serde_json::value::RawValue as RawJsonValue;
use serde_json::{Value, json};

use super::super::pdu::Pdu;
use super::super::state::rules_for;
use super::super::timeline::append::new_event;
use super::super::timeline::build::{BuiltEvent, EventSpec, build_event};
use super::super::{RoomService, SUPPORTED_ROOM_VERSIONS};
use crate::error::{Error, Result};
use crate::service::blocking;
use crate::service::commit::{CommitOrigin, StagedEvent};
use crate::service::federation::client::Sign;
use crate::service::federation::client_error::to_client_error;
use crate::service::federation::pdu::parse_pdu;
use crate::store::rooms::NewRoom;

/// `{type, state_key, content, sender}` of a stripped-state entry or a full PDU.
fn stripped(v: &Value) -> Option<Value> {
    Some(json!({
        "type": v.get("type")?.as_str()?,
        "state_key": v.get("state_key")?.as_str()?,
        "content": v.get("content")?.clone(),
        "sender": v.get("sender")?.as_str()?,
    }))
}

impl RoomService {
    /// Invites `invitee` (on another server) to our room: see the module comment.
    pub(in crate::service::rooms) async fn invite_remote(
        &self,
        room_id: &RoomId,
        inviter: &UserId,
        invitee: &UserId,
        content: Value,
    ) -> Result<OwnedEventId> {
        let server = invitee.server_name().to_owned();
        let guard = self.lock_room(room_id).await?;
        let state = guard.as_ref().expect("loaded by lock_room");
        let spec = EventSpec::state(StateEventType::RoomMember, invitee.as_str(), content);
        let built = build_event(
            state,
            Some(room_id),
            inviter,
            &spec,
            &self.keys,
            self.server_name.as_str(),
        )?;
        // Since v1.16 the invitee's server is sent the stripped state as full PDUs.
        let ids: Vec<OwnedEventId> = crate::service::room_state::STRIPPED
            .iter()
            .filter_map(|t| state.get(t, ""))
            .map(|p| p.event_id.clone())
            .collect();
        let store = self.fed_events.clone();
        let invite_state = blocking(move || Ok(store.events_by_id(&ids)?))
            .await?
            .into_iter()
            .filter_map(|e| {
                Some(RawStrippedState::Pdu(
                    RawJsonValue::from_string(e.json).ok()?,
                ))
            })
            .collect();
        let req = create_invite::v2::Request::new(
            room_id.to_owned(),
            built.pdu.event_id.clone(),
            state.version.clone(),
            RawJsonValue::from_string(built.json.clone()).map_err(Error::internal)?,
            invite_state,
        );
        // The room stays locked while the invitee's server answers: nothing may be appended on
        // top of an invite that might still be refused.
        let res = self
            .federation
            .client()
            .send(&server, req, "invite", Sign::AsRequired)
            .await
            .map_err(to_client_error)?;
        let rules = state.rules.clone();
        let (id, obj) = parse_pdu(&res.event, &rules)?;
        if id != built.pdu.event_id {
            return Err(Error::forbidden(format!(
                "{server} returned a different invite"
            )));
        }
        let checked = self.federation.check_pdu(id, obj, &rules).await?;
        let signed_by_invitee = checked
            .object
            .get("signatures")
            .and_then(|s| match s {
                ruma::CanonicalJsonValue::Object(o) => Some(o.contains_key(server.as_str())),
                _ => None,
            })
            .unwrap_or(false);
        if !signed_by_invitee {
            return Err(Error::forbidden(format!(
                "{server} did not sign the invite"
            )));
        }
        let built = BuiltEvent {
            pdu: built.pdu,
            json: checked.json,
        };
        self.commit_built(room_id, guard, built, inviter, None)
            .await
    }

    /// `PUT /_matrix/federation/v2/invite/{roomId}/{eventId}` from `origin`.
    pub async fn receive_invite(
        &self,
        origin: &ServerName,
        room_id: &RoomId,
        event_id: &EventId,
        version: &RoomVersionId,
        event: &RawJsonValue,
        invite_room_state: &[RawStrippedState],
    ) -> Result<Box<RawJsonValue>> {
        if !SUPPORTED_ROOM_VERSIONS.contains(version) {
            return Err(Error::new(
                http::StatusCode::BAD_REQUEST,
                ruma::api::error::ErrorKind::IncompatibleRoomVersion(
                    ruma::api::error::IncompatibleRoomVersionErrorData::new(version.clone()),
                ),
                format!("Room version {version} is not supported"),
            ));
        }
        let rules = rules_for(version)?;
        let (id, obj) = parse_pdu(event, &rules)?;
        if id != event_id {
            return Err(Error::bad_json(format!(
                "the event's id is {id}, not {event_id}"
            )));
        }
        let pdu = Pdu::from_canonical(id.clone(), room_id, &obj)?;
        let content: Value = serde_json::from_str(pdu.content.get()).map_err(Error::internal)?;
        let invitee: ruma::OwnedUserId = pdu
            .state_key
            .as_deref()
            .and_then(|k| k.parse().ok())
            .ok_or_else(|| Error::bad_json("invite without a user state_key"))?;
        if pdu.kind.to_string() != "m.room.member"
            || content["membership"].as_str() != Some("invite")
            || pdu.sender.server_name() != origin
            || pdu.room_id != room_id
            || invitee.server_name() != self.server_name
        {
            return Err(Error::bad_json(format!(
                "expected an invite from {origin} of a user of {}",
                self.server_name
            )));
        }
        if self
            .users
            .get_user(&invitee)
            .await?
            .is_none_or(|u| u.deactivated)
        {
            return Err(Error::not_found(format!("Unknown user {invitee}")));
        }
        self.check_not_blocked(room_id, pdu.sender.as_str(), "federation.invite")
            .await?;
        let decision = self.policy.check_invite(&InviteRequest {
            room_id: room_id.as_str(),
            inviter: pdu.sender.as_str(),
            invitee: invitee.as_str(),
        });
        (self.audit)
            .enforce(
                decision,
                "check_invite",
                pdu.sender.as_str(),
                Some(invitee.as_str()),
            )
            .await?;
        self.check_invite_permission(&pdu.sender, &invitee).await?;
        // A room we know: its server ACL applies to invites as to any event from the origin.
        if self.room_version(room_id).await.is_ok() {
            self.check_acl(room_id, origin).await?;
        }
        let (stripped_state, verified_creator) = self
            .verify_invite_state(room_id, version, &rules, invite_room_state)
            .await?;
        let checked = self.federation.check_pdu(id.clone(), obj, &rules).await?;
        let mut signed: CanonicalJsonObject = checked.object;
        sign_json(self.server_name.as_str(), &self.keys.keypair, &mut signed)
            .map_err(|e| Error::internal(e.to_string()))?;
        let json = serde_json::to_string(&signed).map_err(Error::internal)?;

        // In a room we are in, the invite arrives again as a PDU through /send.
        let resident =
            self.room_version(room_id).await.is_ok() && self.is_resident(room_id).await?;
        if !resident {
            // Only a signature-checked create event names the creator; else the inviter.
            let creator = verified_creator.unwrap_or_else(|| pdu.sender.clone());
            let mut state =
                super::super::state::RoomState::new(room_id.to_owned(), version.clone())?;
            state.depth = u64::from(pdu.depth);
            let built = BuiltEvent {
                pdu: std::sync::Arc::new(Pdu::from_json(id.clone(), room_id, &json)?),
                json: json.clone(),
            };
            let mut new = new_event(&state, &built, &pdu.sender, None)?;
            let staged = self.pipeline.stage(StagedEvent {
                pdu: built.pdu.clone(),
                json: json.clone(),
                origin: CommitOrigin::Remote,
            });
            new.deliveries = self.with_appservices(staged.deliveries(), &state, &built.pdu);
            let room = NewRoom {
                room_id: room_id.to_owned(),
                version: version.to_string(),
                creator,
                is_public: false,
            };
            let store = self.fed_store.clone();
            let state_json = Value::Array(stripped_state).to_string();
            let stored =
                blocking(move || Ok(store.store_remote_invite(room, new, state_json)?)).await;
            match stored {
                Ok(pos) => {
                    self.evict(room_id);
                    // No room lock: we are not in the room, so nothing else appends to it.
                    state.advance(built.pdu.clone());
                    let tail = self.pipeline.committed(staged, pos, &state, vec![]);
                    tail.finish().await;
                }
                // The same invite again: answer as before.
                Err(e) if e.message().contains("already exists") => {}
                Err(e) => return Err(e),
            }
        }
        RawJsonValue::from_string(json).map_err(Error::internal)
    }

    /// `invite_room_state` checked as the spec asks (v1.16): every entry given as a PDU must be
    /// of this room and pass the signature check of its sender's server; from room v12 the
    /// create event must be there and every entry must be a PDU. A failure is 400
    /// `M_INVALID_PARAM`. Returns the entries in stripped form (still only the inviter's
    /// account of the room: shown to the invitee, never used to authorise anything) and the
    /// creator named by a verified create event.
    async fn verify_invite_state(
        &self,
        room_id: &RoomId,
        version: &RoomVersionId,
        rules: &ruma::room_version_rules::RoomVersionRules,
        invite_room_state: &[RawStrippedState],
    ) -> Result<(Vec<Value>, Option<ruma::OwnedUserId>)> {
        let strict = !matches!(
            version,
            RoomVersionId::V1
                | RoomVersionId::V2
                | RoomVersionId::V3
                | RoomVersionId::V4
                | RoomVersionId::V5
                | RoomVersionId::V6
                | RoomVersionId::V7
                | RoomVersionId::V8
                | RoomVersionId::V9
                | RoomVersionId::V10
                | RoomVersionId::V11
        );
        let bad = |m: String| Error::invalid_param(format!("invite_room_state: {m}"));
        let (mut out, mut creator) = (Vec::new(), None);
        for entry in invite_room_state {
            #[allow(deprecated)]
            let RawStrippedState::Pdu(raw) = entry else {
                if strict {
                    return Err(bad(format!("room version {version} needs full PDUs")));
                }
                out.extend(raw_of(entry).as_ref().and_then(stripped));
                continue;
            };
            let (id, obj) = parse_pdu(raw, rules).map_err(|e| bad(e.message().to_owned()))?;
            let is_create = matches!(obj.get("type"), Some(ruma::CanonicalJsonValue::String(t)) if t == "m.room.create");
            // From v12 a create event has no room_id: the room id is its reference hash.
            let event_room = match obj.get("room_id") {
                Some(ruma::CanonicalJsonValue::String(r)) => r.clone(),
                _ if is_create => format!("!{}", id.as_str().trim_start_matches('$')),
                _ => String::new(),
            };
            if event_room != room_id.as_str() {
                return Err(bad(format!("{id} is not an event of {room_id}")));
            }
            let checked = (self.federation.check_pdu(id, obj, rules).await)
                .map_err(|e| bad(e.message().to_owned()))?;
            let v: Value = serde_json::from_str(&checked.json).map_err(Error::internal)?;
            if is_create {
                creator = v["sender"].as_str().and_then(|s| s.parse().ok());
            }
            out.extend(stripped(&v));
        }
        if strict && creator.is_none() {
            return Err(bad("the m.room.create event is missing".into()));
        }
        Ok((out, creator))
    }

    /// The stripped state of a remote invite, for the invitee's sync.
    pub async fn remote_invite_state(
        &self,
        room_id: &RoomId,
        user_id: &UserId,
    ) -> Result<Option<Vec<Value>>> {
        let store = self.fed_store.clone();
        let (r, u) = (room_id.to_string(), user_id.to_string());
        let json = blocking(move || Ok(store.remote_invite_state(&r, &u)?)).await?;
        Ok(json.and_then(|j| serde_json::from_str(&j).ok()))
    }
}

/// A stripped-state entry (a full PDU, or the deprecated stripped form) as JSON.
#[allow(deprecated)]
fn raw_of(s: &RawStrippedState) -> Option<Value> {
    match s {
        RawStrippedState::Stripped(raw) => serde_json::from_str(raw.json().get()).ok(),
        RawStrippedState::Pdu(p) => serde_json::from_str(p.get()).ok(),
        _ => None,
    }
}
