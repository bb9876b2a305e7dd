//! Sliding-sync connections, held in memory: per (user, device, conn_id), what each `pos` token
//! stood for (the stream position and which rooms the client had been sent, up to where).
//!
//! A few recent tokens are kept so a client retrying a lost response can resume from the same
//! `pos`. Nothing is persisted: after a restart, or once a connection idles out, its tokens are
//! unknown and the client is told `M_UNKNOWN_POS` to start afresh (as MSC4186 intends).

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use ruma::{OwnedDeviceId, OwnedRoomId, OwnedUserId};

/// Connections idle longer than this are dropped.
const IDLE: Duration = Duration::from_secs(30 * 60);
/// Upper bound on connections held, whatever their age (oldest-used evicted first).
const MAX_CONNECTIONS: usize = 10_000;
/// Tokens kept per connection: the one in use, plus a few for retries of lost responses.
const TOKENS_KEPT: usize = 4;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ConnKey {
    pub user: OwnedUserId,
    pub device: OwnedDeviceId,
    pub conn_id: String,
}

/// How a room was last sent on this connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SentRoom {
    /// The room is up to date for the client as of this stream position.
    pub pos: i64,
    /// The membership it was sent with ("join" or "invite"); a change means a fresh send.
    pub membership: String,
    /// The required_state it was sent with; a new config sends its state again.
    pub required_state: Vec<(String, String)>,
}

/// What the client knew when it was handed one `pos` token.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    /// Stream position the response covered (0 for a new connection).
    pub pos: i64,
    pub rooms: HashMap<OwnedRoomId, SentRoom>,
    /// Each list's count as last sent, so a changed count is news for a long-poll.
    pub counts: BTreeMap<String, u64>,
}

struct Connection {
    tokens: BTreeMap<u64, Snapshot>,
    last_used: Instant,
}

pub struct Connections {
    conns: Mutex<HashMap<ConnKey, Connection>>,
    /// Token counter, seeded from the clock so tokens from before a restart never match.
    next: AtomicU64,
}

impl Default for Connections {
    fn default() -> Self {
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(1, |d| d.as_micros() as u64);
        Self {
            conns: Mutex::new(HashMap::new()),
            next: AtomicU64::new(seed),
        }
    }
}

impl Connections {
    /// The snapshot behind `pos`, or a fresh one when `pos` is `None` (a new connection, which
    /// replaces any earlier one with the same key). `None` if the token is unknown or expired.
    pub fn resume(&self, key: &ConnKey, pos: Option<&str>) -> Option<Snapshot> {
        let mut conns = self.conns.lock().expect("connections lock");
        evict_idle(&mut conns);
        let Some(pos) = pos else {
            conns.remove(key);
            return Some(Snapshot::default());
        };
        let token: u64 = pos.parse().ok()?;
        let conn = conns.get_mut(key)?;
        conn.last_used = Instant::now();
        // The client has moved on to `token`: older ones will not be retried.
        conn.tokens.retain(|t, _| *t >= token);
        conn.tokens.get(&token).cloned()
    }

    /// Records what the client knows after this response; returns the new `pos` token.
    pub fn store(&self, key: &ConnKey, snapshot: Snapshot) -> String {
        let token = self.next.fetch_add(1, Ordering::Relaxed);
        let mut conns = self.conns.lock().expect("connections lock");
        if conns.len() >= MAX_CONNECTIONS && !conns.contains_key(key) {
            let oldest = conns
                .iter()
                .min_by_key(|(_, c)| c.last_used)
                .map(|(k, _)| k.clone());
            if let Some(k) = oldest {
                conns.remove(&k);
            }
        }
        let conn = conns.entry(key.clone()).or_insert_with(|| Connection {
            tokens: BTreeMap::new(),
            last_used: Instant::now(),
        });
        conn.last_used = Instant::now();
        conn.tokens.insert(token, snapshot);
        while conn.tokens.len() > TOKENS_KEPT {
            conn.tokens.pop_first();
        }
        token.to_string()
    }
}

fn evict_idle(conns: &mut HashMap<ConnKey, Connection>) {
    let now = Instant::now();
    conns.retain(|_, c| now.duration_since(c.last_used) < IDLE);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(conn: &str) -> ConnKey {
        ConnKey {
            user: "@a:x".try_into().unwrap(),
            device: "D".into(),
            conn_id: conn.into(),
        }
    }

    #[test]
    fn tokens_resume_their_snapshot_and_unknown_ones_do_not() {
        let c = Connections::default();
        assert!(c.resume(&key("a"), None).is_some());
        let t1 = c.store(
            &key("a"),
            Snapshot {
                pos: 5,
                ..Default::default()
            },
        );
        assert_eq!(c.resume(&key("a"), Some(&t1)).unwrap().pos, 5);
        // Retrying the same token works; another connection id does not know it.
        assert_eq!(c.resume(&key("a"), Some(&t1)).unwrap().pos, 5);
        assert!(c.resume(&key("b"), Some(&t1)).is_none());
        assert!(c.resume(&key("a"), Some("garbage")).is_none());
        // A new connection with the same key forgets the old tokens.
        c.resume(&key("a"), None);
        assert!(c.resume(&key("a"), Some(&t1)).is_none());
    }
}
