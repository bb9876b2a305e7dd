//! MSC3814 dehydrated devices: PUT/GET/DELETE
//! `/_matrix/client/unstable/org.matrix.msc3814.v1/dehydrated_device` and
//! POST `.../dehydrated_device/{device_id}/events`.

use ruma::api::client::dehydrated_device::{
    delete_dehydrated_device, get_dehydrated_device, get_events, put_dehydrated_device,
};

use crate::api::ruma::Ruma;
use crate::error::Result;
use crate::service::Services;

pub async fn put(
    s: Services,
    req: Ruma<put_dehydrated_device::unstable::Request>,
) -> Result<put_dehydrated_device::unstable::Response> {
    let device_id = s.dehydrated.put(req.user_id(), req.body.clone()).await?;
    Ok(put_dehydrated_device::unstable::Response::new(device_id))
}

pub async fn get(
    s: Services,
    req: Ruma<get_dehydrated_device::unstable::Request>,
) -> Result<get_dehydrated_device::unstable::Response> {
    let (device_id, data) = s.dehydrated.get(req.user_id()).await?;
    Ok(get_dehydrated_device::unstable::Response::new(
        device_id, data,
    ))
}

pub async fn delete(
    s: Services,
    req: Ruma<delete_dehydrated_device::unstable::Request>,
) -> Result<delete_dehydrated_device::unstable::Response> {
    let device_id = s.dehydrated.delete(req.user_id()).await?;
    Ok(delete_dehydrated_device::unstable::Response::new(device_id))
}

pub async fn events(
    s: Services,
    req: Ruma<get_events::unstable::Request>,
) -> Result<get_events::unstable::Response> {
    s.dehydrated
        .events(req.user_id(), &req.device_id, req.next_batch.as_deref())
        .await
}
