//! Legacy SSO (`m.login.sso`) for clients without OAuth support: `/login/sso/redirect[/{idpId}]`
//! sends the browser to the provider; after the same checks as every upstream sign-in the
//! client's `redirectUrl` receives a single-use `loginToken` for `m.login.token`.

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, Path, Query, State};
use axum::response::Response;
use axum::{Extension, Router};
use http::HeaderMap;
use ruma::api::client::session::{sso_login, sso_login_with_provider};
use serde::Deserialize;

use super::{browser, pages, see_other, with_cookie};
use crate::api::router::ruma_paths;
use crate::service::Services;
use crate::service::identity::SsoStart;

#[derive(Deserialize)]
pub(super) struct SsoQuery {
    #[serde(rename = "redirectUrl")]
    redirect_url: Option<String>,
}

pub(super) fn routes() -> Router<Services> {
    let mut r = Router::new();
    for p in ruma_paths::<sso_login::v3::Request>() {
        r = r.route(p, axum::routing::get(redirect));
    }
    for p in ruma_paths::<sso_login_with_provider::v3::Request>() {
        r = r.route(p, axum::routing::get(redirect_to));
    }
    r
}

async fn redirect(
    s: State<Services>,
    addr: Option<Extension<ConnectInfo<SocketAddr>>>,
    headers: HeaderMap,
    q: Query<SsoQuery>,
) -> Response {
    go(s, addr, headers, None, q).await
}

async fn redirect_to(
    s: State<Services>,
    addr: Option<Extension<ConnectInfo<SocketAddr>>>,
    headers: HeaderMap,
    Path(idp): Path<String>,
    q: Query<SsoQuery>,
) -> Response {
    go(s, addr, headers, Some(idp), q).await
}

async fn go(
    State(s): State<Services>,
    addr: Option<Extension<ConnectInfo<SocketAddr>>>,
    headers: HeaderMap,
    idp: Option<String>,
    Query(q): Query<SsoQuery>,
) -> Response {
    let ip = super::client_ip(&s, addr.as_ref(), &headers);
    let (b, cookie) = browser(&headers);
    let res = match s.identity.sso_start(idp, q.redirect_url, &b, ip).await {
        Ok(SsoStart::Provider(to)) => see_other(&to),
        Ok(SsoStart::Chooser(url)) => pages::sso_chooser(s.identity.providers(), &url),
        Err(r) => pages::refusal(&r),
    };
    with_cookie(res, cookie)
}
