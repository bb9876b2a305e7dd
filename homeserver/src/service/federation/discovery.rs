//! Server discovery (spec: server-server API, "Resolving server names"): where to connect for a
//! server name, which name TLS must verify, and the `Host` header.
//!
//! 1. IP literal: that IP, its port or 8448; `Host` the server name.
//! 2. hostname:port: that host and port; TLS and `Host` the server name.
//! 3. `https://<hostname>/.well-known/matrix/server` (cached, `well_known.rs`); if it delegates:
//!    an IP literal or a name with a port is used as in 1 and 2 (TLS and `Host` the delegated
//!    name); a delegated name without a port goes through 4–6 with the delegated name.
//! 4. SRV `_matrix-fed._tcp.<name>`, then 5. the deprecated `_matrix._tcp.<name>`: connect to the
//!    targets' addresses and ports, while TLS and `Host` stay `<name>`.
//! 6. `<name>:8448`.
//!
//! The federation list is asked before any of this (`FederationClient::send`), so a refused
//! name is never looked up.

use std::sync::Arc;

use ruma::ServerName;

use super::dns::{self, SrvLookup, SrvRecord};
use super::well_known::{WellKnownCache, WellKnownSource};

/// The port federation uses when a server name gives none.
pub const DEFAULT_PORT: u16 = 8448;

/// Where and how to send requests for a destination.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// `https://host[:port]`, without a trailing slash. The host is the name the certificate
    /// must be valid for (and the SNI).
    pub base_url: String,
    /// The `Host` header.
    pub host_header: String,
    /// From SRV records: connect to these hosts and ports (in order) instead of the URL's
    /// host; the URL then has no port.
    pub srv: Option<Vec<SrvRecord>>,
}

impl Target {
    fn direct(host: &str, port: u16, host_header: &str) -> Self {
        Self {
            base_url: format!("https://{host}:{port}"),
            host_header: host_header.to_owned(),
            srv: None,
        }
    }
}

pub struct Discovery {
    well_known: WellKnownCache,
    srv: Arc<dyn SrvLookup>,
}

impl Discovery {
    pub fn new(well_known: Arc<dyn WellKnownSource>, srv: Arc<dyn SrvLookup>) -> Self {
        Self {
            well_known: WellKnownCache::new(well_known),
            srv,
        }
    }

    pub async fn resolve(&self, server: &ServerName) -> Result<Target, String> {
        let host = server.host();
        if server.is_ip_literal() {
            return Ok(Target::direct(
                host,
                server.port().unwrap_or(DEFAULT_PORT),
                server.as_str(),
            ));
        }
        if let Some(port) = server.port() {
            return Ok(Target::direct(host, port, server.as_str()));
        }
        match self.well_known.delegated(host).await {
            Some(d) if d.is_ip_literal() => Ok(Target::direct(
                d.host(),
                d.port().unwrap_or(DEFAULT_PORT),
                d.as_str(),
            )),
            Some(d) => match d.port() {
                Some(port) => Ok(Target::direct(d.host(), port, d.as_str())),
                None => self.by_srv(d.host()).await,
            },
            None => self.by_srv(host).await,
        }
    }

