//! `[listen]` (the client and federation listeners, reverse proxies) and `[metrics]`.
//! Each listener is plain HTTP or TLS on its own, all TLS listeners using `[tls]`'s
//! certificate, so Handover can sit behind nginx or Caddy (docs/OPERATIONS.md).

use std::net::{IpAddr, SocketAddr};

use serde::{Deserialize, Serialize};

use super::TlsConfig;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListenConfig {
    /// Address for the client-server API. Port 0 picks a free port (printed at start-up).
    pub client: SocketAddr,
    /// Address for the server-server (federation) API. Unset: no federation listener.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub federation: Option<SocketAddr>,
    /// Serve the client listener over TLS (`[tls]`). Default: on when `[tls]` has a
    /// certificate; set `false` behind a reverse proxy that terminates TLS.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_tls: Option<bool>,
    /// Serve the federation listener over TLS (`[tls]`; default on). Off only behind a proxy
    /// that terminates TLS with the server's certificate.
    #[serde(default = "yes")]
    pub federation_tls: bool,
    /// Reverse proxies whose `X-Forwarded-For` and `X-Forwarded-Proto` are believed: the
    /// client address for rate limits, audit entries and last-seen; the client's scheme for
    /// the well-known base URL (when `public_baseurl` is unset), the console cookie's
    /// `Secure` flag and the console sign-in's audit entry. Empty: both headers are ignored.
    /// With proxies listed, no `public_baseurl` and no header, the base URL is https.
    #[serde(default)]
    pub trusted_proxies: Vec<IpAddr>,
}

fn yes() -> bool {
    true
}

impl Default for ListenConfig {
    fn default() -> Self {
        Self {
            client: SocketAddr::from(([127, 0, 0, 1], 8008)),
            federation: None,
            client_tls: None,
            federation_tls: true,
            trusted_proxies: vec![],
        }
    }
}

impl ListenConfig {
    /// Whether the client listener serves TLS.
    pub fn client_tls_on(&self, tls: &TlsConfig) -> bool {
        self.client_tls.unwrap_or(tls.cert.is_some())
    }

    /// The public base URL when `public_baseurl` is unset: `server_name`, with the scheme of
    /// the client listener, or https behind a trusted proxy (which terminates TLS), with the
    /// listener's port unless it is the scheme's default (or behind a proxy).
    pub fn default_base_url(&self, server_name: &str, tls: &TlsConfig) -> String {
        let port = self.client.port();
        if self.client_tls_on(tls) {
            match port {
                443 | 0 => format!("https://{server_name}"),
                p => format!("https://{server_name}:{p}"),
            }
        } else if !self.trusted_proxies.is_empty() {
            format!("https://{server_name}")
        } else {
            match port {
                80 | 0 => format!("http://{server_name}"),
                p => format!("http://{server_name}:{p}"),
            }
        }
    }
}

/// `[metrics]`: the Prometheus endpoint on its own listener (off by default).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricsConfig {
    /// Address of the metrics listener (`GET /metrics`). Unset: no metrics are kept at all.
    /// Keep it on loopback or a management network: it has no authentication.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub listen: Option<SocketAddr>,
    /// Serve the metrics listener over TLS (`[tls]`).
    #[serde(default)]
    pub tls: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_base_url_follows_the_client_listener() {
        let none = TlsConfig::default();
        let cert = TlsConfig {
            cert: Some("c".into()),
            key: Some("k".into()),
        };
        let mut l = ListenConfig::default();
        assert_eq!(
            l.default_base_url("x.nhs.uk", &none),
            "http://x.nhs.uk:8008"
        );
        assert_eq!(
            l.default_base_url("x.nhs.uk", &cert),
            "https://x.nhs.uk:8008"
        );
        l.client = "0.0.0.0:443".parse().unwrap();
        assert_eq!(l.default_base_url("x.nhs.uk", &cert), "https://x.nhs.uk");
        l.client_tls = Some(false);
        l.client = "127.0.0.1:8008".parse().unwrap();
        assert_eq!(
            l.default_base_url("x.nhs.uk", &cert),
            "http://x.nhs.uk:8008"
        );
        l.trusted_proxies = vec!["127.0.0.1".parse().unwrap()];
        assert_eq!(l.default_base_url("x.nhs.uk", &cert), "https://x.nhs.uk");
    }

    fn load(toml: &str) -> Result<crate::config::Config, String> {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("c.toml");
        std::fs::write(&f, format!("server_name = \"x\"\n{toml}")).unwrap();
        crate::config::Config::load(Some(&f))
    }

    #[test]
    fn old_trusted_proxies_key_still_works_with_a_warning() {
        let cfg =
            load("[listen]\nclient = \"127.0.0.1:0\"\ntrusted_proxies = [\"10.0.0.1\"]\n").unwrap();
        assert!(cfg.load_warnings.is_empty());
        assert_eq!(cfg.rate_limit.trusted_proxies, cfg.listen.trusted_proxies);
        let cfg = load(
            "[listen]\nclient = \"127.0.0.1:0\"\ntrusted_proxies = [\"10.0.0.1\"]\n\
             [rate_limit]\ntrusted_proxies = [\"10.0.0.2\", \"10.0.0.1\"]\n",
        )
        .unwrap();
        assert_eq!(cfg.listen.trusted_proxies.len(), 2);
        assert_eq!(cfg.rate_limit.trusted_proxies, cfg.listen.trusted_proxies);
        assert!(cfg.load_warnings[0].contains("rate_limit.trusted_proxies"));
    }

    #[test]
    fn each_listener_chooses_tls() {
        let err = load("[listen]\nclient = \"127.0.0.1:0\"\nclient_tls = true\n").unwrap_err();
        assert!(err.contains("listen.client_tls"), "{err}");
        let err = load("[metrics]\nlisten = \"127.0.0.1:0\"\ntls = true\n").unwrap_err();
        assert!(err.contains("metrics.tls"), "{err}");
        // Federation behind a TLS-terminating proxy: plain, no certificate needed.
        let cfg = load(
            "[listen]\nclient = \"127.0.0.1:0\"\nfederation = \"127.0.0.1:0\"\n\
             federation_tls = false\n",
        )
        .unwrap();
        assert!(!cfg.listen.federation_tls);
        let cfg = load("[tls]\ncert = \"c.pem\"\nkey = \"k.pem\"\n[listen]\nclient = \"127.0.0.1:0\"\nclient_tls = false\n")
            .unwrap();
        assert!(!cfg.listen.client_tls_on(&cfg.tls));
        assert!(cfg.metrics.listen.is_none());
    }
}
