//! The HTTPS clients federation uses, all with the same TLS trust and limits: one for direct
//! targets (the URL's host is where we connect), one per SRV route (connect to the SRV targets
//! while TLS verifies the server name), and one for `.well-known` fetches (same-host redirects).
//!
//! reqwest resolves names per client, not per request, hence a client per SRV route: a global
//! name override would also redirect other uses of the same hostname (its well-known on 443, or
//! another server name on the same host with an explicit port).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::dns::{SrvRecord, SrvRouteResolver};
use crate::config::FederationConfig;

/// SRV routes remembered at most (the table is cleared when full).
const MAX_ROUTES: usize = 1024;

/// What every federation client is built with.
#[derive(Clone)]
pub struct HttpSettings {
    timeout: Duration,
    connect_timeout: Duration,
    verify_tls: bool,
    /// The trusted CAs instead of the platform's roots (`federation.ca_file`).
    ca: Option<Vec<reqwest::Certificate>>,
}

impl HttpSettings {
    pub fn from_config(cfg: &FederationConfig) -> anyhow::Result<Self> {
        let ca = match &cfg.ca_file {
            Some(path) => {
                let pem = std::fs::read(path)
                    .map_err(|e| anyhow::anyhow!("federation.ca_file {}: {e}", path.display()))?;
                let certs = reqwest::Certificate::from_pem_bundle(&pem)
                    .map_err(|e| anyhow::anyhow!("federation.ca_file {}: {e}", path.display()))?;
                if certs.is_empty() {
                    anyhow::bail!("federation.ca_file {}: no certificates", path.display());
                }
                Some(certs)
            }
            None => None,
        };
        Ok(Self {
            timeout: Duration::from_secs(cfg.request_timeout_secs),
            connect_timeout: Duration::from_secs(cfg.request_timeout_secs.min(10)),
            verify_tls: cfg.verify_tls,
            ca,
        })
    }

    /// A client. Never uses a proxy from the environment (the destination must be the listed
    /// server itself); follows no redirect unless `redirect` says so.
    pub fn client(
        &self,
        redirect: reqwest::redirect::Policy,
        resolver: Option<Arc<dyn reqwest::dns::Resolve>>,
    ) -> anyhow::Result<reqwest::Client> {
        let mut builder = reqwest::Client::builder()
            .timeout(self.timeout)
            .connect_timeout(self.connect_timeout)
            .redirect(redirect)
            .no_proxy()
            .tls_danger_accept_invalid_certs(!self.verify_tls);
        if let Some(ca) = &self.ca {
            builder = builder.tls_certs_only(ca.iter().cloned());
        }
        if let Some(r) = resolver {
            builder = builder.dns_resolver(r);
        }
        builder
            .build()
            .map_err(|e| anyhow::anyhow!("federation HTTP client: {e}"))
    }
}

/// The per-SRV-route clients, keyed by (base URL, ordered targets).
pub struct RouteClients {
    settings: HttpSettings,
    routes: Mutex<HashMap<(String, Vec<SrvRecord>), reqwest::Client>>,
}

impl RouteClients {
    pub fn new(settings: HttpSettings) -> Self {
        Self {
            settings,
            routes: Mutex::new(HashMap::new()),
        }
    }

    /// The client that connects to `targets` for requests to `base_url` (`https://<name>`).
    pub fn get(&self, base_url: &str, targets: &[SrvRecord]) -> anyhow::Result<reqwest::Client> {
        let key = (base_url.to_owned(), targets.to_vec());
        let mut routes = self
            .routes
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(c) = routes.get(&key) {
            return Ok(c.clone());
        }
        let resolver = Arc::new(SrvRouteResolver {
            targets: targets.to_vec(),
        });
        let client = self
            .settings
            .client(reqwest::redirect::Policy::none(), Some(resolver))?;
        if routes.len() >= MAX_ROUTES {
            routes.clear();
        }
        routes.insert(key, client.clone());
        Ok(client)
    }
}
