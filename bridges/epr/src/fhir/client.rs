//! The FHIR R4 REST client: read, search, transaction; authentication (static bearer, OAuth 2.0
//! client credentials with a cached token, mutual TLS through the HTTP client) and errors
//! classified as retryable (unreachable, 5xx, 401, 408, 429) or refusals (other 4xx), with the
//! server's `OperationOutcome` as the reason. URLs are never logged: searches carry identifiers.

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::sync::Mutex;

use crate::config::{FhirAuth, FhirConfig, secret};
use crate::fhir::resources::enc;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FhirError {
    /// The server could not take the request now; retrying makes sense.
    #[error("the EPR is unavailable: {0}")]
    Unavailable(String),
    /// The server refused the request; retrying the same request will not help.
    #[error("the EPR refused it ({status}): {reason}")]
    Refused { status: u16, reason: String },
}

impl FhirError {
    pub fn retryable(&self) -> bool {
        matches!(self, Self::Unavailable(_))
    }
    pub fn not_found(&self) -> bool {
        matches!(self, Self::Refused { status: 404, .. })
    }
}

/// The human-readable text of an `OperationOutcome`: each issue's diagnostics, else its
/// details' text, else its code.
pub fn outcome_text(v: &Value) -> Option<String> {
    if v["resourceType"] != "OperationOutcome" {
        return None;
    }
    let parts: Vec<String> = v["issue"]
        .as_array()?
        .iter()
        .filter_map(|i| {
            i["diagnostics"]
                .as_str()
                .or_else(|| i["details"]["text"].as_str())
                .or_else(|| i["code"].as_str())
                .map(str::to_owned)
        })
        .collect();
    (!parts.is_empty()).then(|| parts.join("; "))
}

/// Classifies an HTTP answer of the FHIR server.
pub fn classify(status: u16, body: &[u8]) -> Result<Value, FhirError> {
    let json: Option<Value> = serde_json::from_slice(body).ok();
    if (200..300).contains(&status) {
        return json.ok_or_else(|| FhirError::Unavailable("the EPR answered with no JSON".into()));
    }
    let reason = json
        .as_ref()
        .and_then(outcome_text)
        .unwrap_or_else(|| format!("HTTP {status}"));
    // 401: the bridge's credentials, not the request, are at fault; fixed by the operator, so
    // worth retrying (a filing is not lost to a rotated secret).
    if status >= 500 || matches!(status, 401 | 408 | 429) {
        Err(FhirError::Unavailable(format!("{status}: {reason}")))
    } else {
        Err(FhirError::Refused { status, reason })
    }
}

enum Auth {
    None,
    Bearer(String),
    ClientCredentials {
        token_url: String,
        client_id: String,
        client_secret: String,
        scope: Option<String>,
        cached: Mutex<Option<(String, Instant)>>,
    },
}

pub struct FhirClient {
    base: String,
    http: reqwest::Client,
    auth: Auth,
}

impl FhirClient {
    pub fn new(cfg: &FhirConfig) -> Result<Self, String> {
        let mut b = reqwest::Client::builder()
            .timeout(Duration::from_secs(cfg.timeout_secs.max(1)))
            .redirect(reqwest::redirect::Policy::none());
        if let Some(p) = &cfg.client_identity_pem {
            let pem = std::fs::read(p)
                .map_err(|e| format!("configuration error: fhir.client_identity_pem: {e}"))?;
            let id = reqwest::Identity::from_pem(&pem)
                .map_err(|e| format!("configuration error: fhir.client_identity_pem: {e}"))?;
            b = b.identity(id);
        }
        if let Some(p) = &cfg.ca_pem {
            let pem =
                std::fs::read(p).map_err(|e| format!("configuration error: fhir.ca_pem: {e}"))?;
            for c in reqwest::Certificate::from_pem_bundle(&pem)
                .map_err(|e| format!("configuration error: fhir.ca_pem: {e}"))?
            {
                b = b.add_root_certificate(c);
            }
        }
        let auth = match cfg.auth {
            FhirAuth::None => Auth::None,
            FhirAuth::Bearer => Auth::Bearer(secret(
                &cfg.bearer_token,
                &cfg.bearer_token_file,
                "fhir.bearer_token",
            )?),
            FhirAuth::ClientCredentials => Auth::ClientCredentials {
                token_url: cfg.token_url.clone().unwrap_or_default(),
                client_id: cfg.client_id.clone().unwrap_or_default(),
                client_secret: secret(
                    &cfg.client_secret,
                    &cfg.client_secret_file,
                    "fhir.client_secret",
                )?,
                scope: cfg.scope.clone(),
                cached: Mutex::new(None),
            },
        };
        Ok(Self {
            base: cfg.base_url.trim_end_matches('/').to_owned(),
            http: b.build().map_err(|e| format!("FHIR HTTP client: {e}"))?,
            auth,
        })
    }

    /// `GET <base>/<path>` (`path` may carry a query, already encoded).
    pub async fn get(&self, path: &str) -> Result<Value, FhirError> {
        self.send(reqwest::Method::GET, path, None).await
    }

    /// `POST <base>` with a transaction `Bundle`; the `transaction-response` Bundle.
    pub async fn transaction(&self, bundle: &Value) -> Result<Value, FhirError> {
        self.send(reqwest::Method::POST, "", Some(bundle)).await
    }

