//! Dynamic client registration (RFC 7591) with the Matrix spec's rules: public clients only
//! (`token_endpoint_auth_method: none`), the authorization code grant, and redirect URIs that a
//! client of that kind may use.
//!
//! - web clients: `https`, on the host of `client_uri` or a subdomain of it;
//! - native clients: a private-use scheme that is the reversed host of `client_uri` (or of a
//!   parent domain), e.g. `uk.nhs.trust.app:/callback`; or `http` on a loopback address
//!   (`localhost`, `127.0.0.1`, `[::1]`), whose port is ignored when matching (RFC 8252).

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use url::Url;

use super::OAuthError;

/// A registered client: what the pages show and what requests are checked against.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Client {
    pub client_id: String,
    pub client_name: Option<String>,
    pub client_uri: String,
    pub redirect_uris: Vec<String>,
    pub native: bool,
    /// Everything the client sent (returned to it on registration).
    pub metadata: Map<String, Value>,
}

fn invalid(m: impl Into<String>) -> OAuthError {
    OAuthError::bad("invalid_client_metadata", m)
}
fn invalid_redirect(m: impl Into<String>) -> OAuthError {
    OAuthError::bad("invalid_redirect_uri", m)
}

fn is_loopback(host: Option<&str>) -> bool {
    matches!(host, Some("localhost" | "127.0.0.1" | "[::1]"))
}

/// `host` is `base` or a subdomain of it.
fn same_site(host: &str, base: &str) -> bool {
    host == base || host.ends_with(&format!(".{base}"))
}

fn https_url(field: &str, v: &str) -> Result<Url, OAuthError> {
    let u = Url::parse(v).map_err(|e| invalid(format!("`{field}` is not a URL: {e}")))?;
    if u.scheme() != "https" || u.host_str().is_none() {
        return Err(invalid(format!("`{field}` must be an https URL")));
    }
    if !u.username().is_empty() || u.password().is_some() {
        return Err(invalid(format!("`{field}` must not contain credentials")));
    }
    Ok(u)
}

fn check_redirect(native: bool, client_host: &str, v: &str) -> Result<(), OAuthError> {
    let u = Url::parse(v).map_err(|e| invalid_redirect(format!("`{v}` is not a URL: {e}")))?;
    if u.fragment().is_some() || !u.username().is_empty() || u.password().is_some() {
        return Err(invalid_redirect(format!(
            "`{v}` must have no fragment or credentials"
        )));
    }
    match (native, u.scheme()) {
        (false, "https") if u.host_str().is_some_and(|h| same_site(h, client_host)) => Ok(()),
        (false, _) => Err(invalid_redirect(format!(
            "`{v}`: a web client's redirect URI must be https on {client_host} or a subdomain"
        ))),
        (true, "http") if is_loopback(u.host_str()) => Ok(()),
        (true, "https") => Err(invalid_redirect(format!(
            "`{v}`: a native client uses a private-use scheme or http on a loopback address"
        ))),
        (true, scheme) => {
            let reversed: Vec<&str> = scheme.split('.').rev().collect();
            let domain = reversed.join(".");
            if reversed.len() >= 2
                && same_site(client_host, &domain)
                && u.host_str().is_none_or(str::is_empty)
            {
                Ok(())
            } else {
                Err(invalid_redirect(format!(
                    "`{v}`: a native client's scheme must be the reversed domain of client_uri \
                     ({client_host}), with no host"
                )))
            }
        }
    }
}

/// Validates a registration request; the client id is chosen by the caller.
pub fn validate(client_id: String, body: Map<String, Value>) -> Result<Client, OAuthError> {
    let text = |k: &str| body.get(k).and_then(Value::as_str);
    let client_uri = text("client_uri").ok_or_else(|| invalid("`client_uri` is required"))?;
    let client_url = https_url("client_uri", client_uri)?;
    let host = client_url.host_str().unwrap_or_default().to_owned();
    for k in ["logo_uri", "tos_uri", "policy_uri"] {
        if let Some(v) = text(k) {
            let u = https_url(k, v)?;
            if !u.host_str().is_some_and(|h| same_site(h, &host)) {
                return Err(invalid(format!("`{k}` must be on {host} or a subdomain")));
            }
        }
    }
    let native = match text("application_type").unwrap_or("web") {
        "web" => false,
        "native" => true,
        other => return Err(invalid(format!("unknown application_type `{other}`"))),
    };
    match text("token_endpoint_auth_method").unwrap_or("none") {
        "none" => {}
        other => {
            return Err(invalid(format!(
                "token_endpoint_auth_method `{other}` is not supported: only public clients (`none`)"
            )));
        }
    }
    let list = |k: &str| -> Result<Option<Vec<String>>, OAuthError> {
        match body.get(k) {
            None => Ok(None),
            Some(Value::Array(a)) => a
                .iter()
                .map(|v| {
                    v.as_str()
                        .map(str::to_owned)
                        .ok_or_else(|| invalid(format!("`{k}` must hold strings")))
                })
                .collect::<Result<_, _>>()
                .map(Some),
            Some(_) => Err(invalid(format!("`{k}` must be an array"))),
        }
    };
    let grants = list("grant_types")?.unwrap_or_else(|| vec!["authorization_code".into()]);
    let allowed = [
        "authorization_code",
        "refresh_token",
        super::DEVICE_CODE_GRANT,
    ];
    if let Some(g) = grants.iter().find(|g| !allowed.contains(&g.as_str())) {
        return Err(invalid(format!(
            "`grant_types`: `{g}` is not supported (authorization_code, refresh_token, {})",
            super::DEVICE_CODE_GRANT
        )));
    }
    let code_grant = grants.iter().any(|g| g == "authorization_code");
    if !code_grant && !grants.iter().any(|g| g == super::DEVICE_CODE_GRANT) {
        return Err(invalid(
            "`grant_types` must hold authorization_code or the device_code grant",
        ));
    }
    let redirect_uris = list("redirect_uris")?.unwrap_or_default();
    // A device-only client is never redirected to; the code grant needs somewhere to answer.
    if code_grant && redirect_uris.is_empty() {
        return Err(invalid_redirect(
            "`redirect_uris` must list at least one URI",
        ));
    }
    for r in &redirect_uris {
        check_redirect(native, &host, r)?;
    }
    if let Some(r) = list("response_types")?
        && r.iter().any(|x| x != "code")
    {
        return Err(invalid("`response_types` may hold only `code`"));
    }
    Ok(Client {
        client_id,
        client_name: text("client_name").map(|s| s.chars().take(100).collect()),
        client_uri: client_uri.to_owned(),
        redirect_uris,
        native,
        metadata: body,
    })
}

