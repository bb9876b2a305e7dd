//! State resolution (v2, ruma) when a remote event does not build on all of our forward
//! extremities, i.e. the room's DAG forked. The state before the event is the resolution of
//! the states after each of its prev events; the room's new current state is the resolution
//! of our current state and the state after the event. Runs on a blocking thread (ruma's
//! resolver is synchronous and reads events from the store).
//!
//! "State after an event" is read from the stored deltas at the event's stream position,
//! which is exact while our copy of the DAG was linear up to that event.

use std::cell::RefCell;
use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use ruma::events::StateEventType;
use ruma::room_version_rules::RoomVersionRules;
use ruma::state_res::utils::event_id_set::EventIdSet;
use ruma::state_res::{StateMap, check_state_dependent_auth_rules, resolve};
use ruma::{EventId, OwnedEventId, OwnedRoomId};

use super::super::pdu::Pdu;
use super::super::timeline::build::auth_error;
use crate::error::{Error, Result};
use crate::store::rooms::RoomStore;

/// How many auth events one resolution may read, at most (a bound on hostile DAGs).
const MAX_AUTH_CHAIN: usize = 20_000;

/// What resolution changed in the current state: `(type, state_key) -> event`.
pub(super) type StateChanges = Vec<((StateEventType, String), Arc<Pdu>)>;

struct Loader {
    store: Arc<dyn RoomStore>,
    room_id: OwnedRoomId,
    cache: RefCell<HashMap<OwnedEventId, Option<Pdu>>>,
}

impl Loader {
    fn get(&self, id: &EventId) -> Option<Pdu> {
        if let Some(hit) = self.cache.borrow().get(id) {
            return hit.clone();
        }
        let pdu = self
            .store
            .get_event(id.as_str())
            .ok()
            .flatten()
            .and_then(|e| Pdu::from_json(e.event_id, &self.room_id, &e.json).ok());
        self.cache.borrow_mut().insert(id.to_owned(), pdu.clone());
        pdu
    }

    fn state_after(&self, id: &EventId) -> Result<Option<StateMap<OwnedEventId>>> {
        let Some(pos) = self.store.event_pos(id.as_str())? else {
            return Ok(None);
        };
        let events = self.store.state_at(self.room_id.as_str(), pos)?;
        Ok(Some(
            events
                .into_iter()
                .filter_map(|e| Some(((e.kind.as_str().into(), e.state_key?), e.event_id)))
                .collect(),
        ))
    }

    fn auth_chain(&self, state: &StateMap<OwnedEventId>) -> EventIdSet<OwnedEventId> {
        let mut seen = EventIdSet::new();
        let mut queue: VecDeque<OwnedEventId> = state.values().cloned().collect();
        let mut n = 0;
        while let Some(id) = queue.pop_front() {
            n += 1;
            if n > MAX_AUTH_CHAIN {
                break;
            }
            if let Some(p) = self.get(&id) {
                for a in p.auth_events {
                    if seen.insert(a.clone()) {
                        queue.push_back(a);
                    }
                }
            }
        }
        seen
    }

    fn resolve(
        &self,
        rules: &RoomVersionRules,
        maps: &[StateMap<OwnedEventId>],
    ) -> Result<StateMap<OwnedEventId>> {
        let v2 = rules
            .state_res
            .v2_rules()
            .ok_or_else(|| Error::internal("room version without state resolution v2"))?;
        let chains = maps.iter().map(|m| self.auth_chain(m)).collect();
        resolve(
            &rules.authorization,
            v2,
            maps.iter(),
            chains,
            |id| self.get(id),
            // The conflicted events alone: no extra subgraph walk (MSC4297 approximated).
            |_| Some(EventIdSet::new()),
        )
        .map_err(|e| Error::forbidden(format!("state resolution failed: {e}")))
    }
}

/// Resolves the fork `event` closes; `current` is our current state. `Ok(None)` when none of
/// its prev events is known (the event is then treated as building on our current state).
pub(super) fn resolve_fork(
    store: Arc<dyn RoomStore>,
    room_id: OwnedRoomId,
    rules: RoomVersionRules,
    current: StateMap<OwnedEventId>,
    event: Pdu,
) -> Result<Option<StateChanges>> {
    let loader = Loader {
        store,
        room_id,
        cache: RefCell::new(HashMap::new()),
    };
    let mut maps = Vec::new();
    for prev in &event.prev_events {
        if let Some(m) = loader.state_after(prev)? {
            maps.push(m);
        }
    }
    if maps.is_empty() {
        return Ok(None);
    }
    let before = if maps.len() == 1 {
        maps.pop().expect("one map")
    } else {
        loader.resolve(&rules, &maps)?
    };
    let fetch = |k: &StateEventType, sk: &str| {
        before
            .get(&(k.clone(), sk.to_owned()))
            .and_then(|id| loader.get(id))
    };
    check_state_dependent_auth_rules(&rules.authorization, &event, fetch).map_err(auth_error)?;
    let mut after = before.clone();
    if let Some(key) = &event.state_key {
        after.insert(
            (event.kind.to_string().into(), key.clone()),
            event.event_id.clone(),
        );
    }
    // The event itself is not stored yet: let the resolver see it.
    loader
        .cache
        .borrow_mut()
        .insert(event.event_id.clone(), Some(event.clone()));
    let resolved = loader.resolve(&rules, &[current.clone(), after])?;
    let mut changes = Vec::new();
    for (key, id) in resolved {
        if current.get(&key) != Some(&id)
            && let Some(p) = loader.get(&id)
        {
            changes.push((key, Arc::new(p)));
        }
    }
    Ok(Some(changes))
}
