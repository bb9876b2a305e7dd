//! Account management (MSC4191, spec v1.18 `account_management_uri`): the page OAuth clients
//! send their users to for the things the client API no longer does for them. The user signs in
//! on Handover's own sign-in page (provider or password), which starts a short page session
//! bound to the browser cookie; every form carries its CSRF token.
//!
//! Actions: profile, the sessions (devices) list, one session, ending one session, ending every
//! session (remote wipe: `UserService::logout_all`, shared with the console and
//! `handover admin logout-user`), and approving a cross-signing reset (the `m.oauth` UIA stage,
//! MSC4312, `users/oauth_uia.rs`).

use std::net::IpAddr;
use std::time::Duration;

use handover_compliance::Outcome;
use http::StatusCode;
use ruma::{OwnedDeviceId, OwnedUserId};

use super::authorize::{AuthRequest, Purpose};
use super::{OAuthService, action, paths};
use crate::service::audit::{entry, with_ip};
use crate::service::identity::Refusal;
use crate::service::identity::expiring::secret;
use crate::store::users::DeviceRecord;

/// A signed-in account page lasts this long.
pub(super) const ACCOUNT_SESSION_TTL: Duration = Duration::from_secs(900);
/// An approved cross-signing reset must be used within this long.
pub const CROSS_SIGNING_RESET_WINDOW: Duration = Duration::from_secs(600);

/// `account_management_actions_supported`: the spec's names and MSC4191's first ones (which
/// clients of 2025 still send).
pub(super) const ACTIONS_SUPPORTED: [&str; 8] = [
    "org.matrix.profile",
    "org.matrix.devices_list",
    "org.matrix.device_view",
    "org.matrix.device_delete",
    "org.matrix.sessions_list",
    "org.matrix.session_view",
    "org.matrix.session_end",
    "org.matrix.cross_signing_reset",
];

/// A signed-in account page.
#[derive(Debug, Clone)]
pub struct AccountSession {
    pub user_id: OwnedUserId,
    pub csrf: String,
}

/// What the page was asked to show (`?action=...&device_id=...`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AccountAction {
    Profile,
    Sessions,
    Session(OwnedDeviceId),
    EndSession(OwnedDeviceId),
    CrossSigningReset,
}

impl AccountAction {
    /// The action named in the query; an unknown action or a missing device id is refused.
    pub fn parse(action: Option<&str>, device_id: Option<&str>) -> Result<Self, Refusal> {
        let device = || {
            device_id
                .filter(|d| !d.is_empty())
                .map(OwnedDeviceId::from)
                .ok_or_else(|| {
                    Refusal::new(
                        StatusCode::BAD_REQUEST,
                        "Which session?",
                        "This page needs a session (device_id) to show.",
                    )
                })
        };
        Ok(match action {
            None | Some("org.matrix.profile") => Self::Profile,
            Some("org.matrix.devices_list" | "org.matrix.sessions_list") => Self::Sessions,
            Some("org.matrix.device_view" | "org.matrix.session_view") => Self::Session(device()?),
            Some("org.matrix.device_delete" | "org.matrix.session_end") => {
                Self::EndSession(device()?)
            }
            Some("org.matrix.cross_signing_reset") => Self::CrossSigningReset,
            Some(other) => {
                return Err(Refusal::new(
                    StatusCode::BAD_REQUEST,
                    "Unknown action",
                    format!("This account page cannot do \"{other}\"."),
                ));
            }
        })
    }
}

/// The account page: the sign-in page first, then the page itself.
pub enum AccountView {
    SignIn(Box<AuthRequest>),
    Page {
        session: AccountSession,
        action: AccountAction,
        displayname: Option<String>,
        account_kind: &'static str,
        devices: Vec<DeviceRecord>,
    },
}

fn failed(e: impl std::fmt::Display) -> Refusal {
    tracing::error!(error = %e, "account page failed");
    Refusal::new(
        StatusCode::INTERNAL_SERVER_ERROR,
        "Something went wrong",
        "Something went wrong on this server; nothing was changed. Try again later.",
    )
}

fn expired() -> Refusal {
    Refusal::new(
        StatusCode::FORBIDDEN,
        "Signed out",
        "Your account page has timed out or was opened in another browser. Open it again from \
         your app.",
    )
}

