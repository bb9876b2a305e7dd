//! The authorization endpoint and the pages behind it: the request is checked (client, redirect
//! URI first: until both are known good, errors are shown as a page and never redirected), kept
//! in memory bound to the browser, signed in (provider or password), consented to, and answered
//! with a single-use code.

use std::net::IpAddr;

use handover_compliance::Outcome;
use ruma::{OwnedDeviceId, OwnedUserId};
use serde::Deserialize;

use super::clients::Client;
use super::{API_SCOPES, DEVICE_PREFIXES, Grant, OAuthService, action, paths};
use crate::service::audit::{entry, with_ip};
use crate::service::identity::Refusal;
use crate::service::identity::expiring::secret;
use crate::store::device_grants::UpstreamSession;
use ::http::StatusCode;

/// The query of `GET /authorize`.
#[derive(Debug, Default, Deserialize)]
pub struct AuthParams {
    pub client_id: Option<String>,
    pub redirect_uri: Option<String>,
    pub response_type: Option<String>,
    pub response_mode: Option<String>,
    pub scope: Option<String>,
    pub state: Option<String>,
    pub code_challenge: Option<String>,
    pub code_challenge_method: Option<String>,
    pub prompt: Option<String>,
}

/// A sign-in in progress on Handover's pages, bound to the browser that started it.
#[derive(Debug, Clone)]
pub struct AuthRequest {
    pub id: String,
    /// Put in every form of this request's pages; a POST without it is refused.
    pub csrf: String,
    pub(super) browser: String,
    pub purpose: Purpose,
    pub user: Option<OwnedUserId>,
    /// The provider session the user signed in with, carried to the session it makes.
    pub(super) upstream: Option<UpstreamSession>,
    /// `prompt=create`: the sign-in page offers to create an account.
    pub create: bool,
}

/// What the sign-in is for.
#[derive(Debug, Clone)]
pub enum Purpose {
    /// An app asks for access to the account (consent page next).
    App(Box<AppRequest>),
    /// The account page (`/_handover/account/`): continues at `next` once signed in.
    Account { next: String },
}

/// An app's request for access: which app, which device, and how the app is answered.
#[derive(Debug, Clone)]
pub struct AppRequest {
    pub client: Client,
    pub device_id: OwnedDeviceId,
    pub(super) scope: String,
    pub answer: Answer,
}

/// How the app learns the user's decision.
#[derive(Debug, Clone)]
pub enum Answer {
    /// The authorization code grant: a redirect to the app's registered URI.
    Redirect {
        redirect_uri: String,
        fragment: bool,
        state: Option<String>,
        challenge: String,
    },
    /// The device authorization grant: the device polls for the grant with this user code.
    Device { user_code: String },
}

impl AuthRequest {
    /// The app asking, if any (not for the account page).
    pub fn app(&self) -> Option<&AppRequest> {
        match &self.purpose {
            Purpose::App(a) => Some(a.as_ref()),
            Purpose::Account { .. } => None,
        }
    }
}

/// What the consent page shows.
pub struct Consent {
    pub request: AuthRequest,
    pub app: AppRequest,
    pub user_id: OwnedUserId,
    pub new_device: bool,
}

/// An authorization error: shown as a page, or sent back to the client's redirect URI.
pub enum AuthorizeError {
    Page(Refusal),
    Redirect(String),
}

fn page(title: &'static str, m: impl Into<String>) -> AuthorizeError {
    AuthorizeError::Page(Refusal::new(StatusCode::BAD_REQUEST, title, m))
}

fn respond(
    redirect_uri: &str,
    fragment: bool,
    state: Option<&str>,
    pairs: &[(&str, &str)],
) -> String {
    let mut q = url::form_urlencoded::Serializer::new(String::new());
    for (k, v) in pairs {
        q.append_pair(k, v);
    }
    if let Some(s) = state {
        q.append_pair("state", s);
    }
    let q = q.finish();
    let sep = match (fragment, redirect_uri.contains('?')) {
        (true, _) => '#',
        (false, true) => '&',
        (false, false) => '?',
    };
    format!("{redirect_uri}{sep}{q}")
}

fn expired() -> Refusal {
    Refusal::new(
        StatusCode::BAD_REQUEST,
        "Sign-in expired",
        "This sign-in has expired or was started in another browser. Start again from your app.",
    )
}

/// The device id a scope names, if it is the device scope.
fn device_scope(s: &str) -> Option<&str> {
    DEVICE_PREFIXES.iter().find_map(|p| s.strip_prefix(p))
}

