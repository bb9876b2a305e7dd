//! Console handlers: read the form or query, make one `ConsoleService` call, render.

use axum::extract::{Form, Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use http::{HeaderValue, StatusCode, header};
use serde::Deserialize;

use super::{BASE, COOKIE, ConsoleRequest, LOGIN_COOKIE, error_page, harden, page, render};
use crate::error::Error;
use crate::service::Services;
use crate::service::console::ConsoleSession;
use crate::service::console::views::AuditSearch;

fn set_cookie(res: &mut Response, name: &str, value: &str, max_age: Option<u64>, secure: bool) {
    let mut c = format!("{name}={value}; Path={BASE}/; HttpOnly; SameSite=Strict");
    if let Some(a) = max_age {
        c.push_str(&format!("; Max-Age={a}"));
    }
    if secure {
        c.push_str("; Secure");
    }
    if let Ok(v) = HeaderValue::from_str(&c) {
        res.headers_mut().append(header::SET_COOKIE, v);
    }
}

fn token(r: &ConsoleRequest) -> Result<&str, Error> {
    r.token
        .as_deref()
        .ok_or_else(|| Error::unknown_token("Not signed in"))
}

async fn session(s: &Services, r: &ConsoleRequest) -> Result<ConsoleSession, Error> {
    s.console.session(token(r)?, r.ip).await
}

async fn post_session(
    s: &Services,
    r: &ConsoleRequest,
    csrf: &Option<String>,
) -> Result<ConsoleSession, Error> {
    (s.console)
        .session_for_post(token(r)?, csrf.as_deref(), r.ip)
        .await
}

fn ok(title: &str, body: String, cs: &ConsoleSession) -> Response {
    page(StatusCode::OK, title, &body, Some(&cs.csrf))
}

pub async fn home(State(s): State<Services>, r: ConsoleRequest) -> Response {
    match session(&s, &r).await {
        Ok(_) => harden(Redirect::to(&format!("{BASE}/retention")).into_response()),
        Err(e) => error_page(e, None),
    }
}

pub async fn login_page(State(s): State<Services>, r: ConsoleRequest) -> Response {
    let nonce = crate::service::users::new_token();
    let mut res = page(
        StatusCode::OK,
        "Sign in",
        &render::login_form(&nonce, None),
        None,
    );
    set_cookie(
        &mut res,
        LOGIN_COOKIE,
        &nonce,
        Some(1800),
        s.console.secure_cookie(r.forwarded_proto),
    );
    res
}

#[derive(Deserialize)]
pub struct LoginForm {
    user: String,
    password: String,
    csrf: Option<String>,
}

pub async fn login(
    State(s): State<Services>,
    r: ConsoleRequest,
    Form(f): Form<LoginForm>,
) -> Response {
    let nonce_ok = matches!((&r.login_nonce, &f.csrf), (Some(a), Some(b))
        if crate::service::users::constant_time_eq(a.as_bytes(), b.as_bytes()));
    if !nonce_ok {
        return error_page(
            Error::forbidden("Missing or wrong CSRF token: reload the sign-in page"),
            None,
        );
    }
    match s.console.login(&f.user, &f.password, r.ip, r.scheme).await {
        Ok(token) => {
            let mut res = harden(Redirect::to(&format!("{BASE}/retention")).into_response());
            let secure = s.console.secure_cookie(r.forwarded_proto);
            set_cookie(&mut res, COOKIE, &token, None, secure);
            set_cookie(&mut res, LOGIN_COOKIE, "", Some(0), secure);
            res
        }
        Err(e) => {
            let status = match e.kind() {
                Some(ruma::api::error::ErrorKind::Forbidden) => StatusCode::FORBIDDEN,
                _ => StatusCode::BAD_REQUEST,
            };
            let nonce = r.login_nonce.unwrap_or_default();
            let body = render::login_form(&nonce, Some(e.message()));
            page(status, "Sign in", &body, None)
        }
    }
}

#[derive(Deserialize)]
pub struct CsrfOnly {
    csrf: Option<String>,
}

pub async fn logout(
    State(s): State<Services>,
    r: ConsoleRequest,
    Form(f): Form<CsrfOnly>,
) -> Response {
    let res = async {
        let cs = post_session(&s, &r, &f.csrf).await?;
        s.console.logout(&cs).await
    };
    match res.await {
        Ok(()) => {
            let mut res = harden(Redirect::to(&format!("{BASE}/login")).into_response());
            set_cookie(
                &mut res,
                COOKIE,
                "",
                Some(0),
                s.console.secure_cookie(r.forwarded_proto),
            );
            res
        }
        Err(e) => error_page(e, None),
    }
}

pub async fn retention(State(s): State<Services>, r: ConsoleRequest) -> Response {
    let cs = match session(&s, &r).await {
        Ok(cs) => cs,
        Err(e) => return error_page(e, None),
    };
    match s.console.retention_view(&cs).await {
        Ok(v) => ok(
            "Retention and legal holds",
            render::retention(&v, &cs.csrf, None),
            &cs,
        ),
        Err(e) => error_page(e, Some(&cs.csrf)),
    }
}

#[derive(Deserialize)]
pub struct HoldForm {
    kind: String,
    id: String,
    reason: String,
    action: String,
    csrf: Option<String>,
}

pub async fn hold(
    State(s): State<Services>,
    r: ConsoleRequest,
    Form(f): Form<HoldForm>,
) -> Response {
    let cs = match post_session(&s, &r, &f.csrf).await {
        Ok(cs) => cs,
        Err(e) => return error_page(e, None),
    };
    let release = f.action == "release";
    let res = (s.console)
        .set_hold(&cs, &f.kind, &f.id, &f.reason, release)
        .await;
    let note = match (res, release) {
        (Err(e), _) => return error_page(e, Some(&cs.csrf)),
        (Ok(true), false) => format!("Legal hold placed on {}.", f.id.trim()),
        (Ok(false), false) => format!("{} was already held.", f.id.trim()),
        (Ok(true), true) => format!("Legal hold on {} released.", f.id.trim()),
        (Ok(false), true) => format!("There was no hold on {}.", f.id.trim()),
    };
    match s.console.retention_view(&cs).await {
        Ok(v) => ok(
            "Retention and legal holds",
            render::retention(&v, &cs.csrf, Some(&note)),
            &cs,
        ),
        Err(e) => error_page(e, Some(&cs.csrf)),
    }
}

pub async fn federation(State(s): State<Services>, r: ConsoleRequest) -> Response {
    let cs = match session(&s, &r).await {
        Ok(cs) => cs,
        Err(e) => return error_page(e, None),
    };
    match s.console.federation_view(&cs).await {
        Ok(v) => ok("Federation list in force", render::federation(&v), &cs),
        Err(e) => error_page(e, Some(&cs.csrf)),
    }
}

#[derive(Deserialize, Default)]
pub struct AuditQueryForm {
    user: Option<String>,
    rule: Option<String>,
    since: Option<String>,
    until: Option<String>,
}

impl AuditQueryForm {
    fn search(self) -> AuditSearch {
        AuditSearch {
            user: self.user,
            rule: self.rule,
            since: self.since,
            until: self.until,
        }
    }
}

pub async fn audit(
    State(s): State<Services>,
    r: ConsoleRequest,
    Query(q): Query<AuditQueryForm>,
) -> Response {
    let cs = match session(&s, &r).await {
        Ok(cs) => cs,
        Err(e) => return error_page(e, None),
    };
    let q = q.search();
    match s.console.audit_view(&cs, &q).await {
        Ok(v) => ok("Audit trail", render::audit(&v, &q), &cs),
        Err(e) => error_page(e, Some(&cs.csrf)),
    }
}

pub async fn audit_export(
    State(s): State<Services>,
    r: ConsoleRequest,
    Query(q): Query<AuditQueryForm>,
) -> Response {
    let cs = match session(&s, &r).await {
        Ok(cs) => cs,
        Err(e) => return error_page(e, None),
    };
    match s.console.audit_export(&cs, &q.search()).await {
        Ok(bytes) => download(bytes, "application/x-ndjson", "handover-audit.jsonl"),
        Err(e) => error_page(e, Some(&cs.csrf)),
    }
}

fn download(bytes: Vec<u8>, content_type: &'static str, filename: &str) -> Response {
    let mut res = harden((StatusCode::OK, bytes).into_response());
    let h = res.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{filename}\"")) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    res
}

