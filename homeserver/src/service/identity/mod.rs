//! Sign-in through the organisation's OpenID providers (`[[identity.providers]]`): the browser is
//! sent to the provider with PKCE, a nonce and a state; its answer comes back to
//! [`CALLBACK_PATH`], the ID token is validated (`upstream.rs`), the assurance gate is asked
//! (policy hook `check_identity_login`), and the account linked to (provider, subject) is signed
//! in, or provisioned on the first sign-in (`accounts.rs`). The sign-in then continues where it
//! started: Handover's OAuth authorization (consent page) or a legacy SSO redirect with a
//! `loginToken`.

mod accounts;
pub mod backchannel;
pub mod expiring;
mod http;
mod sso;
pub use self::sso::SsoStart;
pub mod upstream;
mod userinfo;

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ::http::StatusCode;
use handover_compliance::Outcome;
use handover_policy::Policy;
use openidconnect::core::CoreProviderMetadata;
use ruma::OwnedUserId;

use self::expiring::{Expiring, secret};
use super::account_rooms::AccountService;
use super::audit::{AuditService, entry, with_ip};
use super::oauth::OAuthService;
use super::users::UserService;
use crate::config::{Config, ProviderConfig};
use crate::store::device_grants::{DeviceGrantStore, UpstreamSession};
use crate::store::identity::IdentityStore;

/// Where providers send the browser back.
pub const CALLBACK_PATH: &str = "/_handover/identity/callback";
/// Where providers POST back-channel logout tokens (`{provider}`: the provider's id).
pub const BACKCHANNEL_LOGOUT_PATH: &str = "/_handover/identity/backchannel_logout/{provider}";
/// How long a sign-in at a provider may take.
const SIGN_IN_TTL: Duration = Duration::from_secs(600);
/// A `loginToken` is spent at once by the client it is handed to.
const LOGIN_TOKEN_TTL: Duration = Duration::from_secs(120);
/// Provider metadata and keys are fetched again after this long (key rotation).
const METADATA_TTL: Duration = Duration::from_secs(900);

/// Audit action names (docs/GOVERNANCE.md).
pub mod action {
    pub const IDENTITY_LOGIN: &str = "identity.login";
    pub const IDENTITY_PROVISION: &str = "identity.provision";
    pub const IDENTITY_REFUSED: &str = "identity.refused";
    pub const SSO_LOGIN: &str = "sso.login";
    pub const LOGIN_TOKEN_ISSUED: &str = "login_token.issued";
    pub const BACKCHANNEL_LOGOUT: &str = "identity.backchannel_logout";
}

/// A sign-in that ends on an error page: the page's status, title and sentence.
#[derive(Debug, Clone)]
pub struct Refusal {
    pub status: StatusCode,
    pub title: &'static str,
    pub message: String,
}

impl Refusal {
    pub fn new(status: StatusCode, title: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            title,
            message: message.into(),
        }
    }
    fn internal(e: impl std::fmt::Display) -> Self {
        tracing::error!(error = %e, "sign-in failed");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "Sign-in failed",
            "Something went wrong on this server; nothing was changed. Try again later.",
        )
    }
}

/// Where a sign-in goes once the provider vouched for the user.
#[derive(Debug, Clone)]
pub enum Next {
    /// An OAuth authorization request (its id) waiting for a user.
    OAuth(String),
    /// A legacy SSO client's `redirectUrl`.
    Sso(String),
}

#[derive(Clone)]
struct InFlight {
    provider: String,
    nonce: String,
    pkce_verifier: String,
    browser: String,
    next: Next,
}

