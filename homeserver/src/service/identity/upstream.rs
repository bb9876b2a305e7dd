//! One upstream OpenID provider: discovery, the authorization request (code flow with PKCE S256,
//! nonce, state, acr_values) and the code exchange with ID token validation by `openidconnect`
//! (signature against the discovered JWKS, iss, aud, azp, exp, nonce).

use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use openidconnect::core::{CoreAuthenticationFlow, CoreClient, CoreProviderMetadata};
use openidconnect::{
    AuthType, AuthenticationContextClass, AuthorizationCode, ClientId, ClientSecret, CsrfToken,
    IssuerUrl, Nonce, OAuth2TokenResponse, PkceCodeChallenge, PkceCodeVerifier, RedirectUrl, Scope,
    TokenResponse,
};
use serde_json::{Map, Value};

use super::http;
use crate::config::{ClientAuth, ProviderConfig};

/// Why an upstream sign-in failed; shown (as a sentence) on the error page and audited.
#[derive(Debug, thiserror::Error)]
pub enum UpstreamError {
    #[error("the identity provider could not be reached or described itself wrongly: {0}")]
    Discovery(String),
    #[error("the identity provider refused the sign-in: {0}")]
    Token(String),
    #[error("the identity provider's ID token is not valid: {0}")]
    IdToken(String),
    #[error("the identity provider is set up wrongly on this server: {0}")]
    Config(String),
}

/// What the browser is sent to, and what must be kept to check the answer.
pub struct AuthStart {
    pub url: url::Url,
    pub state: String,
    pub nonce: String,
    pub pkce_verifier: String,
}

/// A validated ID token: who, how strongly, and every claim (for the configured claim names).
#[derive(Debug, Clone)]
pub struct Verified {
    pub subject: String,
    pub acr: Option<String>,
    /// The provider's session (`sid`), when it sent one: back-channel logout names it.
    pub sid: Option<String>,
    pub claims: Map<String, Value>,
}

pub async fn discover(
    client: &reqwest::Client,
    issuer: &str,
) -> Result<CoreProviderMetadata, UpstreamError> {
    let issuer =
        IssuerUrl::new(issuer.to_owned()).map_err(|e| UpstreamError::Config(e.to_string()))?;
    let c = client.clone();
    let send = move |req| http::send(c.clone(), req);
    CoreProviderMetadata::discover_async(issuer, &send)
        .await
        .map_err(|e| UpstreamError::Discovery(error_chain(&e)))
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}

fn oidc_client(
    p: &ProviderConfig,
    meta: CoreProviderMetadata,
    redirect: &str,
) -> Result<
    CoreClient<
        openidconnect::EndpointSet,
        openidconnect::EndpointNotSet,
        openidconnect::EndpointNotSet,
        openidconnect::EndpointNotSet,
        openidconnect::EndpointMaybeSet,
        openidconnect::EndpointMaybeSet,
    >,
    UpstreamError,
> {
    let secret = match p.client_auth {
        ClientAuth::PrivateKeyJwt => None,
        _ => p.client_secret.clone().map(ClientSecret::new),
    };
    let redirect =
        RedirectUrl::new(redirect.to_owned()).map_err(|e| UpstreamError::Config(e.to_string()))?;
    let auth_type = match p.client_auth {
        ClientAuth::ClientSecretBasic => AuthType::BasicAuth,
        _ => AuthType::RequestBody,
    };
    Ok(
        CoreClient::from_provider_metadata(meta, ClientId::new(p.client_id.clone()), secret)
            .set_redirect_uri(redirect)
            .set_auth_type(auth_type),
    )
}

/// The provider's authorization URL for a new sign-in.
pub fn start(
    p: &ProviderConfig,
    meta: CoreProviderMetadata,
    redirect: &str,
) -> Result<AuthStart, UpstreamError> {
    let client = oidc_client(p, meta, redirect)?;
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let mut req = client
        .authorize_url(
            CoreAuthenticationFlow::AuthorizationCode,
            CsrfToken::new_random,
            Nonce::new_random,
        )
        .set_pkce_challenge(challenge);
    for s in p.scopes.iter().filter(|s| *s != "openid") {
        req = req.add_scope(Scope::new(s.clone()));
    }
    for acr in &p.acr_values {
        req = req.add_auth_context_value(AuthenticationContextClass::new(acr.clone()));
    }
    let (url, state, nonce) = req.url();
    Ok(AuthStart {
        url,
        state: state.secret().clone(),
        nonce: nonce.secret().clone(),
        pkce_verifier: verifier.secret().clone(),
    })
}

