//! The key service as the device-list source of encrypted appservices (MSC3202,
//! `appservice/crypto.rs`): the same computation as a user's /sync `device_lists`.

use ruma::{OwnedUserId, UserId};

use super::KeyService;
use crate::error::Result;
use crate::service::appservice::{BoxFuture, DeviceListSource};

impl DeviceListSource for KeyService {
    fn changes_for<'a>(
        &'a self,
        user: &'a UserId,
        since: i64,
        upto: i64,
    ) -> BoxFuture<'a, Result<(Vec<OwnedUserId>, Vec<OwnedUserId>)>> {
        Box::pin(async move {
            let c = self.device_list_changes(user, since, upto).await?;
            Ok((c.changed, c.left))
        })
    }
}