pub struct IdentityService {
    config: Arc<Config>,
    http: reqwest::Client,
    store: Arc<dyn IdentityStore>,
    sessions: Arc<dyn DeviceGrantStore>,
    users: Arc<UserService>,
    accounts: Arc<AccountService>,
    policy: Arc<dyn Policy>,
    audit: Arc<AuditService>,
    oauth: Arc<OAuthService>,
    metadata: Mutex<HashMap<String, (Instant, CoreProviderMetadata)>>,
    in_flight: Expiring<InFlight>,
    /// Login tokens: the user, and the provider session they signed in with.
    login_tokens: Expiring<(OwnedUserId, Option<UpstreamSession>)>,
    /// `jti`s of logout tokens already acted on (longer than a token's accepted age).
    seen_logout_tokens: Expiring<()>,
}

pub struct IdentityDeps {
    pub config: Arc<Config>,
    pub store: Arc<dyn IdentityStore>,
    /// Provider sessions (`sid`) behind Handover sessions.
    pub sessions: Arc<dyn DeviceGrantStore>,
    pub users: Arc<UserService>,
    pub accounts: Arc<AccountService>,
    pub policy: Arc<dyn Policy>,
    pub audit: Arc<AuditService>,
    pub oauth: Arc<OAuthService>,
}

impl IdentityService {
    pub fn new(d: IdentityDeps) -> Self {
        Self {
            config: d.config,
            http: http::client(),
            store: d.store,
            sessions: d.sessions,
            users: d.users,
            accounts: d.accounts,
            policy: d.policy,
            audit: d.audit,
            oauth: d.oauth,
            metadata: Mutex::new(HashMap::new()),
            in_flight: Expiring::new(SIGN_IN_TTL),
            login_tokens: Expiring::new(LOGIN_TOKEN_TTL),
            seen_logout_tokens: Expiring::new(Duration::from_secs(
                2 * backchannel::MAX_AGE_SECS as u64 + 60,
            )),
        }
    }

    /// The configured providers, for choosers and `m.login.sso`.
    pub fn providers(&self) -> &[ProviderConfig] {
        &self.config.identity.providers
    }

    pub fn password_login(&self) -> bool {
        self.config.identity.password_login
    }

    pub fn get_login_token(&self) -> bool {
        self.config.identity.get_login_token
    }

    fn provider(&self, id: &str) -> Result<&ProviderConfig, Refusal> {
        self.config.identity.provider(id).ok_or_else(|| {
            Refusal::new(
                StatusCode::NOT_FOUND,
                "Unknown identity provider",
                format!("This server has no identity provider called \"{id}\"."),
            )
        })
    }

    fn redirect_uri(&self) -> String {
        format!(
            "{}{CALLBACK_PATH}",
            self.config.base_url().trim_end_matches('/')
        )
    }

    async fn metadata(&self, p: &ProviderConfig) -> Result<CoreProviderMetadata, Refusal> {
        if let Some((at, m)) = self.metadata.lock().expect("metadata lock").get(&p.id)
            && at.elapsed() < METADATA_TTL
        {
            return Ok(m.clone());
        }
        let m = upstream::discover(&self.http, &p.issuer)
            .await
            .map_err(|e| {
                tracing::warn!(provider = %p.id, error = %e, "identity provider discovery failed");
                Refusal::new(
                    StatusCode::BAD_GATEWAY,
                    "Identity provider unavailable",
                    e.to_string(),
                )
            })?;
        self.metadata
            .lock()
            .expect("metadata lock")
            .insert(p.id.clone(), (Instant::now(), m.clone()));
        Ok(m)
    }

    /// Starts a sign-in at `provider_id` for the browser `browser`: the provider URL to send it
    /// to. Nothing is stored but the in-flight record.
    pub async fn start(
        &self,
        provider_id: &str,
        browser: &str,
        next: Next,
    ) -> Result<String, Refusal> {
        let p = self.provider(provider_id)?;
        let meta = self.metadata(p).await?;
        let s = upstream::start(p, meta, &self.redirect_uri()).map_err(|e| {
            Refusal::new(
                StatusCode::BAD_GATEWAY,
                "Identity provider unavailable",
                e.to_string(),
            )
        })?;
        self.in_flight.insert(
            s.state,
            InFlight {
                provider: p.id.clone(),
                nonce: s.nonce,
                pkce_verifier: s.pkce_verifier,
                browser: browser.to_owned(),
                next,
            },
        );
        Ok(s.url.to_string())
    }

