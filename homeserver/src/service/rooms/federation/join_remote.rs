//! One of our users joining a room we are not in: `make_join` on a resident server, our
//! signature on the filled-in template, `send_join`, then every PDU of the answer is checked
//! (federation list, signatures, hashes) and the room is imported with the state before the
//! join. A room with a member on a server outside the federation list is left again at once
//! and the join refused (rule `federation_not_listed`).

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use ruma::api::federation::membership::{create_join_event, prepare_join_event};
use ruma::events::{StateEventType, TimelineEventType};
use ruma::signatures::{hash_and_sign_event, reference_hash};
use ruma::state_res::{check_state_dependent_auth_rules, check_state_independent_auth_rules};
use ruma::{
    CanonicalJsonObject, CanonicalJsonValue, EventId, MilliSecondsSinceUnixEpoch, OwnedEventId,
    OwnedServerName, RoomId, ServerName, UserId,
};
use serde_json::value::RawValue as RawJsonValue;

use super::super::pdu::Pdu;
use super::super::state::{RoomState, rules_for};
use super::super::timeline::append::new_event;
use super::super::timeline::build::{BuiltEvent, authorize};
use super::super::{RoomService, SUPPORTED_ROOM_VERSIONS};
use super::expiry;
use crate::error::{Error, Result};
use crate::service::blocking;
use crate::service::federation::client::Sign;
use crate::service::federation::client_error::to_client_error;
use crate::service::federation::pdu::{CheckedPdu, parse_pdu};
use crate::store::federated_rooms::{ImportedRoom, StateEntry};
use crate::store::rooms::NewRoom;

fn string(obj: &CanonicalJsonObject, key: &str) -> Option<String> {
    match obj.get(key) {
        Some(CanonicalJsonValue::String(s)) => Some(s.clone()),
        _ => None,
    }
}

impl RoomService {
    /// Fills in a `make_join`/`make_leave` template from `server` for `user_id`: checks it is
    /// that user's membership event in the room, merges our content (keeping what the resident
    /// added, e.g. for restricted joins), stamps and signs it. Returns the event id and JSON.
    pub(crate) fn sign_template(
        &self,
        server: &ServerName,
        template: &RawJsonValue,
        room_id: &RoomId,
        user_id: &UserId,
        content: serde_json::Value,
        rules: &ruma::room_version_rules::RoomVersionRules,
    ) -> Result<(OwnedEventId, String)> {
        let mut obj: CanonicalJsonObject = serde_json::from_str(template.get())
            .map_err(|e| Error::bad_json(format!("{server} sent a bad template: {e}")))?;
        if string(&obj, "type").as_deref() != Some("m.room.member")
            || string(&obj, "state_key").as_deref() != Some(user_id.as_str())
            || string(&obj, "sender").as_deref() != Some(user_id.as_str())
            || string(&obj, "room_id").as_deref() != Some(room_id.as_str())
        {
            return Err(Error::bad_json(format!(
                "{server} sent a template for another event"
            )));
        }
        let mut merged = match obj.remove("content") {
            Some(CanonicalJsonValue::Object(c)) => c,
            _ => CanonicalJsonObject::new(),
        };
        let ours: CanonicalJsonObject =
            serde_json::from_value(content).map_err(|e| Error::internal(e.to_string()))?;
        merged.extend(ours);
        obj.insert("content".into(), CanonicalJsonValue::Object(merged));
        obj.insert(
            "origin".into(),
            CanonicalJsonValue::String(self.server_name.to_string()),
        );
        obj.insert(
            "origin_server_ts".into(),
            CanonicalJsonValue::Integer(MilliSecondsSinceUnixEpoch::now().0.into()),
        );
        obj.remove("signatures");
        obj.remove("hashes");
        obj.remove("unsigned");
        hash_and_sign_event(
            self.server_name.as_str(),
            &self.keys.keypair,
            &mut obj,
            &rules.redaction,
        )
        .map_err(|e| Error::bad_json(format!("cannot sign the event: {e}")))?;
        let hash = reference_hash(&obj, rules).map_err(|e| Error::bad_json(e.to_string()))?;
        let event_id = EventId::new_v2_or_v3(&hash).map_err(Error::internal)?;
        let json = serde_json::to_string(&obj).map_err(Error::internal)?;
        Ok((event_id, json))
    }

