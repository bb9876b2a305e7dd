//! Login, token refresh, logout and whoami.

use ruma::api::client::account::whoami;
use ruma::api::client::session::{
    get_login_token, get_login_types, login, logout, logout_all, refresh_token,
};
use ruma::api::client::uiaa::UserIdentifier;

use crate::api::ruma::Ruma;
use crate::error::{Error, Result};
use crate::service::Services;

pub async fn login_types(
    s: Services,
    _: Ruma<get_login_types::v3::Request>,
) -> Result<get_login_types::v3::Response> {
    use get_login_types::v3::{
        IdentityProvider, LoginType, PasswordLoginType, SsoLoginType, TokenLoginType,
    };
    let mut flows = Vec::new();
    if s.identity.password_login() {
        flows.push(LoginType::Password(PasswordLoginType::default()));
    }
    let providers = s.identity.providers();
    if !providers.is_empty() {
        let mut sso = SsoLoginType::new();
        sso.identity_providers = providers
            .iter()
            .map(|p| IdentityProvider::new(p.id.clone(), p.name.clone()))
            .collect();
        flows.push(LoginType::Sso(sso));
    }
    // Also without providers: `/login/get_token` hands out `m.login.token` tokens.
    if !providers.is_empty() || s.identity.get_login_token() {
        let mut token = TokenLoginType::new();
        token.get_login_token = s.identity.get_login_token();
        flows.push(LoginType::Token(token));
    }
    // Appservices log their users in with their as_token (application service API): offered
    // when any is registered.
    if !s.appservices.registry().is_empty() {
        flows.push(LoginType::ApplicationService(Default::default()));
    }
    Ok(get_login_types::v3::Response::new(flows))
}

pub async fn login(s: Services, req: Ruma<login::v3::Request>) -> Result<login::v3::Response> {
    if let login::v3::LoginInfo::ApplicationService(asl) = &req.login_info {
        let user = match &asl.identifier {
            Some(UserIdentifier::Matrix(m)) => m.user.clone(),
            _ => return Err(Error::forbidden("Only m.id.user identifiers are supported")),
        };
        let session = s
            .appservices
            .login(
                req.session.as_ref(),
                &user,
                req.body.device_id.clone(),
                req.body.initial_device_display_name.clone(),
                req.body.refresh_token,
            )
            .await?;
        return Ok(login_response(session));
    }
    let pw = match &req.login_info {
        login::v3::LoginInfo::Password(pw) => pw,
        login::v3::LoginInfo::Token(t) => {
            let session = s
                .identity
                .login_with_token(
                    &t.token,
                    req.body.device_id.clone(),
                    req.body.initial_device_display_name.clone(),
                    req.body.refresh_token,
                    req.client_ip,
                )
                .await?;
            return Ok(login_response(session));
        }
        _ => {
            return Err(Error::new(
                http::StatusCode::BAD_REQUEST,
                ruma::api::error::ErrorKind::Unknown,
                "Only m.login.password, m.login.token and m.login.application_service are supported",
            ));
        }
    };
    let user = match &pw.identifier {
        Some(UserIdentifier::Matrix(m)) => m.user.clone(),
        _ => return Err(Error::forbidden("Only m.id.user identifiers are supported")),
    };
    s.rate_limits.check_login(req.client_ip, &user)?;
    let session = s
        .users
        .login_device(
            &user,
            &pw.password,
            req.body.device_id.clone(),
            req.body.initial_device_display_name.clone(),
            req.body.refresh_token,
            req.client_ip,
        )
        .await?;
    Ok(login_response(session))
}

/// `POST /login/get_token` (spec v1.7, `[identity] get_login_token`).
pub async fn get_login_token(
    s: Services,
    req: Ruma<get_login_token::v1::Request>,
) -> Result<get_login_token::v1::Response> {
    super::limit_password_attempts(&s, &req, req.auth.as_ref())?;
    let (token, ttl) = s
        .identity
        .login_token_for_session(req.user_id(), req.auth.as_ref(), req.client_ip)
        .await?;
    Ok(get_login_token::v1::Response::new(ttl, token))
}

fn login_response(session: crate::service::users::NewSession) -> login::v3::Response {
    tracing::info!(user_id = %session.user_id, device_id = %session.device_id, "login");
    let mut res =
        login::v3::Response::new(session.user_id, session.access_token, session.device_id);
    res.well_known = None;
    // Deprecated in the spec but still sent by Synapse: synapse-admin builds user ids and
    // media paths from it, and fails without it.
    #[allow(deprecated)]
    {
        res.home_server = Some(res.user_id.server_name().to_owned());
    }
    res.refresh_token = session.refresh_token;
    res.expires_in = session.expires_in_ms.map(std::time::Duration::from_millis);
    res
}

/// `POST /refresh`: authenticated by the refresh token in the body, not an access token (an
/// expired one is exactly why the client is here).
pub async fn refresh(
    s: Services,
    req: Ruma<refresh_token::v3::Request>,
) -> Result<refresh_token::v3::Response> {
    let new = s.users.refresh(&req.refresh_token).await?;
    let mut res = refresh_token::v3::Response::new(new.access_token);
    res.refresh_token = new.refresh_token;
    res.expires_in_ms = new.expires_in_ms.map(std::time::Duration::from_millis);
    Ok(res)
}

pub async fn logout(s: Services, req: Ruma<logout::v3::Request>) -> Result<logout::v3::Response> {
    s.users.logout(req.session()).await?;
    Ok(logout::v3::Response::new())
}

pub async fn logout_all(
    s: Services,
    req: Ruma<logout_all::v3::Request>,
) -> Result<logout_all::v3::Response> {
    s.users.logout_all(req.user_id()).await?;
    Ok(logout_all::v3::Response::new())
}

pub async fn whoami(_: Services, req: Ruma<whoami::v3::Request>) -> Result<whoami::v3::Response> {
    let mut res = whoami::v3::Response::new(req.user_id().clone(), false);
    res.device_id = Some(req.device_id().clone());
    Ok(res)
}
