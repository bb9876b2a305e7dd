//! Ending one session (a device and every token of it) on behalf of the OAuth token service:
//! revocation (RFC 7009), a replayed code or a reused refresh token.

use std::net::IpAddr;

use handover_compliance::Outcome;
use ruma::{OwnedDeviceId, UserId};

use super::UserService;
use crate::error::Result;
use crate::service::audit::{action, entry, with_ip};
use crate::service::blocking;

impl UserService {
    /// Deletes the device (tokens go with it), tells the key service, audits a logout with
    /// `reason`. Already gone: nothing happens but the audit entry.
    pub async fn end_device_session(
        &self,
        user_id: &UserId,
        device_id: OwnedDeviceId,
        reason: &str,
    ) -> Result<()> {
        let store = self.store.clone();
        let (uid, did) = (user_id.to_owned(), device_id.clone());
        blocking(move || Ok(store.delete_devices(uid.as_str(), Some(&[did]))?)).await?;
        self.devices_removed(user_id, vec![device_id.clone()]).await;
        let e = entry(user_id.as_str(), action::LOGOUT, Outcome::Success)
            .detail("device_id", device_id.as_str())
            .detail("reason", reason);
        self.audit.record(e).await
    }

    /// Ends every session of `user_id` ("remote wipe": each client gets `M_UNKNOWN_TOKEN`
    /// with `soft_logout: false` and clears its data), asked by `actor` through `via` (the
    /// account page, `handover admin logout-user`). Returns how many sessions ended.
    pub async fn end_all_sessions(
        &self,
        actor: &str,
        user_id: &UserId,
        via: &str,
        ip: Option<IpAddr>,
    ) -> Result<usize> {
        let n = self.device_ids(user_id).await?.len();
        self.logout_all(user_id).await?;
        let e = entry(actor, action::END_ALL_SESSIONS, Outcome::Success)
            .target(user_id.as_str())
            .detail("via", via)
            .detail("devices", n);
        self.audit.record(with_ip(e, ip)).await?;
        Ok(n)
    }

    /// Tells the key service about a device removed by a store call made elsewhere.
    pub async fn device_gone(&self, user_id: &UserId, device_id: OwnedDeviceId) {
        self.devices_removed(user_id, vec![device_id]).await;
    }
}
