//! OAuth 2.0 (Handover as authorization server) and upstream sign-in: plain axum handlers, as
//! these endpoints speak OAuth's form bodies, JSON errors and HTML pages rather than Matrix
//! JSON. Each handler makes one service call; pages are rendered in `pages.rs`.

mod account;
mod account_pages;
mod device;
mod pages;
mod sso;

use std::net::SocketAddr;

use axum::Extension;
use axum::extract::rejection::FormRejection;
use axum::extract::{ConnectInfo, Form, Path, Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use axum::{Json, Router};
use http::{HeaderMap, StatusCode, header};
use serde::Deserialize;
use serde_json::Value;

use super::router::RouterExt;
use crate::config::RegistrationMode;
use crate::service::Services;
use crate::service::identity::{BACKCHANNEL_LOGOUT_PATH, CALLBACK_PATH, Next};
use crate::service::oauth::{
    AuthParams, AuthRequest, AuthorizeError, CreateForm, OAuthError, RevokeParams, TokenParams,
    paths,
};

/// The cookie binding a sign-in to the browser that started it.
const BROWSER_COOKIE: &str = "handover_browser";

/// This browser's binding id, and the cookie to set when it had none.
fn browser(headers: &HeaderMap) -> (String, Option<String>) {
    let found = headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, v)| *k == BROWSER_COOKIE && v.len() >= 32)
        .map(|(_, v)| v.to_owned());
    match found {
        Some(b) => (b, None),
        None => {
            let b = crate::service::identity::expiring::secret();
            // Lax: sent on the top-level redirect back from the provider, not on cross-site POSTs.
            let cookie = format!("{BROWSER_COOKIE}={b}; Path=/_handover/; HttpOnly; SameSite=Lax");
            (b, Some(cookie))
        }
    }
}

fn with_cookie(mut res: Response, cookie: Option<String>) -> Response {
    if let Some(c) = cookie
        && let Ok(v) = c.parse()
    {
        res.headers_mut().append(header::SET_COOKIE, v);
    }
    res
}

fn client_ip(
    s: &Services,
    addr: Option<&Extension<ConnectInfo<SocketAddr>>>,
    headers: &HeaderMap,
) -> Option<std::net::IpAddr> {
    s.rate_limits.client_ip(addr.map(|c| c.0.0.ip()), headers)
}

fn oauth_error(e: OAuthError) -> Response {
    let mut res = (e.status, Json(e.body())).into_response();
    res.headers_mut()
        .insert(header::CACHE_CONTROL, "no-store".parse().expect("static"));
    res
}

fn see_other(to: &str) -> Response {
    Redirect::to(to).into_response()
}

/// Handover's sign-in page for a request.
fn sign_in_page(s: &Services, req: &AuthRequest) -> Response {
    pages::chooser(
        req,
        s.identity.providers(),
        s.identity.password_login(),
        s.config.registration.mode == RegistrationMode::Token,
    )
}

pub fn routes(r: Router<Services>) -> Router<Services> {
    use axum::routing::{get, post};
    r.ruma(auth_metadata)
        .route(paths::REGISTER, post(register))
        .route(paths::AUTHORIZE, get(authorize))
        .route(paths::PASSWORD, post(password))
        .route(paths::CREATE, post(create))
        .route(paths::DEVICE_AUTHORIZATION, post(device::authorization))
        .route(paths::DEVICE, get(device::page))
        .route(paths::ACCOUNT, get(account::page))
        .route(paths::ACCOUNT_END_SESSION, post(account::end_session))
        .route(paths::ACCOUNT_END_ALL, post(account::end_all))
        .route(
            paths::ACCOUNT_CROSS_SIGNING_RESET,
            post(account::cross_signing_reset),
        )
        .route(paths::CONSENT, get(consent_page).post(consent))
        .route(paths::TOKEN, post(token))
        .route(paths::REVOKE, post(revoke))
        .route(paths::START, get(start))
        .route(CALLBACK_PATH, get(callback))
        .route(BACKCHANNEL_LOGOUT_PATH, post(backchannel_logout))
        .merge(sso::routes())
}

async fn auth_metadata(
    s: Services,
    _: crate::api::ruma::Ruma<
        ruma::api::client::discovery::get_authorization_server_metadata::v1::Request,
    >,
) -> crate::error::Result<
    ruma::api::client::discovery::get_authorization_server_metadata::v1::Response,