    /// The provider's answer: `code` and `state`, or `error`. Returns where to send the
    /// browser next (the consent page, or the SSO client with a `loginToken`).
    pub async fn callback(
        &self,
        state: Option<&str>,
        code: Option<&str>,
        error: Option<&str>,
        browser: &str,
        ip: Option<IpAddr>,
    ) -> Result<String, Refusal> {
        let bad_state = || {
            Refusal::new(
                StatusCode::BAD_REQUEST,
                "Sign-in expired or not started here",
                "This sign-in answer does not match a sign-in started in this browser (wrong or \
                 reused state). Start again from your app.",
            )
        };
        let f = state
            .and_then(|s| self.in_flight.take(s))
            .ok_or_else(bad_state)?;
        if f.browser != browser {
            return Err(bad_state());
        }
        let p = self.provider(&f.provider)?.clone();
        if let Some(err) = error {
            let e = entry(&p.id, action::IDENTITY_REFUSED, Outcome::Failure)
                .detail("reason", "provider_error")
                .detail("error", err.chars().take(100).collect::<String>());
            self.audit
                .record(with_ip(e, ip))
                .await
                .map_err(Refusal::internal)?;
            return Err(Refusal::new(
                StatusCode::FORBIDDEN,
                "Sign-in cancelled",
                format!("{} did not sign you in ({err}).", p.name),
            ));
        }
        let code = code.ok_or_else(|| {
            Refusal::new(
                StatusCode::BAD_REQUEST,
                "Incomplete answer",
                "The provider sent no code.",
            )
        })?;
        let meta = self.metadata(&p).await?;
        let verified = upstream::finish(
            &self.http,
            &p,
            meta,
            &self.redirect_uri(),
            code,
            f.pkce_verifier,
            &f.nonce,
        )
        .await;
        let verified = match verified {
            Ok(v) => v,
            Err(err) => {
                tracing::warn!(provider = %p.id, error = %err, "upstream sign-in failed");
                let e = entry(&p.id, action::IDENTITY_REFUSED, Outcome::Failure)
                    .detail("reason", "upstream_error");
                self.audit
                    .record(with_ip(e, ip))
                    .await
                    .map_err(Refusal::internal)?;
                return Err(Refusal::new(
                    StatusCode::BAD_GATEWAY,
                    "Sign-in failed",
                    err.to_string(),
                ));
            }
        };
        let upstream = verified.sid.clone().map(|sid| (p.id.clone(), sid));
        let user_id = self.sign_in(&p, verified, ip).await?;
        match f.next {
            Next::OAuth(auth_id) => self
                .oauth
                .authenticated(&auth_id, browser, &user_id, upstream),
            Next::Sso(redirect_url) => {
                Ok(self.login_token_redirect(&redirect_url, user_id, upstream))
            }
        }
    }

    fn login_token_redirect(
        &self,
        redirect_url: &str,
        user_id: OwnedUserId,
        upstream: Option<UpstreamSession>,
    ) -> String {
        let token = secret();
        self.login_tokens.insert(token.clone(), (user_id, upstream));
        let mut url = url::Url::parse(redirect_url).expect("checked when the SSO login started");
        url.query_pairs_mut().append_pair("loginToken", &token);
        url.to_string()
    }

    /// Spends an `m.login.token` (single use, two minutes).
    pub fn take_login_token(&self, token: &str) -> Option<(OwnedUserId, Option<UpstreamSession>)> {
        self.login_tokens.take(token)
    }

    /// A login token for a signed-in user (`/login/get_token`), and its lifetime.
    pub fn issue_login_token(&self, user_id: OwnedUserId) -> (String, Duration) {
        let token = secret();
        self.login_tokens.insert(token.clone(), (user_id, None));
        (token, LOGIN_TOKEN_TTL)
    }
}
