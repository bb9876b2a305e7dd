//! Device management: list, get, rename, delete (UIA).

use ruma::api::client::device::{
    Device, delete_device, delete_devices, get_device, get_devices, update_device,
};
use ruma::{MilliSecondsSinceUnixEpoch, UInt};

use super::limit_password_attempts;
use crate::api::ruma::Ruma;
use crate::error::Result;
use crate::service::Services;
use crate::store::users::DeviceRecord;

fn to_device(d: DeviceRecord) -> Device {
    let mut device = Device::new(d.device_id);
    device.display_name = d.display_name;
    device.last_seen_ip = d.last_seen_ip;
    device.last_seen_ts = d
        .last_seen_ts
        .and_then(|ts| UInt::new(ts.max(0) as u64))
        .map(MilliSecondsSinceUnixEpoch);
    device
}

pub async fn get_devices(
    s: Services,
    req: Ruma<get_devices::v3::Request>,
) -> Result<get_devices::v3::Response> {
    let devices = s.users.list_devices(req.user_id()).await?;
    Ok(get_devices::v3::Response::new(
        devices.into_iter().map(to_device).collect(),
    ))
}

pub async fn get_device(
    s: Services,
    req: Ruma<get_device::v3::Request>,
) -> Result<get_device::v3::Response> {
    let device = s.users.get_device(req.user_id(), &req.device_id).await?;
    Ok(get_device::v3::Response::new(to_device(device)))
}

pub async fn update_device(
    s: Services,
    req: Ruma<update_device::v3::Request>,
) -> Result<update_device::v3::Response> {
    s.users
        .rename_device(req.user_id(), &req.device_id, req.body.display_name.clone())
        .await?;
    Ok(update_device::v3::Response::new())
}

pub async fn delete_device(
    s: Services,
    req: Ruma<delete_device::v3::Request>,
) -> Result<delete_device::v3::Response> {
    limit_password_attempts(&s, &req, req.auth.as_ref())?;
    s.users
        .delete_devices(
            req.session(),
            vec![req.device_id.clone()],
            req.auth.as_ref(),
        )
        .await?;
    Ok(delete_device::v3::Response::new())
}

pub async fn delete_devices(
    s: Services,
    req: Ruma<delete_devices::v3::Request>,
) -> Result<delete_devices::v3::Response> {
    limit_password_attempts(&s, &req, req.auth.as_ref())?;
    s.users
        .delete_devices(req.session(), req.devices.clone(), req.auth.as_ref())
        .await?;
    Ok(delete_devices::v3::Response::new())
}
