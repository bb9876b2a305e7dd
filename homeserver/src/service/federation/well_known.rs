//! `/.well-known/matrix/server` for server discovery: the HTTPS fetch, the spec's validity
//! rules, and the cache (the response's `Cache-Control: max-age`, else 24 h, kept within
//! [5 min, 48 h]; an invalid or failed answer is cached for 1 h).

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use http::HeaderMap;
use ruma::OwnedServerName;

/// Used when the response gives no `max-age`.
pub const DEFAULT_TTL: Duration = Duration::from_secs(24 * 3600);
/// Bounds on a response's own `max-age` (and `no-store`/`no-cache` mean the minimum).
pub const MIN_TTL: Duration = Duration::from_secs(5 * 60);
pub const MAX_TTL: Duration = Duration::from_secs(48 * 3600);
/// How long an invalid or failed answer is remembered.
pub const ERROR_TTL: Duration = Duration::from_secs(3600);
/// Largest well-known body read.
const MAX_BODY: usize = 64 * 1024;
/// Redirects followed (same scheme, host and port only).
const MAX_REDIRECTS: usize = 5;
/// Hosts remembered at most (the table is cleared when full).
const MAX_ENTRIES: usize = 10_000;

/// What one fetch found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fetched {
    /// A valid answer: the delegated server name and how long to keep it.
    Delegated {
        server: OwnedServerName,
        ttl: Duration,
    },
    /// An answer that is not a valid delegation (non-200, bad JSON, no or bad `m.server`).
    Invalid(String),
    /// No answer (connection, TLS, timeout) or a server error (5xx).
    Unreachable(String),
}

pub type FetchFuture<'a> = Pin<Box<dyn Future<Output = Fetched> + Send + 'a>>;

/// Where well-known answers come from (HTTPS in the server; a table in tests).
pub trait WellKnownSource: Send + Sync {
    fn fetch<'a>(&'a self, host: &'a str) -> FetchFuture<'a>;
}

/// The validity rules for a 200 body: a JSON object whose `m.server` is a server name.
pub fn parse_body(body: &[u8]) -> Result<OwnedServerName, String> {
    let v: serde_json::Value =
        serde_json::from_slice(body).map_err(|e| format!("not JSON: {e}"))?;
    let s = v
        .as_object()
        .ok_or("not a JSON object")?
        .get("m.server")
        .ok_or("no m.server")?
        .as_str()
        .ok_or("m.server is not a string")?;
    OwnedServerName::try_from(s).map_err(|e| format!("m.server {s:?} is not a server name: {e}"))
}

/// How long a valid answer is kept, from its `Cache-Control` header.
pub fn ttl_from_headers(headers: &HeaderMap) -> Duration {
    let mut max_age = None;
    for value in headers.get_all(http::header::CACHE_CONTROL) {
        let Ok(value) = value.to_str() else { continue };
        for directive in value.split(',') {
            let d = directive.trim().to_ascii_lowercase();
            if d == "no-store" || d == "no-cache" {
                return MIN_TTL;
            }
            if let Some(secs) = d.strip_prefix("max-age=") {
                max_age = secs.trim_matches('"').parse::<u64>().ok().or(max_age);
            }
        }
    }
    match max_age {
        Some(secs) => Duration::from_secs(secs).clamp(MIN_TTL, MAX_TTL),
        None => DEFAULT_TTL,
    }
}

/// The real source: `GET https://<host>[:port]/.well-known/matrix/server`.
pub struct HttpsWellKnown {
    pub http: reqwest::Client,
    /// 443 in service; tests point it at a local listener.
    pub port: u16,
}

/// Redirects are followed only to the same scheme, host and port (a path move on the same
/// site); one to another host is not followed, so nothing but the listed name is contacted
/// for its well-known. Loops and long chains stop too. A redirect not followed leaves a 3xx,
/// which is an invalid answer.
pub fn redirect_policy() -> reqwest::redirect::Policy {
    reqwest::redirect::Policy::custom(|attempt| {
        let first = attempt.previous().first().cloned();
        let same_origin = first.as_ref().is_some_and(|f| {
            f.scheme() == attempt.url().scheme()
                && f.host_str() == attempt.url().host_str()
                && f.port_or_known_default() == attempt.url().port_or_known_default()
        });
        let looped = attempt.previous().contains(attempt.url());
        if same_origin && !looped && attempt.previous().len() <= MAX_REDIRECTS {
            attempt.follow()
        } else {
            attempt.stop()
        }
    })
}

