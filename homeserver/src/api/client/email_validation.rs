//! The emailed validation link (`SUBMIT_TOKEN_PATH`), a plain axum handler: ruma has no type for
//! a homeserver's own `submit_url`, which takes the identity service API's `submitToken` body.
//!
//! - `GET ?sid&client_secret&token` (the link in the email) shows a page with a Confirm button
//!   and validates nothing: mail scanners (e.g. Safe Links on NHSmail) open every link in a
//!   message, and an address must be proven by its owner, not by a scanner.
//! - `POST` with the page's form validates and answers with a page.
//! - `POST` with JSON `{sid, client_secret, token}` (clients using `submit_url`) answers
//!   `{"success": true}` or the spec's error (`M_TOKEN_INCORRECT`, `M_SESSION_EXPIRED`,
//!   `M_INVALID_PARAM`).

use std::collections::HashMap;

use axum::Json;
use axum::extract::{Form, FromRequest, Query, Request, State};
use axum::response::{Html, IntoResponse, Response};
use http::{StatusCode, header};
use serde::Deserialize;

use crate::error::{Error, Result};
use crate::service::Services;

#[derive(Deserialize)]
struct Submission {
    sid: String,
    client_secret: String,
    token: String,
}

/// Escapes text for HTML (the query is the visitor's, not ours).
fn esc(s: &str) -> String {
    s.chars()
        .map(|c| match c {
            '&' => "&amp;".into(),
            '<' => "&lt;".into(),
            '>' => "&gt;".into(),
            '"' => "&quot;".into(),
            '\'' => "&#39;".into(),
            c => c.to_string(),
        })
        .collect()
}

/// A self-contained page: no scripts, no external resources, nothing leaks the link's token
/// through a referrer.
fn page(status: StatusCode, title: &str, body: &str) -> Response {
    let html = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width\"><title>{t}</title></head>\
         <body><h1>{t}</h1>{body}</body></html>",
        t = esc(title)
    );
    let mut res = (status, Html(html)).into_response();
    let h = res.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        "default-src 'none'; form-action 'self'; frame-ancestors 'none'"
            .parse()
            .expect("static header"),
    );
    h.insert(
        header::REFERRER_POLICY,
        "no-referrer".parse().expect("static header"),
    );
    h.insert(
        header::CACHE_CONTROL,
        "no-store".parse().expect("static header"),
    );
    res
}

/// `GET`: the confirmation page.
pub async fn confirm_page(Query(q): Query<HashMap<String, String>>) -> Response {
    let (Some(sid), Some(secret), Some(token)) =
        (q.get("sid"), q.get("client_secret"), q.get("token"))
    else {
        return page(
            StatusCode::BAD_REQUEST,
            "Incomplete link",
            "<p>This link is incomplete. Copy the whole link from the email.</p>",
        );
    };
    let form = format!(
        "<p>Confirm that this email address is yours to finish registering.</p>\
         <form method=\"post\"><input type=\"hidden\" name=\"sid\" value=\"{}\">\
         <input type=\"hidden\" name=\"client_secret\" value=\"{}\">\
         <input type=\"hidden\" name=\"token\" value=\"{}\">\
         <button type=\"submit\">Confirm</button></form>",
        esc(sid),
        esc(secret),
        esc(token)
    );
    page(StatusCode::OK, "Confirm your email address", &form)
}

/// Largest body accepted (three short strings).
const MAX_BODY: usize = 16 * 1024;

/// `POST`: JSON from a client, or the confirmation page's form.
pub async fn submit(State(s): State<Services>, req: Request) -> Response {
    let json = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_none_or(|v| v.starts_with("application/json"));
    if json {
        return submit_json(&s, req).await.into_response();
    }
    let Ok(Form(f)) = Form::<Submission>::from_request(req, &()).await else {
        return page(
            StatusCode::BAD_REQUEST,
            "Incomplete link",
            "<p>This request is incomplete. Open the link from the email again.</p>",
        );
    };
    match s
        .registration
        .submit_email_token(&f.sid, &f.client_secret, &f.token)
        .await
    {
        Ok(()) => page(
            StatusCode::OK,
            "Email address confirmed",
            "<p>Your email address is confirmed. Return to the app to finish registering.</p>",
        ),
        Err(e) => page(
            StatusCode::BAD_REQUEST,
            "Not confirmed",
            &format!(
                "<p>{}</p><p>Start again from the app to get a new email.</p>",
                esc(&message(&e))
            ),
        ),
    }
}

async fn submit_json(s: &Services, req: Request) -> Result<Json<serde_json::Value>> {
    let body = axum::body::to_bytes(req.into_body(), MAX_BODY)
        .await
        .map_err(|_| Error::too_large("The request body is too large"))?;
    let f: Submission = serde_json::from_slice(&body)
        .map_err(|e| Error::bad_json(format!("expected sid, client_secret and token: {e}")))?;
    s.registration
        .submit_email_token(&f.sid, &f.client_secret, &f.token)
        .await?;
    Ok(Json(serde_json::json!({ "success": true })))
}

fn message(e: &Error) -> String {
    match e {
        Error::Matrix { message, .. } => message.clone(),
        Error::Uiaa(_) => "Not confirmed".into(),
    }
}