    async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Value, FhirError> {
        let url = if path.is_empty() {
            self.base.clone()
        } else {
            format!("{}/{}", self.base, path.trim_start_matches('/'))
        };
        // One retry after a 401 with client credentials: the cached token may have been revoked.
        for attempt in 0..2 {
            let mut rb = self
                .http
                .request(method.clone(), &url)
                .header("accept", "application/fhir+json");
            if let Some(b) = body {
                rb = rb
                    .header("content-type", "application/fhir+json")
                    .body(b.to_string());
            }
            if let Some(t) = self.token(attempt > 0).await? {
                rb = rb.bearer_auth(t);
            }
            let res = rb.send().await.map_err(|e| {
                FhirError::Unavailable(format!("cannot reach the EPR ({})", without_url(&e)))
            })?;
            let status = res.status().as_u16();
            let bytes = res.bytes().await.map_err(|e| {
                FhirError::Unavailable(format!("reading the EPR's answer: {}", without_url(&e)))
            })?;
            if status == 401 && attempt == 0 && matches!(self.auth, Auth::ClientCredentials { .. })
            {
                continue;
            }
            return classify(status, &bytes);
        }
        unreachable!("the loop returns on its second pass")
    }

    /// The bearer token to send, if any; `refresh` drops a cached client-credentials token.
    async fn token(&self, refresh: bool) -> Result<Option<String>, FhirError> {
        match &self.auth {
            Auth::None => Ok(None),
            Auth::Bearer(t) => Ok(Some(t.clone())),
            Auth::ClientCredentials {
                token_url,
                client_id,
                client_secret,
                scope,
                cached,
            } => {
                let mut c = cached.lock().await;
                if !refresh
                    && let Some((t, until)) = c.as_ref()
                    && Instant::now() < *until
                {
                    return Ok(Some(t.clone()));
                }
                let form = {
                    let mut f = url::form_urlencoded::Serializer::new(String::new());
                    f.append_pair("grant_type", "client_credentials");
                    if let Some(s) = scope {
                        f.append_pair("scope", s);
                    }
                    f.finish()
                };
                // RFC 6749 2.3.1: the client id and secret are form-encoded inside Basic.
                let res = self
                    .http
                    .post(token_url)
                    .basic_auth(enc(client_id), Some(enc(client_secret)))
                    .header("content-type", "application/x-www-form-urlencoded")
                    .body(form)
                    .send()
                    .await
                    .map_err(|e| {
                        FhirError::Unavailable(format!(
                            "cannot reach the EPR's token endpoint ({})",
                            without_url(&e)
                        ))
                    })?;
                let status = res.status().as_u16();
                let v: Value = res.json().await.unwrap_or(json!({}));
                let Some(t) = v["access_token"].as_str().filter(|_| status == 200) else {
                    let why = v["error_description"]
                        .as_str()
                        .or(v["error"].as_str())
                        .unwrap_or("no access_token");
                    let e = format!("token endpoint: {why}");
                    return Err(if status >= 500 {
                        FhirError::Unavailable(e)
                    } else {
                        FhirError::Refused { status, reason: e }
                    });
                };
                // Renewed 30 s early so a token never expires in flight.
                let secs = v["expires_in"].as_u64().unwrap_or(300).saturating_sub(30);
                *c = Some((t.to_owned(), Instant::now() + Duration::from_secs(secs)));
                Ok(Some(t.to_owned()))
            }
        }
    }
}

/// A reqwest error without its URL (which may carry an NHS number in a search).
fn without_url(e: &reqwest::Error) -> String {
    let kind = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "connection failed"
    } else {
        "request failed"
    };
    kind.to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outcomes_and_statuses() {
        let oo = json!({"resourceType": "OperationOutcome", "issue": [
            {"severity": "error", "code": "invalid", "diagnostics": "Missing required property"},
            {"severity": "error", "code": "required", "details": {"text": "subject"}},
            {"severity": "error", "code": "processing"}]});
        assert_eq!(
            outcome_text(&oo).unwrap(),
            "Missing required property; subject; processing"
        );
        assert_eq!(outcome_text(&json!({"resourceType": "Patient"})), None);
        let body = oo.to_string();
        match classify(400, body.as_bytes()) {
            Err(FhirError::Refused {
                status: 400,
                reason,
            }) => assert!(reason.starts_with("Missing")),
            other => panic!("{other:?}"),
        }
        let e = classify(503, br#"{"resourceType":"OperationOutcome","issue":[{"code":"transient","diagnostics":"down"}]}"#).unwrap_err();
        assert_eq!(e, FhirError::Unavailable("503: down".into()));
        assert!(e.retryable());
        assert!(classify(429, b"").unwrap_err().retryable());
        assert!(classify(401, b"").unwrap_err().retryable());
        assert!(!classify(403, b"").unwrap_err().retryable());
        assert!(classify(404, b"").unwrap_err().not_found());
        assert!(!classify(422, b"nonsense").unwrap_err().retryable());
        assert_eq!(classify(200, br#"{"a":1}"#).unwrap()["a"], 1);
        assert!(classify(200, b"<html>").unwrap_err().retryable());
    }
}