> {
    let raw = ruma::serde::Raw::from_json(
        serde_json::value::to_raw_value(&s.oauth.metadata())
            .map_err(crate::error::Error::internal)?,
    );
    Ok(ruma::api::client::discovery::get_authorization_server_metadata::v1::Response::new(raw))
}

async fn register(State(s): State<Services>, body: Option<Json<Value>>) -> Response {
    let Some(Json(body)) = body else {
        return oauth_error(OAuthError::bad(
            "invalid_client_metadata",
            "the body must be JSON",
        ));
    };
    match s.oauth.register(body).await {
        Ok(v) => (StatusCode::CREATED, Json(v)).into_response(),
        Err(e) => oauth_error(e),
    }
}

async fn authorize(
    State(s): State<Services>,
    headers: HeaderMap,
    Query(p): Query<AuthParams>,
) -> Response {
    let (b, cookie) = browser(&headers);
    let res = match s.oauth.authorize(p, &b).await {
        Ok(req) => sign_in_page(&s, &req),
        Err(AuthorizeError::Page(r)) => pages::refusal(&r),
        Err(AuthorizeError::Redirect(to)) => see_other(&to),
    };
    with_cookie(res, cookie)
}

#[derive(Deserialize)]
struct PasswordForm {
    auth: String,
    csrf: String,
    username: String,
    password: String,
}

async fn password(
    State(s): State<Services>,
    addr: Option<Extension<ConnectInfo<SocketAddr>>>,
    headers: HeaderMap,
    form: Result<Form<PasswordForm>, FormRejection>,
) -> Response {
    let Ok(Form(f)) = form else {
        return pages::incomplete_form();
    };
    let ip = client_ip(&s, addr.as_ref(), &headers);
    if let Err(e) = s.rate_limits.check_login(ip, &f.username) {
        return pages::page(
            StatusCode::TOO_MANY_REQUESTS,
            "Too many attempts",
            &pages::esc(&e.to_string()),
        );
    }
    let (b, _) = browser(&headers);
    match s
        .oauth
        .password_sign_in(&f.auth, &f.csrf, &b, &f.username, &f.password, ip)
        .await
    {
        Ok(to) => see_other(&to),
        Err(r) => pages::refusal(&r),
    }
}

#[derive(Deserialize)]
struct NewAccountForm {
    auth: String,
    csrf: String,
    username: String,
    password: String,
    token: Option<String>,
}

/// `prompt=create`: the sign-in page's account creation form.
async fn create(
    State(s): State<Services>,
    addr: Option<Extension<ConnectInfo<SocketAddr>>>,
    headers: HeaderMap,
    form: Result<Form<NewAccountForm>, FormRejection>,
) -> Response {
    let Ok(Form(f)) = form else {
        return pages::incomplete_form();
    };
    let ip = client_ip(&s, addr.as_ref(), &headers);
    if let Err(e) = s.rate_limits.check_register(ip) {
        return pages::page(
            StatusCode::TOO_MANY_REQUESTS,
            "Too many attempts",
            &pages::esc(&e.to_string()),
        );
    }
    let (b, _) = browser(&headers);
    let new = CreateForm {
        username: f.username,
        password: f.password,
        token: f.token,
    };
    match s.oauth.create_account(&f.auth, &f.csrf, &b, new, ip).await {
        Ok(to) => see_other(&to),
        Err(r) => pages::refusal(&r),
    }
}

#[derive(Deserialize)]
struct AuthQuery {
    auth: String,
}

async fn consent_page(
    State(s): State<Services>,
    headers: HeaderMap,
    Query(q): Query<AuthQuery>,
) -> Response {
    let (b, _) = browser(&headers);
    match s.oauth.consent_page(&q.auth, &b).await {
        Ok(c) => pages::consent(&c),
        Err(r) => pages::refusal(&r),
    }
}

#[derive(Deserialize)]
struct ConsentForm {
    auth: String,
    csrf: String,
    decision: String,
}

async fn consent(
    State(s): State<Services>,
    addr: Option<Extension<ConnectInfo<SocketAddr>>>,
    headers: HeaderMap,
    form: Result<Form<ConsentForm>, FormRejection>,
) -> Response {
    let Ok(Form(f)) = form else {
        return pages::incomplete_form();
    };
    let ip = client_ip(&s, addr.as_ref(), &headers);
    let (b, _) = browser(&headers);
    match s
        .oauth
        .consent(&f.auth, &f.csrf, &b, f.decision == "allow", ip)
        .await
    {
        Ok(to) => see_other(&to),
        Err(r) => pages::refusal(&r),
    }
}

