//! Federation (server-server API) foundations: the gate (the NHS federation list, asked before
//! any work or connection), our key response, the remote key cache, X-Matrix request
//! authentication, the notary, the outbound client with server discovery, and the durable
//! outbound queue. docs/FEDERATION.md describes them.

pub mod client;
pub mod client_error;
pub mod discovery;
#[cfg(test)]
mod discovery_tests;
pub mod dns;
pub mod gate;
#[cfg(test)]
mod key_tests;
pub mod list;
pub mod outbox;
pub mod pdu;
#[cfg(test)]
mod property_tests;
pub mod server_keys;
#[cfg(test)]
pub(crate) mod test_support;
#[cfg(test)]
mod tests;
pub mod transport;
pub mod well_known;

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use handover_policy::{Direction, Policy};
use http::StatusCode;
use ruma::api::error::ErrorKind;
use ruma::api::federation::authentication::XMatrix;
use ruma::api::federation::discovery::{ServerSigningKeys, get_server_keys};
use ruma::serde::{Base64, Raw};
use ruma::signatures::PublicKeyMap;
use ruma::{OwnedServerName, ServerName};

use self::client::{FederationClient, FederationError, Sign};
use self::gate::PeerGate;
use super::audit::AuditService;
use super::blocking;
use super::signing_key::ServerKeys;
use crate::config::FederationConfig;
use crate::error::{Error, Result};
use crate::store::now_ms;
use crate::store::server_keys::{CachedKey, ServerKeyStore};

/// A server whose key is unknown is asked again at most this often (a signed request with an
/// unknown key id must not make us hammer its origin).
const REFETCH_INTERVAL_MS: i64 = 10_000;

pub struct FederationService {
    server_name: OwnedServerName,
    keys: Arc<ServerKeys>,
    store: Arc<dyn ServerKeyStore>,
    gate: Arc<PeerGate>,
    client: Arc<FederationClient>,
    public_server: Option<OwnedServerName>,
    last_fetch: Mutex<HashMap<OwnedServerName, i64>>,
    /// One key fetch per origin at a time: concurrent requests from an origin whose key is not
    /// cached wait for the first one's fetch instead of being refused. Only listed origins get
    /// an entry.
    fetching: Mutex<HashMap<OwnedServerName, Arc<tokio::sync::Mutex<()>>>>,
}

fn unauthorized(message: impl Into<String>) -> Error {
    Error::new(StatusCode::UNAUTHORIZED, ErrorKind::Unauthorized, message)
}

impl FederationService {
    pub fn new(
        cfg: &FederationConfig,
        server_name: OwnedServerName,
        keys: Arc<ServerKeys>,
        store: Arc<dyn ServerKeyStore>,
        policy: Arc<dyn Policy>,
        audit: Arc<AuditService>,
    ) -> anyhow::Result<Self> {
        let gate = Arc::new(PeerGate::new(policy, audit, server_name.to_string()));
        let client = Arc::new(FederationClient::new(
            cfg,
            server_name.clone(),
            keys.clone(),
            gate.clone(),
        )?);
        let public_server = cfg
            .public_server
            .as_deref()
            .map(OwnedServerName::try_from)
            .transpose()
            .map_err(|e| anyhow::anyhow!("federation.public_server: {e}"))?;
        Ok(Self {
            server_name,
            keys,
            store,
            gate,
            client,
            public_server,
            last_fetch: Mutex::new(HashMap::new()),
            fetching: Mutex::new(HashMap::new()),
        })
    }

    pub fn server_name(&self) -> &ServerName {
        &self.server_name
    }

    /// The outbound client (already gated by the federation list).
    pub fn client(&self) -> &Arc<FederationClient> {
        &self.client
    }

    /// The federation-list gate (audits refusals).
    pub fn gate(&self) -> &Arc<PeerGate> {
        &self.gate
    }

    /// `m.server` for `/.well-known/matrix/server`, when delegation is configured.
    pub fn well_known_server(&self) -> Option<&ServerName> {
        self.public_server.as_deref()
    }

    /// `GET /_matrix/key/v2/server`.
    pub fn own_key_response(&self) -> Result<Raw<ServerSigningKeys>> {
        server_keys::own_response(&self.server_name, &self.keys.keypair, now_ms())
            .map_err(Error::internal)
    }

    /// Authenticates an inbound request by its X-Matrix header and returns the origin.
    ///
    /// Order: parse the header (401) -> the federation list (403, audited; nothing else is done
    /// for an unlisted origin, in particular no key fetch) -> destination is us (401) -> the
    /// origin's key, cached or fetched (401 if unavailable) -> the signature (401).
    pub async fn authenticate(
        &self,
        req: &http::Request<&[u8]>,
        ip: Option<IpAddr>,
    ) -> Result<OwnedServerName> {
        let x = self.check_x_matrix_header(req.headers(), ip).await?;
        self.verify_x_matrix(x, req).await
    }

    /// What can be checked from the headers alone, before the body is read: an X-Matrix
    /// header naming a listed origin and us as destination. An unlisted or anonymous peer
    /// is refused without making us read its body.
    pub async fn check_x_matrix_header(
        &self,
        headers: &http::HeaderMap,
        ip: Option<IpAddr>,
    ) -> Result<XMatrix> {
        let x = XMatrix::extract_from_http_headers(headers)
            .map_err(|e| unauthorized(format!("X-Matrix authorization required: {e}")))?;
        self.gate
            .check(x.origin.as_str(), Direction::Inbound, "request", ip)
            .await
            .map_err(|d| Error::policy(&d))?;
        if x.destination
            .as_deref()
            .is_some_and(|d| d != self.server_name)
        {
            return Err(unauthorized(format!(
                "X-Matrix destination is not {}",
                self.server_name
            )));
        }
        Ok(x)
    }

