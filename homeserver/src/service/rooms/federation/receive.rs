//! The path of a PDU from another server: which room, whether we are in it, the federation
//! list (sender's server, and the target of a membership event), signatures and hashes, the
//! auth events and missing prev events (fetched from the origin), then `append_remote`.

use std::collections::HashSet;

use handover_policy::Direction;
use ruma::api::federation::event::{get_event, get_missing_events};
use ruma::{
    CanonicalJsonValue, OwnedEventId, OwnedRoomId, OwnedServerName, OwnedUserId, RoomId,
    ServerName, UInt,
};
use serde::Deserialize;
use serde_json::value::RawValue as RawJsonValue;

use super::super::RoomService;
use super::super::state::rules_for;
use super::expiry;
use crate::error::{Error, Result};
use crate::service::commit::CommitOrigin;
use crate::service::federation::client::Sign;
use crate::service::federation::pdu::{CheckedPdu, parse_pdu, sender_server};
use crate::store::federated_rooms::Outlier;

/// How many missing prev events are fetched for one received event.
pub const MAX_MISSING_EVENTS: u64 = 10;

#[derive(Deserialize)]
struct RoomOf {
    room_id: OwnedRoomId,
}

impl RoomService {
    /// Processes one PDU of a `/send` transaction from `origin`: the event id (if it could be
    /// computed) and the outcome for the transaction response.
    pub async fn receive_pdu(
        &self,
        origin: &ServerName,
        raw: &RawJsonValue,
    ) -> (Option<OwnedEventId>, Result<()>) {
        let room_id = match serde_json::from_str::<RoomOf>(raw.get()) {
            Ok(r) => r.room_id,
            Err(e) => {
                return (
                    None,
                    Err(Error::bad_json(format!("PDU without room_id: {e}"))),
                );
            }
        };
        let checked = match self.check_remote(origin, &room_id, raw).await {
            Ok(c) => c,
            Err((id, e)) => return (id, Err(e)),
        };
        let id = checked.event_id.clone();
        let res = self.receive_checked(origin, &room_id, checked, true).await;
        (Some(id), res)
    }

    /// The room must be one we are in; the gate, signatures and hashes. Errors carry the event
    /// id when it was known.
    async fn check_remote(
        &self,
        origin: &ServerName,
        room_id: &RoomId,
        raw: &RawJsonValue,
    ) -> std::result::Result<CheckedPdu, (Option<OwnedEventId>, Error)> {
        let version = self.room_version(room_id).await.map_err(|_| {
            (
                None,
                Error::not_found(format!("{} is not in room {room_id}", self.server_name)),
            )
        })?;
        let rules = rules_for(&version).map_err(|e| (None, e))?;
        let (event_id, obj) = parse_pdu(raw, &rules).map_err(|e| (None, e))?;
        let with_id = |e: Error| (Some(event_id.clone()), e);
        if !self.is_resident(room_id).await.map_err(with_id)? {
            return Err(with_id(Error::forbidden(format!(
                "{} has no member in {room_id}",
                self.server_name
            ))));
        }
        self.check_acl(room_id, origin).await.map_err(with_id)?;
        self.gate_pdu(origin, room_id, &obj)
            .await
            .map_err(with_id)?;
        let checked = self
            .federation
            .check_pdu(event_id.clone(), obj, &rules)
            .await
            .map_err(with_id)?;
        // A message older than the room's lifetime keeps its place in the DAG, not its
        // content. State is kept whole: it may become current state.
        if expiry::is_state(&checked) {
            return Ok(checked);
        }
        let cutoff = self.expiry_cutoff(room_id).await.map_err(with_id)?;
        expiry::age_out(checked, cutoff, &rules).map_err(with_id)
    }

