//! The federation gate: every exchange with another server is asked of the policy first
//! (`Policy::check_federation_peer`), and a refusal is audited and becomes `M_FORBIDDEN` naming
//! the rule. Inbound, this runs before any other work on the request; outbound, before any
//! connection (nothing outside the federation list is ever contacted).

use std::collections::HashMap;
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

pub struct PeerGate {
    policy: Arc<dyn Policy>,
    audit: Arc<AuditService>,
    own: String,
    recent: Mutex<RecentDenials>,
}

impl PeerGate {
    pub fn new(policy: Arc<dyn Policy>, audit: Arc<AuditService>, own: String) -> Self {
        Self {
            policy,
            audit,
            own,
            recent: Mutex::new(HashMap::new()),
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
            // A failed write is logged inside; the denial stands either way.
            let _ = self.audit.record(audit::with_ip(e, ip)).await;
        }
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
