//! Registration, password change, deactivation, third-party ids.

use ruma::api::client::account::{
    ThirdPartyIdRemovalStatus, change_password, check_registration_token_validity, deactivate,
    get_3pids, get_username_availability, register,
};
use ruma::api::client::uiaa::{AuthData, AuthFlow, AuthType};

use super::{limit_password_attempts, required_session};
use crate::api::ruma::Ruma;
use crate::config::RegistrationMode;
use crate::error::{Error, Result};
use crate::service::Services;

pub async fn register(
    s: Services,
    req: Ruma<register::v3::Request>,
) -> Result<register::v3::Response> {
    s.rate_limits.check_register(req.client_ip)?;
    if req.kind == register::RegistrationKind::Guest {
        return Err(Error::new(
            http::StatusCode::FORBIDDEN,
            ruma::api::error::ErrorKind::GuestAccessForbidden,
            "Guest access is disabled",
        ));
    }
    let flows = match s.config.registration.mode {
        RegistrationMode::Closed => {
            return Err(Error::forbidden("Registration is disabled on this server"));
        }
        RegistrationMode::Open => vec![AuthFlow::new(vec![AuthType::Dummy])],
        RegistrationMode::Token => vec![AuthFlow::new(vec![AuthType::RegistrationToken])],
    };
    // Validate the username before the client spends effort on UIA stages.
    let localpart = req
        .username
        .clone()
        .unwrap_or_else(|| ruma::TransactionId::new().to_string().to_lowercase());
    s.users.user_id_for(&localpart)?;
    let tokens = s.config.registration.tokens.clone();
    s.uiaa.check(req.auth.as_ref(), &flows, &move |auth| {
        Ok(match auth {
            AuthData::Dummy(_) => true,
            AuthData::RegistrationToken(t) => tokens.iter().any(|k| k == &t.token),
            _ => false,
        })
    })?;
    let user_id = s
        .users
        .create_user(&localpart, req.password.as_deref(), false, false)
        .await?;
    let mut res = register::v3::Response::new(user_id.clone());
    if !req.inhibit_login {
        let session = s
            .users
            .create_session(
                &user_id,
                req.body.device_id.clone(),
                req.body.initial_device_display_name.clone(),
            )
            .await?;
        res.access_token = Some(session.access_token);
        res.device_id = Some(session.device_id);
    }
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
    // We hold no third-party ids, so there was nothing to unbind.
    Ok(deactivate::v3::Response::new(
        ThirdPartyIdRemovalStatus::Success,
    ))
}

/// We store no third-party identifiers (email, phone).
pub async fn get_3pids(
    _: Services,
    _: Ruma<get_3pids::v3::Request>,
) -> Result<get_3pids::v3::Response> {
    Ok(get_3pids::v3::Response::new(Vec::new()))
}

/// Token guesses share registration's per-IP rate limit (the spec asks for rate limiting).
pub async fn registration_token_validity(
    s: Services,
    req: Ruma<check_registration_token_validity::v1::Request>,
) -> Result<check_registration_token_validity::v1::Response> {
    s.rate_limits.check_register(req.client_ip)?;
    Ok(check_registration_token_validity::v1::Response::new(
        s.users.registration_token_valid(&req.token)?,
    ))
}