#[derive(Deserialize)]
pub struct UsersQuery {
    q: Option<String>,
    user: Option<String>,
}

pub async fn users(
    State(s): State<Services>,
    r: ConsoleRequest,
    Query(q): Query<UsersQuery>,
) -> Response {
    let cs = match session(&s, &r).await {
        Ok(cs) => cs,
        Err(e) => return error_page(e, None),
    };
    users_page(&s, &cs, q.q, q.user, None).await
}

async fn users_page(
    s: &Services,
    cs: &ConsoleSession,
    search: Option<String>,
    user: Option<String>,
    note: Option<&str>,
) -> Response {
    let selected = match user
        .filter(|u| !u.is_empty())
        .map(|u| crate::service::admin::AdminService::parse_user_id(u.trim()))
    {
        Some(Err(e)) => return error_page(e, Some(&cs.csrf)),
        Some(Ok(u)) => Some(u),
        None => None,
    };
    match s.console.users_view(cs, search, selected.as_deref()).await {
        Ok(v) => ok("Users and sessions", render::users(&v, &cs.csrf, note), cs),
        Err(e) => error_page(e, Some(&cs.csrf)),
    }
}

#[derive(Deserialize)]
pub struct UserForm {
    user: String,
    csrf: Option<String>,
}

/// A POST about one user: the session (CSRF checked) and the user named in the form, or the
/// error page to answer with.
async fn user_post(
    s: &Services,
    r: &ConsoleRequest,
    f: &UserForm,
) -> Result<(ConsoleSession, ruma::OwnedUserId), Response> {
    let cs = post_session(s, r, &f.csrf)
        .await
        .map_err(|e| error_page(e, None))?;
    match crate::service::admin::AdminService::parse_user_id(f.user.trim()) {
        Ok(uid) => Ok((cs, uid)),
        Err(e) => Err(error_page(e, Some(&cs.csrf))),
    }
}

