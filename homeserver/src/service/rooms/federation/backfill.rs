//! Older history of a room joined over federation: when a local user pages back past the
//! oldest event we hold, ask a resident server (`/backfill`), check each event (federation
//! list, signatures, hashes, auth against its own auth events) and store it before the rest of
//! the timeline. A room whose create event is in our timeline is complete and never asked for.

use std::collections::HashSet;
use std::sync::Arc;

use ruma::api::federation::backfill::get_backfill;
use ruma::events::StateEventType;
use ruma::state_res::check_state_independent_auth_rules;
use ruma::{CanonicalJsonValue, EventId, OwnedEventId, RoomId, UInt};

use super::super::RoomService;
use super::super::pdu::Pdu;
use super::super::state::rules_for;
use super::super::timeline::append::new_event;
use super::super::timeline::build::{BuiltEvent, auth_error};
use super::expiry;
use crate::error::Result;
use crate::service::blocking;
use crate::service::federation::client::Sign;
use crate::service::federation::pdu::{CheckedPdu, parse_pdu};

/// Most events asked for per backfill request.
const MAX_BACKFILL: u32 = 100;

impl RoomService {
    /// Fetches up to `limit` older events if the room's history is incomplete. Returns how many
    /// were stored (0: nothing more to fetch, or no server could give it).
    pub(crate) async fn backfill(&self, room_id: &RoomId, limit: usize) -> Result<usize> {
        if self
            .backfill_done
            .lock()
            .expect("backfill lock")
            .contains(room_id)
        {
            return Ok(0);
        }
        let store = self.fed_store.clone();
        let rid = room_id.to_string();
        let (first, complete) = blocking(move || Ok(store.timeline_start(&rid)?)).await?;
        let Some(first) = first.filter(|_| !complete) else {
            self.backfill_done
                .lock()
                .expect("backfill lock")
                .insert(room_id.to_owned());
            return Ok(0);
        };
        let state = self.current_state(room_id).await?;
        let servers: Vec<_> = state
            .joined_servers()
            .into_iter()
            .filter(|s| *s != self.server_name)
            .collect();
        for server in servers {
            let req = get_backfill::v1::Request::new(
                room_id.to_owned(),
                vec![first.clone()],
                UInt::from((limit as u32).clamp(1, MAX_BACKFILL)),
            );
            let res = match self
                .federation
                .client()
                .send(&server, req, "backfill", Sign::AsRequired)
                .await
            {
                Ok(r) => r,
                Err(e) => {
                    tracing::info!(target: "handover::federation", %room_id, %server, error = %e, "backfill failed");
                    continue;
                }
            };
            let n = self.store_backfill(&server, room_id, &res.pdus).await?;
            if n == 0 {
                self.backfill_done
                    .lock()
                    .expect("backfill lock")
                    .insert(room_id.to_owned());
            }
            return Ok(n);
        }
        Ok(0)
    }

    async fn store_backfill(
        &self,
        server: &ruma::ServerName,
        room_id: &RoomId,
        pdus: &[Box<serde_json::value::RawValue>],
    ) -> Result<usize> {
        let version = self.room_version(room_id).await?;
        let rules = rules_for(&version)?;
        let cutoff = self.expiry_cutoff(room_id).await?;
        let mut checked: Vec<CheckedPdu> = Vec::new();
        let mut seen = HashSet::new();
        for raw in pdus.iter().take(MAX_BACKFILL as usize) {
            let Ok((id, obj)) = parse_pdu(raw, &rules) else {
                continue;
            };
            if !seen.insert(id.clone()) {
                continue;
            }
            if matches!(obj.get("room_id"), Some(CanonicalJsonValue::String(r)) if r != room_id.as_str())
            {
                continue;
            }
            if let Err(e) = self.gate_pdu(server, room_id, &obj).await {
                // An event naming an unlisted server is not stored, however old.
                tracing::info!(target: "handover::federation", event_id = %id, error = %e.message(), "backfilled event refused");
                continue;
            }
            match self.federation.check_pdu(id.clone(), obj, &rules).await {
                // Older than the room's lifetime: a message is what our purge deleted (or would
                // have), so it is not fetched back; historical state is kept minimised.
                Ok(c) if expiry::expired(&c, cutoff) => {
                    if expiry::is_state(&c) {
                        checked.push(expiry::minimise(c, &rules)?);
                    }
                }
                Ok(c) => checked.push(c),
                Err(e) => {
                    tracing::info!(target: "handover::federation", event_id = %id, error = %e.message(), "backfilled event failed checks")
                }
            }
        }
        let ids: Vec<OwnedEventId> = checked.iter().map(|c| c.event_id.clone()).collect();
        let known: HashSet<OwnedEventId> = self.known_timeline(&ids).await?.into_iter().collect();
        checked.retain(|c| !known.contains(&c.event_id));
        // Newest first, so positions decrease with age.
        checked.sort_by_key(|c| {
            std::cmp::Reverse(match c.object.get("depth") {
                Some(CanonicalJsonValue::Integer(d)) => i64::from(*d),
                _ => 0,
            })
        });
        let state = self.current_state(room_id).await?;
        let create = state.get(&StateEventType::RoomCreate, "").cloned();
        let mut rows = Vec::new();
        for c in &checked {
            let pdu = Pdu::from_json(c.event_id.clone(), room_id, &c.json)?;
            if let Err(e) = self.fetch_auth_for_backfill(server, room_id, &pdu).await {
                tracing::info!(target: "handover::federation", event_id = %c.event_id, error = %e.message(), "backfilled event's auth events unavailable");
                continue;
            }
            let auth = self.load_pdus(room_id, &pdu.auth_events).await?;
            let fetch = |id: &EventId| {
                auth.iter().find(|p| p.event_id == id).cloned().or_else(|| {
                    create
                        .as_ref()
                        .filter(|p| p.event_id == id)
                        .map(|p| (**p).clone())
                })
            };
            if pdu.kind != ruma::events::TimelineEventType::RoomCreate
                && let Err(e) =
                    check_state_independent_auth_rules(&rules.authorization, &pdu, fetch)
            {
                tracing::info!(target: "handover::federation", event_id = %c.event_id, error = %auth_error(e).message(), "backfilled event rejected");
                continue;
            }
            let sender = pdu.sender.clone();
            let built = BuiltEvent {
                pdu: Arc::new(pdu),
                json: c.json.clone(),
            };
            // Historical: no unsigned prev_content (the state it replaced is not current).
            let mut row = new_event(
                &super::super::state::RoomState::new(room_id.to_owned(), version.clone())?,
                &built,
                &sender,
                None,
            )?;
            row.unsigned = None;
            rows.push(row);
        }
        let store = self.fed_store.clone();
        blocking(move || Ok(store.insert_backfilled(rows)?)).await
    }

    async fn fetch_auth_for_backfill(
        &self,
        server: &ruma::ServerName,
        room_id: &RoomId,
        pdu: &Pdu,
    ) -> Result<()> {
        self.fetch_outliers(server, room_id, &pdu.auth_events).await
    }

    /// Which of `ids` are in the timeline (not outliers).
    async fn known_timeline(&self, ids: &[OwnedEventId]) -> Result<Vec<OwnedEventId>> {
        let store = self.store.clone();
        let ids = ids.to_vec();
        blocking(move || {
            let mut out = Vec::new();
            for id in ids {
                if store.event_pos(id.as_str())?.is_some() {
                    out.push(id);
                }
            }
            Ok(out)
        })
        .await
    }
}
