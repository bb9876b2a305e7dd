//! The federation gate: every exchange with another server is asked of the policy first
//! (`Policy::check_federation_peer`), and a refusal is audited and becomes `M_FORBIDDEN` naming
//! the rule. Inbound, this runs before any other work on the request; outbound, before any
//! connection (nothing outside the federation list is ever contacted).

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use handover_compliance::Outcome;
use handover_policy::{Denial, Direction, FederationPeerRequest, Policy};

use crate::service::audit::{self, AuditService};
use crate::store::now_ms;

/// The audit action of a federation refusal.
pub const ACTION_FEDERATION_DENIAL: &str = "federation.denial";

/// A refused peer is audited at most once per this many ms per (peer, direction, purpose);
/// the next entry counts the refusals in between. Unauthenticated senders cannot flood the trail.
const AUDIT_EVERY_MS: i64 = 60_000;
/// Bound on the suppression table (cleared when exceeded).
const MAX_TRACKED: usize = 10_000;

/// (peer, direction, purpose) -> (last audited at, refusals not audited since).
type RecentDenials = HashMap<(String, Direction, String), (i64, u64)>;

/// (room, peer, direction) already audited as unlisted in that room.
type RoomDenials = HashSet<(String, String, Direction)>;

pub struct PeerGate {
    policy: Arc<dyn Policy>,
    audit: Arc<AuditService>,
    own: String,
    recent: Mutex<RecentDenials>,
    in_rooms: Mutex<RoomDenials>,
}

impl PeerGate {
    pub fn new(policy: Arc<dyn Policy>, audit: Arc<AuditService>, own: String) -> Self {
        Self {
            policy,
            audit,
            own,
            recent: Mutex::new(HashMap::new()),
            in_rooms: Mutex::new(HashSet::new()),
        }
    }

    /// The policy's decision about `server_name`; a denial is audited (rate-limited per peer).
    pub async fn check(
        &self,
        server_name: &str,
        direction: Direction,
        purpose: &str,
        ip: Option<IpAddr>,
    ) -> Result<(), Denial> {
        let Err(denial) = self.policy.check_federation_peer(&FederationPeerRequest {
            server_name,
            direction,
            purpose,
        }) else {
            return Ok(());
        };
        tracing::warn!(
            target: "handover::federation",
            peer = server_name,
            direction = direction.as_str(),
            purpose,
            rule = %denial.rule,
            "federation refused"
        );
        if let Some(suppressed) = self.should_audit(server_name, direction, purpose) {
            // Inbound: the peer is the (claimed, unverified) actor; outbound: we are.
            let actor = match direction {
                Direction::Inbound => server_name,
                Direction::Outbound => self.own.as_str(),
            };
            let mut e = audit::entry(actor, ACTION_FEDERATION_DENIAL, Outcome::Denied)
                .rule(&denial.rule)
                .target(server_name)
                .detail("hook", "check_federation_peer")
                .detail("direction", direction.as_str())
                .detail("purpose", purpose);
            if suppressed > 0 {
                e = e.detail("suppressed_since_last", suppressed);
            }
            self.audit.record(audit::with_ip(e, ip)).await;
        }
        Err(denial)
    }

    /// The policy's decision about `server_name` as a party to `room_id` (named in one of its
    /// events, or one of its servers we would send to). A listed server can admit an unlisted
    /// one into a shared room, so this is asked per event and per destination; the denial is
    /// audited (and logged at warn) once per room, server and direction, not per event.
    pub async fn check_in_room(
        &self,
        room_id: &str,
        server_name: &str,
        direction: Direction,
        purpose: &str,
    ) -> Result<(), Denial> {
        let Err(denial) = self.policy.check_federation_peer(&FederationPeerRequest {
            server_name,
            direction,
            purpose,
        }) else {
            return Ok(());
        };
        let first = {
            let mut seen = self
                .in_rooms
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if seen.len() >= MAX_TRACKED {
                seen.clear();
            }
            seen.insert((room_id.to_owned(), server_name.to_owned(), direction))
        };
        if !first {
            tracing::debug!(target: "handover::federation", peer = server_name, room_id, direction = direction.as_str(), purpose, "unlisted server in room refused again");
            return Err(denial);
        }
        tracing::warn!(target: "handover::federation", peer = server_name, room_id, direction = direction.as_str(), purpose, rule = %denial.rule, "unlisted server in room refused");
        let e = audit::entry(self.own.as_str(), ACTION_FEDERATION_DENIAL, Outcome::Denied)
            .rule(&denial.rule)
            .target(server_name)
            .detail("hook", "check_federation_peer")
            .detail("direction", direction.as_str())
            .detail("purpose", purpose)
            .detail("room_id", room_id);
        self.audit.record(e).await;
        Err(denial)
    }

    /// `Some(refusals not audited since the last entry)` when this refusal is to be audited.
    fn should_audit(&self, peer: &str, direction: Direction, purpose: &str) -> Option<u64> {
        let now = now_ms();
        let mut recent = self
            .recent
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if recent.len() >= MAX_TRACKED {
            recent.clear();
        }
        let slot = recent
            .entry((peer.to_owned(), direction, purpose.to_owned()))
            .or_insert((i64::MIN, 0));
        if now.saturating_sub(slot.0) >= AUDIT_EVERY_MS {
            let suppressed = slot.1;
            *slot = (now, 0);
            Some(suppressed)
        } else {
            slot.1 += 1;
            None
        }
    }
}
