//! Other servers asking about local users' E2EE keys: `GET /user/devices/{userId}`,
//! `POST /user/keys/query`, `POST /user/keys/claim`. All require X-Matrix (their ruma auth
//! scheme is `ServerSignatures`), so the extractor has verified the origin before these run.

use ruma::OwnedServerName;
use ruma::api::federation::device::get_devices;
use ruma::api::federation::keys::{claim_keys, get_keys};

use crate::api::ruma::Ruma;
use crate::error::{Error, Result};
use crate::service::Services;

fn origin<T>(req: &Ruma<T>) -> Result<OwnedServerName> {
    req.origin
        .clone()
        .ok_or_else(|| Error::forbidden("A signed federation request is required"))
}

pub async fn user_devices(
    s: Services,
    req: Ruma<get_devices::v1::Request>,
) -> Result<get_devices::v1::Response> {
    s.e2ee
        .federation_devices(&origin(&req)?, &req.user_id)
        .await
}

pub async fn keys_query(
    s: Services,
    req: Ruma<get_keys::v1::Request>,
) -> Result<get_keys::v1::Response> {
    let origin = origin(&req)?;
    s.e2ee.federation_query(&origin, req.body.device_keys).await
}

pub async fn keys_claim(
    s: Services,
    req: Ruma<claim_keys::v1::Request>,
) -> Result<claim_keys::v1::Response> {
    let origin = origin(&req)?;
    s.e2ee.federation_claim(&origin, req.body.one_time_keys).await
}