pub async fn end_sessions(
    State(s): State<Services>,
    r: ConsoleRequest,
    Form(f): Form<UserForm>,
) -> Response {
    let (cs, uid) = match user_post(&s, &r, &f).await {
        Ok(v) => v,
        Err(page) => return page,
    };
    match s.console.end_all_sessions(&cs, &uid).await {
        Ok(n) => {
            let note = format!("Ended {n} session(s) of {uid}: every access token revoked.");
            users_page(&s, &cs, None, Some(uid.to_string()), Some(&note)).await
        }
        Err(e) => error_page(e, Some(&cs.csrf)),
    }
}

pub async fn sar(
    State(s): State<Services>,
    r: ConsoleRequest,
    Form(f): Form<UserForm>,
) -> Response {
    let (cs, uid) = match user_post(&s, &r, &f).await {
        Ok(v) => v,
        Err(page) => return page,
    };
    match s.console.sar_zip(&cs, &uid).await {
        Ok((_, zip)) => {
            let name: String = (uid.localpart().chars())
                .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'))
                .collect();
            download(zip, "application/zip", &format!("sar-{name}.zip"))
        }
        Err(e) => error_page(e, Some(&cs.csrf)),
    }
}

pub async fn reports(State(s): State<Services>, r: ConsoleRequest) -> Response {
    let cs = match session(&s, &r).await {
        Ok(cs) => cs,
        Err(e) => return error_page(e, None),
    };
    match s.console.reports_view(&cs).await {
        Ok(v) => ok("Content reports", render::reports(&v), &cs),
        Err(e) => error_page(e, Some(&cs.csrf)),
    }
}

pub async fn quarantine(State(s): State<Services>, r: ConsoleRequest) -> Response {
    let cs = match session(&s, &r).await {
        Ok(cs) => cs,
        Err(e) => return error_page(e, None),
    };
    match s.console.quarantine_view(&cs).await {
        Ok(v) => ok("Quarantined media", render::quarantine(&v), &cs),
        Err(e) => error_page(e, Some(&cs.csrf)),
    }
}