impl Client {
    /// The grant types the client registered (authorization_code when it named none).
    pub fn grant_types(&self) -> Vec<String> {
        match self.metadata.get("grant_types").and_then(Value::as_array) {
            Some(a) => a
                .iter()
                .filter_map(|g| g.as_str().map(str::to_owned))
                .collect(),
            None => vec!["authorization_code".into()],
        }
    }

    /// Whether `uri` is one of the registered redirect URIs (a loopback one matches with any
    /// port, as native apps pick a free port at run time).
    pub fn allows_redirect(&self, uri: &str) -> bool {
        if self.redirect_uris.iter().any(|r| r == uri) {
            return true;
        }
        let Ok(mut u) = Url::parse(uri) else {
            return false;
        };
        if !(self.native && u.scheme() == "http" && is_loopback(u.host_str())) {
            return false;
        }
        let _ = u.set_port(None);
        self.redirect_uris.iter().any(|r| {
            Url::parse(r).is_ok_and(|mut r| {
                let _ = r.set_port(None);
                r == u
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn reg(v: Value) -> Result<Client, OAuthError> {
        validate("c".into(), v.as_object().unwrap().clone())
    }

    #[test]
    fn web_and_native_redirect_rules() {
        let ok = reg(json!({"client_uri": "https://app.example.org",
            "redirect_uris": ["https://app.example.org/cb", "https://m.app.example.org/cb"]}));
        assert!(ok.is_ok());
        for bad in [
            "http://app.example.org/cb",
            "https://evil.org/cb",
            "https://app.example.org/cb#x",
        ] {
            let e = reg(json!({"client_uri": "https://app.example.org", "redirect_uris": [bad]}));
            assert_eq!(e.unwrap_err().error, "invalid_redirect_uri", "{bad}");
        }
        let native = reg(
            json!({"client_uri": "https://app.example.org", "application_type": "native",
            "redirect_uris": ["org.example.app:/cb", "org.example:/cb", "http://127.0.0.1/cb"]}),
        )
        .unwrap();
        assert!(native.allows_redirect("http://127.0.0.1:4567/cb"));
        assert!(!native.allows_redirect("http://127.0.0.1:4567/other"));
        for bad in [
            "com.evil:/cb",
            "org.example.app://host/cb",
            "https://app.example.org/cb",
            "http://10.0.0.1/cb",
        ] {
            let e = reg(
                json!({"client_uri": "https://app.example.org", "application_type": "native",
                "redirect_uris": [bad]}),
            );
            assert_eq!(e.unwrap_err().error, "invalid_redirect_uri", "{bad}");
        }
        assert_eq!(
            reg(json!({"redirect_uris": ["https://a.org/cb"]}))
                .unwrap_err()
                .error,
            "invalid_client_metadata"
        );
        let secret = reg(
            json!({"client_uri": "https://a.org", "redirect_uris": ["https://a.org/cb"],
            "token_endpoint_auth_method": "client_secret_basic"}),
        );
        assert_eq!(secret.unwrap_err().error, "invalid_client_metadata");
        // A device-only client needs no redirect URI; other grants are refused.
        let device = reg(
            json!({"client_uri": "https://a.org", "application_type": "native",
            "grant_types": [super::super::DEVICE_CODE_GRANT, "refresh_token"]}),
        )
        .unwrap();
        assert!(
            device
                .grant_types()
                .iter()
                .any(|g| g == super::super::DEVICE_CODE_GRANT)
        );
        let implicit = reg(json!({"client_uri": "https://a.org",
            "redirect_uris": ["https://a.org/cb"], "grant_types": ["implicit"]}));
        assert_eq!(implicit.unwrap_err().error, "invalid_client_metadata");
        let no_redirect = reg(json!({"client_uri": "https://a.org",
            "grant_types": ["authorization_code"]}));
        assert_eq!(no_redirect.unwrap_err().error, "invalid_redirect_uri");
    }
}