    /// Steps 4–6 for `name` (the server's hostname, or the delegated one).
    async fn by_srv(&self, name: &str) -> Result<Target, String> {
        for service in ["_matrix-fed._tcp", "_matrix._tcp"] {
            // Fully qualified: no search domains appended.
            let records = self.srv.lookup(&format!("{service}.{name}.")).await?;
            if !records.is_empty() {
                return Ok(Target {
                    base_url: format!("https://{name}"),
                    host_header: name.to_owned(),
                    srv: Some(dns::order(records)),
                });
            }
        }
        Ok(Target::direct(name, DEFAULT_PORT, name))
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::sync::Mutex;
    use std::time::Duration;

    use ruma::OwnedServerName;

    use super::*;
    use crate::service::federation::dns::SrvFuture;
    use crate::service::federation::well_known::{FetchFuture, Fetched};

    #[derive(Default)]
    struct FakeNet {
        well_known: HashMap<String, Fetched>,
        srv: HashMap<String, Result<Vec<SrvRecord>, String>>,
        asked: Mutex<Vec<String>>,
    }

    impl WellKnownSource for FakeNet {
        fn fetch<'a>(&'a self, host: &'a str) -> FetchFuture<'a> {
            self.asked.lock().unwrap().push(format!("wk {host}"));
            let a = self
                .well_known
                .get(host)
                .cloned()
                .unwrap_or(Fetched::Invalid("status 404".into()));
            Box::pin(async move { a })
        }
    }

    impl SrvLookup for FakeNet {
        fn lookup<'a>(&'a self, name: &'a str) -> SrvFuture<'a> {
            self.asked.lock().unwrap().push(format!("srv {name}"));
            let a = self.srv.get(name).cloned().unwrap_or(Ok(vec![]));
            Box::pin(async move { a })
        }
    }

    fn delegated(s: &str) -> Fetched {
        Fetched::Delegated {
            server: OwnedServerName::try_from(s).unwrap(),
            ttl: Duration::from_secs(600),
        }
    }

    fn srv(port: u16, target: &str) -> SrvRecord {
        SrvRecord {
            priority: 10,
            weight: 0,
            port,
            target: target.into(),
        }
    }

    async fn resolve(net: FakeNet, name: &str) -> (Result<Target, String>, Vec<String>) {
        let net = Arc::new(net);
        let d = Discovery::new(net.clone(), net.clone());
        let t = d.resolve(<&ServerName>::try_from(name).unwrap()).await;
        let asked = net.asked.lock().unwrap().clone();
        (t, asked)
    }

    fn direct(url: &str, host: &str) -> Target {
        Target {
            base_url: url.into(),
            host_header: host.into(),
            srv: None,
        }
    }

    #[tokio::test]
    async fn ip_literals_and_explicit_ports_need_no_lookup() {
        for (name, url, host) in [
            ("127.0.0.1", "https://127.0.0.1:8448", "127.0.0.1"),
            ("127.0.0.1:9000", "https://127.0.0.1:9000", "127.0.0.1:9000"),
            ("[::1]", "https://[::1]:8448", "[::1]"),
            ("[::1]:9000", "https://[::1]:9000", "[::1]:9000"),
            (
                "matrix.trust.nhs.uk:443",
                "https://matrix.trust.nhs.uk:443",
                "matrix.trust.nhs.uk:443",
            ),
        ] {
            let (t, asked) = resolve(FakeNet::default(), name).await;
            assert_eq!(t.unwrap(), direct(url, host), "{name}");
            assert!(asked.is_empty(), "{name}: {asked:?}");
        }
    }

    #[tokio::test]
    async fn well_known_delegation_with_port_or_ip_is_used_directly() {
        let mut net = FakeNet::default();
        net.well_known
            .insert("trust.nhs.uk".into(), delegated("matrix.trust.nhs.uk:8443"));
        let (t, asked) = resolve(net, "trust.nhs.uk").await;
        assert_eq!(
            t.unwrap(),
            direct(
                "https://matrix.trust.nhs.uk:8443",
                "matrix.trust.nhs.uk:8443"
            )
        );
        assert_eq!(asked, vec!["wk trust.nhs.uk"], "no SRV lookup");

        let mut net = FakeNet::default();
        net.well_known
            .insert("trust.nhs.uk".into(), delegated("10.1.2.3"));
        let (t, _) = resolve(net, "trust.nhs.uk").await;
        assert_eq!(t.unwrap(), direct("https://10.1.2.3:8448", "10.1.2.3"));
    }

    #[tokio::test]
    async fn delegated_name_without_port_goes_through_srv_under_that_name() {
        let mut net = FakeNet::default();
        net.well_known
            .insert("trust.nhs.uk".into(), delegated("matrix.trust.nhs.uk"));
        net.srv.insert(
            "_matrix._tcp.matrix.trust.nhs.uk.".into(),
            Ok(vec![srv(8000, "lb.trust.nhs.uk")]),
        );
        let (t, asked) = resolve(net, "trust.nhs.uk").await;
        let t = t.unwrap();
        // TLS and Host: the delegated name; connection: the SRV target.
        assert_eq!(t.base_url, "https://matrix.trust.nhs.uk");
        assert_eq!(t.host_header, "matrix.trust.nhs.uk");
        assert_eq!(t.srv, Some(vec![srv(8000, "lb.trust.nhs.uk")]));
        assert_eq!(
            asked,
            vec![
                "wk trust.nhs.uk",
                "srv _matrix-fed._tcp.matrix.trust.nhs.uk.",
                "srv _matrix._tcp.matrix.trust.nhs.uk."
            ]
        );

        // No SRV at all: the delegated name on 8448.
        let mut net = FakeNet::default();
        net.well_known
            .insert("trust.nhs.uk".into(), delegated("matrix.trust.nhs.uk"));
        let (t, _) = resolve(net, "trust.nhs.uk").await;
        assert_eq!(
            t.unwrap(),
            direct("https://matrix.trust.nhs.uk:8448", "matrix.trust.nhs.uk")
        );
    }

    #[tokio::test]
    async fn without_well_known_srv_then_default_port_under_the_server_name() {
        let mut net = FakeNet::default();
        net.srv.insert(
            "_matrix-fed._tcp.trust.nhs.uk.".into(),
            Ok(vec![
                srv(8448, "b.trust.nhs.uk"),
                srv(8448, "a.trust.nhs.uk"),
            ]),
        );
        net.srv.insert(
            "_matrix._tcp.trust.nhs.uk.".into(),
            Ok(vec![srv(1, "never.used")]),
        );
        let (t, asked) = resolve(net, "trust.nhs.uk").await;
        let t = t.unwrap();
        assert_eq!(t.base_url, "https://trust.nhs.uk");
        assert_eq!(t.host_header, "trust.nhs.uk");
        assert_eq!(
            t.srv,
            Some(vec![
                srv(8448, "a.trust.nhs.uk"),
                srv(8448, "b.trust.nhs.uk")
            ])
        );
        assert_eq!(asked.len(), 2, "_matrix._tcp not asked: {asked:?}");

        let (t, _) = resolve(FakeNet::default(), "trust.nhs.uk").await;
        assert_eq!(
            t.unwrap(),
            direct("https://trust.nhs.uk:8448", "trust.nhs.uk")
        );
    }

    #[tokio::test]
    async fn a_dns_failure_fails_discovery_instead_of_guessing() {
        let mut net = FakeNet::default();
        net.srv.insert(
            "_matrix-fed._tcp.trust.nhs.uk.".into(),
            Err("SRV lookup timed out".into()),
        );
        let (t, _) = resolve(net, "trust.nhs.uk").await;
        assert!(t.unwrap_err().contains("timed out"));
    }
}