impl OAuthService {
    pub(super) fn start_account_session(&self, browser: &str, user_id: OwnedUserId) {
        self.account_sessions.insert(
            browser.to_owned(),
            AccountSession {
                user_id,
                csrf: secret(),
            },
        );
    }

    /// `GET /_handover/account/`: `query` is the page's query string, to come back to after
    /// signing in.
    pub async fn account_page(
        &self,
        browser: &str,
        action: Option<&str>,
        device_id: Option<&str>,
        query: &str,
    ) -> Result<AccountView, Refusal> {
        let action = AccountAction::parse(action, device_id)?;
        let Some(session) = self.account_sessions.get(browser) else {
            let next = format!("{}?{query}", paths::ACCOUNT);
            let req = self.new_request(browser, Purpose::Account { next }, false);
            return Ok(AccountView::SignIn(Box::new(req)));
        };
        let user = &session.user_id;
        let profile = self.users.get_profile(user).await.map_err(failed)?;
        let kind = self.users.account_kind(user).await.map_err(failed)?;
        let devices = self.users.list_devices(user).await.map_err(failed)?;
        if let AccountAction::Session(d) | AccountAction::EndSession(d) = &action
            && !devices.iter().any(|x| &x.device_id == d)
        {
            return Err(Refusal::new(
                StatusCode::NOT_FOUND,
                "No such session",
                "Your account has no session with that id (it may have ended already).",
            ));
        }
        Ok(AccountView::Page {
            session,
            action,
            displayname: profile.displayname,
            account_kind: kind.as_str(),
            devices,
        })
    }

    fn account_session(&self, browser: &str, csrf: &str) -> Result<AccountSession, Refusal> {
        self.account_sessions
            .get(browser)
            .filter(|s| s.csrf == csrf)
            .ok_or_else(expired)
    }

    /// Ends one of the user's sessions (its device and every token of it).
    pub async fn account_end_session(
        &self,
        browser: &str,
        csrf: &str,
        device_id: &str,
        ip: Option<IpAddr>,
    ) -> Result<String, Refusal> {
        let s = self.account_session(browser, csrf)?;
        let devices = self.users.list_devices(&s.user_id).await.map_err(failed)?;
        let Some(d) = devices
            .into_iter()
            .find(|d| d.device_id.as_str() == device_id)
        else {
            return Err(Refusal::new(
                StatusCode::NOT_FOUND,
                "No such session",
                "Your account has no session with that id (it may have ended already).",
            ));
        };
        self.users
            .end_device_session(&s.user_id, d.device_id, "account_page")
            .await
            .map_err(failed)?;
        let _ = ip;
        Ok(format!(
            "{}?action=org.matrix.sessions_list&done=ended",
            paths::ACCOUNT
        ))
    }

    /// Ends every session of the user (remote wipe of a lost phone), as
    /// `handover admin logout-user` and the console do. The page session ends with them.
    pub async fn account_end_all(
        &self,
        browser: &str,
        csrf: &str,
        ip: Option<IpAddr>,
    ) -> Result<(), Refusal> {
        let s = self.account_session(browser, csrf)?;
        self.users
            .end_all_sessions(s.user_id.as_str(), &s.user_id, "account_page", ip)
            .await
            .map_err(failed)?;
        self.account_sessions.take(browser);
        Ok(())
    }

    /// Approves replacing the cross-signing keys from one of the user's OAuth sessions for
    /// [`CROSS_SIGNING_RESET_WINDOW`] (the `m.oauth` UIA stage, MSC4312).
    pub async fn account_approve_cross_signing_reset(
        &self,
        browser: &str,
        csrf: &str,
        ip: Option<IpAddr>,
    ) -> Result<(), Refusal> {
        let s = self.account_session(browser, csrf)?;
        self.uiaa
            .approve_oauth(s.user_id.as_str(), CROSS_SIGNING_RESET_WINDOW);
        let e = entry(
            s.user_id.as_str(),
            action::CROSS_SIGNING_RESET_APPROVED,
            Outcome::Success,
        );
        self.audit.record(with_ip(e, ip)).await.map_err(failed)?;
        Ok(())
    }
}
