//! Handover's sign-in pages: plain server-rendered HTML, no script, no external resources,
//! labelled fields, high-contrast neutral styling, readable on a phone. Every form carries the
//! request's CSRF token and is bound to the browser cookie.

use axum::response::{Html, IntoResponse, Response};
use http::{StatusCode, header};

use crate::config::ProviderConfig;
use crate::service::identity::Refusal;
use crate::service::oauth::{Answer, AuthRequest, Consent, display_user_code, paths};

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

/// The sign-in page of a request: one button per provider, the password form when passwords
/// are allowed, and the account creation form with `prompt=create`.
pub fn chooser(
    req: &AuthRequest,
    providers: &[ProviderConfig],
    password: bool,
    registration_token: bool,
) -> Response {
    let mut body = match req.app() {
        Some(a) => format!(
            "<p>Sign in to continue to <strong>{}</strong>.</p>",
            esc(a
                .client
                .client_name
                .as_deref()
                .unwrap_or(&a.client.client_uri))
        ),
        None => "<p>Sign in to manage your account.</p>".to_owned(),
    };
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
    let hidden = format!(
        "<input type=\"hidden\" name=\"auth\" value=\"{}\">\
         <input type=\"hidden\" name=\"csrf\" value=\"{}\">",
        esc(&req.id),
        esc(&req.csrf)
    );
    if password {
        body.push_str(&format!(
            "<form method=\"post\" action=\"{}\">{hidden}\
             <label for=\"username\">User name</label><input id=\"username\" name=\"username\" autocomplete=\"username\" required>\
             <label for=\"password\">Password</label><input id=\"password\" name=\"password\" type=\"password\" autocomplete=\"current-password\" required>\
             <button type=\"submit\">Sign in with password</button></form>",
            paths::PASSWORD,
        ));
    }
    if req.create {
        let token = if registration_token {
            "<label for=\"new-token\">Registration token</label>\
             <input id=\"new-token\" name=\"token\" autocomplete=\"off\" required>"
        } else {
            ""
        };
        body.push_str(&format!(
            "<h2>Create an account</h2><form method=\"post\" action=\"{}\">{hidden}\
             <label for=\"new-username\">User name</label><input id=\"new-username\" name=\"username\" autocomplete=\"username\" required>\
             <label for=\"new-password\">Password</label><input id=\"new-password\" name=\"password\" type=\"password\" autocomplete=\"new-password\" required>\
             {token}<button type=\"submit\">Create account</button></form>",
            paths::CREATE,
        ));
    }
    if providers.is_empty() && !password {
        body.push_str("<p>No way to sign in is set up on this server.</p>");
    }
    page(StatusCode::OK, "Sign in", &body)
}

/// The consent page: which app, which account, which device (and the code, for a device).
pub fn consent(c: &Consent) -> Response {
    let (r, a) = (&c.request, &c.app);
    let app = a.client.client_name.as_deref().unwrap_or("An app");
    let device = if c.new_device {
        format!(
            "a new session (device <code>{}</code>)",
            esc(a.device_id.as_str())
        )
    } else {
        format!(
            "your existing session <code>{}</code>",
            esc(a.device_id.as_str())
        )
    };
    let code = match &a.answer {
        Answer::Device { user_code } => format!(
            "<p>Only allow this if your other device shows the code \
             <strong><code>{}</code></strong>.</p>",
            esc(&display_user_code(user_code))
        ),
        Answer::Redirect { .. } => String::new(),
    };
    let body = format!(
        "<p><strong>{app}</strong> (<a href=\"{uri}\">{uri}</a>) wants full access to your account \
         <strong>{user}</strong> as {device}: it will be able to read and send your messages.</p>{code}\
         <form method=\"post\" action=\"{action}\"><input type=\"hidden\" name=\"auth\" value=\"{id}\">\
         <input type=\"hidden\" name=\"csrf\" value=\"{csrf}\">\
         <button type=\"submit\" name=\"decision\" value=\"allow\">Allow</button>\
         <button class=\"secondary\" type=\"submit\" name=\"decision\" value=\"deny\">Cancel</button></form>",
        app = esc(app),
        uri = esc(&a.client.client_uri),
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