    /// Joins `user_id` to a room we are not in through the first of `via` that lets us.
    pub async fn join_remote(
        &self,
        room_id: &RoomId,
        user_id: &UserId,
        via: &[OwnedServerName],
        content: serde_json::Value,
    ) -> Result<()> {
        let mut last = None;
        for server in via.iter().filter(|s| **s != self.server_name) {
            match self
                .join_through(server, room_id, user_id, content.clone())
                .await
            {
                Ok(()) => return Ok(()),
                // The list's refusal is final: no other server may be asked instead.
                Err(e) if e.is_policy() => return Err(e),
                Err(e) => {
                    tracing::info!(target: "handover::federation", %room_id, %server, error = %e.message(), "join attempt failed");
                    last = Some(e);
                }
            }
        }
        Err(last
            .unwrap_or_else(|| Error::not_found(format!("No server to join {room_id} through"))))
    }

    async fn join_through(
        &self,
        server: &ServerName,
        room_id: &RoomId,
        user_id: &UserId,
        content: serde_json::Value,
    ) -> Result<()> {
        let client = self.federation.client();
        let mut req = prepare_join_event::v1::Request::new(room_id.to_owned(), user_id.to_owned());
        req.ver = SUPPORTED_ROOM_VERSIONS.to_vec();
        let made = client
            .send(server, req, "make_join", Sign::AsRequired)
            .await
            .map_err(to_client_error)?;
        let version = made
            .room_version
            .filter(|v| SUPPORTED_ROOM_VERSIONS.contains(v))
            .ok_or_else(|| Error::forbidden("The room's version is not supported"))?;
        let rules = rules_for(&version)?;
        let (event_id, pdu_json) =
            self.sign_template(server, &made.event, room_id, user_id, content, &rules)?;
        let sent = client
            .send(
                server,
                create_join_event::v2::Request::new(
                    room_id.to_owned(),
                    event_id.clone(),
                    RawJsonValue::from_string(pdu_json.clone()).map_err(Error::internal)?,
                ),
                "send_join",
                Sign::AsRequired,
            )
            .await
            .map_err(to_client_error)?;
        let answer = sent.room_state;
        match self
            .import_join(
                server,
                room_id,
                &version,
                &answer,
                event_id.clone(),
                pdu_json,
            )
            .await
        {
            Ok(()) => Ok(()),
            Err(e) => {
                // The resident already counts us as joined: leave again.
                tracing::warn!(target: "handover::federation", %room_id, error = %e.message(), "joined room refused; leaving");
                if let Err(le) = self
                    .leave_remote(room_id, user_id, &[server.to_owned()])
                    .await
                {
                    tracing::warn!(target: "handover::federation", %room_id, error = %le.message(), "leave after refused join failed");
                }
                Err(e)
            }
        }
    }

    /// Checks the `send_join` answer and stores the room.
    async fn import_join(
        &self,
        origin: &ServerName,
        room_id: &RoomId,
        version: &ruma::RoomVersionId,
        answer: &create_join_event::v2::RoomState,
        event_id: OwnedEventId,
        our_json: String,
    ) -> Result<()> {
        let rules = rules_for(version)?;
        let mut checked: HashMap<OwnedEventId, CheckedPdu> = HashMap::new();
        for raw in answer.state.iter().chain(answer.auth_chain.iter()) {
            let (id, obj) = parse_pdu(raw, &rules)?;
            if checked.contains_key(&id) {
                continue;
            }
            // Every sender, and every member, must be on the list: a room shared with an
            // unlisted server is not joined.
            self.gate_pdu(origin, room_id, &obj).await?;
            let c = self.federation.check_pdu(id.clone(), obj, &rules).await?;
            checked.insert(id, c);
        }
        authorize_answer(room_id, &rules, &checked)?;
        let mut state = RoomState::new(room_id.to_owned(), version.clone())?;
        let mut entries = Vec::new();
        for raw in &answer.state {
            let (id, _) = parse_pdu(raw, &rules)?;
            let c = &checked[&id];
            let pdu = Pdu::from_json(id.clone(), room_id, &c.json)?;
            let Some(key) = pdu.state_key.clone() else {
                return Err(Error::bad_json("send_join state holds a non-state event"));
            };
            let membership = (pdu.kind == TimelineEventType::RoomMember)
                .then(|| pdu.content_as::<serde_json::Value>())
                .flatten()
                .and_then(|c| c["membership"].as_str().map(str::to_owned));
            entries.push(StateEntry {
                kind: pdu.kind.to_string(),
                state_key: key,
                event_id: id,
                membership,
            });
            state.depth = state.depth.max(u64::from(pdu.depth));
            state.insert(Arc::new(pdu));
        }
        let create = state
            .get(&ruma::events::StateEventType::RoomCreate, "")
            .cloned()
            .ok_or_else(|| Error::bad_json("send_join state has no create event"))?;
        // The resident may have countersigned our join (restricted rooms): prefer its copy.
        let join_json = match &answer.event {
            Some(raw) => match parse_pdu(raw, &rules) {
                Ok((id, obj)) if id == event_id => {
                    serde_json::to_string(&obj).map_err(Error::internal)?
                }
                _ => our_json,
            },
            None => our_json,
        };
        let join = Pdu::from_json(event_id.clone(), room_id, &join_json)?;
        authorize(&state, &join)?;
        let built = BuiltEvent {
            pdu: Arc::new(join),
            json: join_json,
        };
        let mut new = new_event(&state, &built, &built.pdu.sender.clone(), None)?;
        new.deliveries.extend(self.appservice_queues(&state, &built.pdu));
        // The auth chain beyond current state is history: an event of it older than the
        // room's lifetime is stored minimised, as our purge would leave it.
        let retention = state
            .get(&"m.room.retention".into(), "")
            .map(|p| p.content.get().to_owned());
        let cutoff = self.expiry_cutoff_for(room_id, retention.as_deref());
        let current: HashSet<OwnedEventId> = entries.iter().map(|e| e.event_id.clone()).collect();
        let outliers = checked
            .into_values()
            .map(|c| {
                let c = if current.contains(&c.event_id) {
                    c
                } else {
                    expiry::age_out(c, cutoff, &rules)?
                };
                super::receive::outlier(room_id, &c)
            })
            .collect::<Result<Vec<_>>>()?;
        let import = ImportedRoom {
            room: NewRoom {
                room_id: room_id.to_owned(),
                version: version.to_string(),
                creator: create.sender.clone(),
                is_public: false,
            },
            outliers,
            state: entries,
            join: new,
        };
        let store = self.fed_store.clone();
        let queues = import.join.deliveries.clone();
        blocking(move || Ok(store.import_room(import)?)).await?;
        self.appservices.wake(&queues);
        self.evict(room_id);
        let state = self.current_state(room_id).await?;
        let mut notify = state.interested_users();
        notify.push(built.pdu.sender.clone());
        self.notifier.notify(notify.iter().map(|u| &**u));
        Ok(())
    }
}

