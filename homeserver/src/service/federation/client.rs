//! The outbound federation client: asks the gate (nothing outside the federation list is
//! contacted), discovers the destination (`discovery.rs`), signs the request with X-Matrix and
//! sends it over rustls.

use std::sync::Arc;

use handover_policy::{Denial, Direction};
use ruma::api::auth_scheme::{AuthScheme, NoAuthentication};
use ruma::api::federation::authentication::{ServerSignatures, XMatrix, XMatrixSigningInput};
use ruma::api::path_builder::SinglePath;
use ruma::api::{IncomingResponseExt, OutgoingRequest, OutgoingRequestExt};
use ruma::signatures::Ed25519KeyPair;
use ruma::{OwnedServerName, ServerName};

use super::discovery::Discovery;
use super::dns::HickorySrv;
use super::gate::PeerGate;
use super::transport::{HttpSettings, RouteClients};
use super::well_known::{self, HttpsWellKnown};
use crate::config::FederationConfig;
use crate::service::signing_key::ServerKeys;

/// Largest response body read from a remote server.
const MAX_RESPONSE_BYTES: usize = 16 * 1024 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum FederationError {
    /// The policy refused the destination; nothing was sent.
    #[error("federation with {server} refused by rule `{}`: {}", .denial.rule, .denial.reason)]
    Denied { server: String, denial: Denial },
    /// The destination could not be resolved.
    #[error("{0}")]
    Discovery(String),
    /// Connection, TLS or timeout.
    #[error("request to {server} failed: {message}")]
    Transport { server: String, message: String },
    /// The remote answered with an error status.
    #[error("{server} answered {status}: {body}")]
    Remote {
        server: String,
        status: u16,
        body: String,
    },
    /// The response body was larger than the caller accepts.
    #[error("response from {server} larger than {limit} bytes")]
    TooLarge { server: String, limit: usize },
    /// The remote's answer could not be understood or verified.
    #[error("bad response from {server}: {message}")]
    Response { server: String, message: String },
    #[error("could not build the request: {0}")]
    Request(String),
}

/// How a ruma auth scheme is satisfied by a federation sender.
pub trait FederationAuth: AuthScheme {
    fn input<'a>(
        origin: &ServerName,
        destination: &ServerName,
        key_pair: &'a Ed25519KeyPair,
    ) -> Self::Input<'a>;
}

impl FederationAuth for NoAuthentication {
    fn input<'a>(_: &ServerName, _: &ServerName, _: &'a Ed25519KeyPair) -> Self::Input<'a> {}
}

impl FederationAuth for ServerSignatures {
    fn input<'a>(
        origin: &ServerName,
        destination: &ServerName,
        key_pair: &'a Ed25519KeyPair,
    ) -> Self::Input<'a> {
        XMatrixSigningInput::new(origin.to_owned(), destination.to_owned(), key_pair)
    }
}

/// Whether to add an X-Matrix signature to an endpoint that does not require one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sign {
    /// As the endpoint's auth scheme says.
    AsRequired,
    /// Always (the receiver then knows and verifies who is asking).
    Always,
}

pub struct FederationClient {
    /// For targets reached at the URL's own host.
    http: reqwest::Client,
    /// For targets found through SRV records.
    routes: RouteClients,
    discovery: Discovery,
    origin: OwnedServerName,
    keys: Arc<ServerKeys>,
    gate: Arc<PeerGate>,
}

impl FederationClient {
    pub fn new(
        cfg: &FederationConfig,
        origin: OwnedServerName,
        keys: Arc<ServerKeys>,
        gate: Arc<PeerGate>,
    ) -> anyhow::Result<Self> {
        let settings = HttpSettings::from_config(cfg)?;
        let well_known = Arc::new(HttpsWellKnown {
            http: settings.client(well_known::redirect_policy(), None)?,
            port: 443,
        });
        let discovery = Discovery::new(well_known, Arc::new(HickorySrv::default()));
        Self::with_discovery(settings, discovery, origin, keys, gate)
    }

    /// As `new`, with the discovery given (tests point it at local servers and fake DNS).
    pub(crate) fn with_discovery(
        settings: HttpSettings,
        discovery: Discovery,
        origin: OwnedServerName,
        keys: Arc<ServerKeys>,
        gate: Arc<PeerGate>,
    ) -> anyhow::Result<Self> {
        Ok(Self {
            // Never follow a redirect: it could point outside the list.
            http: settings.client(reqwest::redirect::Policy::none(), None)?,
            routes: RouteClients::new(settings),
            discovery,
            origin,
            keys,
            gate,
        })
    }

    /// Sends `request` to `destination` for `purpose` (named in the audit trail on refusal).
    /// The gate is asked before anything else: a refused destination is never resolved or
    /// connected to.
    pub async fn send<R>(
        &self,
        destination: &ServerName,
        request: R,
        purpose: &str,
        sign: Sign,
    ) -> Result<R::IncomingResponse, FederationError>
    where
        R: OutgoingRequest<PathBuilder = SinglePath>,
        R::Authentication: FederationAuth,
    {
        self.send_limited(destination, request, purpose, sign, MAX_RESPONSE_BYTES)
            .await
    }

