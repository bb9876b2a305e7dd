//! Ephemeral events (receipts, typing, presence) for appservices that asked for them
//! (`receive_ephemeral` / MSC2409 `push_ephemeral`). Held in memory only and attached to the
//! next new transaction: best effort (lost on restart, oldest dropped beyond a bound), like the
//! events themselves, which are ephemeral.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use ruma::api::appservice::event::push_events::v1::EphemeralData;
use ruma::serde::Raw;
use ruma::{RoomId, UserId};

use super::registry::{EventFacts, Registry};

/// Ephemeral events kept per appservice while it is unreachable.
const MAX_PER_APPSERVICE: usize = 1000;

pub struct EphemeralBuffer {
    registry: Arc<Registry>,
    queued: Mutex<HashMap<String, Vec<Raw<EphemeralData>>>>,
}

impl EphemeralBuffer {
    pub fn new(registry: Arc<Registry>) -> Self {
        Self {
            registry,
            queued: Mutex::default(),
        }
    }

    /// Offers an ephemeral event of `room_id` (its `sender`, joined `members`) to the
    /// appservices that want ephemeral events and are interested in the room.
    pub fn offer(
        &self,
        room_id: &RoomId,
        sender: &UserId,
        members: Vec<&UserId>,
        event: serde_json::Value,
    ) {
        if self.registry.all().iter().all(|a| !a.receive_ephemeral) {
            return;
        }
        let facts = EventFacts {
            room_id,
            sender,
            member_target: None,
            members,
            aliases: vec![],
        };
        let ids: Vec<String> = self
            .registry
            .interested(&facts)
            .into_iter()
            .filter(|id| self.registry.by_id(id).is_some_and(|a| a.receive_ephemeral))
            .collect();
        if ids.is_empty() {
            return;
        }
        let raw: Raw<EphemeralData> =
            Raw::from_json(serde_json::value::to_raw_value(&event).expect("JSON serialises"));
        {
            let mut q = self.queued.lock().expect("ephemeral lock");
            for id in &ids {
                let list = q.entry(id.clone()).or_default();
                if list.len() >= MAX_PER_APPSERVICE {
                    list.remove(0);
                }
                list.push(raw.clone());
            }
        }
        for id in &ids {
            self.registry.wake_id(id);
        }
    }

    /// Everything buffered for `id`, now.
    pub fn take(&self, id: &str) -> Vec<Raw<EphemeralData>> {
        self.queued
            .lock()
            .expect("ephemeral lock")
            .remove(id)
            .unwrap_or_default()
    }
}
