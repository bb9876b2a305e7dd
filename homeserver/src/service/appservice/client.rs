//! Calls from the homeserver to an appservice (`/_matrix/app/v1/...`), with ruma's request
//! types and `Authorization: Bearer <hs_token>`.

use std::time::Duration;

use ruma::api::appservice::HomeserverToken;
use ruma::api::path_builder::SinglePath;
use ruma::api::{IncomingResponseExt, OutgoingRequest, OutgoingRequestExt};

use super::registration::Appservice;

/// Why a call to an appservice failed.
#[derive(Debug)]
pub enum CallError {
    /// The registration has no URL: nothing can be sent to it.
    NoUrl,
    /// No connection (refused, DNS, TLS).
    Connection(String),
    Timeout,
    /// It answered with an error status.
    Status { status: u16, body: String },
    /// It answered 2xx with a body we could not read.
    Response(String),
}

impl std::fmt::Display for CallError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CallError::NoUrl => write!(f, "the registration has no url"),
            CallError::Connection(e) => write!(f, "connection failed: {e}"),
            CallError::Timeout => write!(f, "timed out"),
            CallError::Status { status, .. } => write!(f, "answered HTTP {status}"),
            CallError::Response(e) => write!(f, "unreadable answer: {e}"),
        }
    }
}

/// Largest answer body read from an appservice.
const MAX_BODY: usize = 1024 * 1024;

pub struct AppserviceClient {
    http: reqwest::Client,
}

impl AppserviceClient {
    pub fn new(timeout: Duration) -> Self {
        // reqwest is built without a TLS provider; see push/sender.rs.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("reqwest client with the ring provider");
        Self { http }
    }

    /// Sends `request` to `a` and parses the answer.
    pub async fn call<R>(&self, a: &Appservice, request: R) -> Result<R::IncomingResponse, CallError>
    where
        R: OutgoingRequest<Authentication = HomeserverToken, PathBuilder = SinglePath>,
    {
        let base = a.url().ok_or(CallError::NoUrl)?.trim_end_matches('/');
        let req = request
            .try_into_http_request::<Vec<u8>>(base, &a.registration.hs_token, ())
            .map_err(|e| CallError::Response(format!("request not built: {e}")))?;
        let (parts, body) = req.into_parts();
        let url = parts.uri.to_string();
        let res = self
            .http
            .request(parts.method, url)
            .headers(parts.headers)
            .body(body)
            .send()
            .await
            .map_err(|e| match e.is_timeout() {
                true => CallError::Timeout,
                false => CallError::Connection(without_url(&e)),
            })?;
        let status = res.status();
        let mut bytes = Vec::new();
        let mut res = res;
        while let Some(chunk) = res.chunk().await.map_err(|e| match e.is_timeout() {
            true => CallError::Timeout,
            false => CallError::Connection(without_url(&e)),
        })? {
            bytes.extend_from_slice(&chunk);
            if bytes.len() > MAX_BODY {
                return Err(CallError::Response("answer too large".into()));
            }
        }
        if !status.is_success() {
            return Err(CallError::Status {
                status: status.as_u16(),
                body: String::from_utf8_lossy(&bytes[..bytes.len().min(512)]).into_owned(),
            });
        }
        let http_res = http::Response::builder()
            .status(status)
            .body(bytes.as_slice())
            .map_err(|e| CallError::Response(e.to_string()))?;
        R::IncomingResponse::try_from_http_response(http_res)
            .map_err(|e| CallError::Response(e.to_string()))
    }
}

/// reqwest's error text without the URL (an appservice URL may carry credentials).
fn without_url(e: &reqwest::Error) -> String {
    let mut s = e.to_string();
    if let Some(u) = e.url() {
        s = s.replace(u.as_str(), "<appservice>");
    }
    s
}