    /// The federation list applied to every server an event names (the TI-Messenger rule:
    /// every domain in an event must be in the federation): its sender, its `origin`, the
    /// servers that signed it, and for a membership event its target and the resident server
    /// that authorised a restricted join. A listed server could otherwise bring an unlisted one
    /// into a shared room. Audited once per room and server (`PeerGate::check_in_room`).
    pub(crate) async fn gate_pdu(
        &self,
        _origin: &ServerName,
        room_id: &RoomId,
        obj: &ruma::CanonicalJsonObject,
    ) -> Result<()> {
        let gate = self.federation.gate();
        let mut named: Vec<(OwnedServerName, &str)> = vec![(sender_server(obj)?, "pdu_sender")];
        let str_of = |v: Option<&CanonicalJsonValue>| match v {
            Some(CanonicalJsonValue::String(s)) => Some(s.clone()),
            _ => None,
        };
        let user_server = |s: Option<String>| {
            s.and_then(|u| OwnedUserId::try_from(u).ok())
                .map(|u| u.server_name().to_owned())
        };
        if let Some(o) = str_of(obj.get("origin")).and_then(|o| OwnedServerName::try_from(o).ok()) {
            named.push((o, "pdu_origin"));
        }
        if let Some(CanonicalJsonValue::Object(sigs)) = obj.get("signatures") {
            named.extend(
                sigs.keys()
                    .filter_map(|k| OwnedServerName::try_from(k.as_str()).ok())
                    .map(|k| (k, "pdu_signature")),
            );
        }
        if str_of(obj.get("type")).as_deref() == Some("m.room.member") {
            named.extend(user_server(str_of(obj.get("state_key"))).map(|s| (s, "membership")));
            if let Some(CanonicalJsonValue::Object(c)) = obj.get("content") {
                named.extend(
                    user_server(str_of(c.get("join_authorised_via_users_server")))
                        .map(|s| (s, "membership")),
                );
            }
        }
        let mut seen = HashSet::new();
        for (server, purpose) in named {
            if server == self.server_name || !seen.insert(server.clone()) {
                continue;
            }
            gate.check_in_room(
                room_id.as_str(),
                server.as_str(),
                Direction::Inbound,
                purpose,
            )
            .await
            .map_err(|d| Error::policy(&d))?;
        }
        Ok(())
    }

    /// Of `servers` (a room's other servers, about to be sent something), those on the
    /// federation list (`PeerGate::listed_in_room`).
    pub(crate) async fn listed_servers(
        &self,
        room_id: &RoomId,
        servers: Vec<OwnedServerName>,
    ) -> Vec<OwnedServerName> {
        self.federation
            .gate()
            .listed_in_room(room_id, servers)
            .await
    }

    /// The room's `m.room.server_acl`: a denied server may not send or join.
    pub(crate) async fn check_acl(&self, room_id: &RoomId, server: &ServerName) -> Result<()> {
        let state = self.current_state(room_id).await?;
        if let Some(acl) = state
            .get(&ruma::events::StateEventType::RoomServerAcl, "")
            .and_then(|p| {
                p.content_as::<ruma::events::room::server_acl::RoomServerAclEventContent>()
            })
            && !acl.is_allowed(server)
        {
            return Err(Error::forbidden(format!(
                "Server {server} is denied by the room's server ACL"
            )));
        }
        Ok(())
    }

    /// Whether one of our users is joined to the room (we hold its current state).
    pub(crate) async fn is_resident(&self, room_id: &RoomId) -> Result<bool> {
        let state = self.current_state(room_id).await?;
        Ok(state.joined_servers().contains(&self.server_name))
    }

    /// Fetches what the event needs from `origin` (its auth events; its prev events when
    /// `fetch_prev`), then appends it.
    async fn receive_checked(
        &self,
        origin: &ServerName,
        room_id: &RoomId,
        checked: CheckedPdu,
        fetch_prev: bool,
    ) -> Result<()> {
        let ids = |key: &str| -> Vec<OwnedEventId> {
            match checked.object.get(key) {
                Some(CanonicalJsonValue::Array(a)) => a
                    .iter()
                    .filter_map(|v| match v {
                        CanonicalJsonValue::String(s) => OwnedEventId::try_from(s.as_str()).ok(),
                        _ => None,
                    })
                    .collect(),
                _ => vec![],
            }
        };
        let auth_events = ids("auth_events");
        self.fetch_outliers(origin, room_id, &auth_events).await?;
        let prev_events = ids("prev_events");
        if fetch_prev {
            let known: HashSet<_> = self.known_events(&prev_events).await?.into_iter().collect();
            if prev_events.iter().any(|p| !known.contains(p)) {
                self.fetch_missing(origin, room_id, &checked.event_id).await;
            }
        }
        self.append_remote(room_id, &checked, CommitOrigin::Remote)
            .await
            .map(|_| ())
    }