impl WellKnownSource for HttpsWellKnown {
    fn fetch<'a>(&'a self, host: &'a str) -> FetchFuture<'a> {
        Box::pin(async move {
            let url = if self.port == 443 {
                format!("https://{host}/.well-known/matrix/server")
            } else {
                format!("https://{host}:{}/.well-known/matrix/server", self.port)
            };
            let mut res = match self.http.get(&url).send().await {
                Ok(r) => r,
                Err(e) => return Fetched::Unreachable(super::client::error_chain(&e)),
            };
            let status = res.status();
            if status.is_server_error() {
                return Fetched::Unreachable(format!("status {status}"));
            }
            if status != http::StatusCode::OK {
                return Fetched::Invalid(format!("status {status}"));
            }
            let ttl = ttl_from_headers(res.headers());
            let mut body = Vec::new();
            loop {
                match res.chunk().await {
                    Ok(Some(chunk)) if body.len() + chunk.len() <= MAX_BODY => {
                        body.extend_from_slice(&chunk)
                    }
                    Ok(Some(_)) => return Fetched::Invalid("body too large".into()),
                    Ok(None) => break,
                    Err(e) => return Fetched::Unreachable(super::client::error_chain(&e)),
                }
            }
            match parse_body(&body) {
                Ok(server) => Fetched::Delegated { server, ttl },
                Err(why) => Fetched::Invalid(why),
            }
        })
    }
}

struct Entry {
    delegated: Option<OwnedServerName>,
    expires: Instant,
}

/// Cached well-known answers per hostname.
pub struct WellKnownCache {
    source: Arc<dyn WellKnownSource>,
    entries: Mutex<HashMap<String, Entry>>,
}

impl WellKnownCache {
    pub fn new(source: Arc<dyn WellKnownSource>) -> Self {
        Self {
            source,
            entries: Mutex::new(HashMap::new()),
        }
    }

    /// The server `host` delegates to, if its well-known says so.
    pub async fn delegated(&self, host: &str) -> Option<OwnedServerName> {
        self.delegated_at(host, Instant::now()).await
    }

