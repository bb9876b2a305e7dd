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

/// Refusals are audited at most once per this many ms per (source, direction, purpose); the
/// next entry counts the refusals in between. The source is the requester's address when there
/// is one (inbound requests, the notary): the origin an unauthenticated sender claims is free to
/// vary, its address is not. Without an address (our own outbound calls) it is the peer.
const AUDIT_EVERY_MS: i64 = 60_000;
/// At most this many refusal entries per window over all sources (many addresses); the rest are
/// counted into the next entry (`suppressed_other`).
const MAX_AUDITS_PER_WINDOW: u32 = 30;
/// Bound on the suppression table (cleared when exceeded).
const MAX_TRACKED: usize = 10_000;

/// (source, direction, purpose) -> (last audited at, refusals not audited since).
type RecentDenials = HashMap<(String, Direction, String), (i64, u64)>;

/// (room, peer, direction) already audited as unlisted in that room.
type RoomDenials = HashSet<(String, String, Direction)>;

#[derive(Default)]
struct Suppression {
    recent: RecentDenials,
    /// Start of the current global window, entries in it, refusals dropped by the global cap.
    window_start: i64,
    in_window: u32,
    dropped: u64,
}

pub struct PeerGate {
    policy: Arc<dyn Policy>,
    audit: Arc<AuditService>,
    own: String,
    recent: Mutex<Suppression>,
    in_rooms: Mutex<RoomDenials>,
}

impl PeerGate {
    pub fn new(policy: Arc<dyn Policy>, audit: Arc<AuditService>, own: String) -> Self {
        Self {
            policy,
            audit,
            own,
            recent: Mutex::new(Suppression::default()),
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
        let source = match ip {
            Some(ip) => format!("ip:{ip}"),
            None => format!("peer:{server_name}"),
        };
        if let Some((suppressed, other)) = self.should_audit(&source, direction, purpose) {
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
            if direction == Direction::Inbound {
                // Refused before its signature is checked: the origin is only claimed.
                e = e.detail("origin_verified", false);
            }
            if suppressed > 0 {
                e = e.detail("suppressed_since_last", suppressed);
            }
            if other > 0 {
                e = e.detail("suppressed_other", other);
            }
            // A failed write is logged inside; the denial stands either way.
            let _ = self.audit.record(audit::with_ip(e, ip)).await;
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
        // Best effort, as every gate refusal: the refusal stands whether or not it is recorded.
        let _ = self.audit.record(e).await;
        Err(denial)
    }

    /// Of `servers` (a room's servers, about to be sent something), those on the federation
    /// list, and our own: a listed server may have admitted an unlisted one, and nothing of the
    /// room goes there. Audited once per room and server.
    pub async fn listed_in_room(
        &self,
        room_id: &ruma::RoomId,
        servers: Vec<ruma::OwnedServerName>,
    ) -> Vec<ruma::OwnedServerName> {
        let mut out = Vec::with_capacity(servers.len());
        for s in servers {
            if s.as_str() == self.own
                || self
                    .check_in_room(
                        room_id.as_str(),
                        s.as_str(),
                        Direction::Outbound,
                        "room_fanout",
                    )
                    .await
                    .is_ok()
            {
                out.push(s);
            }
        }
        out
    }

    /// `Some((refusals from this source not audited since, refusals dropped by the global
    /// cap))` when this refusal is to be audited.
    fn should_audit(
        &self,
        source: &str,
        direction: Direction,
        purpose: &str,
    ) -> Option<(u64, u64)> {
        let now = now_ms();
        let mut sup = self
            .recent
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if sup.recent.len() >= MAX_TRACKED {
            sup.recent.clear();
        }
        if now.saturating_sub(sup.window_start) >= AUDIT_EVERY_MS {
            sup.window_start = now;
            sup.in_window = 0;
        }
        let key = (source.to_owned(), direction, purpose.to_owned());
        let slot = *sup.recent.get(&key).unwrap_or(&(i64::MIN, 0));
        if now.saturating_sub(slot.0) < AUDIT_EVERY_MS {
            sup.recent.insert(key, (slot.0, slot.1 + 1));
            return None;
        }
        if sup.in_window >= MAX_AUDITS_PER_WINDOW {
            sup.dropped += 1;
            return None;
        }
        sup.in_window += 1;
        sup.recent.insert(key, (now, 0));
        Some((slot.1, std::mem::take(&mut sup.dropped)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use handover_policy::FederationGate;

    fn gate() -> (PeerGate, Arc<AuditService>, tempfile::TempDir) {
        let (store, dir) = crate::store::sqlite::test_store();
        let audit = Arc::new(AuditService::new(Arc::new(store)));
        let policy = Arc::new(FederationGate { list: None });
        (
            PeerGate::new(policy, audit.clone(), "own.nhs.uk".into()),
            audit,
            dir,
        )
    }

    #[tokio::test]
    async fn claimed_origins_from_one_address_make_one_counted_entry() {
        let (g, audit, _d) = gate();
        let ip: IpAddr = "192.0.2.7".parse().unwrap();
        for i in 0..50 {
            let name = format!("forged{i}.example");
            assert!(
                g.check(&name, Direction::Inbound, "request", Some(ip))
                    .await
                    .is_err()
            );
        }
        let all = audit.all().await.unwrap();
        assert_eq!(all.len(), 1, "{all:?}");
        assert_eq!(all[0].details["origin_verified"], false);
        // Many addresses: bounded by the global cap, the rest counted.
        for i in 0..100u8 {
            let ip: IpAddr = format!("198.51.100.{i}").parse().unwrap();
            let _ = g
                .check("x.example", Direction::Inbound, "request", Some(ip))
                .await;
        }
        assert_eq!(
            audit.all().await.unwrap().len(),
            MAX_AUDITS_PER_WINDOW as usize
        );
    }
}
