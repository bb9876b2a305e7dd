//! `prompt=create` (OIDC "Initiating User Registration", spec v1.15): the sign-in page offers
//! to create an account, where `[identity] password_login` and `[registration]` allow one
//! (`OAuthService::registration_open`). The form goes through the registration service, so
//! the same rules apply as to `POST /register`: the localpart and password checks, the
//! registration token (mode `token`), the appservice namespaces, the audit entry.

use std::net::IpAddr;

use http::StatusCode;
use ruma::api::client::uiaa::{AuthData, Dummy, RegistrationToken};

use super::OAuthService;
use crate::config::RegistrationMode;
use crate::service::identity::Refusal;
use crate::service::registration::Registration;

/// The account creation form.
pub struct CreateForm {
    pub username: String,
    pub password: String,
    pub token: Option<String>,
}

impl OAuthService {
    /// Creates the account and signs it in for request `auth_id`: the consent page next.
    pub async fn create_account(
        &self,
        auth_id: &str,
        csrf: &str,
        browser: &str,
        form: CreateForm,
        ip: Option<IpAddr>,
    ) -> Result<String, Refusal> {
        let req = self.request(auth_id, browser)?;
        if req.csrf != csrf || !req.create || !self.registration_open() {
            return Err(Refusal::new(
                StatusCode::FORBIDDEN,
                "Accounts cannot be created here",
                "This server does not let you create an account on this page.",
            ));
        }
        let auth = match self.config.registration.mode {
            RegistrationMode::Token => {
                AuthData::RegistrationToken(RegistrationToken::new(form.token.unwrap_or_default()))
            }
            _ => AuthData::Dummy(Dummy::new()),
        };
        let r = Registration {
            username: Some(form.username),
            password: Some(form.password),
            auth: Some(auth),
            inhibit_login: true,
            ..Registration::default()
        };
        let done = self.registration.register(r, ip).await.map_err(|e| {
            let why = match e {
                crate::error::Error::Uiaa(_) => {
                    "The registration token is missing, wrong or used up.".to_owned()
                }
                e => e.to_string(),
            };
            Refusal::new(StatusCode::BAD_REQUEST, "Account not created", why)
        })?;
        self.authenticated(auth_id, browser, &done.user_id, None)
    }
}