/// Exchanges the code (with the PKCE verifier) and validates the ID token against `nonce`.
pub async fn finish(
    http_client: &reqwest::Client,
    p: &ProviderConfig,
    meta: CoreProviderMetadata,
    redirect: &str,
    code: &str,
    pkce_verifier: String,
    nonce: &str,
) -> Result<Verified, UpstreamError> {
    let token_url = meta.token_endpoint().map(|u| u.url().to_string());
    let userinfo_url = meta.userinfo_endpoint().map(|u| u.url().to_string());
    let client = oidc_client(p, meta, redirect)?;
    let mut req = client
        .exchange_code(AuthorizationCode::new(code.to_owned()))
        .map_err(|e| UpstreamError::Config(e.to_string()))?
        .set_pkce_verifier(PkceCodeVerifier::new(pkce_verifier));
    if p.client_auth == ClientAuth::PrivateKeyJwt {
        let aud = token_url.ok_or_else(|| UpstreamError::Config("no token endpoint".into()))?;
        let jwt = client_assertion(p, &aud)?;
        req = req
            .add_extra_param(
                "client_assertion_type",
                "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            )
            .add_extra_param("client_assertion", jwt);
    }
    let c = http_client.clone();
    let send = move |r| http::send(c.clone(), r);
    let res = req
        .request_async(&send)
        .await
        .map_err(|e| UpstreamError::Token(error_chain(&e)))?;
    let id_token = res
        .id_token()
        .ok_or_else(|| UpstreamError::IdToken("the token response has no id_token".into()))?;
    let verifier = client.id_token_verifier();
    let claims = id_token
        .claims(&verifier, &Nonce::new(nonce.to_owned()))
        .map_err(|e| UpstreamError::IdToken(error_chain(&e)))?;
    let subject = claims.subject().as_str().to_owned();
    let acr = claims.auth_context_ref().map(|a| a.as_str().to_owned());
    // Verified above; read every claim from the payload for the configured claim names.
    let all = id_token
        .to_string()
        .split('.')
        .nth(1)
        .and_then(|p| URL_SAFE_NO_PAD.decode(p).ok())
        .and_then(|b| serde_json::from_slice::<Map<String, Value>>(&b).ok())
        .unwrap_or_default();
    let sid = all.get("sid").and_then(Value::as_str).map(str::to_owned);
    let mut v = Verified {
        subject,
        acr,
        sid,
        claims: all,
    };
    if let Some(url) = userinfo_url
        && super::userinfo::incomplete(p, &v.claims)
    {
        super::userinfo::complete(http_client, &url, res.access_token().secret(), &mut v).await?;
    }
    Ok(v)
}

/// `private_key_jwt` (RFC 7523): a short-lived RS256 JWT naming us, for the token endpoint.
fn client_assertion(p: &ProviderConfig, audience: &str) -> Result<String, UpstreamError> {
    let cfg = |m: String| UpstreamError::Config(m);
    let path = p
        .private_key_file
        .as_ref()
        .ok_or_else(|| cfg("no private_key_file".into()))?;
    let pem = std::fs::read_to_string(path)
        .map_err(|e| cfg(format!("cannot read {}: {e}", path.display())))?;
    let b64: String = pem
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .collect::<Vec<_>>()
        .concat();
    let der = base64::engine::general_purpose::STANDARD
        .decode(b64.trim())
        .map_err(|e| cfg(format!("private_key_file is not PEM: {e}")))?;
    let key = ring::signature::RsaKeyPair::from_pkcs8(&der)
        .map_err(|e| cfg(format!("private_key_file is not a PKCS#8 RSA key: {e}")))?;
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let header = serde_json::json!({"alg": "RS256", "typ": "JWT"});
    let body = serde_json::json!({
        "iss": p.client_id, "sub": p.client_id, "aud": audience,
        "jti": super::expiring::secret(), "iat": now, "exp": now + 60,
    });
    let input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(body.to_string())
    );
    let mut sig = vec![0; key.public().modulus_len()];
    key.sign(
        &ring::signature::RSA_PKCS1_SHA256,
        &ring::rand::SystemRandom::new(),
        input.as_bytes(),
        &mut sig,
    )
    .map_err(|_| cfg("signing the client assertion failed".into()))?;
    Ok(format!("{input}.{}", URL_SAFE_NO_PAD.encode(sig)))
}
