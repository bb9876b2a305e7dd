//! Device last-seen (time, address): written at most once a minute per device, because
//! `authenticate` runs on every request and a database write per request would cost an fsync.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use ruma::{DeviceId, UserId};

use super::UserService;
use crate::store::now_ms;

const INTERVAL: Duration = Duration::from_secs(60);
/// Above this many tracked devices, entries older than the interval are dropped.
const PRUNE_ABOVE: usize = 50_000;

#[derive(Default)]
pub(super) struct LastSeen {
    recorded: Mutex<HashMap<String, Instant>>,
}

impl LastSeen {
    /// True if `key` was not recorded in the last minute; it then counts as recorded at `now`.
    pub(super) fn due(&self, key: &str, now: Instant) -> bool {
        let mut map = self.recorded.lock().expect("last-seen lock");
        if map.len() > PRUNE_ABOVE {
            map.retain(|_, t| now.duration_since(*t) < INTERVAL);
        }
        match map.get(key) {
            Some(t) if now.duration_since(*t) < INTERVAL => false,
            _ => {
                map.insert(key.to_owned(), now);
                true
            }
        }
    }
}

impl UserService {
    /// Stores the device's last-seen time and address in the background when due; the request
    /// does not wait for the write, and a failed write only costs one minute's accuracy.
    pub(super) fn record_last_seen(
        &self,
        user_id: &UserId,
        device_id: &DeviceId,
        ip: Option<IpAddr>,
    ) {
        let key = format!("{user_id}\u{0}{device_id}");
        if !self.last_seen.due(&key, Instant::now()) {
            return;
        }
        let store = self.store.clone();
        let (u, d) = (user_id.to_string(), device_id.to_string());
        let ip = ip.map(|i| i.to_string());
        tokio::task::spawn_blocking(move || {
            if let Err(e) = store.touch_device(&u, &d, now_ms(), ip.as_deref()) {
                tracing::warn!(error = %e, "could not record device last-seen");
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn at_most_once_a_minute_per_device() {
        let ls = LastSeen::default();
        let t0 = Instant::now();
        assert!(ls.due("a", t0));
        assert!(!ls.due("a", t0 + Duration::from_secs(59)));
        assert!(ls.due("b", t0 + Duration::from_secs(1)));
        assert!(ls.due("a", t0 + Duration::from_secs(60)));
        assert!(!ls.due("a", t0 + Duration::from_secs(61)));
    }
}
