//! Storage seam for upstream identity links, registered OAuth clients and OAuth refresh tokens.

use ruma::{OwnedDeviceId, OwnedUserId};

use super::StoreResult;
use super::users::UserRecord;

/// The account a provider's subject is linked to.
#[derive(Debug, Clone)]
pub struct IdentityLink {
    pub provider_id: String,
    pub subject: String,
    pub user_id: OwnedUserId,
    pub account_kind: String,
    /// The last login's profile claims (JSON object).
    pub claims: String,
}

/// What spending an OAuth refresh token did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RefreshOutcome {
    /// Rotated: the old tokens are revoked, the new ones stored.
    Rotated {
        user_id: OwnedUserId,
        device_id: OwnedDeviceId,
    },
    /// Already spent: the session (its device, every token of it) has been revoked.
    Reused {
        user_id: OwnedUserId,
        device_id: OwnedDeviceId,
    },
    /// Unknown, or issued to another client.
    Unknown,
}

pub trait IdentityStore: Send + Sync {
    fn find_identity_link(
        &self,
        provider_id: &str,
        subject: &str,
    ) -> StoreResult<Option<IdentityLink>>;
    /// Creates the account and its link in one transaction; `Conflict("user")` when the user id
    /// is taken (a localpart collision: never merged), `Conflict("link")` when the subject is
    /// linked already (two first logins racing).
    fn provision_linked_user(&self, user: &UserRecord, link: &IdentityLink) -> StoreResult<()>;
    /// Records a later login's claims.
    fn touch_identity_link(
        &self,
        provider_id: &str,
        subject: &str,
        claims: &str,
    ) -> StoreResult<()>;

    /// Stores a registered client; `Conflict("client")` if the id exists.
    fn insert_oauth_client(&self, client_id: &str, metadata: &str) -> StoreResult<()>;
    fn get_oauth_client(&self, client_id: &str) -> StoreResult<Option<String>>;

    /// Creates (or re-uses) the device and stores its access token (`expires_ts`) and the OAuth
    /// refresh token issued with it.
    #[allow(clippy::too_many_arguments)]
    fn create_oauth_session(
        &self,
        user_id: &str,
        device_id: &str,
        display_name: Option<&str>,
        client_id: &str,
        access_hash: &str,
        expires_ts: Option<i64>,
        refresh_hash: &str,
    ) -> StoreResult<()>;
    /// Spends `refresh_hash` of `client_id`: on first use revokes the access token issued with
    /// it and stores the next pair; on reuse deletes the device (every token of the session).
    fn rotate_oauth_refresh(
        &self,
        refresh_hash: &str,
        client_id: &str,
        access_hash: &str,
        expires_ts: Option<i64>,
        next_refresh_hash: &str,
    ) -> StoreResult<RefreshOutcome>;
    /// The session an OAuth refresh token (spent or not) belongs to.
    fn oauth_refresh_owner(
        &self,
        refresh_hash: &str,
    ) -> StoreResult<Option<(OwnedUserId, OwnedDeviceId, String)>>;
}
