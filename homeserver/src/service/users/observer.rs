//! Who must hear that devices were removed. Devices are deleted here (logout, device deletion,
//! password change with logout, deactivation), but their E2EE consequences belong to the key
//! service, which is built later (it needs rooms, which need users): it registers itself once
//! with `set_device_observer` when the services are built.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use ruma::{OwnedDeviceId, UserId};

use super::UserService;
use crate::error::Result;
use crate::service::blocking;

pub trait DeviceObserver: Send + Sync {
    /// Called after the devices' rows (and keys) are gone.
    fn devices_removed<'a>(
        &'a self,
        user: &'a UserId,
        devices: Vec<OwnedDeviceId>,
    ) -> Pin<Box<dyn Future<Output = ()> + Send + 'a>>;
}

impl UserService {
    /// Registers the observer of device removals (once; later calls are ignored).
    pub fn set_device_observer(&self, observer: Arc<dyn DeviceObserver>) {
        let _ = self.device_observer.set(observer);
    }

    pub(super) async fn devices_removed(&self, user: &UserId, devices: Vec<OwnedDeviceId>) {
        if devices.is_empty() {
            return;
        }
        if let Some(o) = self.device_observer.get() {
            o.devices_removed(user, devices).await;
        }
    }

    /// The user's device ids (taken before a deletion, to name what it removed).
    pub(super) async fn device_ids(&self, user: &UserId) -> Result<Vec<OwnedDeviceId>> {
        let store = self.store.clone();
        let uid = user.to_owned();
        let devices = blocking(move || Ok(store.list_devices(uid.as_str())?)).await?;
        Ok(devices.into_iter().map(|d| d.device_id).collect())
    }
}
