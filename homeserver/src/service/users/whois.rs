//! `GET /admin/whois/{userId}`: a user's devices with where and when each was last seen.
//! Only server admins, or the user about themself.

use ruma::UserId;

use super::{Session, UserService};
use crate::error::{Error, Result};
use crate::store::users::DeviceRecord;

impl UserService {
    pub async fn whois(&self, requester: &Session, target: &UserId) -> Result<Vec<DeviceRecord>> {
        // Authorisation first, so a non-admin cannot probe which accounts exist.
        if !requester.is_admin && requester.user_id != target {
            return Err(Error::forbidden(
                "Only server admins can look up other users",
            ));
        }
        if self.get_user(target).await?.is_none() {
            return Err(Error::not_found(format!("Unknown user {target}")));
        }
        self.list_devices(target).await
    }
}

#[cfg(test)]
mod tests {
    use ruma::api::error::ErrorKind;

    use crate::service::test_services;
    use crate::service::test_util::is_kind;
    use crate::service::users::test_login;

    #[tokio::test]
    async fn whois_is_for_admins_and_oneself() {
        let (s, _d) = test_services();
        let (alice, _) = test_login(&s.users, "alice", "a long password").await;
        let (bob, _) = test_login(&s.users, "bob", "a long password").await;
        let admin_id = s
            .users
            .create_user("root", Some("a long password"), true, true)
            .await
            .unwrap();
        let new = s.users.create_session(&admin_id, None, None).await.unwrap();
        let ip = "10.0.0.7".parse().ok();
        let admin = s.users.authenticate(&new.access_token, ip).await.unwrap();
        assert!(admin.is_admin);

        let err = s.users.whois(&bob, &alice.user_id).await.unwrap_err();
        assert!(is_kind(&err, ErrorKind::Forbidden));
        let own = s.users.whois(&alice, &alice.user_id).await.unwrap();
        assert_eq!(own.len(), 1);
        assert_eq!(own[0].device_id, alice.device_id);

        let theirs = s.users.whois(&admin, &bob.user_id).await.unwrap();
        assert_eq!(theirs[0].device_id, bob.device_id);
        // The admin's own device was seen from the address it authenticated from (recorded in
        // the background, so wait for it).
        let mut mine = s.users.whois(&admin, &admin_id).await.unwrap();
        for _ in 0..100 {
            if mine[0].last_seen_ip.is_some() {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            mine = s.users.whois(&admin, &admin_id).await.unwrap();
        }
        assert_eq!(mine[0].last_seen_ip.as_deref(), Some("10.0.0.7"));
        assert!(mine[0].last_seen_ts.is_some());

        let ghost = "@ghost:localhost".try_into().unwrap();
        let err = s.users.whois(&admin, ghost).await.unwrap_err();
        assert!(is_kind(&err, ErrorKind::NotFound));
    }
}
