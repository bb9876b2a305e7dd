//! Push rule evaluation for a committed event, ours or another server's: each joined member of
//! this server (not the sender) has its ruleset is run by ruma; the notifying results are stored in ONE write job, then the
//! members' http pushers are poked.
//!
//! Why a spawned task: evaluation is N rule sets x M conditions plus a write, and the sender's
//! reply must not wait for it. Correct counts on the next /sync are guaranteed by the tracker
//! ticket taken before the commit (see `tracker.rs`).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use handover_policy::Policy;
use ruma::events::StateEventType;
use ruma::push::{Action, PushConditionPowerLevelsCtx, PushConditionRoomCtx, Ruleset};
use ruma::serde::Raw;
use ruma::{OwnedServerName, OwnedUserId, RoomId, ServerName, UInt, UserId};
use serde_json::value::RawValue;

use super::payload::{EventSummary, PushTarget};
use super::sender::PushSender;
use super::tracker::{Ticket, Tracker};
use crate::error::{Error, Result};
use crate::service::account_data::AccountDataService;
use crate::service::blocking;
use crate::service::commit::CommittedEvent;
use crate::service::rooms::state::RoomState;
use crate::store::push::{PushActionRow, PushStore};

/// Rulesets kept in memory; cleared wholesale past this many users (a cache, not a record).
pub(super) const RULES_CACHE_MAX: usize = 10_000;

pub struct PushEvaluator {
    /// Whose rules run: this server's users, whoever sent the event.
    pub(super) server_name: OwnedServerName,
    pub(super) store: Arc<dyn PushStore>,
    pub(super) account_data: Arc<AccountDataService>,
    pub(super) policy: Arc<dyn Policy>,
    pub(super) sender: Arc<PushSender>,
    pub(super) tracker: Arc<Tracker>,
    pub(super) rules: Mutex<HashMap<OwnedUserId, Arc<Ruleset>>>,
}

impl PushEvaluator {
    pub fn new(
        server_name: OwnedServerName,
        store: Arc<dyn PushStore>,
        account_data: Arc<AccountDataService>,
        policy: Arc<dyn Policy>,
        sender: Arc<PushSender>,
    ) -> Self {
        Self {
            server_name,
            store,
            account_data,
            policy,
            sender,
            tracker: Arc::default(),
            rules: Mutex::default(),
        }
    }

    /// Called under the room lock before the event commits (see `tracker.rs`).
    pub(super) fn begin(&self, room_id: &RoomId) -> Ticket {
        self.tracker.begin(room_id)
    }

    /// Evaluates the event off the request path; the ticket is released once rows are written.
    pub(super) fn spawn(self: &Arc<Self>, ticket: Ticket, event: Arc<CommittedEvent>) {
        ticket.set_pos(event.pos);
        if !has_local_recipient(&event, &self.server_name) {
            // Nobody here but the sender can be notified: no task, and the ticket ends now.
            return;
        }
        let this = self.clone();
        tokio::spawn(async move {
            let notified = match this.evaluate(&event).await {
                Ok(n) => n,
                Err(e) => {
                    tracing::error!(error = %e, "push evaluation failed");
                    vec![]
                }
            };
            drop(ticket);
            if !notified.is_empty() {
                this.push_to_gateways(&event, notified).await;
            }
        });
    }

