//! Token-bucket rate limits on login and registration, keyed by client IP and by target user,
//! so one attacker cannot hammer one account from many addresses, nor many accounts from one.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::config::RateLimitConfig;
use crate::error::{Error, Result};

struct Bucket {
    tokens: f64,
    updated: Instant,
}

pub struct Limiter {
    burst: f64,
    per_second: f64,
    buckets: Mutex<HashMap<String, Bucket>>,
}

impl Limiter {
    pub fn new(burst: u32, per_second: f64) -> Self {
        Self {
            burst: f64::from(burst.max(1)),
            per_second: per_second.max(1e-6),
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Takes one token for `key`, or says how long until one is available.
    pub fn take(&self, key: &str, now: Instant) -> Result<(), Duration> {
        let mut buckets = self.buckets.lock().expect("rate limit lock");
        if buckets.len() > 100_000 {
            // Bound memory under a flood of distinct keys: drop buckets that have refilled.
            let full = self.burst / self.per_second;
            buckets.retain(|_, b| now.duration_since(b.updated).as_secs_f64() < full);
        }
        let b = buckets.entry(key.to_owned()).or_insert(Bucket {
            tokens: self.burst,
            updated: now,
        });
        let elapsed = now.duration_since(b.updated).as_secs_f64();
        b.tokens = (b.tokens + elapsed * self.per_second).min(self.burst);
        b.updated = now;
        if b.tokens >= 1.0 {
            b.tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - b.tokens) / self.per_second))
        }
    }
}

pub struct RateLimits {
    enabled: bool,
    login: Limiter,
    register: Limiter,
}

impl RateLimits {
    pub fn new(cfg: &RateLimitConfig) -> Self {
        Self {
            enabled: cfg.enabled,
            login: Limiter::new(cfg.login_burst, cfg.login_per_second),
            register: Limiter::new(cfg.register_burst, cfg.register_per_second),
        }
    }

    pub fn check_login(&self, ip: Option<IpAddr>, user: &str) -> Result<()> {
        if !self.enabled {
            return Ok(());
        }
        let now = Instant::now();
        let ip_key = format!("ip:{}", ip.map(|i| i.to_string()).unwrap_or_default());
        self.login
            .take(&ip_key, now)
            .map_err(Error::limit_exceeded)?;
        self.login
            .take(&format!("user:{}", user.to_lowercase()), now)
            .map_err(Error::limit_exceeded)
    }

    pub fn check_register(&self, ip: Option<IpAddr>) -> Result<()> {
        if !self.enabled {
            return Ok(());
        }
        let key = format!("ip:{}", ip.map(|i| i.to_string()).unwrap_or_default());
        self.register
            .take(&key, Instant::now())
            .map_err(Error::limit_exceeded)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_empties_then_refills() {
        let l = Limiter::new(2, 1.0);
        let t0 = Instant::now();
        assert!(l.take("k", t0).is_ok());
        assert!(l.take("k", t0).is_ok());
        let wait = l.take("k", t0).unwrap_err();
        assert!(wait > Duration::from_millis(900) && wait <= Duration::from_secs(1));
        assert!(l.take("other", t0).is_ok());
        assert!(l.take("k", t0 + Duration::from_millis(1100)).is_ok());
    }
}
