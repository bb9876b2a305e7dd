//! The account page's HTML (same style as the sign-in pages: no script, labelled forms, every
//! form with the page session's CSRF token).

use axum::response::Response;
use http::StatusCode;

use super::pages::{esc, page};
use crate::service::oauth::{AccountAction, AccountView, paths};
use crate::store::users::DeviceRecord;

fn nav() -> String {
    format!(
        "<nav><a href=\"{a}?action=org.matrix.profile\">Profile</a> · \
         <a href=\"{a}?action=org.matrix.sessions_list\">Sessions</a> · \
         <a href=\"{a}?action=org.matrix.cross_signing_reset\">Encryption identity</a></nav>",
        a = paths::ACCOUNT
    )
}

fn csrf_form(action: &str, csrf: &str, extra: &str, button: &str, class: &str) -> String {
    format!(
        "<form method=\"post\" action=\"{action}\"><input type=\"hidden\" name=\"csrf\" \
         value=\"{}\">{extra}<button type=\"submit\"{class}>{button}</button></form>",
        esc(csrf)
    )
}

fn device_line(d: &DeviceRecord) -> String {
    format!(
        "<li><a href=\"{}?action=org.matrix.session_view&amp;device_id={id}\"><code>{id}</code></a> \
         {name}</li>",
        paths::ACCOUNT,
        id = esc(d.device_id.as_str()),
        name = esc(d.display_name.as_deref().unwrap_or("")),
    )
}

fn device_detail(d: &DeviceRecord) -> String {
    let seen = match d.last_seen_ts {
        Some(ts) => handover_compliance::time::format_rfc3339(ts),
        None => "never".to_owned(),
    };
    format!(
        "<dl><dt>Session</dt><dd><code>{}</code></dd><dt>Name</dt><dd>{}</dd>\
         <dt>Last used</dt><dd>{}</dd></dl>",
        esc(d.device_id.as_str()),
        esc(d.display_name.as_deref().unwrap_or("(none)")),
        esc(&seen),
    )
}

pub fn render(view: &AccountView, done: Option<&str>) -> Response {
    let AccountView::Page {
        session,
        action,
        displayname,
        account_kind,
        devices,
    } = view
    else {
        return page(StatusCode::INTERNAL_SERVER_ERROR, "Account", "");
    };
    let csrf = &session.csrf;
    let mut body = nav();
    if done == Some("ended") {
        body.push_str("<p role=\"status\"><strong>The session was ended.</strong></p>");
    }
    let find = |id: &ruma::OwnedDeviceId| devices.iter().find(|d| &d.device_id == id);
    let (title, main) = match action {
        AccountAction::Profile => (
            "Your account",
            format!(
                "<dl><dt>Account</dt><dd><code>{}</code></dd><dt>Name</dt><dd>{}</dd>\
                 <dt>Kind</dt><dd>{}</dd></dl>\
                 <p>Your name comes from your organisation's sign-in where you use it.</p>",
                esc(session.user_id.as_str()),
                esc(displayname.as_deref().unwrap_or("(none)")),
                account_kind
            ),
        ),
        AccountAction::Sessions => {
            let list: String = devices.iter().map(device_line).collect();
            (
                "Your sessions",
                format!(
                    "<p>Every app and device signed in to your account.</p><ul>{list}</ul>\
                     <h2>Lost a device?</h2><p>End every session: every app and device is \
                     signed out and told to delete its copy of your messages.</p>{}",
                    csrf_form(
                        paths::ACCOUNT_END_ALL,
                        csrf,
                        "",
                        "End every session",
                        " class=\"secondary\""
                    )
                ),
            )
        }
        AccountAction::Session(id) | AccountAction::EndSession(id) => {
            let Some(d) = find(id) else {
                return page(StatusCode::NOT_FOUND, "No such session", "");
            };
            let confirm = matches!(action, AccountAction::EndSession(_));
            let intro = if confirm {
                "<p><strong>End this session?</strong> The app or device is signed out.</p>"
            } else {
                ""
            };
            let extra = format!(
                "<input type=\"hidden\" name=\"device_id\" value=\"{}\">",
                esc(d.device_id.as_str())
            );
            (
                "Session",
                format!(
                    "{intro}{}{}",
                    device_detail(d),
                    csrf_form(
                        paths::ACCOUNT_END_SESSION,
                        csrf,
                        &extra,
                        "End this session",
                        ""
                    )
                ),
            )
        }
        AccountAction::CrossSigningReset => (
            "Reset your encryption identity",
            format!(
                "<p>Only do this if your app asked you to: resetting makes your other devices and \
                 the people you talk to verify you again, and messages only your old identity \
                 could read may be lost.</p>{}",
                csrf_form(
                    paths::ACCOUNT_CROSS_SIGNING_RESET,
                    csrf,
                    "",
                    "Allow the reset",
                    ""
                )
            ),
        ),
    };
    body.push_str(&main);
    page(StatusCode::OK, title, &body)
}
