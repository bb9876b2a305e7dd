//! Short-lived, single-use records kept in memory: sign-ins in flight, authorization codes, login
//! tokens. A restart forgets them, which only means the user starts the sign-in again.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// At most this many records live at once; beyond it the oldest are dropped (a flood of
/// abandoned sign-ins cannot grow memory without bound).
const CAP: usize = 10_000;

pub struct Expiring<T> {
    ttl: Duration,
    map: Mutex<HashMap<String, (Instant, T)>>,
}

impl<T: Clone> Expiring<T> {
    pub fn new(ttl: Duration) -> Self {
        Self {
            ttl,
            map: Mutex::new(HashMap::new()),
        }
    }

    pub fn insert(&self, key: String, value: T) {
        self.insert_inner(key, value, true);
    }

    /// Inserts unless a live record has this key, in which case `false` (replay detection).
    pub fn insert_new(&self, key: String, value: T) -> bool {
        self.insert_inner(key, value, false)
    }

    fn insert_inner(&self, key: String, value: T, replace: bool) -> bool {
        let mut m = self.map.lock().expect("expiring lock");
        let now = Instant::now();
        m.retain(|_, (at, _)| now.duration_since(*at) < self.ttl);
        if !replace && m.contains_key(&key) {
            return false;
        }
        if m.len() >= CAP
            && let Some(oldest) = m
                .iter()
                .min_by_key(|(_, (at, _))| *at)
                .map(|(k, _)| k.clone())
        {
            m.remove(&oldest);
        }
        m.insert(key, (now, value));
        true
    }

    /// Removes and returns the record (single use).
    pub fn take(&self, key: &str) -> Option<T> {
        let mut m = self.map.lock().expect("expiring lock");
        let (at, v) = m.remove(key)?;
        (at.elapsed() < self.ttl).then_some(v)
    }

    pub fn get(&self, key: &str) -> Option<T> {
        let m = self.map.lock().expect("expiring lock");
        m.get(key)
            .filter(|(at, _)| at.elapsed() < self.ttl)
            .map(|(_, v)| v.clone())
    }

    /// Changes a live record in place; false when it is gone.
    pub fn update(&self, key: &str, f: impl FnOnce(&mut T)) -> bool {
        let mut m = self.map.lock().expect("expiring lock");
        match m.get_mut(key) {
            Some((at, v)) if at.elapsed() < self.ttl => {
                f(v);
                true
            }
            _ => false,
        }
    }
}

/// A random URL-safe secret (256 bits).
pub fn secret() -> String {
    use base64::Engine;
    let bytes: [u8; 32] = rand::random();
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn single_use_and_expiry() {
        let e = Expiring::new(Duration::from_millis(50));
        e.insert("a".into(), 1);
        assert_eq!(e.get("a"), Some(1));
        assert_eq!(e.take("a"), Some(1));
        assert_eq!(e.take("a"), None);
        e.insert("b".into(), 2);
        std::thread::sleep(Duration::from_millis(60));
        assert_eq!(e.take("b"), None);
        assert_ne!(secret(), secret());
    }
}
