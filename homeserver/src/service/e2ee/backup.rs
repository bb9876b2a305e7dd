//! Server-side key backup (/room_keys): versions, and encrypted megolm session keys stored
//! per room and session. Keys are written only to the current (latest) version.

use std::collections::BTreeMap;
use std::sync::Arc;

use http::StatusCode;
use ruma::api::client::backup::{BackupAlgorithm, KeyBackupData, RoomKeyBackup};
use ruma::api::error::{ErrorKind, WrongRoomKeysVersionErrorData};
use ruma::serde::Raw;
use ruma::{OwnedRoomId, UInt, UserId};

use super::upload::raw;
use crate::error::{Error, Result};
use crate::service::blocking;
use crate::store::backup::{BackupKey, BackupStore, BackupVersion};

/// A version as the API reports it: algorithm (with auth_data), count, etag, version.
#[derive(Debug)]
pub struct VersionInfo {
    pub algorithm: Raw<BackupAlgorithm>,
    pub count: UInt,
    pub etag: String,
    pub version: String,
}

/// `(etag, count)` after a change to a version's keys.
pub type KeysState = (String, UInt);

/// Which keys: all of a version, one room's, or one session's.
pub struct Scope<'a> {
    pub room_id: Option<&'a str>,
    pub session_id: Option<&'a str>,
}

pub struct BackupService {
    store: Arc<dyn BackupStore>,
}

fn not_found() -> Error {
    Error::not_found("Unknown backup version")
}

/// Version strings are decimal numbers; anything else names no version (404, as Synapse).
fn parse_version(v: &str) -> Result<i64> {
    v.parse().map_err(|_| not_found())
}

fn info(v: BackupVersion) -> Result<VersionInfo> {
    Ok(VersionInfo {
        algorithm: raw(&v.algorithm)?,
        count: UInt::new_saturating(v.count),
        etag: v.etag.to_string(),
        version: v.version.to_string(),
    })
}

/// The spec's rule for replacing a backed-up session key: a verified key beats an unverified
/// one; then the lower first_message_index; then the lower forwarded_count.
pub fn should_replace(old: &BackupKey, new: &BackupKey) -> bool {
    if old.is_verified != new.is_verified {
        return new.is_verified;
    }
    if old.first_message_index != new.first_message_index {
        return new.first_message_index < old.first_message_index;
    }
    new.forwarded_count < old.forwarded_count
}

impl BackupService {
    pub fn new(store: Arc<dyn BackupStore>) -> Self {
        Self { store }
    }

    pub async fn create_version(
        &self,
        user: &UserId,
        algorithm: &Raw<BackupAlgorithm>,
    ) -> Result<String> {
        algorithm
            .deserialize()
            .map_err(|e| Error::bad_json(format!("Invalid backup algorithm: {e}")))?;
        let store = self.store.clone();
        let (u, a) = (user.to_string(), algorithm.json().get().to_owned());
        let v = blocking(move || Ok(store.create_backup_version(&u, &a)?)).await?;
        Ok(v.to_string())
    }

    /// A version, or the current one when `version` is `None`.
    pub async fn version(&self, user: &UserId, version: Option<&str>) -> Result<VersionInfo> {
        let v = version.map(parse_version).transpose()?;
        let store = self.store.clone();
        let u = user.to_string();
        let found = blocking(move || Ok(store.backup_version(&u, v)?)).await?;
        match found {
            Some(v) => info(v),
            None if version.is_none() => Err(Error::not_found("No current backup version")),
            None => Err(not_found()),
        }
    }

    /// Only auth_data may change; the algorithm is fixed for a version (spec: 400).
    pub async fn update_version(
        &self,
        user: &UserId,
        version: &str,
        algorithm: &Raw<BackupAlgorithm>,
    ) -> Result<()> {
        let current = self.version(user, Some(version)).await?;
        let new: BackupAlgorithm = algorithm
            .deserialize()
            .map_err(|e| Error::bad_json(format!("Invalid backup algorithm: {e}")))?;
        let old: BackupAlgorithm = current.algorithm.deserialize().map_err(Error::internal)?;
        if old.algorithm() != new.algorithm() {
            return Err(Error::invalid_param(
                "The algorithm of a backup version cannot change",
            ));
        }
        let store = self.store.clone();
        let (u, v, a) = (
            user.to_string(),
            parse_version(version)?,
            algorithm.json().get().to_owned(),
        );
        blocking(move || Ok(store.update_backup_version(&u, v, &a)?)).await?;
        Ok(())
    }

