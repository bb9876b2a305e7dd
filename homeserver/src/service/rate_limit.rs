//! Token-bucket rate limits on login and registration, keyed by client IP and by target user,
//! so one attacker cannot hammer one account from many addresses, nor many accounts from one;
//! per user on sends, joins, invites, room creation and uploads; per origin on federation
//! `/send`. The client IP comes from `X-Forwarded-For` only when the socket peer is one of
//! `[rate_limit] trusted_proxies`.

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

/// Per-user actions with their own limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UserAction {
    Message,
    Join,
    Invite,
    RoomCreation,
    Upload,
}

pub struct RateLimits {
    enabled: bool,
    login: Limiter,
    register: Limiter,
    message: Limiter,
    join: Limiter,
    invite: Limiter,
    room_creation: Limiter,
    upload: Limiter,
    federation_send: Limiter,
    trusted_proxies: Vec<IpAddr>,
    /// Users of appservices registered with `rate_limited: false` skip the per-user limits.
    exempt: Option<std::sync::Arc<crate::service::appservice::registry::Registry>>,
}

impl RateLimits {
    pub fn new(cfg: &RateLimitConfig) -> Self {
        Self {
            enabled: cfg.enabled,
            login: Limiter::new(cfg.login_burst, cfg.login_per_second),
            register: Limiter::new(cfg.register_burst, cfg.register_per_second),
            message: Limiter::new(cfg.message_burst, cfg.message_per_second),
            join: Limiter::new(cfg.join_burst, cfg.join_per_second),
            invite: Limiter::new(cfg.invite_burst, cfg.invite_per_second),
            room_creation: Limiter::new(cfg.room_creation_burst, cfg.room_creation_per_second),
            upload: Limiter::new(cfg.upload_burst, cfg.upload_per_second),
            federation_send: Limiter::new(
                cfg.federation_send_burst,
                cfg.federation_send_per_second,
            ),
            trusted_proxies: cfg.trusted_proxies.clone(),
            exempt: None,
        }
    }

    /// Exempts the users of appservices registered with `rate_limited: false`.
    pub fn exempting(
        mut self,
        registry: std::sync::Arc<crate::service::appservice::registry::Registry>,
    ) -> Self {
        self.exempt = Some(registry);
        self
    }

    /// The client's address: the socket peer, or, when that peer is a trusted proxy, the last
    /// `X-Forwarded-For` entry that is not itself a trusted proxy (entries before it are the
    /// client's own claims).
    pub fn client_ip(&self, peer: Option<IpAddr>, headers: &http::HeaderMap) -> Option<IpAddr> {
        let peer = peer?;
        if !self.trusted_proxies.contains(&peer) {
            return Some(peer);
        }
        let hops: Vec<IpAddr> = headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .filter_map(|h| h.trim().parse().ok())
            .collect();
        Some(
            hops.into_iter()
                .rev()
                .find(|ip| !self.trusted_proxies.contains(ip))
                .unwrap_or(peer),
        )
    }

    /// The scheme the client used, as a trusted proxy reports it in `X-Forwarded-Proto`
    /// (`http` or `https`, the first value); `None` from anyone else or without the header.
    pub fn forwarded_proto(
        &self,
        peer: Option<IpAddr>,
        headers: &http::HeaderMap,
    ) -> Option<&'static str> {
        if !self.trusted_proxies.contains(&peer?) {
            return None;
        }
        let v = headers.get("x-forwarded-proto")?.to_str().ok()?;
        match v.split(',').next()?.trim().to_ascii_lowercase().as_str() {
            "https" => Some("https"),
            "http" => Some("http"),
            _ => None,
        }
    }

    /// One `action` by `user`; 429 `M_LIMIT_EXCEEDED` with `retry_after_ms` when over.
    pub fn check_user(&self, action: UserAction, user: &str) -> Result<()> {
        if !self.enabled
            || self
                .exempt
                .as_ref()
                .is_some_and(|r| r.rate_limit_exempt(user))
        {
            return Ok(());
        }
        let limiter = match action {
            UserAction::Message => &self.message,
            UserAction::Join => &self.join,
            UserAction::Invite => &self.invite,
            UserAction::RoomCreation => &self.room_creation,
            UserAction::Upload => &self.upload,
        };
        limiter
            .take(user, Instant::now())
            .map_err(Error::limit_exceeded)
    }

    /// One federation `/send` transaction from `origin` (authenticated).
    pub fn check_federation_send(&self, origin: &str) -> Result<()> {
        if !self.enabled {
            return Ok(());
        }
        self.federation_send
            .take(origin, Instant::now())
            .map_err(Error::limit_exceeded)
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

    fn limits(f: impl FnOnce(&mut RateLimitConfig)) -> RateLimits {
        let mut cfg = crate::config::Config::default().rate_limit;
        f(&mut cfg);
        RateLimits::new(&cfg)
    }

    #[test]
    fn per_user_limits_bite_per_user_and_per_action() {
        let l = limits(|_| {});
        for _ in 0..10 {
            l.check_user(UserAction::Message, "@a:x").unwrap();
        }
        let e = l.check_user(UserAction::Message, "@a:x").unwrap_err();
        assert!(matches!(
            e.kind(),
            Some(ruma::api::error::ErrorKind::LimitExceeded(d)) if d.retry_after.is_some()
        ));
        l.check_user(UserAction::Message, "@b:x").unwrap();
        l.check_user(UserAction::Join, "@a:x").unwrap();
        for _ in 0..50 {
            l.check_federation_send("a.example").unwrap();
        }
        assert!(l.check_federation_send("a.example").is_err());
        let off = limits(|c| c.enabled = false);
        for _ in 0..100 {
            off.check_user(UserAction::RoomCreation, "@a:x").unwrap();
        }
    }

    #[test]
    fn forwarded_proto_is_believed_only_from_trusted_proxies() {
        let proxy: IpAddr = "10.0.0.1".parse().unwrap();
        let l = limits(|c| c.trusted_proxies = vec![proxy]);
        let mut h = http::HeaderMap::new();
        h.insert("x-forwarded-proto", "HTTPS, http".parse().unwrap());
        assert_eq!(l.forwarded_proto(Some(proxy), &h), Some("https"));
        assert_eq!(
            l.forwarded_proto(Some("203.0.113.9".parse().unwrap()), &h),
            None
        );
        assert_eq!(l.forwarded_proto(None, &h), None);
        h.insert("x-forwarded-proto", "gopher".parse().unwrap());
        assert_eq!(l.forwarded_proto(Some(proxy), &h), None);
        assert_eq!(
            l.forwarded_proto(Some(proxy), &http::HeaderMap::new()),
            None
        );
    }

    #[test]
    fn forwarded_for_is_believed_only_from_trusted_proxies() {
        let proxy: IpAddr = "10.0.0.1".parse().unwrap();
        let l = limits(|c| c.trusted_proxies = vec![proxy]);
        let mut h = http::HeaderMap::new();
        h.insert("x-forwarded-for", "6.6.6.6, 203.0.113.9".parse().unwrap());
        // From the proxy: the last hop it saw (the client's own claim, 6.6.6.6, is ignored).
        assert_eq!(
            l.client_ip(Some(proxy), &h),
            Some("203.0.113.9".parse().unwrap())
        );
        // From anyone else the header is ignored.
        let other: IpAddr = "198.51.100.4".parse().unwrap();
        assert_eq!(l.client_ip(Some(other), &h), Some(other));
        assert_eq!(limits(|_| {}).client_ip(Some(proxy), &h), Some(proxy));
    }
}
