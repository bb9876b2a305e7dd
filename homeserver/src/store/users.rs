//! Storage seam for accounts, devices and access tokens.

use ruma::{OwnedDeviceId, OwnedUserId};

use super::StoreResult;

#[derive(Debug, Clone)]
pub struct UserRecord {
    pub user_id: OwnedUserId,
    pub password_hash: Option<String>,
    pub is_admin: bool,
    pub deactivated: bool,
    pub displayname: Option<String>,
    pub avatar_url: Option<String>,
}

#[derive(Debug, Clone)]
pub struct DeviceRecord {
    pub device_id: OwnedDeviceId,
    pub display_name: Option<String>,
    pub last_seen_ts: Option<i64>,
    pub last_seen_ip: Option<String>,
}

/// The user a token belongs to, as the token table and user row say.
#[derive(Debug, Clone)]
pub struct TokenOwner {
    pub user_id: OwnedUserId,
    pub device_id: OwnedDeviceId,
    pub is_admin: bool,
    pub deactivated: bool,
    /// When the token stops working (ms since the epoch); `None`: never.
    pub expires_ts: Option<i64>,
    /// When the device was first signed in (ms): the session's age.
    pub session_start_ts: i64,
    /// The device's last recorded use (sign-ins count); `None`: never recorded.
    pub last_seen_ts: Option<i64>,
}

/// The tokens of a new session or a refresh, by hash (the secrets never reach the store).
#[derive(Debug, Clone)]
pub struct TokenHashes {
    pub access: String,
    pub expires_ts: Option<i64>,
    pub refresh: Option<String>,
}

pub trait UserStore: super::profile_fields::ProfileFieldStore + Send + Sync {
    /// Creates the account; `Conflict("user")` if the id is taken.
    fn create_user(&self, user: &UserRecord) -> StoreResult<()>;
    fn get_user(&self, user_id: &str) -> StoreResult<Option<UserRecord>>;
    fn set_password_hash(&self, user_id: &str, hash: &str) -> StoreResult<()>;
    /// Marks the account deactivated, clears its password and profile and removes its devices
    /// and tokens, in one transaction. `erase` also deletes its account data and filters.
    fn deactivate_user(&self, user_id: &str, erase: bool) -> StoreResult<()>;
    fn set_profile(
        &self,
        user_id: &str,
        displayname: Option<Option<&str>>,
        avatar_url: Option<Option<&str>>,
    ) -> StoreResult<()>;

    /// Creates (or re-uses) the device and stores a new token for it.
    fn create_session(
        &self,
        user_id: &str,
        device_id: &str,
        display_name: Option<&str>,
        token_hash: &str,
    ) -> StoreResult<()> {
        let tokens = TokenHashes {
            access: token_hash.to_owned(),
            expires_ts: None,
            refresh: None,
        };
        self.create_session_tokens(user_id, device_id, display_name, &tokens)
    }
    /// Creates (or re-uses) the device and stores its new access (and refresh) token.
    fn create_session_tokens(
        &self,
        user_id: &str,
        device_id: &str,
        display_name: Option<&str>,
        tokens: &TokenHashes,
    ) -> StoreResult<()>;
    /// Spends the refresh token `refresh_hash` (once only): revokes the access token issued
    /// with it and stores `next` for the same device, in one transaction. `None` when the
    /// refresh token is unknown or already spent.
    fn refresh_session(
        &self,
        refresh_hash: &str,
        next: &TokenHashes,
    ) -> StoreResult<Option<(OwnedUserId, OwnedDeviceId)>>;
    fn token_owner(&self, token_hash: &str) -> StoreResult<Option<TokenOwner>>;
    fn delete_token(&self, token_hash: &str) -> StoreResult<()>;
    /// Deletes every token of one device (access, refresh, OAuth refresh) but keeps the device
    /// and its keys: a soft logout.
    fn delete_device_tokens(&self, user_id: &str, device_id: &str) -> StoreResult<()>;
    /// Deletes devices (and their tokens). `None` deletes every device of the user.
    fn delete_devices(
        &self,
        user_id: &str,
        device_ids: Option<&[OwnedDeviceId]>,
    ) -> StoreResult<()>;
    /// Deletes every token of the user except `keep` (password change with logout_devices).
    fn delete_other_devices(&self, user_id: &str, keep: &str) -> StoreResult<()>;
    fn list_devices(&self, user_id: &str) -> StoreResult<Vec<DeviceRecord>>;
    fn get_device(&self, user_id: &str, device_id: &str) -> StoreResult<Option<DeviceRecord>>;
    fn set_device_name(
        &self,
        user_id: &str,
        device_id: &str,
        name: Option<&str>,
    ) -> StoreResult<bool>;
    fn touch_device(
        &self,
        user_id: &str,
        device_id: &str,
        ts: i64,
        ip: Option<&str>,
    ) -> StoreResult<()>;
    /// The account's kind (`"staff"` or `"patient"`, migration v14); `None`: no such account.
    fn account_kind(&self, user_id: &str) -> StoreResult<Option<String>>;
    fn set_account_kind(&self, user_id: &str, kind: &str) -> StoreResult<()>;
    /// Whether the device signed in through the OAuth 2.0 API (it holds OAuth refresh tokens).
    fn device_uses_oauth(&self, user_id: &str, device_id: &str) -> StoreResult<bool>;
    /// Users sharing a joined room with `user_id` (or the user themself) matching `term`.
    fn search_users(&self, user_id: &str, term: &str, limit: usize)
    -> StoreResult<Vec<UserRecord>>;
}
