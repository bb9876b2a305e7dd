//! Handover as the OAuth 2.0 authorization server of the Matrix spec ("next-generation auth",
//! what Element X uses): server metadata, dynamic client registration (`clients.rs`), the
//! authorization code grant with PKCE S256 only (`authorize.rs`), the token endpoint with
//! rotating refresh tokens and revocation (`tokens.rs`). The user signs in on Handover's own
//! pages (provider chooser, password form) and consents on a page naming the client and the
//! device. Tokens are ordinary Handover access tokens: every endpoint accepts them.

mod account;
mod authorize;
pub mod clients;
mod create;
mod device;
mod tokens;
pub use self::account::{AccountAction, AccountSession, AccountView};
pub use self::create::CreateForm;
pub use self::device::{DeviceAuthParams, DeviceEntry, display_user_code};
pub use self::tokens::{RevokeParams, TokenParams};

use std::sync::Arc;
use std::time::Duration;

use ruma::OwnedUserId;
use serde_json::{Value, json};

pub use self::authorize::{
    Answer, AppRequest, AuthParams, AuthRequest, AuthorizeError, Consent, Purpose,
};
use self::clients::Client;
use super::audit::AuditService;
use super::blocking;
use super::identity::expiring::{Expiring, secret};
use super::registration::RegistrationService;
use super::uiaa::UiaaService;
use super::users::UserService;
use crate::config::{Config, RegistrationMode};
use crate::store::device_grants::{DeviceGrantStore, UpstreamSession};
use crate::store::identity::IdentityStore;
use crate::store::users::UserStore;

/// Handover's own OAuth endpoints and pages.
pub mod paths {
    pub const AUTHORIZE: &str = "/_handover/oauth/authorize";
    pub const TOKEN: &str = "/_handover/oauth/token";
    pub const REGISTER: &str = "/_handover/oauth/register";
    pub const REVOKE: &str = "/_handover/oauth/revoke";
    pub const CONSENT: &str = "/_handover/oauth/consent";
    pub const PASSWORD: &str = "/_handover/oauth/password";
    pub const START: &str = "/_handover/identity/start/{provider}";
    /// RFC 8628: where devices ask for a grant, and where the user enters the code.
    pub const DEVICE_AUTHORIZATION: &str = "/_handover/oauth/device_authorization";
    pub const DEVICE: &str = "/_handover/oauth/device";
    /// `prompt=create`: the account creation form of the sign-in page.
    pub const CREATE: &str = "/_handover/oauth/create";
    /// MSC4191 account management (`account_management_uri`) and its forms.
    pub const ACCOUNT: &str = crate::service::uiaa::ACCOUNT_PAGE_PATH;
    pub const ACCOUNT_PROFILE: &str = "/_handover/account/profile";
    pub const ACCOUNT_END_SESSION: &str = "/_handover/account/end_session";
    pub const ACCOUNT_END_ALL: &str = "/_handover/account/end_all";
    pub const ACCOUNT_CROSS_SIGNING_RESET: &str = "/_handover/account/cross_signing_reset";
}

/// RFC 8628's grant type.
pub const DEVICE_CODE_GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";

/// Audit action names (docs/GOVERNANCE.md).
pub mod action {
    pub const CLIENT_REGISTER: &str = "oauth.client_register";
    pub const CONSENT: &str = "oauth.consent";
    pub const TOKEN: &str = "oauth.token";
    pub const REFRESH_REUSE: &str = "oauth.refresh_reuse";
    pub const CODE_REPLAY: &str = "oauth.code_replay";
    pub const REVOKE: &str = "oauth.revoke";
    pub const DEVICE_AUTHORIZATION: &str = "oauth.device_authorization";
    pub const CROSS_SIGNING_RESET_APPROVED: &str = "oauth.cross_signing_reset_approved";
}

/// The scope giving full client-server API access, stable and MSC2967's unstable spelling.
const API_SCOPES: [&str; 2] = [
    "urn:matrix:client:api:*",
    "urn:matrix:org.matrix.msc2967.client:api:*",
];
const DEVICE_PREFIXES: [&str; 2] = [
    "urn:matrix:client:device:",
    "urn:matrix:org.matrix.msc2967.client:device:",
];
/// Authorization requests and codes live this long.
const AUTH_TTL: Duration = Duration::from_secs(600);
/// Access tokens from OAuth expire after `[sessions] access_token_lifetime`, or this.
const DEFAULT_ACCESS_LIFETIME_MS: u64 = 3_600_000;

/// An OAuth error answer (RFC 6749 §5.2): `{"error", "error_description"}`.
#[derive(Debug, Clone)]
pub struct OAuthError {
    pub status: http::StatusCode,
    pub error: &'static str,
    pub description: String,
}

impl OAuthError {
    pub fn bad(error: &'static str, description: impl Into<String>) -> Self {
        Self {
            status: http::StatusCode::BAD_REQUEST,
            error,
            description: description.into(),
        }
    }
    pub fn server(e: impl std::fmt::Display) -> Self {
        tracing::error!(error = %e, "OAuth request failed");
        Self {
            status: http::StatusCode::INTERNAL_SERVER_ERROR,
            error: "server_error",
            description: "the server failed; nothing was issued".into(),
        }
    }
    pub fn body(&self) -> Value {
        json!({"error": self.error, "error_description": self.description})
    }
}

/// A code waiting for the token endpoint.
#[derive(Clone)]
struct Grant {
    client_id: String,
    redirect_uri: String,
    code_challenge: String,
    user_id: OwnedUserId,
    device_id: ruma::OwnedDeviceId,
    scope: String,
    upstream: Option<UpstreamSession>,
}

