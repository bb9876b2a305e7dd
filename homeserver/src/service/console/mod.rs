//! The IG lead's console (`/_handover/console/`, docs/GOVERNANCE.md "The IG lead's console"):
//! sign-in for server admins with the client's credentials, CSRF tokens, and the data of each
//! page. Every page view and action is authorised here (admin flag) and audited; the actions
//! themselves are the existing services' (legal holds, admin API, SAR), not copies.
//!
//! A console sign-in is an ordinary login (a device named "Handover console" with an access
//! token); the browser holds the token in an HttpOnly, SameSite=Strict cookie. Forms carry a
//! CSRF token derived from the session's token, so a page of another site cannot post for it.

mod actions;
#[cfg(test)]
mod tests;
pub mod views;

pub use self::views::{AuditView, FederationView, RetentionView, RoomOverride, UserView};

use std::net::IpAddr;
use std::sync::Arc;

use handover_compliance::Outcome;
use sha2::{Digest, Sha256};

use super::admin::AdminService;
use super::audit::{AuditService, entry};
use super::blocking;
use super::retention::RetentionService;
use super::sar::SarService;
use super::users::{Session, UserService, constant_time_eq};
use crate::config::Config;
use crate::error::{Error, Result};
use crate::store::console::ConsoleStore;

/// The console's device display name (how its sessions show in device lists).
pub const DEVICE_NAME: &str = "Handover console";

/// Audit action names of the console (`console.<what>`).
pub mod action {
    pub const LOGIN: &str = "console.login";
    pub const LOGOUT: &str = "console.logout";
    pub const VIEW: &str = "console.view";
    pub const AUDIT_SEARCH: &str = "console.audit.search";
    pub const AUDIT_EXPORT: &str = "console.audit.export";
    pub const END_SESSIONS: &str = "console.sessions.end_all";
}

pub struct ConsoleDeps {
    pub config: Arc<Config>,
    pub users: Arc<UserService>,
    pub admin: Arc<AdminService>,
    pub sar: Arc<SarService>,
    pub retention: Arc<RetentionService>,
    pub audit: Arc<AuditService>,
    pub store: Arc<dyn ConsoleStore>,
    /// The list the policy consults, shown on the federation page (none: no federation).
    pub federation_list: Option<handover_policy::LiveFederationList>,
}

pub struct ConsoleService {
    d: ConsoleDeps,
    /// When the services were built (≈ server start): the first purge runs one interval later.
    started_ts: i64,
}

/// A signed-in console user: the session and the CSRF token its forms must carry.
pub struct ConsoleSession {
    pub session: Session,
    pub csrf: String,
}

impl ConsoleService {
    pub fn new(d: ConsoleDeps) -> Self {
        Self {
            d,
            started_ts: crate::store::now_ms(),
        }
    }

    pub fn sar(&self) -> &SarService {
        &self.d.sar
    }

    /// Signs in with the client's credentials (the user service's audited password login).
    /// Non-admins are refused (their new session ended at once; the refusal audited) with the
    /// same `M_FORBIDDEN` as a wrong password would not give: they learn only that the console
    /// is for admins. Returns the access token for the cookie.
    /// `scheme`: how the browser reached us (`http`/`https`), recorded with the sign-in.
    pub async fn login(
        &self,
        user: &str,
        password: &str,
        ip: Option<IpAddr>,
        scheme: &str,
    ) -> Result<String> {
        let new = (self.d.users)
            .login(user, password, None, Some(DEVICE_NAME.into()), ip)
            .await?;
        let session = self.d.users.authenticate(&new.access_token, ip).await?;
        if let Err(e) = self.d.admin.authorize(&session, action::LOGIN, None).await {
            self.d.users.logout(&session).await?;
            return Err(e);
        }
        let e = entry(session.user_id.as_str(), action::LOGIN, Outcome::Success)
            .detail("device_id", session.device_id.as_str())
            .detail("scheme", scheme);
        self.d.audit.record(e).await?;
        Ok(new.access_token)
    }

    /// The admin behind a console cookie, or `M_UNKNOWN_TOKEN` / `M_FORBIDDEN`.
    pub async fn session(&self, token: &str, ip: Option<IpAddr>) -> Result<ConsoleSession> {
        let session = self.d.users.authenticate(token, ip).await?;
        self.d.admin.authorize(&session, action::VIEW, None).await?;
        Ok(ConsoleSession {
            session,
            csrf: csrf_token(token),
        })
    }

    /// A POST's session: the cookie's, and the form's CSRF token must match it (refused and
    /// audited otherwise).
    pub async fn session_for_post(
        &self,
        token: &str,
        form_csrf: Option<&str>,
        ip: Option<IpAddr>,
    ) -> Result<ConsoleSession> {
        let s = self.session(token, ip).await?;
        let ok = form_csrf.is_some_and(|f| constant_time_eq(f.as_bytes(), s.csrf.as_bytes()));
        if !ok {
            let e = entry(s.session.user_id.as_str(), action::VIEW, Outcome::Denied)
                .detail("refused", "missing or wrong CSRF token");
            self.d.audit.record(e).await?;
            return Err(Error::forbidden(
                "Missing or wrong CSRF token: reload the page and try again",
            ));
        }
        Ok(s)
    }

    pub async fn logout(&self, s: &ConsoleSession) -> Result<()> {
        self.d.users.logout(&s.session).await?;
        let e = entry(s.session.user_id.as_str(), action::LOGOUT, Outcome::Success);
        self.d.audit.record(e).await
    }

    /// Audits a page view (who looked at what).
    async fn viewed(&self, s: &ConsoleSession, page: &str) -> Result<()> {
        let e = entry(s.session.user_id.as_str(), action::VIEW, Outcome::Success).target(page);
        self.d.audit.record(e).await
    }

    /// Whether the console cookie must be `Secure`: the base URL is https (`public_baseurl`,
    /// TLS on the client listener, or a trusted proxy assumed to terminate TLS), or a trusted
    /// proxy's `X-Forwarded-Proto` says the browser used https. A proxy saying http, with no
    /// `public_baseurl`, gets a cookie the browser will keep over http.
    pub fn secure_cookie(&self, forwarded_proto: Option<&str>) -> bool {
        forwarded_proto == Some("https")
            || (self.d.config)
                .base_url_for(forwarded_proto)
                .starts_with("https://")
    }
}

/// The CSRF token of a session: a hash of its access token under a purpose label, so it differs
/// from the stored token hash and reveals nothing about the token.
pub fn csrf_token(access_token: &str) -> String {
    let mut h = Sha256::new();
    h.update(b"handover-console-csrf\0");
    h.update(access_token.as_bytes());
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}