    /// As `delegated`, at time `now` (tests move the clock).
    pub async fn delegated_at(&self, host: &str, now: Instant) -> Option<OwnedServerName> {
        let host = host.to_ascii_lowercase();
        let previous = {
            let entries = self.lock();
            match entries.get(&host) {
                Some(e) if e.expires > now => return e.delegated.clone(),
                Some(e) => e.delegated.clone(),
                None => None,
            }
        };
        let (delegated, ttl) = match self.source.fetch(&host).await {
            Fetched::Delegated { server, ttl } => (Some(server), ttl),
            Fetched::Invalid(why) => {
                tracing::info!(target: "handover::federation", host, reason = why, "no valid .well-known/matrix/server; trying SRV");
                (None, ERROR_TTL)
            }
            // An outage of the web server does not undo a delegation we already know.
            Fetched::Unreachable(why) => {
                tracing::info!(target: "handover::federation", host, reason = why, keeping_previous = previous.is_some(), ".well-known/matrix/server unreachable");
                (previous, ERROR_TTL)
            }
        };
        let mut entries = self.lock();
        if entries.len() >= MAX_ENTRIES {
            entries.clear();
        }
        entries.insert(
            host,
            Entry {
                delegated: delegated.clone(),
                expires: now + ttl,
            },
        );
        delegated
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Entry>> {
        self.entries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[test]
    fn body_rules() {
        let ok = |b: &str| parse_body(b.as_bytes()).map(|s| s.to_string());
        assert_eq!(
            ok(r#"{"m.server":"matrix.trust.nhs.uk:443"}"#).unwrap(),
            "matrix.trust.nhs.uk:443"
        );
        assert_eq!(
            ok(r#"{"m.server":"fed.trust.nhs.uk","other":1}"#).unwrap(),
            "fed.trust.nhs.uk"
        );
        assert_eq!(
            ok(r#"{"m.server":"[fd00::1]:8448"}"#).unwrap(),
            "[fd00::1]:8448"
        );
        for bad in [
            "",
            "not json",
            "[]",
            r#""matrix.trust.nhs.uk""#,
            "{}",
            r#"{"m.server":7}"#,
            r#"{"m.server":""}"#,
            r#"{"m.server":"has space.nhs.uk"}"#,
            r#"{"m.server":"host:notaport"}"#,
            r#"{"m.server":"https://matrix.trust.nhs.uk"}"#,
        ] {
            assert!(ok(bad).is_err(), "{bad:?} accepted");
        }
    }

    fn headers(values: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in values {
            h.append(http::header::CACHE_CONTROL, v.parse().unwrap());
        }
        h
    }

    #[test]
    fn cache_control_rules() {
        let s = Duration::from_secs;
        assert_eq!(ttl_from_headers(&headers(&[])), DEFAULT_TTL);
        assert_eq!(ttl_from_headers(&headers(&["max-age=7200"])), s(7200));
        assert_eq!(
            ttl_from_headers(&headers(&["public, Max-Age=3600, must-revalidate"])),
            s(3600)
        );
        assert_eq!(ttl_from_headers(&headers(&["max-age=10"])), MIN_TTL);
        assert_eq!(ttl_from_headers(&headers(&["max-age=999999999"])), MAX_TTL);
        assert_eq!(ttl_from_headers(&headers(&["no-store"])), MIN_TTL);
        assert_eq!(ttl_from_headers(&headers(&["public", "no-cache"])), MIN_TTL);
        assert_eq!(ttl_from_headers(&headers(&["max-age=junk"])), DEFAULT_TTL);
    }

    /// Answers from a script, counting fetches.
    struct Script {
        answers: Mutex<Vec<Fetched>>,
        fetches: AtomicUsize,
    }

    impl WellKnownSource for Script {
        fn fetch<'a>(&'a self, _host: &'a str) -> FetchFuture<'a> {
            self.fetches.fetch_add(1, Ordering::SeqCst);
            let next = self.answers.lock().unwrap().remove(0);
            Box::pin(async move { next })
        }
    }

    #[tokio::test]
    async fn answers_are_cached_for_their_ttl_and_errors_for_an_hour() {
        let name = |s: &str| OwnedServerName::try_from(s).unwrap();
        let script = Arc::new(Script {
            answers: Mutex::new(vec![
                Fetched::Delegated {
                    server: name("fed.a.nhs.uk:8448"),
                    ttl: Duration::from_secs(600),
                },
                Fetched::Unreachable("down".into()),
                Fetched::Invalid("status 404".into()),
                Fetched::Delegated {
                    server: name("fed2.a.nhs.uk"),
                    ttl: DEFAULT_TTL,
                },
            ]),
            fetches: AtomicUsize::new(0),
        });
        let cache = WellKnownCache::new(script.clone());
        let t0 = Instant::now();
        let at = |secs: u64| t0 + Duration::from_secs(secs);
        let want = Some(name("fed.a.nhs.uk:8448"));
        assert_eq!(cache.delegated_at("A.nhs.uk", t0).await, want);
        assert_eq!(cache.delegated_at("a.nhs.uk", at(599)).await, want);
        assert_eq!(script.fetches.load(Ordering::SeqCst), 1, "cached");
        // Expired; the web server is down: the known delegation is kept, for an hour.
        assert_eq!(cache.delegated_at("a.nhs.uk", at(601)).await, want);
        assert_eq!(cache.delegated_at("a.nhs.uk", at(601 + 3599)).await, want);
        assert_eq!(script.fetches.load(Ordering::SeqCst), 2);
        // Then a definite "no delegation" (404): cached for an hour too.
        assert_eq!(cache.delegated_at("a.nhs.uk", at(601 + 3601)).await, None);
        assert_eq!(
            cache.delegated_at("a.nhs.uk", at(601 + 3601 + 3599)).await,
            None
        );
        assert_eq!(script.fetches.load(Ordering::SeqCst), 3);
        assert_eq!(
            cache.delegated_at("a.nhs.uk", at(601 + 7202)).await,
            Some(name("fed2.a.nhs.uk"))
        );
        assert_eq!(script.fetches.load(Ordering::SeqCst), 4);
    }
}