/// Every event of a `send_join` answer (state and auth chain) authorised against its own auth
/// events, which must all be in the answer, as Synapse does before accepting the join: a
/// resident cannot hand us a state (say, power levels or members) the room's rules never
/// allowed. One event failing refuses the join.
pub(super) fn authorize_answer(
    room_id: &RoomId,
    rules: &ruma::room_version_rules::RoomVersionRules,
    checked: &HashMap<OwnedEventId, CheckedPdu>,
) -> Result<()> {
    let pdus: HashMap<OwnedEventId, Pdu> = checked
        .iter()
        .map(|(id, c)| Ok((id.clone(), Pdu::from_json(id.clone(), room_id, &c.json)?)))
        .collect::<Result<_>>()?;
    let create = pdus
        .values()
        .find(|p| p.kind == TimelineEventType::RoomCreate && p.state_key.as_deref() == Some(""));
    let refuse = |id: &EventId, e: String| {
        Error::forbidden(format!("send_join answer: {id} is not authorised: {e}"))
    };
    for p in pdus.values() {
        // Of this room: from v12 a create event has no room_id, the room id is its hash.
        let of_room = match ruma::state_res::Event::room_id(p) {
            Some(r) => r == room_id,
            None => {
                p.kind == TimelineEventType::RoomCreate
                    && room_id.as_str()[1..] == p.event_id.as_str()[1..]
            }
        };
        if !of_room {
            return Err(Error::forbidden(format!(
                "send_join answer holds {}, not an event of {room_id}",
                p.event_id
            )));
        }
        let fetch = |id: &EventId| pdus.get(id).cloned();
        check_state_independent_auth_rules(&rules.authorization, p, fetch)
            .map_err(|e| refuse(&p.event_id, e))?;
        // The state its auth events describe (from v12 the create event is implied).
        let mut by_key: HashMap<(StateEventType, String), &Pdu> = HashMap::new();
        for a in p
            .auth_events
            .iter()
            .filter_map(|a| pdus.get(a))
            .chain(create)
        {
            if let Some(k) = &a.state_key {
                by_key
                    .entry((a.kind.to_string().into(), k.clone()))
                    .or_insert(a);
            }
        }
        let fetch_state = |k: &StateEventType, sk: &str| {
            by_key
                .get(&(k.clone(), sk.to_owned()))
                .map(|p| (*p).clone())
        };
        check_state_dependent_auth_rules(&rules.authorization, p, fetch_state)
            .map_err(|e| refuse(&p.event_id, e))?;
    }
    Ok(())
}
