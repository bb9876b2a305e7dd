//! Handover's sign-in pages: plain server-rendered HTML, no script, no external resources,
//! labelled fields, high-contrast neutral styling, readable on a phone. Every form carries the
//! request's CSRF token and is bound to the browser cookie.

use axum::response::{Html, IntoResponse, Response};
use http::{StatusCode, header};

use crate::config::ProviderConfig;
use crate::service::identity::Refusal;
use crate::service::oauth::{AuthRequest, Consent, paths};

/// Escapes text for HTML.
pub fn esc(s: &str) -> String {
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

const STYLE: &str = "body{font-family:system-ui,Arial,sans-serif;max-width:32rem;margin:0 auto;\
padding:1rem;color:#111;background:#fff;line-height:1.5;font-size:1.1rem}\
h1{font-size:1.5rem}label{display:block;margin-top:.75rem;font-weight:600}\
input{display:block;width:100%;box-sizing:border-box;padding:.6rem;font-size:1rem;\
border:2px solid #333}button,.button{display:block;width:100%;box-sizing:border-box;margin-top:1rem;\
padding:.75rem;font-size:1.05rem;text-align:center;border:2px solid #003087;background:#003087;\
color:#fff;text-decoration:none}button.secondary{background:#fff;color:#003087}\
:focus{outline:3px solid #ffb81c;outline-offset:2px}";

pub fn page(status: StatusCode, title: &str, body: &str) -> Response {
    let html = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\
         <title>{t}</title><style>{STYLE}</style></head><body><main><h1>{t}</h1>{body}</main>\
         </body></html>",
        t = esc(title)
    );
    let mut res = (status, Html(html)).into_response();
    let h = res.headers_mut();
    for (k, v) in [
        (
            header::CONTENT_SECURITY_POLICY,
            "default-src 'none'; style-src 'unsafe-inline'; form-action 'self' *; frame-ancestors 'none'",
        ),
        (header::REFERRER_POLICY, "no-referrer"),
        (header::CACHE_CONTROL, "no-store"),
        (header::X_FRAME_OPTIONS, "DENY"),
    ] {
        h.insert(k, v.parse().expect("static header"));
    }
    res
}

pub fn refusal(r: &Refusal) -> Response {
    page(r.status, r.title, &format!("<p>{}</p>", esc(&r.message)))
}

/// The sign-in page of an authorization request: one button per provider, and the password
/// form when passwords are allowed.
pub fn chooser(req: &AuthRequest, providers: &[ProviderConfig], password: bool) -> Response {
    let app = req
        .client
        .client_name
        .as_deref()
        .unwrap_or(&req.client.client_uri);
    let mut body = format!(
        "<p>Sign in to continue to <strong>{}</strong>.</p>",
        esc(app)
    );
    for p in providers {
        let href = format!(
            "{}?auth={}",
            paths::START.replace("{provider}", &p.id),
            esc(&req.id)
        );
        body.push_str(&format!(
            "<a class=\"button\" href=\"{href}\">Sign in with {}</a>",
            esc(&p.name)
        ));
    }
    if password {
        body.push_str(&format!(
            "<form method=\"post\" action=\"{}\"><input type=\"hidden\" name=\"auth\" value=\"{}\">\
             <input type=\"hidden\" name=\"csrf\" value=\"{}\">\
             <label for=\"username\">User name</label><input id=\"username\" name=\"username\" autocomplete=\"username\" required>\
             <label for=\"password\">Password</label><input id=\"password\" name=\"password\" type=\"password\" autocomplete=\"current-password\" required>\
             <button type=\"submit\">Sign in with password</button></form>",
            paths::PASSWORD,
            esc(&req.id),
            esc(&req.csrf)
        ));
    }
    if providers.is_empty() && !password {
        body.push_str("<p>No way to sign in is set up on this server.</p>");
    }
    page(StatusCode::OK, "Sign in", &body)
}

/// The consent page: which app, which account, which device.
pub fn consent(c: &Consent) -> Response {
    let r = &c.request;
    let app = r.client.client_name.as_deref().unwrap_or("An app");
    let device = if c.new_device {
        format!(
            "a new session (device <code>{}</code>)",
            esc(r.device_id.as_str())
        )
    } else {
        format!(
            "your existing session <code>{}</code>",
            esc(r.device_id.as_str())
        )
    };
    let body = format!(
        "<p><strong>{app}</strong> (<a href=\"{uri}\">{uri}</a>) wants full access to your account \
         <strong>{user}</strong> as {device}: it will be able to read and send your messages.</p>\
         <form method=\"post\" action=\"{action}\"><input type=\"hidden\" name=\"auth\" value=\"{id}\">\
         <input type=\"hidden\" name=\"csrf\" value=\"{csrf}\">\
         <button type=\"submit\" name=\"decision\" value=\"allow\">Allow</button>\
         <button class=\"secondary\" type=\"submit\" name=\"decision\" value=\"deny\">Cancel</button></form>",
        app = esc(app),
        uri = esc(&r.client.client_uri),
        user = esc(c.user_id.as_str()),
        action = paths::CONSENT,
        id = esc(&r.id),
        csrf = esc(&r.csrf),
    );
    page(StatusCode::OK, "Allow access?", &body)
}

/// The legacy SSO chooser (`/login/sso/redirect` with several providers).
pub fn sso_chooser(providers: &[ProviderConfig], redirect_url: &str) -> Response {
    let mut body = String::from("<p>Choose how to sign in.</p>");
    for p in providers {
        let mut u = url::form_urlencoded::Serializer::new(String::new());
        u.append_pair("redirectUrl", redirect_url);
        body.push_str(&format!(
            "<a class=\"button\" href=\"/_matrix/client/v3/login/sso/redirect/{}?{}\">Sign in with {}</a>",
            esc(&p.id),
            esc(&u.finish()),
            esc(&p.name)
        ));
    }
    page(StatusCode::OK, "Sign in", &body)
}

/// A sign-in or consent form that arrived without its fields.
pub fn incomplete_form() -> Response {
    page(
        StatusCode::BAD_REQUEST,
        "Incomplete form",
        "<p>The form was incomplete. Go back and try again.</p>",
    )
}