    /// As `send`, reading at most `max_bytes` of the response body (media downloads are
    /// bounded by the upload limit instead of the default 16 MiB).
    pub async fn send_limited<R>(
        &self,
        destination: &ServerName,
        request: R,
        purpose: &str,
        sign: Sign,
        max_bytes: usize,
    ) -> Result<R::IncomingResponse, FederationError>
    where
        R: OutgoingRequest<PathBuilder = SinglePath>,
        R::Authentication: FederationAuth,
    {
        self.send_status_limited(destination, request, purpose, sign, max_bytes)
            .await?
            .1
    }

    /// As `send`, keeping the HTTP status of the answer: `Ok((status, parsed))` whenever the
    /// destination answered, `Err` when it was not asked (refused, undiscoverable) or did not
    /// answer (connection, TLS, timeout).
    pub async fn send_status<R>(
        &self,
        destination: &ServerName,
        request: R,
        purpose: &str,
        sign: Sign,
    ) -> Result<(u16, Result<R::IncomingResponse, FederationError>), FederationError>
    where
        R: OutgoingRequest<PathBuilder = SinglePath>,
        R::Authentication: FederationAuth,
    {
        self.send_status_limited(destination, request, purpose, sign, MAX_RESPONSE_BYTES)
            .await
    }

    async fn send_status_limited<R>(
        &self,
        destination: &ServerName,
        request: R,
        purpose: &str,
        sign: Sign,
        max_bytes: usize,
    ) -> Result<(u16, Result<R::IncomingResponse, FederationError>), FederationError>
    where
        R: OutgoingRequest<PathBuilder = SinglePath>,
        R::Authentication: FederationAuth,
    {
        self.gate
            .check(destination.as_str(), Direction::Outbound, purpose, None)
            .await
            .map_err(|denial| FederationError::Denied {
                server: destination.to_string(),
                denial,
            })?;
        let target = self
            .discovery
            .resolve(destination)
            .await
            .map_err(FederationError::Discovery)?;
        let key_pair = &self.keys.keypair;
        let mut http_req = request
            .try_into_http_request::<Vec<u8>>(
                &target.base_url,
                R::Authentication::input(&self.origin, destination, key_pair),
                (),
            )
            .map_err(|e| FederationError::Request(e.to_string()))?;
        if sign == Sign::Always && !http_req.headers().contains_key(http::header::AUTHORIZATION) {
            let x = XMatrix::sign_http_request(
                &http_req,
                XMatrixSigningInput::new(self.origin.clone(), destination.to_owned(), key_pair),
            )
            .map_err(|e| FederationError::Request(e.to_string()))?;
            http_req
                .headers_mut()
                .insert(http::header::AUTHORIZATION, (&x).into());
        }
        let host = http::HeaderValue::from_str(&target.host_header)
            .map_err(|e| FederationError::Request(e.to_string()))?;
        http_req.headers_mut().insert(http::header::HOST, host);
        let client = match &target.srv {
            None => self.http.clone(),
            Some(targets) => self
                .routes
                .get(&target.base_url, targets)
                .map_err(|e| FederationError::Request(e.to_string()))?,
        };
        let response = self
            .execute(&client, destination, http_req, max_bytes)
            .await?;
        let status = response.status().as_u16();
        let (parts, body) = response.into_parts();
        let borrowed = http::Response::from_parts(parts, body.as_slice());
        let parsed = R::IncomingResponse::try_from_http_response(borrowed).map_err(|e| match e {
            ruma::api::error::FromHttpResponseError::Server(_) => FederationError::Remote {
                server: destination.to_string(),
                status,
                body: String::from_utf8_lossy(&body[..body.len().min(512)]).into_owned(),
            },
            other => FederationError::Response {
                server: destination.to_string(),
                message: other.to_string(),
            },
        });
        Ok((status, parsed))
    }

    async fn execute(
        &self,
        http: &reqwest::Client,
        destination: &ServerName,
        http_req: http::Request<Vec<u8>>,
        max_bytes: usize,
    ) -> Result<http::Response<Vec<u8>>, FederationError> {
        let transport = |e: reqwest::Error| FederationError::Transport {
            server: destination.to_string(),
            message: error_chain(&e),
        };
        let req = reqwest::Request::try_from(http_req)
            .map_err(|e| FederationError::Request(e.to_string()))?;
        let mut res = http.execute(req).await.map_err(transport)?;
        let mut builder = http::Response::builder().status(res.status());
        if let Some(h) = builder.headers_mut() {
            *h = res.headers().clone();
        }
        let mut body = Vec::new();
        while let Some(chunk) = res.chunk().await.map_err(transport)? {
            if body.len() + chunk.len() > max_bytes {
                return Err(FederationError::TooLarge {
                    server: destination.to_string(),
                    limit: max_bytes,
                });
            }
            body.extend_from_slice(&chunk);
        }
        builder
            .body(body)
            .map_err(|e| FederationError::Request(e.to_string()))
    }
}

/// The error and its causes on one line (reqwest's top-level message hides TLS details).
pub(super) fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut cur = e.source();
    while let Some(s) = cur {
        out.push_str(": ");
        out.push_str(&s.to_string());
        cur = s.source();
    }
    out
}
