//! The back-channel HTTP client handed to `openidconnect`: our reqwest 0.13 (rustls, ring), so
//! the crate's own reqwest 0.12 and its TLS stack stay out of the build. Redirects are never
//! followed on back-channel calls (an OpenID provider has no reason to redirect them, and
//! following one could carry the client secret elsewhere).

use std::time::Duration;

use openidconnect::{HttpRequest, HttpResponse};

#[derive(Debug, thiserror::Error)]
#[error("identity provider request failed: {0}")]
pub struct HttpError(String);

pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(15))
        .build()
        .expect("reqwest client with static settings")
}

/// Sends one request for `openidconnect`.
pub async fn send(client: reqwest::Client, req: HttpRequest) -> Result<HttpResponse, HttpError> {
    let (parts, body) = req.into_parts();
    let res = client
        .request(parts.method, parts.uri.to_string())
        .headers(parts.headers)
        .body(body)
        .send()
        .await
        .map_err(|e| HttpError(e.to_string()))?;
    let mut out = http::Response::builder().status(res.status());
    for (k, v) in res.headers() {
        out = out.header(k, v);
    }
    let body = res.bytes().await.map_err(|e| HttpError(e.to_string()))?;
    out.body(body.to_vec())
        .map_err(|e| HttpError(e.to_string()))
}
