//! `POST /user/{userId}/openid/request_token` (tokens in `service/openid.rs`).

use ruma::api::client::account::request_openid_token;
use ruma::authentication::TokenType;

use crate::api::ruma::Ruma;
use crate::error::Result;
use crate::service::Services;

pub async fn request_token(
    s: Services,
    req: Ruma<request_openid_token::v3::Request>,
) -> Result<request_openid_token::v3::Response> {
    let (token, ttl) = s.openid.request_token(req.session(), &req.user_id)?;
    Ok(request_openid_token::v3::Response::new(
        token,
        TokenType::Bearer,
        s.rooms.server_name().to_owned(),
        ttl,
    ))
}