impl OAuthService {
    /// `GET /authorize`: a checked request waiting for the user, or the error.
    pub async fn authorize(
        &self,
        p: AuthParams,
        browser: &str,
    ) -> Result<AuthRequest, AuthorizeError> {
        let client_id = p
            .client_id
            .as_deref()
            .ok_or_else(|| page("Unknown app", "The request names no client_id."))?;
        let client = self
            .client(client_id)
            .await
            .map_err(|e| page("Sign-in failed", e.description))?
            .ok_or_else(|| {
                page(
                    "Unknown app",
                    "The app asking to sign in is not registered on this server.",
                )
            })?;
        let redirect_uri = p.redirect_uri.clone().unwrap_or_default();
        if !client.allows_redirect(&redirect_uri) {
            return Err(page(
                "Unregistered redirect URI",
                "The app asked to be answered at an address it did not register (redirect_uri). \
                 Nothing was sent to it.",
            ));
        }
        let fragment = match p.response_mode.as_deref() {
            None | Some("query") => false,
            Some("fragment") => true,
            Some(_) => {
                return Err(AuthorizeError::Redirect(respond(
                    &redirect_uri,
                    false,
                    p.state.as_deref(),
                    &[
                        ("error", "invalid_request"),
                        (
                            "error_description",
                            "response_mode must be query or fragment",
                        ),
                    ],
                )));
            }
        };
        let fail = |error: &str, d: &str| {
            AuthorizeError::Redirect(respond(
                &redirect_uri,
                fragment,
                p.state.as_deref(),
                &[("error", error), ("error_description", d)],
            ))
        };
        if p.response_type.as_deref() != Some("code") {
            return Err(fail(
                "unsupported_response_type",
                "only response_type=code is supported",
            ));
        }
        if p.code_challenge_method.as_deref() != Some("S256") {
            return Err(fail(
                "invalid_request",
                "PKCE with code_challenge_method=S256 is required",
            ));
        }
        let challenge = p.code_challenge.clone().unwrap_or_default();
        if !(43..=128).contains(&challenge.len()) {
            return Err(fail(
                "invalid_request",
                "code_challenge is missing or malformed",
            ));
        }
        let create = p
            .prompt
            .as_deref()
            .is_some_and(|x| x.split(' ').any(|v| v == "create"));
        if create && !self.registration_open() {
            return Err(fail(
                "invalid_request",
                "prompt=create: accounts cannot be created here; sign in with your organisation",
            ));
        }
        let scope = p.scope.clone().unwrap_or_default();
        let device = parse_scope(&scope).map_err(|(e, d)| fail(e, &d))?;
        let answer = Answer::Redirect {
            redirect_uri,
            fragment,
            state: p.state,
            challenge,
        };
        let req = self.new_request(
            browser,
            Purpose::App(Box::new(AppRequest {
                client,
                device_id: device,
                scope,
                answer,
            })),
            create,
        );
        Ok(req)
    }

    /// A new sign-in request for this browser, kept until it expires or is answered.
    pub(super) fn new_request(&self, browser: &str, purpose: Purpose, create: bool) -> AuthRequest {
        let req = AuthRequest {
            id: secret(),
            csrf: secret(),
            browser: browser.to_owned(),
            purpose,
            user: None,
            upstream: None,
            create,
        };
        self.requests.insert(req.id.clone(), req.clone());
        req
    }

    /// A live request of this browser.
    pub fn request(&self, auth_id: &str, browser: &str) -> Result<AuthRequest, Refusal> {
        self.requests
            .get(auth_id)
            .filter(|r| r.browser == browser)
            .ok_or_else(expired)
    }

    /// The user signed in for request `auth_id` (through provider session `upstream`, if
    /// any): the consent page comes next, or the account page.
    pub fn authenticated(
        &self,
        auth_id: &str,
        browser: &str,
        user: &OwnedUserId,
        upstream: Option<UpstreamSession>,
    ) -> Result<String, Refusal> {
        let req = self.request(auth_id, browser)?;
        if let Purpose::Account { next } = &req.purpose {
            self.requests.take(auth_id);
            self.start_account_session(browser, user.clone());
            return Ok(format!("{}{next}", self.base()));
        }
        self.requests.update(auth_id, |r| {
            r.user = Some(user.clone());
            r.upstream = upstream;
        });
        Ok(format!("{}{}?auth={auth_id}", self.base(), paths::CONSENT))
    }