    /// Verifies the signature of a request whose header passed `check_x_matrix_header`, over
    /// the body exactly as received.
    pub async fn verify_x_matrix(
        &self,
        x: XMatrix,
        req: &http::Request<&[u8]>,
    ) -> Result<OwnedServerName> {
        let public_key = self.key_for_request(&x.origin, x.key.as_str()).await?;
        let map: PublicKeyMap = [(
            x.origin.to_string(),
            [(x.key.to_string(), public_key)].into_iter().collect(),
        )]
        .into_iter()
        .collect();
        x.verify_http_request(req, &self.server_name, &map)
            .map_err(|e| unauthorized(format!("X-Matrix signature invalid: {e}")))?;
        Ok(x.origin)
    }

    /// A currently valid key `key_id` of `origin`: from the cache, else fetched from the origin.
    async fn key_for_request(&self, origin: &ServerName, key_id: &str) -> Result<Base64> {
        let now = now_ms();
        if origin == self.server_name {
            return Err(unauthorized(
                "requests signed as this server are not accepted",
            ));
        }
        let usable = |keys: &[CachedKey]| {
            keys.iter()
                .find(|k| k.key_id == key_id && k.expired_ts.is_none() && k.valid_until_ts > now)
                .and_then(|k| Base64::parse(&k.public_key).ok())
        };
        if let Some(k) = usable(&self.cached_keys(origin).await?) {
            return Ok(k);
        }
        let lock = self
            .fetching
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .entry(origin.to_owned())
            .or_default()
            .clone();
        let _one_at_a_time = lock.lock().await;
        // Another request may have fetched the keys while this one waited.
        if let Some(k) = usable(&self.cached_keys(origin).await?) {
            return Ok(k);
        }
        if !self.may_fetch(origin, now) {
            return Err(unauthorized(format!(
                "key {key_id} of {origin} is not known; try again later"
            )));
        }
        let keys = self
            .fetch_keys(origin, "key_fetch")
            .await
            .map_err(|e| unauthorized(format!("cannot obtain the keys of {origin}: {e}")))?;
        usable(&keys)
            .ok_or_else(|| unauthorized(format!("{origin} does not publish a valid key {key_id}")))
    }

    async fn cached_keys(&self, origin: &ServerName) -> Result<Vec<CachedKey>> {
        let (store, o) = (self.store.clone(), origin.to_string());
        blocking(move || Ok(store.server_keys(&o)?)).await
    }

    fn may_fetch(&self, origin: &ServerName, now: i64) -> bool {
        let mut last = self
            .last_fetch
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if last.len() > 10_000 {
            last.clear();
        }
        match last.get(origin) {
            Some(t) if now - t < REFETCH_INTERVAL_MS => false,
            _ => {
                last.insert(origin.to_owned(), now);
                true
            }
        }
    }

    /// Fetches `origin`'s key response directly from it (gated), verifies and caches it.
    pub async fn fetch_keys(
        &self,
        origin: &ServerName,
        purpose: &str,
    ) -> std::result::Result<Vec<CachedKey>, FederationError> {
        let res = self
            .client
            .send(
                origin,
                get_server_keys::v2::Request::new(),
                purpose,
                Sign::AsRequired,
            )
            .await?;
        let now = now_ms();
        let verified = server_keys::verify_response(origin, res.server_key.json().get(), now)
            .map_err(|message| FederationError::Response {
                server: origin.to_string(),
                message,
            })?;
        let (store, o, v) = (self.store.clone(), origin.to_string(), verified.clone());
        blocking(move || Ok(store.save_server_keys(&o, &v.keys, &v.response, now)?))
            .await
            .map_err(|e| FederationError::Response {
                server: origin.to_string(),
                message: format!("could not cache keys: {e:?}"),
            })?;
        tracing::info!(target: "handover::federation", server = %origin, keys = verified.keys.len(), "fetched server keys");
        Ok(verified.keys)
    }

    /// The notary: `server`'s key response, counter-signed by us, valid at least until
    /// `minimum_valid_until_ts` if one is asked for. Only for servers on the federation list
    /// (and ourselves); `None` when refused or unavailable.
    pub async fn notary_lookup(
        &self,
        server: &ServerName,
        minimum_valid_until_ts: Option<i64>,
        ip: Option<IpAddr>,
    ) -> Result<Option<Raw<ServerSigningKeys>>> {
        if server == self.server_name {
            return self.own_key_response().map(Some);
        }
        if self
            .gate
            .check(server.as_str(), Direction::Outbound, "notary", ip)
            .await
            .is_err()
        {
            return Ok(None);
        }
        let now = now_ms();
        let wanted = minimum_valid_until_ts.unwrap_or(now).max(now);
        let (store, s) = (self.store.clone(), server.to_string());
        let cached = blocking(move || Ok(store.server_key_response(&s)?)).await?;
        let response = match cached {
            Some(r) if r.valid_until_ts > wanted => Some(r.response_json),
            _ => {
                if self.may_fetch(server, now) {
                    match self.fetch_keys(server, "notary").await {
                        Ok(_) => {}
                        Err(e) => {
                            tracing::info!(target: "handover::federation", server = %server, error = %e, "notary fetch failed")
                        }
                    }
                }
                let (store, s) = (self.store.clone(), server.to_string());
                blocking(move || Ok(store.server_key_response(&s)?))
                    .await?
                    .filter(|r| r.valid_until_ts > now)
                    .map(|r| r.response_json)
            }
        };
        response
            .map(|json| server_keys::countersign(&json, &self.server_name, &self.keys.keypair))
            .transpose()
            .map_err(Error::internal)
    }
}
