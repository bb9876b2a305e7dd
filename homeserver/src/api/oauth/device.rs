//! The device authorization grant's endpoints (RFC 8628): the device's `POST`, and the page
//! where the user enters the code (then signs in and consents on the usual pages).

use std::net::SocketAddr;

use axum::Extension;
use axum::extract::rejection::FormRejection;
use axum::extract::{ConnectInfo, Form, Query, State};
use axum::response::Response;
use http::{HeaderMap, StatusCode};
use serde::Deserialize;

use super::{browser, client_ip, no_store_json, oauth_error, pages, sign_in_page, with_cookie};
use crate::service::Services;
use crate::service::oauth::{DeviceAuthParams, DeviceEntry, OAuthError, paths};

/// `POST /_handover/oauth/device_authorization`.
pub(super) async fn authorization(
    State(s): State<Services>,
    addr: Option<Extension<ConnectInfo<SocketAddr>>>,
    headers: HeaderMap,
    form: Result<Form<DeviceAuthParams>, FormRejection>,
) -> Response {
    let Ok(Form(p)) = form else {
        return oauth_error(OAuthError::bad(
            "invalid_request",
            "the body must be a form",
        ));
    };
    let ip = client_ip(&s, addr.as_ref(), &headers);
    no_store_json(s.oauth.device_authorization(p, ip).await)
}

#[derive(Deserialize)]
pub(super) struct DeviceQuery {
    user_code: Option<String>,
    done: Option<String>,
}

/// `GET /_handover/oauth/device[?user_code=...]`: the code form, or the sign-in page for it.
pub(super) async fn page(
    State(s): State<Services>,
    addr: Option<Extension<ConnectInfo<SocketAddr>>>,
    headers: HeaderMap,
    Query(q): Query<DeviceQuery>,
) -> Response {
    let (b, cookie) = browser(&headers);
    // Guessing codes is throttled like guessing passwords: per address, and per code typed.
    if let Some(code) = &q.user_code {
        let ip = client_ip(&s, addr.as_ref(), &headers);
        let key = format!("device-code:{}", code.trim());
        if let Err(e) = s.rate_limits.check_login(ip, &key) {
            return pages::page(
                StatusCode::TOO_MANY_REQUESTS,
                "Too many attempts",
                &pages::esc(&e.to_string()),
            );
        }
    }
    let res = match s
        .oauth
        .device_entry(q.user_code.as_deref(), q.done.as_deref(), &b)
        .await
    {
        Ok(DeviceEntry::SignIn(req)) => sign_in_page(&s, &req),
        Ok(DeviceEntry::AskCode { error }) => ask_code(error.as_deref()),
        Ok(DeviceEntry::Done { approved: true }) => pages::page(
            StatusCode::OK,
            "Device signed in",
            "<p>Your other device is now signed in. You can close this page.</p>",
        ),
        Ok(DeviceEntry::Done { approved: false }) => pages::page(
            StatusCode::OK,
            "Sign-in cancelled",
            "<p>The other device was not signed in. You can close this page.</p>",
        ),
        Err(r) => pages::refusal(&r),
    };
    with_cookie(res, cookie)
}

fn ask_code(error: Option<&str>) -> Response {
    let (status, err) = match error {
        Some(e) => (
            StatusCode::BAD_REQUEST,
            format!("<p role=\"alert\"><strong>{}</strong></p>", pages::esc(e)),
        ),
        None => (StatusCode::OK, String::new()),
    };
    let body = format!(
        "{err}<p>Enter the code shown on the device you are signing in.</p>\
         <form method=\"get\" action=\"{}\"><label for=\"user_code\">Code</label>\
         <input id=\"user_code\" name=\"user_code\" autocomplete=\"off\" autocapitalize=\"characters\" \
         spellcheck=\"false\" required><button type=\"submit\">Continue</button></form>",
        paths::DEVICE
    );
    pages::page(status, "Sign in another device", &body)
}