    /// The password form of Handover's sign-in page (`[identity] password_login`).
    pub async fn password_sign_in(
        &self,
        auth_id: &str,
        csrf: &str,
        browser: &str,
        user: &str,
        password: &str,
        ip: Option<IpAddr>,
    ) -> Result<String, Refusal> {
        let req = self.request(auth_id, browser)?;
        if req.csrf != csrf || !self.config.identity.password_login {
            return Err(expired());
        }
        let checked = async {
            let id = self.users.parse_login_user(user)?;
            self.users.check_password(&id, password).await
        }
        .await;
        let e = match &checked {
            Ok(u) => entry(
                u.user_id.as_str(),
                crate::service::audit::action::LOGIN,
                Outcome::Success,
            )
            .detail("via", "oauth_password"),
            Err(_) => entry(
                &user.chars().take(255).collect::<String>(),
                crate::service::audit::action::LOGIN,
                Outcome::Failure,
            )
            .detail("via", "oauth_password")
            .detail("reason", "invalid_credentials"),
        };
        self.audit.record(with_ip(e, ip)).await.map_err(|e| {
            Refusal::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "Sign-in failed",
                e.to_string(),
            )
        })?;
        let record = checked.map_err(|_| {
            Refusal::new(
                StatusCode::FORBIDDEN,
                "Wrong user name or password",
                "The user name or password is not right.",
            )
        })?;
        self.authenticated(auth_id, browser, &record.user_id, None)
    }

    /// What the consent page shows; the request must be signed in.
    pub async fn consent_page(&self, auth_id: &str, browser: &str) -> Result<Consent, Refusal> {
        let req = self.request(auth_id, browser)?;
        let user_id = req.user.clone().ok_or_else(expired)?;
        let app = req.app().cloned().ok_or_else(expired)?;
        let store = self.user_store.clone();
        let (u, d) = (user_id.to_string(), app.device_id.to_string());
        let existing = crate::service::blocking(move || Ok(store.get_device(&u, &d)?))
            .await
            .map_err(|e| {
                Refusal::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "Sign-in failed",
                    e.to_string(),
                )
            })?;
        Ok(Consent {
            request: req,
            app,
            user_id,
            new_device: existing.is_none(),
        })
    }

    /// The consent form: `allow` answers the client with a code, otherwise `access_denied`.
    pub async fn consent(
        &self,
        auth_id: &str,
        csrf: &str,
        browser: &str,
        allow: bool,
        ip: Option<IpAddr>,
    ) -> Result<String, Refusal> {
        let req = self.request(auth_id, browser)?;
        let user_id = req.user.clone().ok_or_else(expired)?;
        let app = req.app().cloned().ok_or_else(expired)?;
        if req.csrf != csrf {
            return Err(expired());
        }
        self.requests.take(auth_id);
        let outcome = if allow {
            Outcome::Success
        } else {
            Outcome::Denied
        };
        let grant = match app.answer {
            Answer::Redirect { .. } => "authorization_code",
            Answer::Device { .. } => "device_code",
        };
        let e = entry(user_id.as_str(), action::CONSENT, outcome)
            .detail("client_id", app.client.client_id.as_str())
            .detail("device_id", app.device_id.as_str())
            .detail("grant", grant);
        self.audit.record(with_ip(e, ip)).await.map_err(|e| {
            Refusal::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "Sign-in failed",
                e.to_string(),
            )
        })?;
        let (redirect_uri, fragment, state, challenge) = match app.answer {
            Answer::Device { user_code } => {
                return self
                    .decide_device(&user_code, allow.then_some(&user_id), req.upstream)
                    .await;
            }
            Answer::Redirect {
                redirect_uri,
                fragment,
                state,
                challenge,
            } => (redirect_uri, fragment, state, challenge),
        };
        if !allow {
            return Ok(respond(
                &redirect_uri,
                fragment,
                state.as_deref(),
                &[
                    ("error", "access_denied"),
                    ("error_description", "the user declined"),
                ],
            ));
        }
        let code = secret();
        self.codes.insert(
            code.clone(),
            Grant {
                client_id: app.client.client_id.clone(),
                redirect_uri: redirect_uri.clone(),
                code_challenge: challenge,
                user_id,
                device_id: app.device_id.clone(),
                scope: app.scope.clone(),
                upstream: req.upstream,
            },
        );
        Ok(respond(
            &redirect_uri,
            fragment,
            state.as_deref(),
            &[("code", &code)],
        ))
    }
}

/// The device id a valid scope names, or the OAuth error (`invalid_scope`) and why.
pub(super) fn parse_scope(scope: &str) -> Result<OwnedDeviceId, (&'static str, String)> {
    let mut api = false;
    let mut device = None;
    for s in scope.split(' ').filter(|s| !s.is_empty()) {
        if API_SCOPES.contains(&s) {
            api = true;
        } else if let Some(d) = device_scope(s) {
            let ok = !d.is_empty()
                && d.len() <= 255
                && d.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-._~".contains(c));
            if !ok || device.is_some() {
                return Err((
                    "invalid_scope",
                    "one device scope with a valid device id is required".into(),
                ));
            }
            device = Some(d.to_owned());
        } else if s != "openid" {
            return Err(("invalid_scope", format!("unknown scope {s}")));
        }
    }
    match (api, device) {
        (true, Some(device)) => Ok(device.into()),
        _ => Err((
            "invalid_scope",
            "the scope must hold the API scope and a device scope".into(),
        )),
    }
}
