//! Registration, password change, deactivation, third-party ids.

use ruma::api::client::account::{
    ThirdPartyIdRemovalStatus, change_password, check_registration_token_validity, deactivate,
    get_3pids, get_username_availability, register, request_registration_token_via_email,
};
use ruma::api::client::uiaa::AuthData;

use super::{limit_password_attempts, required_session};
use crate::api::ruma::Ruma;
use crate::error::{Error, Result};
use crate::service::Services;
use crate::service::registration::Registration;

pub async fn register(
    s: Services,
    req: Ruma<register::v3::Request>,
) -> Result<register::v3::Response> {
    // Clients poll the email stage every few seconds while the user opens the emailed link.
    // Those polls guess nothing (the token is submitted elsewhere, five tries per session, and
    // each session cost a rate-limited `requestToken`), so they do not spend the per-IP budget.
    // Appservices register their namespace's users in bulk: not limited per IP.
    let by_appservice = req.session.as_ref().is_some_and(|s| s.appservice.is_some());
    if !matches!(req.auth, Some(AuthData::EmailIdentity(_))) && !by_appservice {
        s.rate_limits.check_register(req.client_ip)?;
    }
    if req.kind == register::RegistrationKind::Guest {
        return Err(Error::new(
            http::StatusCode::FORBIDDEN,
            ruma::api::error::ErrorKind::GuestAccessForbidden,
            "Guest access is disabled",
        ));
    }
    let r = Registration {
        username: req.username.clone(),
        password: req.password.clone(),
        auth: req.auth.clone(),
        device_id: req.body.device_id.clone(),
        initial_device_display_name: req.body.initial_device_display_name.clone(),
        inhibit_login: req.inhibit_login,
        refresh_token: req.body.refresh_token,
        appservice_login: req.login_type == Some(register::LoginType::ApplicationService),
        session: req.session.clone(),
    };
    let done = s.registration.register(r, req.client_ip).await?;
    let mut res = register::v3::Response::new(done.user_id);
    if let Some(session) = done.session {
        res.access_token = Some(session.access_token);
        res.device_id = Some(session.device_id);
        res.refresh_token = session.refresh_token;
        res.expires_in = session.expires_in_ms.map(std::time::Duration::from_millis);
    }
    Ok(res)
}

/// Sends the validation link for the `m.login.email.identity` stage (registration restricted
/// to NHS email domains). Shares registration's per-IP rate limit: each call may send an email.
pub async fn register_email_request_token(
    s: Services,
    req: Ruma<request_registration_token_via_email::v3::Request>,
) -> Result<request_registration_token_via_email::v3::Response> {
    s.rate_limits.check_register(req.client_ip)?;
    let sent = s
        .registration
        .request_email_token(
            req.client_secret.as_str(),
            &req.email,
            req.send_attempt.into(),
            req.client_ip,
        )
        .await?;
    let sid = ruma::OwnedSessionId::try_from(sent.sid).map_err(Error::internal)?;
    let mut res = request_registration_token_via_email::v3::Response::new(sid);
    res.submit_url = Some(sent.submit_url);
    Ok(res)
}

pub async fn register_available(
    s: Services,
    req: Ruma<get_username_availability::v3::Request>,
) -> Result<get_username_availability::v3::Response> {
    let user_id = s.users.user_id_for(&req.username)?;
    if s.users.get_user(&user_id).await?.is_some() {
        return Err(Error::new(
            http::StatusCode::BAD_REQUEST,
            ruma::api::error::ErrorKind::UserInUse,
            "User ID already taken",
        ));
    }
    Ok(get_username_availability::v3::Response::new(true))
}

/// Needs an access token: without one there is no account to re-authenticate (we have no
/// email-based password reset).
pub async fn change_password(
    s: Services,
    req: Ruma<change_password::v3::Request>,
) -> Result<change_password::v3::Response> {
    let session = required_session(&req)?;
    limit_password_attempts(&s, &req, req.auth.as_ref())?;
    s.users
        .change_password(
            session,
            &req.new_password,
            req.logout_devices,
            req.auth.as_ref(),
        )
        .await?;
    Ok(change_password::v3::Response::new())
}

pub async fn deactivate(
    s: Services,
    req: Ruma<deactivate::v3::Request>,
) -> Result<deactivate::v3::Response> {
    let session = required_session(&req)?;
    limit_password_attempts(&s, &req, req.auth.as_ref())?;
    s.accounts
        .deactivate(session, req.erase, req.auth.as_ref())
        .await?;
    // Addresses are removed with the account; none was ever bound to an identity server.
    Ok(deactivate::v3::Response::new(
        ThirdPartyIdRemovalStatus::Success,
    ))
}

/// The account's email addresses (the one proven at registration, when required).
pub async fn get_3pids(
    s: Services,
    req: Ruma<get_3pids::v3::Request>,
) -> Result<get_3pids::v3::Response> {
    Ok(get_3pids::v3::Response::new(
        s.registration.threepids(req.user_id()).await?,
    ))
}

/// Token guesses share registration's per-IP rate limit (the spec asks for rate limiting).
pub async fn registration_token_validity(
    s: Services,
    req: Ruma<check_registration_token_validity::v1::Request>,
) -> Result<check_registration_token_validity::v1::Response> {
    s.rate_limits.check_register(req.client_ip)?;
    Ok(check_registration_token_validity::v1::Response::new(
        s.registration.token_valid(&req.token).await?,
    ))
}