pub struct OAuthService {
    config: Arc<Config>,
    store: Arc<dyn IdentityStore>,
    user_store: Arc<dyn UserStore>,
    grants: Arc<dyn DeviceGrantStore>,
    users: Arc<UserService>,
    uiaa: Arc<UiaaService>,
    registration: Arc<RegistrationService>,
    audit: Arc<AuditService>,
    requests: Expiring<AuthRequest>,
    codes: Expiring<Grant>,
    /// Codes already exchanged, with the session they made: a replay revokes it (RFC 6749 §4.1.2).
    spent_codes: Expiring<(OwnedUserId, ruma::OwnedDeviceId)>,
    /// Signed-in account pages, by browser (`account.rs`).
    account_sessions: Expiring<AccountSession>,
}

/// What the OAuth service is built from.
pub struct OAuthDeps {
    pub config: Arc<Config>,
    pub store: Arc<dyn IdentityStore>,
    pub user_store: Arc<dyn UserStore>,
    pub grants: Arc<dyn DeviceGrantStore>,
    pub users: Arc<UserService>,
    pub uiaa: Arc<UiaaService>,
    pub registration: Arc<RegistrationService>,
    pub audit: Arc<AuditService>,
}

impl OAuthService {
    pub fn new(d: OAuthDeps) -> Self {
        Self {
            config: d.config,
            store: d.store,
            user_store: d.user_store,
            grants: d.grants,
            users: d.users,
            uiaa: d.uiaa,
            registration: d.registration,
            audit: d.audit,
            requests: Expiring::new(AUTH_TTL),
            codes: Expiring::new(AUTH_TTL),
            spent_codes: Expiring::new(AUTH_TTL),
            account_sessions: Expiring::new(account::ACCOUNT_SESSION_TTL),
        }
    }

    /// Whether accounts may be created on Handover's sign-in page (`prompt=create`): password
    /// sign-in on, registration open or by token, and no emailed-link stage (which the one
    /// form cannot carry).
    pub fn registration_open(&self) -> bool {
        self.config.identity.password_login
            && self.config.registration.mode != RegistrationMode::Closed
            && self.config.registration.allowed_email_domains.is_empty()
    }

    /// The account page, with an action (MSC4191), as an absolute URL.
    pub fn account_url(&self, action: Option<&str>) -> String {
        let mut u = format!("{}{}", self.base(), paths::ACCOUNT);
        if let Some(a) = action {
            u.push_str("?action=");
            u.push_str(a);
        }
        u
    }

    fn base(&self) -> String {
        self.config.base_url().trim_end_matches('/').to_owned()
    }

    /// `GET /_matrix/client/v1/auth_metadata` (RFC 8414 fields the spec names).
    pub fn metadata(&self) -> Value {
        let b = self.base();
        let mut m = json!({
            "issuer": format!("{b}/"),
            "authorization_endpoint": format!("{b}{}", paths::AUTHORIZE),
            "token_endpoint": format!("{b}{}", paths::TOKEN),
            "registration_endpoint": format!("{b}{}", paths::REGISTER),
            "revocation_endpoint": format!("{b}{}", paths::REVOKE),
            "response_types_supported": ["code"],
            "response_modes_supported": ["query", "fragment"],
            "grant_types_supported": ["authorization_code", "refresh_token", DEVICE_CODE_GRANT],
            "device_authorization_endpoint": format!("{b}{}", paths::DEVICE_AUTHORIZATION),
            "account_management_uri": self.account_url(None),
            "account_management_actions_supported": account::ACTIONS_SUPPORTED,
            "code_challenge_methods_supported": ["S256"],
            "token_endpoint_auth_methods_supported": ["none"],
            "revocation_endpoint_auth_methods_supported": ["none"],
            "scopes_supported": [API_SCOPES[0], format!("{}*", DEVICE_PREFIXES[0])],
        });
        if self.registration_open() {
            m["prompt_values_supported"] = json!(["create"]);
        }
        m
    }

    /// `POST /register` (RFC 7591): validates and stores the client.
    pub async fn register(&self, body: Value) -> Result<Value, OAuthError> {
        let Value::Object(body) = body else {
            return Err(OAuthError::bad(
                "invalid_client_metadata",
                "the body must be a JSON object",
            ));
        };
        let client = clients::validate(secret(), body)?;
        let stored = serde_json::to_string(&client).map_err(OAuthError::server)?;
        let store = self.store.clone();
        let id = client.client_id.clone();
        blocking(move || Ok(store.insert_oauth_client(&id, &stored)?))
            .await
            .map_err(OAuthError::server)?;
        let e = super::audit::entry(
            &client.client_id,
            action::CLIENT_REGISTER,
            handover_compliance::Outcome::Success,
        )
        .detail("client_uri", client.client_uri.as_str());
        self.audit.record(e).await.map_err(OAuthError::server)?;
        let mut out = client.metadata.clone();
        out.insert("client_id".into(), Value::String(client.client_id.clone()));
        out.insert("token_endpoint_auth_method".into(), "none".into());
        Ok(Value::Object(out))
    }

    async fn client(&self, client_id: &str) -> Result<Option<Client>, OAuthError> {
        let store = self.store.clone();
        let id = client_id.to_owned();
        let raw = blocking(move || Ok(store.get_oauth_client(&id)?))
            .await
            .map_err(OAuthError::server)?;
        raw.map(|r| serde_json::from_str(&r).map_err(OAuthError::server))
            .transpose()
    }
}