    /// Fetches events we do not hold from `origin` and stores them as outliers (auth events).
    pub(super) async fn fetch_outliers(
        &self,
        origin: &ServerName,
        room_id: &RoomId,
        ids: &[OwnedEventId],
    ) -> Result<()> {
        let known: HashSet<_> = self.known_events(ids).await?.into_iter().collect();
        let version = self.room_version(room_id).await?;
        let rules = rules_for(&version)?;
        let cutoff = self.expiry_cutoff(room_id).await?;
        let mut outliers = Vec::new();
        for id in ids.iter().filter(|i| !known.contains(*i)) {
            let res = self
                .federation
                .client()
                .send(
                    origin,
                    get_event::v1::Request::new(id.clone()),
                    "get_event",
                    Sign::AsRequired,
                )
                .await
                .map_err(|e| Error::forbidden(format!("auth event {id} unavailable: {e}")))?;
            let (event_id, obj) = parse_pdu(&res.pdu, &rules)?;
            if event_id != *id {
                return Err(Error::forbidden(format!(
                    "{origin} returned another event for {id}"
                )));
            }
            self.gate_pdu(origin, room_id, &obj).await?;
            let checked = self.federation.check_pdu(event_id, obj, &rules).await?;
            // Auth events we did not hold are not current state: an expired one is stored
            // minimised (redaction keeps what auth needs), as the purge would leave it.
            let checked = expiry::age_out(checked, cutoff, &rules)?;
            outliers.push(outlier(room_id, &checked)?);
        }
        let store = self.fed_store.clone();
        crate::service::blocking(move || Ok(store.add_outliers(outliers)?)).await
    }

    /// Asks `origin` for the events between our forward extremities and `latest`, and appends
    /// those it returns, oldest first. Best effort: what cannot be fetched is skipped (the event
    /// itself is then appended on top of our current state).
    async fn fetch_missing(&self, origin: &ServerName, room_id: &RoomId, latest: &OwnedEventId) {
        let Ok(state) = self.current_state(room_id).await else {
            return;
        };
        let mut req = get_missing_events::v1::Request::new(
            room_id.to_owned(),
            state.extremities.clone(),
            vec![latest.clone()],
        );
        req.limit = UInt::from(MAX_MISSING_EVENTS as u32);
        let res = match self
            .federation
            .client()
            .send(origin, req, "get_missing_events", Sign::AsRequired)
            .await
        {
            Ok(r) => r,
            Err(e) => {
                tracing::info!(target: "handover::federation", %room_id, error = %e, "get_missing_events failed");
                return;
            }
        };
        let mut checked = Vec::new();
        for raw in res.events.iter().take(MAX_MISSING_EVENTS as usize) {
            match self.check_remote(origin, room_id, raw).await {
                Ok(c) => checked.push(c),
                Err((id, e)) => {
                    tracing::info!(target: "handover::federation", event_id = ?id, error = %e, "missing event refused")
                }
            }
        }
        checked.sort_by_key(|c| match c.object.get("depth") {
            Some(CanonicalJsonValue::Integer(d)) => i64::from(*d),
            _ => 0,
        });
        for c in checked {
            let id = c.event_id.clone();
            if let Err(e) = Box::pin(self.receive_checked(origin, room_id, c, false)).await {
                tracing::info!(target: "handover::federation", event_id = %id, error = %e, "missing event not appended");
            }
        }
    }
}

/// The outlier row for a checked event.
pub(crate) fn outlier(room_id: &RoomId, c: &CheckedPdu) -> Result<Outlier> {
    let pdu = super::super::pdu::Pdu::from_json(c.event_id.clone(), room_id, &c.json)?;
    Ok(Outlier {
        event_id: c.event_id.clone(),
        room_id: room_id.to_owned(),
        sender: pdu.sender.to_string(),
        kind: pdu.kind.to_string(),
        state_key: pdu.state_key.clone(),
        depth: u64::from(pdu.depth) as i64,
        origin_server_ts: u64::from(pdu.origin_server_ts.0) as i64,
        json: c.json.clone(),
    })
}