async fn token(
    State(s): State<Services>,
    addr: Option<Extension<ConnectInfo<SocketAddr>>>,
    headers: HeaderMap,
    form: Result<Form<TokenParams>, FormRejection>,
) -> Response {
    let Ok(Form(p)) = form else {
        return oauth_error(OAuthError::bad(
            "invalid_request",
            "the body must be a form",
        ));
    };
    let ip = client_ip(&s, addr.as_ref(), &headers);
    no_store_json(s.oauth.token(p, ip).await)
}

async fn revoke(
    State(s): State<Services>,
    form: Result<Form<RevokeParams>, FormRejection>,
) -> Response {
    let Ok(Form(p)) = form else {
        return oauth_error(OAuthError::bad(
            "invalid_request",
            "the body must be a form",
        ));
    };
    match s.oauth.revoke(p).await {
        Ok(()) => StatusCode::OK.into_response(),
        Err(e) => oauth_error(e),
    }
}

async fn start(
    State(s): State<Services>,
    headers: HeaderMap,
    Path(provider): Path<String>,
    Query(q): Query<AuthQuery>,
) -> Response {
    let (b, cookie) = browser(&headers);
    let res = match s.oauth.request(&q.auth, &b) {
        Err(r) => pages::refusal(&r),
        Ok(_) => match s.identity.start(&provider, &b, Next::OAuth(q.auth)).await {
            Ok(to) => see_other(&to),
            Err(r) => pages::refusal(&r),
        },
    };
    with_cookie(res, cookie)
}

#[derive(Deserialize)]
struct CallbackQuery {
    state: Option<String>,
    code: Option<String>,
    error: Option<String>,
}

async fn callback(
    State(s): State<Services>,
    addr: Option<Extension<ConnectInfo<SocketAddr>>>,
    headers: HeaderMap,
    Query(q): Query<CallbackQuery>,
) -> Response {
    let ip = client_ip(&s, addr.as_ref(), &headers);
    let (b, _) = browser(&headers);
    let res = s
        .identity
        .callback(
            q.state.as_deref(),
            q.code.as_deref(),
            q.error.as_deref(),
            &b,
            ip,
        )
        .await;
    match res {
        Ok(to) => see_other(&to),
        Err(r) => pages::refusal(&r),
    }
}

#[derive(Deserialize)]
struct LogoutForm {
    logout_token: String,
}

/// OIDC Back-Channel Logout: the provider's POST (form `logout_token`). 200 when the sessions
/// are ended (or there were none), 400 with an OAuth-style error naming what was wrong.
async fn backchannel_logout(
    State(s): State<Services>,
    addr: Option<Extension<ConnectInfo<SocketAddr>>>,
    headers: HeaderMap,
    Path(provider): Path<String>,
    form: Result<Form<LogoutForm>, FormRejection>,
) -> Response {
    let Ok(Form(f)) = form else {
        return oauth_error(OAuthError::bad(
            "invalid_request",
            "the body must be a form with logout_token",
        ));
    };
    let ip = client_ip(&s, addr.as_ref(), &headers);
    match s
        .identity
        .backchannel_logout(&provider, &f.logout_token, ip)
        .await
    {
        Ok(()) => {
            let mut res = StatusCode::OK.into_response();
            res.headers_mut()
                .insert(header::CACHE_CONTROL, "no-store".parse().expect("static"));
            res
        }
        Err(e) => oauth_error(OAuthError {
            status: e.status,
            error: "invalid_request",
            description: e.description,
        }),
    }
}

/// A token-endpoint style answer: the JSON with `Cache-Control: no-store` (RFC 6749 5.1), or
/// the OAuth error.
pub(super) fn no_store_json<T: serde::Serialize>(r: Result<T, OAuthError>) -> Response {
    match r {
        Ok(v) => {
            let mut res = Json(v).into_response();
            res.headers_mut()
                .insert(header::CACHE_CONTROL, "no-store".parse().expect("static"));
            res
        }
        Err(e) => oauth_error(e),
    }
}
