//! Appending an event received from another server, once its signatures and hashes have been
//! checked (`FederationService::check_pdu`) and its auth events are held.
//!
//! Authorisation follows the spec's order: against the event's own auth events (a failure
//! rejects it), then against the room's current state (a failure "soft-fails" it: refused here,
//! never shown to clients). The room's state is kept linear: a state event that passes both
//! checks becomes current state (no state resolution of concurrent forks yet, see
//! docs/FEDERATION.md).

use std::sync::Arc;

use ruma::events::{StateEventType, TimelineEventType};
use ruma::state_res::{check_state_dependent_auth_rules, check_state_independent_auth_rules};
use ruma::{EventId, OwnedEventId, OwnedUserId, RoomId};

use super::super::RoomService;
use super::super::pdu::Pdu;
use super::super::state::RoomState;
use super::super::timeline::append::new_event;
use super::super::timeline::build::{BuiltEvent, auth_error};
use super::resolve::resolve_fork;
use crate::error::{Error, Result};
use crate::service::blocking;
use crate::service::federation::pdu::CheckedPdu;
use crate::service::push::CommittedEvent;

impl RoomService {
    /// The PDUs of `ids` that we hold (timeline events or outliers), in one query.
    pub(crate) async fn load_pdus(
        &self,
        room_id: &RoomId,
        ids: &[OwnedEventId],
    ) -> Result<Vec<Pdu>> {
        let store = self.fed_events.clone();
        let (rid, ids) = (room_id.to_owned(), ids.to_vec());
        blocking(move || {
            store
                .events_by_id(&ids)?
                .into_iter()
                .map(|e| Pdu::from_json(e.event_id, &rid, &e.json))
                .collect()
        })
        .await
    }

    /// Which of `ids` we hold.
    pub(crate) async fn known_events(&self, ids: &[OwnedEventId]) -> Result<Vec<OwnedEventId>> {
        let store = self.fed_store.clone();
        let ids = ids.to_vec();
        blocking(move || Ok(store.known_events(&ids)?)).await
    }

    /// Whether a remote redaction may take effect (room v3+ leave this to the server): the
    /// target is an event of this room we hold, and its sender is on the redaction sender's
    /// server, or the redaction's sender has the redact power level in `state`.
    async fn redaction_applies(
        &self,
        state: &RoomState,
        redaction: &Pdu,
        target: &EventId,
    ) -> Result<bool> {
        let store = self.store.clone();
        let t = target.to_owned();
        let Some(original) = blocking(move || Ok(store.get_event(t.as_str())?)).await? else {
            return Ok(false);
        };
        if original.room_id != redaction.room_id {
            return Ok(false);
        }
        Ok(
            original.sender.server_name() == redaction.sender.server_name()
                || state
                    .power_levels()
                    .user_can_redact_event_of_other(&redaction.sender),
        )
    }

    /// Authorises and appends a checked remote event. Returns `false` if we already had it.
    pub(crate) async fn append_remote(
        &self,
        room_id: &RoomId,
        checked: &CheckedPdu,
    ) -> Result<bool> {
        let pdu = Pdu::from_json(checked.event_id.clone(), room_id, &checked.json)?;
        if pdu.room_id != room_id {
            return Err(Error::bad_json("event belongs to another room"));
        }
        if pdu.kind == TimelineEventType::RoomCreate {
            return Err(Error::bad_json(
                "a create event cannot be appended to a room",
            ));
        }
        let auth = self.load_pdus(room_id, &pdu.auth_events).await?;
        if auth.len() != pdu.auth_events.len() {
            return Err(Error::forbidden(format!(
                "auth events of {} are missing",
                pdu.event_id
            )));
        }
        let mut guard = self.lock_room(room_id).await?;
        let state = guard.as_mut().expect("loaded by lock_room");
        if !self
            .known_events(std::slice::from_ref(&pdu.event_id))
            .await?
            .is_empty()
        {
            return Ok(false);
        }
        let rules = state.rules.authorization.clone();
        // From v12 the create event is implied by the room id rather than listed.
        let create = state.get(&StateEventType::RoomCreate, "").cloned();
        let fetch_auth = |id: &EventId| {
            auth.iter().find(|p| p.event_id == id).cloned().or_else(|| {
                create
                    .as_ref()
                    .filter(|c| c.event_id == id)
                    .map(|c| (**c).clone())
            })
        };
        check_state_independent_auth_rules(&rules, &pdu, fetch_auth).map_err(auth_error)?;
        // A fork: the state before the event, and the room's new state, come from resolution.
        let mut changes = Vec::new();
        if !state
            .extremities
            .iter()
            .all(|x| pdu.prev_events.contains(x))
        {
            let current = state
                .state
                .iter()
                .map(|(k, p)| (k.clone(), p.event_id.clone()))
                .collect();
            let (store, rid, rules, p) = (
                self.store.clone(),
                room_id.to_owned(),
                state.rules.clone(),
                pdu.clone(),
            );
            if let Some(c) = blocking(move || resolve_fork(store, rid, rules, current, p)).await? {
                changes = c;
            }
        }
        let fetch_state = |k: &StateEventType, sk: &str| state.get(k, sk).map(|p| (**p).clone());
        check_state_dependent_auth_rules(&rules, &pdu, fetch_state)
            .map_err(|e| auth_error(format!("soft-failed against current state: {e}")))?;

        let sender = pdu.sender.clone();
        let built = BuiltEvent {
            pdu: Arc::new(pdu),
            json: checked.json.clone(),
        };
        let mut new = new_event(state, &built, &sender, None)?;
        new.deliveries.extend(self.appservice_queues(state, &built.pdu));
        if let Some(target) = new.redacts.clone()
            && !self.redaction_applies(state, &built.pdu, &target).await?
        {
            // Kept in the timeline (the auth rules accept it since v3), but the target stays
            // intact: nothing hides it from clients nor lets retention erase it.
            tracing::info!(target: "handover::federation", %room_id, event_id = %built.pdu.event_id, "remote redaction not applied: neither same server nor redact power");
            new.redacts = None;
        }
        new.resolved_state = changes
            .iter()
            .map(|((kind, key), p)| {
                let membership = (*kind == StateEventType::RoomMember)
                    .then(|| p.content_as::<serde_json::Value>())
                    .flatten()
                    .and_then(|c| c["membership"].as_str().map(str::to_owned));
                (
                    kind.to_string(),
                    key.clone(),
                    p.event_id.clone(),
                    membership,
                )
            })
            .collect();
        let push_ticket = self.push.begin(room_id);
        let store = self.store.clone();
        let queues = new.deliveries.clone();
        let pos = blocking(move || Ok(store.append_event(new)?)).await?;
        self.appservices.wake(&queues);
        let pdu = built.pdu.clone();
        state.advance(pdu.clone());
        for (key, p) in changes {
            state.state.insert(key, p);
        }
        self.push.spawn(
            push_ticket,
            CommittedEvent {
                pos,
                pdu: pdu.clone(),
                json: built.json.clone(),
                state: state.clone(),
            },
        );
        let mut notify = state.interested_users();
        drop(guard);
        if let Some(target) = pdu
            .state_key
            .as_deref()
            .filter(|_| pdu.kind == TimelineEventType::RoomMember)
            && let Ok(t) = OwnedUserId::try_from(target)
        {
            notify.push(t);
        }
        // A remote user's reference to one of our files keeps it bound (and alive) like ours.
        (self.media_binder)
            .bind_event(room_id, &pdu.sender, &pdu.event_id, &pdu.content)
            .await;
        self.notifier.notify(notify.iter().map(|u| &**u));
        Ok(true)
    }
}
