//! The account page (MSC4191): `GET /_handover/account/` and its forms. One service call each;
//! HTML in `account_pages.rs`.

use std::net::SocketAddr;

use axum::Extension;
use axum::extract::rejection::FormRejection;
use axum::extract::{ConnectInfo, Form, Query, RawQuery, State};
use axum::response::Response;
use http::{HeaderMap, StatusCode};
use serde::Deserialize;

use super::{account_pages, browser, client_ip, pages, see_other, sign_in_page, with_cookie};
use crate::service::Services;
use crate::service::oauth::AccountView;

#[derive(Deserialize)]
pub(super) struct AccountQuery {
    action: Option<String>,
    device_id: Option<String>,
    done: Option<String>,
}

pub(super) async fn page(
    State(s): State<Services>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
    Query(q): Query<AccountQuery>,
) -> Response {
    let (b, cookie) = browser(&headers);
    let raw = raw.unwrap_or_default();
    let res = match s
        .oauth
        .account_page(&b, q.action.as_deref(), q.device_id.as_deref(), &raw)
        .await
    {
        Ok(AccountView::SignIn(req)) => sign_in_page(&s, &req),
        Ok(view) => account_pages::render(&view, q.done.as_deref()),
        Err(r) => pages::refusal(&r),
    };
    with_cookie(res, cookie)
}

#[derive(Deserialize)]
pub(super) struct CsrfForm {
    csrf: String,
    device_id: Option<String>,
}

pub(super) async fn end_session(
    State(s): State<Services>,
    addr: Option<Extension<ConnectInfo<SocketAddr>>>,
    headers: HeaderMap,
    form: Result<Form<CsrfForm>, FormRejection>,
) -> Response {
    let Ok(Form(f)) = form else {
        return pages::incomplete_form();
    };
    let ip = client_ip(&s, addr.as_ref(), &headers);
    let (b, _) = browser(&headers);
    let device = f.device_id.unwrap_or_default();
    match s.oauth.account_end_session(&b, &f.csrf, &device, ip).await {
        Ok(to) => see_other(&to),
        Err(r) => pages::refusal(&r),
    }
}

pub(super) async fn end_all(
    State(s): State<Services>,
    addr: Option<Extension<ConnectInfo<SocketAddr>>>,
    headers: HeaderMap,
    form: Result<Form<CsrfForm>, FormRejection>,
) -> Response {
    let Ok(Form(f)) = form else {
        return pages::incomplete_form();
    };
    let ip = client_ip(&s, addr.as_ref(), &headers);
    let (b, _) = browser(&headers);
    match s.oauth.account_end_all(&b, &f.csrf, ip).await {
        Ok(()) => pages::page(
            StatusCode::OK,
            "Every session ended",
            "<p>You are signed out everywhere: every app and device using your account has \
             been signed out and told to clear its data. Sign in again where you need to.</p>",
        ),
        Err(r) => pages::refusal(&r),
    }
}

pub(super) async fn cross_signing_reset(
    State(s): State<Services>,
    addr: Option<Extension<ConnectInfo<SocketAddr>>>,
    headers: HeaderMap,
    form: Result<Form<CsrfForm>, FormRejection>,
) -> Response {
    let Ok(Form(f)) = form else {
        return pages::incomplete_form();
    };
    let ip = client_ip(&s, addr.as_ref(), &headers);
    let (b, _) = browser(&headers);
    match s
        .oauth
        .account_approve_cross_signing_reset(&b, &f.csrf, ip)
        .await
    {
        Ok(()) => pages::page(
            StatusCode::OK,
            "Reset approved",
            "<p>Go back to your app to finish resetting your encryption identity. The approval \
             lasts 10 minutes.</p>",
        ),
        Err(r) => pages::refusal(&r),
    }
}
