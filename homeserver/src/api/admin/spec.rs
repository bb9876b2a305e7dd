//! Spec v1.18 `GET`/`PUT /_matrix/client/v1/admin/{lock,suspend}/{userId}` (ruma types).

use ruma::api::client::admin::{is_user_locked, is_user_suspended, lock_user, suspend_user};

use crate::api::ruma::Ruma;
use crate::error::Result;
use crate::service::Services;

pub async fn is_locked(
    s: Services,
    req: Ruma<is_user_locked::v1::Request>,
) -> Result<is_user_locked::v1::Response> {
    let locked = s.admin.is_locked(req.session(), &req.body.user_id).await?;
    Ok(is_user_locked::v1::Response::new(locked))
}

pub async fn lock(
    s: Services,
    req: Ruma<lock_user::v1::Request>,
) -> Result<lock_user::v1::Response> {
    let locked = req.body.locked;
    s.admin
        .set_locked(req.session(), &req.body.user_id, locked)
        .await?;
    Ok(lock_user::v1::Response::new(locked))
}

pub async fn is_suspended(
    s: Services,
    req: Ruma<is_user_suspended::v1::Request>,
) -> Result<is_user_suspended::v1::Response> {
    let suspended = s
        .admin
        .is_suspended(req.session(), &req.body.user_id)
        .await?;
    Ok(is_user_suspended::v1::Response::new(suspended))
}

pub async fn suspend(
    s: Services,
    req: Ruma<suspend_user::v1::Request>,
) -> Result<suspend_user::v1::Response> {
    let suspended = req.body.suspended;
    (s.admin)
        .set_suspended(req.session(), &req.body.user_id, suspended)
        .await?;
    Ok(suspend_user::v1::Response::new(suspended))
}