    /// Runs every recipient's rules and stores the notifying ones; returns them with actions.
    async fn evaluate(&self, ev: &CommittedEvent) -> Result<Vec<PushTarget>> {
        let pdu = &ev.pdu;
        let local = &*self.server_name;
        let members = joined_members(&ev.state);
        let member_count = UInt::new_saturating(members.len() as u64);
        let power: PushConditionPowerLevelsCtx = ev.state.power_levels().into();
        let raw: Raw<ruma::events::AnySyncTimelineEvent> =
            Raw::from_json(RawValue::from_string(ev.json.clone()).map_err(Error::internal)?);
        let mut targets = Vec::new();
        for (user, display_name) in members {
            if user == pdu.sender || user.server_name() != local {
                continue;
            }
            let rules = self.ruleset(&user).await?;
            let ctx = PushConditionRoomCtx::new(
                pdu.room_id.clone(),
                member_count,
                user.clone(),
                display_name.unwrap_or_else(|| user.localpart().to_owned()),
            )
            .with_power_levels(power.clone());
            let actions = rules.get_actions(&raw, &ctx).await;
            if actions.iter().any(Action::should_notify) {
                targets.push(PushTarget {
                    user,
                    actions: actions.to_vec(),
                });
            }
        }
        let rows = targets
            .iter()
            .map(|t| {
                Ok(PushActionRow {
                    user_id: t.user.to_string(),
                    highlight: t.actions.iter().any(Action::is_highlight),
                    actions: serde_json::to_string(&t.actions).map_err(Error::internal)?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        if rows.is_empty() {
            // Most events notify nobody (initial state, one's own echo): no store hop for them.
            return Ok(targets);
        }
        let store = self.store.clone();
        let (room, pos, id) = (pdu.room_id.clone(), ev.pos, pdu.event_id.clone());
        let ts = u64::from(pdu.origin_server_ts.0) as i64;
        blocking(move || Ok(store.add_push_actions(room.as_str(), pos, id.as_str(), ts, rows)?))
            .await?;
        Ok(targets)
    }

    /// Pokes each notified user's http pushers. The payload shape is the policy's decision.
    async fn push_to_gateways(&self, ev: &CommittedEvent, targets: Vec<PushTarget>) {
        let summary = EventSummary::new(ev);
        for target in targets {
            if let Err(e) = self.push_one(&summary, &target).await {
                tracing::warn!(error = %e, "could not queue push notification");
            }
        }
    }

    async fn push_one(&self, summary: &EventSummary, target: &PushTarget) -> Result<()> {
        let store = self.store.clone();
        let uid = target.user.to_string();
        let (pushers, unread) =
            blocking(move || Ok((store.pushers(&uid)?, store.unread_total(&uid)?))).await?;
        for row in pushers {
            let format = self.policy.push_format(&handover_policy::PushRequest {
                user_id: target.user.as_str(),
                room_id: summary.room_id.as_str(),
                event_type: &summary.event_type.to_string(),
            });
            if let Some(req) = summary.notification(&row.json, target, unread, format)? {
                self.sender.post(target.user.clone(), req);
            }
        }
        Ok(())
    }
}

/// Whether a joined member on this server other than the sender may exist: only they run rules.
/// A cheap superset (the content mentions "join"); `evaluate` parses the membership properly.
fn has_local_recipient(ev: &CommittedEvent, local: &ServerName) -> bool {
    ev.state
        .state
        .iter()
        .filter(|((kind, key), _)| {
            *kind == StateEventType::RoomMember && key.as_str() != ev.pdu.sender.as_str()
        })
        .any(|((_, key), pdu)| {
            <&UserId>::try_from(key.as_str()).is_ok_and(|u| u.server_name() == local)
                && pdu.content.get().contains("\"join\"")
        })
}

/// Joined members with their room display name (ruma matches mentions of it).
fn joined_members(state: &RoomState) -> Vec<(OwnedUserId, Option<String>)> {
    state
        .state
        .iter()
        .filter(|((kind, _), _)| *kind == StateEventType::RoomMember)
        .filter_map(|((_, key), pdu)| {
            let v: serde_json::Value = serde_json::from_str(pdu.content.get()).ok()?;
            if v["membership"].as_str() != Some("join") {
                return None;
            }
            let user: OwnedUserId = key.parse().ok()?;
            let name = v["displayname"].as_str().map(str::to_owned);
            Some((user, name))
        })
        .collect()
}

/// The room's display name as the push payload's `room_name` (full format only).
pub(super) fn room_name(state: &RoomState) -> Option<String> {
    state
        .content_json(&StateEventType::RoomName, "")
        .and_then(|c| c["name"].as_str().map(str::to_owned))
}

/// A member's display name in the room, for the full-format `sender_display_name`.
pub(super) fn display_name(state: &RoomState, user: &UserId) -> Option<String> {
    state
        .content_json(&StateEventType::RoomMember, user.as_str())
        .and_then(|c| c["displayname"].as_str().map(str::to_owned))
}
