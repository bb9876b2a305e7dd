//! Legacy SSO (`m.login.sso`) for clients without OAuth support: `/login/sso/redirect[/{idpId}]`
//! sends the browser to the provider; after the same checks as every upstream sign-in the
//! client's `redirectUrl` receives a single-use `loginToken` for `m.login.token`.

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::response::Response;
use http::{HeaderMap, StatusCode};
use ruma::api::client::session::{sso_login, sso_login_with_provider};
use serde::Deserialize;

use super::{browser, pages, see_other, with_cookie};
use crate::api::router::ruma_paths;
use crate::service::Services;
use crate::service::identity::Next;

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

async fn redirect(s: State<Services>, headers: HeaderMap, q: Query<SsoQuery>) -> Response {
    go(s, headers, None, q).await
}

async fn redirect_to(
    s: State<Services>,
    headers: HeaderMap,
    Path(idp): Path<String>,
    q: Query<SsoQuery>,
) -> Response {
    go(s, headers, Some(idp), q).await
}

async fn go(
    State(s): State<Services>,
    headers: HeaderMap,
    idp: Option<String>,
    Query(q): Query<SsoQuery>,
) -> Response {
    let Some(url) = q.redirect_url.filter(|u| url::Url::parse(u).is_ok()) else {
        return pages::page(
            StatusCode::BAD_REQUEST,
            "Missing redirectUrl",
            "<p>The app must say where to return to (a valid <code>redirectUrl</code>).</p>",
        );
    };
    let providers = s.identity.providers();
    let idp = match (idp, providers) {
        (Some(i), _) => i,
        (None, [only]) => only.id.clone(),
        (None, _) => return pages::sso_chooser(providers, &url),
    };
    let (b, cookie) = browser(&headers);
    let res = match s.identity.start(&idp, &b, Next::Sso(url)).await {
        Ok(to) => see_other(&to),
        Err(r) => pages::refusal(&r),
    };
    with_cookie(res, cookie)
}
