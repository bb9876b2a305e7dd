//! Presence: get and set a user's status.

use ruma::api::client::presence::{get_presence, set_presence};

use crate::api::ruma::Ruma;
use crate::error::Result;
use crate::service::Services;

pub async fn set(
    s: Services,
    req: Ruma<set_presence::v3::Request>,
) -> Result<set_presence::v3::Response> {
    s.presence
        .set(
            req.user_id(),
            &req.body.user_id,
            &req.presence,
            req.status_msg.clone(),
        )
        .await?;
    Ok(set_presence::v3::Response::new())
}

pub async fn get(
    s: Services,
    req: Ruma<get_presence::v3::Request>,
) -> Result<get_presence::v3::Response> {
    let v = s.presence.get(req.user_id(), &req.body.user_id).await?;
    let mut res = get_presence::v3::Response::new(v.state);
    res.status_msg = v.status_msg;
    res.currently_active = Some(v.currently_active);
    res.last_active_ago = v.last_active_ago_ms.map(std::time::Duration::from_millis);
    Ok(res)
}