    pub async fn delete_version(&self, user: &UserId, version: &str) -> Result<()> {
        let store = self.store.clone();
        let (u, v) = (user.to_string(), parse_version(version)?);
        if blocking(move || Ok(store.delete_backup_version(&u, v)?)).await? {
            Ok(())
        } else {
            Err(not_found())
        }
    }

    /// Stores keys into `version`, which must be the current version (403
    /// `M_WRONG_ROOM_KEYS_VERSION` otherwise; 404 if it does not exist at all).
    pub async fn put_keys(
        &self,
        user: &UserId,
        version: &str,
        rooms: &BTreeMap<OwnedRoomId, RoomKeyBackup>,
    ) -> Result<KeysState> {
        let current = self.version(user, None).await.map_err(|_| not_found())?;
        if current.version != version {
            let exists = self.version(user, Some(version)).await.is_ok();
            if !exists {
                return Err(not_found());
            }
            return Err(Error::new(
                StatusCode::FORBIDDEN,
                ErrorKind::WrongRoomKeysVersion(WrongRoomKeysVersionErrorData::new(
                    current.version,
                )),
                "Wrong backup version: not the current one",
            ));
        }
        let mut keys = Vec::new();
        for (room, backup) in rooms {
            for (session, data) in &backup.sessions {
                let d: KeyBackupData = data
                    .deserialize()
                    .map_err(|e| Error::bad_json(format!("Invalid key data: {e}")))?;
                keys.push(BackupKey {
                    room_id: room.to_string(),
                    session_id: session.clone(),
                    first_message_index: u64::from(d.first_message_index) as i64,
                    forwarded_count: u64::from(d.forwarded_count) as i64,
                    is_verified: d.is_verified,
                    json: data.json().get().to_owned(),
                });
            }
        }
        let store = self.store.clone();
        let (u, v) = (user.to_string(), parse_version(version)?);
        let after =
            blocking(move || Ok(store.put_backup_keys(&u, v, keys, Box::new(should_replace))?))
                .await?
                .ok_or_else(not_found)?;
        Ok((after.etag.to_string(), UInt::new_saturating(after.count)))
    }

    /// Keys of a version, by room then session.
    pub async fn keys(
        &self,
        user: &UserId,
        version: &str,
        scope: Scope<'_>,
    ) -> Result<BTreeMap<OwnedRoomId, RoomKeyBackup>> {
        self.version(user, Some(version)).await?;
        let store = self.store.clone();
        let (u, v) = (user.to_string(), parse_version(version)?);
        let (r, s) = (
            scope.room_id.map(str::to_owned),
            scope.session_id.map(str::to_owned),
        );
        let rows =
            blocking(move || Ok(store.backup_keys(&u, v, r.as_deref(), s.as_deref())?)).await?;
        let mut out: BTreeMap<OwnedRoomId, RoomKeyBackup> = BTreeMap::new();
        for k in rows {
            let room: OwnedRoomId = k.room_id.try_into().map_err(Error::internal)?;
            out.entry(room)
                .or_insert_with(|| RoomKeyBackup::new(BTreeMap::new()))
                .sessions
                .insert(k.session_id, raw(&k.json)?);
        }
        Ok(out)
    }

    pub async fn delete_keys(
        &self,
        user: &UserId,
        version: &str,
        scope: Scope<'_>,
    ) -> Result<KeysState> {
        let store = self.store.clone();
        let (u, v) = (user.to_string(), parse_version(version)?);
        let (r, s) = (
            scope.room_id.map(str::to_owned),
            scope.session_id.map(str::to_owned),
        );
        let after =
            blocking(move || Ok(store.delete_backup_keys(&u, v, r.as_deref(), s.as_deref())?))
                .await?
                .ok_or_else(not_found)?;
        Ok((after.etag.to_string(), UInt::new_saturating(after.count)))
    }
}
