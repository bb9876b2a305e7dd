//! The IG lead's console, `/_handover/console/` (docs/GOVERNANCE.md, "The IG lead's console"):
//! server-rendered HTML, no script, no external assets. Handlers are thin: one
//! `ConsoleService` call, then a page from `render.rs`. This file holds the routes, the cookie
//! session extractor and the page shell.

mod handlers;
mod render;

use std::net::SocketAddr;

use axum::Router;
use axum::extract::{ConnectInfo, FromRequestParts};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use handover_compliance::html::{STYLE, escape};
use http::request::Parts;
use http::{HeaderValue, StatusCode, header};
use ruma::api::error::ErrorKind;

use crate::error::Error;
use crate::service::Services;

pub const BASE: &str = "/_handover/console";
/// The session cookie (the console session's access token).
pub const COOKIE: &str = "handover_console";
/// The login form's double-submit CSRF cookie (there is no session yet to derive one from).
pub const LOGIN_COOKIE: &str = "handover_console_login";

pub fn routes(r: Router<Services>) -> Router<Services> {
    r.route(&format!("{BASE}/"), get(handlers::home))
        .route(BASE, get(handlers::home))
        .route(
            &format!("{BASE}/login"),
            get(handlers::login_page).post(handlers::login),
        )
        .route(&format!("{BASE}/logout"), post(handlers::logout))
        .route(&format!("{BASE}/retention"), get(handlers::retention))
        .route(&format!("{BASE}/holds"), post(handlers::hold))
        .route(&format!("{BASE}/federation"), get(handlers::federation))
        .route(&format!("{BASE}/audit"), get(handlers::audit))
        .route(&format!("{BASE}/audit/export"), get(handlers::audit_export))
        .route(&format!("{BASE}/users"), get(handlers::users))
        .route(
            &format!("{BASE}/users/end-sessions"),
            post(handlers::end_sessions),
        )
        .route(&format!("{BASE}/users/sar"), post(handlers::sar))
        .route(&format!("{BASE}/reports"), get(handlers::reports))
        .route(&format!("{BASE}/quarantine"), get(handlers::quarantine))
}

/// The request's console cookie and client address (no authentication yet: the service
/// decides).
pub struct ConsoleRequest {
    pub token: Option<String>,
    pub login_nonce: Option<String>,
    pub ip: Option<std::net::IpAddr>,
    /// What a trusted proxy's `X-Forwarded-Proto` says the browser used, if it says.
    pub forwarded_proto: Option<&'static str>,
    /// The scheme the browser used: the proxy's word, else the listener's (for the audit).
    pub scheme: &'static str,
}

pub fn cookie(parts: &http::HeaderMap, name: &str) -> Option<String> {
    (parts.get_all(header::COOKIE).iter())
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|c| c.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_owned())
        .filter(|v| !v.is_empty())
}

impl FromRequestParts<Services> for ConsoleRequest {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        services: &Services,
    ) -> Result<Self, Self::Rejection> {
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0.ip());
        let tls = (services.config.listen).client_tls_on(&services.config.tls);
        let forwarded_proto = services.rate_limits.forwarded_proto(peer, &parts.headers);
        let scheme = match forwarded_proto {
            Some(p) => p,
            None if tls => "https",
            None => "http",
        };
        Ok(Self {
            token: cookie(&parts.headers, COOKIE),
            login_nonce: cookie(&parts.headers, LOGIN_COOKIE),
            ip: services.rate_limits.client_ip(peer, &parts.headers),
            forwarded_proto,
            scheme,
        })
    }
}

/// Adds the headers every console response carries: no script or external resource may load,
/// no framing, no caching of pages with personal data, no referrer.
pub fn harden(mut res: Response) -> Response {
    let h = res.headers_mut();
    let set = |h: &mut http::HeaderMap, k: header::HeaderName, v: &'static str| {
        h.insert(k, HeaderValue::from_static(v));
    };
    set(
        h,
        header::CONTENT_SECURITY_POLICY,
        "default-src 'none'; style-src 'unsafe-inline'; img-src 'self'; form-action 'self'; \
         frame-ancestors 'none'; base-uri 'none'",
    );
    set(h, header::REFERRER_POLICY, "no-referrer");
    set(h, header::CACHE_CONTROL, "no-store");
    set(h, header::X_CONTENT_TYPE_OPTIONS, "nosniff");
    set(h, header::X_FRAME_OPTIONS, "DENY");
    res
}

/// A page in the console's shell (with navigation when signed in).
pub fn page(status: StatusCode, title: &str, body: &str, nav: Option<&str>) -> Response {
    let nav = match nav {
        Some(csrf) => format!(
            "<nav aria-label=\"Console sections\"><ul>\
             <li><a href=\"{BASE}/retention\">Retention and holds</a></li>\
             <li><a href=\"{BASE}/federation\">Federation</a></li>\
             <li><a href=\"{BASE}/audit\">Audit trail</a></li>\
             <li><a href=\"{BASE}/users\">Users and sessions</a></li>\
             <li><a href=\"{BASE}/reports\">Content reports</a></li>\
             <li><a href=\"{BASE}/quarantine\">Quarantine</a></li>\
             <li><form class=\"inline\" method=\"post\" action=\"{BASE}/logout\">\
             <input type=\"hidden\" name=\"csrf\" value=\"{}\">\
             <button type=\"submit\">Sign out</button></form></li></ul></nav>",
            escape(csrf)
        ),
        None => String::new(),
    };
    let html = format!(
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{t} - Handover console</title><style>{STYLE}</style></head><body>\
         <header><h1>Handover IG console</h1>{nav}</header>\
         <main id=\"main\"><h2>{t}</h2>{body}</main></body></html>",
        t = escape(title)
    );
    harden((status, Html(html)).into_response())
}

/// A service error as a page: no session → the sign-in page; otherwise its status and message.
pub fn error_page(e: Error, nav: Option<&str>) -> Response {
    if matches!(
        e.kind(),
        Some(ErrorKind::UnknownToken(_)) | Some(ErrorKind::MissingToken)
    ) {
        return harden(Redirect::to(&format!("{BASE}/login")).into_response());
    }
    let status = match e.kind() {
        Some(ErrorKind::Forbidden) => StatusCode::FORBIDDEN,
        Some(ErrorKind::NotFound) => StatusCode::NOT_FOUND,
        Some(ErrorKind::InvalidParam) | Some(ErrorKind::BadJson) => StatusCode::BAD_REQUEST,
        Some(ErrorKind::UserDeactivated) | Some(ErrorKind::UserLocked) => StatusCode::FORBIDDEN,
        _ if e.message().contains("Internal") => StatusCode::INTERNAL_SERVER_ERROR,
        _ => StatusCode::BAD_REQUEST,
    };
    let body = format!(
        "<p class=\"bad\" role=\"alert\">{}</p><p><a href=\"{BASE}/\">Back to the console</a></p>",
        escape(e.message())
    );
    let title = match status {
        StatusCode::FORBIDDEN => "Not allowed",
        _ => "Something went wrong",
    };
    page(status, title, &body, nav)
}
