//! Appending a local event: txn-id dedupe -> policy -> build + auth (under the room lock) ->
//! the commit pipeline (durable store, in-memory state, push, media, sync wake-ups, outbox).

use std::sync::Arc;

use handover_policy::EventRequest;
use ruma::events::TimelineEventType;
use ruma::{DeviceId, OwnedEventId, RoomId, UserId};

use super::super::RoomService;
use super::super::pdu::Pdu;
use super::super::state::RoomState;
use super::build::{BuiltEvent, EventSpec, build_event};
use crate::error::{Error, Result};
use crate::service::blocking;
use crate::service::commit::CommitOrigin;
use crate::store::StoreError;
use crate::store::rooms::NewEvent;

/// A client transaction: `(device, txn_id)`; sending twice returns the first event.
pub type Txn<'a> = Option<(&'a DeviceId, &'a str)>;

impl RoomService {
    /// Sends an event into a room as `sender` and returns its id once it is durable.
    pub async fn send(
        &self,
        room_id: &RoomId,
        sender: &UserId,
        spec: EventSpec,
        txn: Txn<'_>,
    ) -> Result<OwnedEventId> {
        if let Some((device, txn_id)) = txn
            && let Some(id) = self.txn_event(sender, device, txn_id).await?
        {
            return Ok(id);
        }
        let mut guard = self.lock_room(room_id).await?;
        let state = guard.as_mut().expect("loaded by lock_room");
        // Checked under the room lock, so the state it sees is the state the event replaces.
        let prev = spec.state_key.as_ref().and_then(|k| {
            state
                .state
                .get(&(spec.kind.to_string().as_str().into(), k.clone()))
                .map(|pdu| pdu.content.clone())
        });
        self.check_event_policy(room_id.as_str(), sender, &spec, prev.as_deref())
            .await?;
        // A patient-context room stays private: no later state may open it up.
        if let Some(key) = &spec.state_key
            && crate::service::rooms::create::is_patient_room(state)
            && let Ok(content) = serde_json::from_str::<serde_json::Value>(spec.content.get())
            && let Some(what) =
                handover_policy::patient_room_conflict(&spec.kind.to_string(), key, &content)
        {
            let denial = handover_policy::patient_room_denial(what);
            (self.audit)
                .enforce(
                    Err(denial),
                    "patient_context_room",
                    sender.as_str(),
                    Some(room_id.as_str()),
                )
                .await?;
        }
        let built = build_event(
            state,
            Some(room_id),
            sender,
            &spec,
            &self.keys,
            self.server_name.as_str(),
        )?;
        self.commit_built(room_id, guard, built, sender, txn).await
    }

    /// Stores a built (signed, authorised) event under the room lock through the commit
    /// pipeline (`timeline/commit.rs`): the room advances, push evaluation is scheduled, media
    /// bound, syncs woken and the event queued for the room's other servers.
    pub(in crate::service::rooms) async fn commit_built(
        &self,
        room_id: &RoomId,
        guard: tokio::sync::OwnedMutexGuard<Option<RoomState>>,
        built: BuiltEvent,
        sender: &UserId,
        txn: Txn<'_>,
    ) -> Result<OwnedEventId> {
        let state = guard.as_ref().expect("loaded by lock_room");
        let new = new_event(state, &built, sender, txn)?;
        let event_id = built.pdu.event_id.clone();
        match self
            .commit_event(guard, built, new, CommitOrigin::Local, vec![])
            .await?
        {
            Ok(_) => Ok(event_id),
            Err(StoreError::Conflict("event")) => {
                // An event id is the event's hash: the store holding it already means our view
                // of the room is behind the store's. Nothing was overwritten; reloaded.
                tracing::warn!(room_id = %room_id, "event id exists already; room state reloaded");
                Err(Error::new(
                    http::StatusCode::SERVICE_UNAVAILABLE,
                    ruma::api::error::ErrorKind::Unknown,
                    "The room changed while this event was built; try again",
                ))
            }
            Err(e) => self.txn_retry_or(e.into(), txn, sender).await,
        }
    }

    /// After a failed append: a concurrent duplicate of the same transaction may have won the
    /// race, in which case its event is the answer.
    async fn txn_retry_or(&self, e: Error, txn: Txn<'_>, sender: &UserId) -> Result<OwnedEventId> {
        if let Some((device, txn_id)) = txn
            && let Some(id) = self.txn_event(sender, device, txn_id).await?
        {
            return Ok(id);
        }
        Err(e)
    }

    /// The policy's `check_event` hook; a denial is audited and refused. `prev_content` is the
    /// state event this one replaces, if any.
    pub(in crate::service::rooms) async fn check_event_policy(
        &self,
        room_id: &str,
        sender: &UserId,
        spec: &EventSpec,
        prev_content: Option<&serde_json::value::RawValue>,
    ) -> Result<()> {
        let decision = self.policy.check_event(&EventRequest {
            room_id,
            sender: sender.as_str(),
            event_type: &spec.kind.to_string(),
            state_key: spec.state_key.as_deref(),
            content: &spec.content,
            prev_content,
        });
        let target = Some(room_id).filter(|r| !r.is_empty());
        (self.audit)
            .enforce(decision, "check_event", sender.as_str(), target)
            .await
    }

