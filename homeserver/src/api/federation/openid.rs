//! `GET /_matrix/federation/v1/openid/userinfo?access_token=`: a third party (not a server: no
//! X-Matrix) exchanges a user's OpenID token for the user's id. The token in the query string is
//! what the spec specifies here; it is never logged.

use ruma::api::federation::openid::get_openid_userinfo;

use crate::api::ruma::Ruma;
use crate::error::Result;
use crate::service::Services;

pub async fn userinfo(
    s: Services,
    req: Ruma<get_openid_userinfo::v1::Request>,
) -> Result<get_openid_userinfo::v1::Response> {
    let sub = s.openid.userinfo(&req.access_token)?;
    Ok(get_openid_userinfo::v1::Response::new(sub))
}