    async fn txn_event(
        &self,
        sender: &UserId,
        device: &DeviceId,
        txn_id: &str,
    ) -> Result<Option<OwnedEventId>> {
        let store = self.store.clone();
        let (u, d, t) = (sender.to_owned(), device.to_owned(), txn_id.to_owned());
        blocking(move || Ok(store.txn_event(u.as_str(), d.as_str(), &t)?)).await
    }
}

/// The store record for a built event: its relations, membership and unsigned data.
pub(in crate::service::rooms) fn new_event(
    state: &RoomState,
    built: &BuiltEvent,
    sender: &UserId,
    txn: Txn<'_>,
) -> Result<NewEvent> {
    let pdu: &Arc<Pdu> = &built.pdu;
    let content: serde_json::Value =
        serde_json::from_str(pdu.content.get()).map_err(Error::internal)?;
    let membership = (pdu.kind == TimelineEventType::RoomMember)
        .then(|| content["membership"].as_str().map(str::to_owned))
        .flatten();
    let relation = content.get("m.relates_to").and_then(|r| {
        let target = r.get("event_id")?.as_str()?.try_into().ok()?;
        let rel_type = r.get("rel_type")?.as_str()?.to_owned();
        Some((target, rel_type))
    });
    // unsigned.prev_content / replaces_state: what this state event replaced, fixed now.
    let unsigned = pdu.state_key.as_deref().and_then(|key| {
        let prev = state.get(&pdu.kind.to_string().into(), key)?;
        let prev_content: serde_json::Value = serde_json::from_str(prev.content.get()).ok()?;
        Some(
            serde_json::json!({
                "replaces_state": prev.event_id,
                "prev_content": prev_content,
                "prev_sender": prev.sender,
            })
            .to_string(),
        )
    });
    Ok(NewEvent {
        event_id: pdu.event_id.clone(),
        room_id: pdu.room_id.clone(),
        sender: sender.to_owned(),
        kind: pdu.kind.to_string(),
        state_key: pdu.state_key.clone(),
        depth: u64::from(pdu.depth) as i64,
        origin_server_ts: u64::from(pdu.origin_server_ts.0) as i64,
        json: built.json.clone(),
        unsigned,
        prev_events: pdu.prev_events.clone(),
        txn: txn.map(|(d, t)| (sender.to_owned(), d.to_string(), t.to_owned())),
        membership,
        relation,
        redacts: pdu.redacts.clone(),
        resolved_state: vec![],
        deliveries: vec![],
    })
}

impl RoomService {
    /// A message-like event from a client; the transaction id makes retries idempotent.
    pub async fn send_message(
        &self,
        room_id: &RoomId,
        sender: &UserId,
        spec: EventSpec,
        txn: (&DeviceId, &str),
    ) -> Result<OwnedEventId> {
        self.require_joined(room_id, sender).await?;
        if spec.kind == TimelineEventType::RoomRedaction {
            // Suspended users may still redact (their own) events: not checked here.
            // A redaction sent as a plain event gets the same checks as /redact.
            let content: serde_json::Value =
                serde_json::from_str(spec.content.get()).map_err(Error::internal)?;
            let target = content["redacts"]
                .as_str()
                .and_then(|t| ruma::EventId::parse(t).ok())
                .ok_or_else(|| Error::bad_json("m.room.redaction needs content.redacts"))?;
            let reason = content["reason"].as_str().map(str::to_owned);
            return self.redact(room_id, sender, &target, reason, txn).await;
        }
        self.users.ensure_not_suspended(sender)?;
        self.send(room_id, sender, spec, Some(txn)).await
    }

    /// A state event from a client. Re-sending identical content returns the existing event
    /// (as Synapse does) instead of adding a no-op to the timeline.
    pub async fn send_state(
        &self,
        room_id: &RoomId,
        sender: &UserId,
        spec: EventSpec,
    ) -> Result<OwnedEventId> {
        if spec.kind != TimelineEventType::RoomMember {
            self.require_joined(room_id, sender).await?;
            self.users.ensure_not_suspended(sender)?;
        }
        let key = spec.state_key.clone().unwrap_or_default();
        let state = self.current_state(room_id).await?;
        if let Some(cur) = state.get(&spec.kind.to_string().into(), &key) {
            let same = serde_json::from_str::<serde_json::Value>(cur.content.get()).ok()
                == serde_json::from_str::<serde_json::Value>(spec.content.get()).ok();
            if same && cur.sender == sender {
                return Ok(cur.event_id.clone());
            }
        }
        self.send(room_id, sender, spec, None).await
    }
}
