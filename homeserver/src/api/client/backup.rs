//! Server-side key backup: /room_keys/version and /room_keys/keys.

use ruma::api::client::backup::{
    RoomKeyBackup, add_backup_keys, add_backup_keys_for_room, add_backup_keys_for_session,
    create_backup_version, delete_backup_keys, delete_backup_keys_for_room,
    delete_backup_keys_for_session, delete_backup_version, get_backup_info, get_backup_keys,
    get_backup_keys_for_room, get_backup_keys_for_session, get_latest_backup_info,
    update_backup_version,
};
use std::collections::BTreeMap;

use crate::api::ruma::Ruma;
use crate::error::{Error, Result};
use crate::service::Services;
use crate::service::e2ee::backup::Scope;

const ALL: Scope<'static> = Scope {
    room_id: None,
    session_id: None,
};

pub async fn create_version(
    s: Services,
    req: Ruma<create_backup_version::v3::Request>,
) -> Result<create_backup_version::v3::Response> {
    let v = s
        .backup
        .create_version(req.user_id(), &req.algorithm)
        .await?;
    Ok(create_backup_version::v3::Response::new(v))
}

pub async fn latest_version(
    s: Services,
    req: Ruma<get_latest_backup_info::v3::Request>,
) -> Result<get_latest_backup_info::v3::Response> {
    let i = s.backup.version(req.user_id(), None).await?;
    Ok(get_latest_backup_info::v3::Response::new(
        i.algorithm,
        i.count,
        i.etag,
        i.version,
    ))
}

pub async fn get_version(
    s: Services,
    req: Ruma<get_backup_info::v3::Request>,
) -> Result<get_backup_info::v3::Response> {
    let i = s.backup.version(req.user_id(), Some(&req.version)).await?;
    Ok(get_backup_info::v3::Response::new(
        i.algorithm,
        i.count,
        i.etag,
        i.version,
    ))
}

pub async fn update_version(
    s: Services,
    req: Ruma<update_backup_version::v3::Request>,
) -> Result<update_backup_version::v3::Response> {
    s.backup
        .update_version(req.user_id(), &req.version, &req.algorithm)
        .await?;
    Ok(update_backup_version::v3::Response::new())
}

pub async fn delete_version(
    s: Services,
    req: Ruma<delete_backup_version::v3::Request>,
) -> Result<delete_backup_version::v3::Response> {
    s.backup.delete_version(req.user_id(), &req.version).await?;
    Ok(delete_backup_version::v3::Response::new())
}

pub async fn put_keys(
    s: Services,
    req: Ruma<add_backup_keys::v3::Request>,
) -> Result<add_backup_keys::v3::Response> {
    let (etag, count) = s
        .backup
        .put_keys(req.user_id(), &req.version, &req.rooms)
        .await?;
    Ok(add_backup_keys::v3::Response::new(etag, count))
}

pub async fn put_room_keys(
    s: Services,
    req: Ruma<add_backup_keys_for_room::v3::Request>,
) -> Result<add_backup_keys_for_room::v3::Response> {
    let rooms = BTreeMap::from([(
        req.room_id.clone(),
        RoomKeyBackup::new(req.sessions.clone()),
    )]);
    let (etag, count) = s
        .backup
        .put_keys(req.user_id(), &req.version, &rooms)
        .await?;
    Ok(add_backup_keys_for_room::v3::Response::new(etag, count))
}

pub async fn put_session_key(
    s: Services,
    req: Ruma<add_backup_keys_for_session::v3::Request>,
) -> Result<add_backup_keys_for_session::v3::Response> {
    let sessions = BTreeMap::from([(req.session_id.clone(), req.session_data.clone())]);
    let rooms = BTreeMap::from([(req.room_id.clone(), RoomKeyBackup::new(sessions))]);
    let (etag, count) = s
        .backup
        .put_keys(req.user_id(), &req.version, &rooms)
        .await?;
    Ok(add_backup_keys_for_session::v3::Response::new(etag, count))
}

pub async fn get_keys(
    s: Services,
    req: Ruma<get_backup_keys::v3::Request>,
) -> Result<get_backup_keys::v3::Response> {
    let rooms = s.backup.keys(req.user_id(), &req.version, ALL).await?;
    Ok(get_backup_keys::v3::Response::new(rooms))
}

pub async fn get_room_keys(
    s: Services,
    req: Ruma<get_backup_keys_for_room::v3::Request>,
) -> Result<get_backup_keys_for_room::v3::Response> {
    let scope = Scope {
        room_id: Some(req.room_id.as_str()),
        session_id: None,
    };
    let mut rooms = s.backup.keys(req.user_id(), &req.version, scope).await?;
    let sessions = rooms
        .remove(&req.room_id)
        .map(|r| r.sessions)
        .unwrap_or_default();
    Ok(get_backup_keys_for_room::v3::Response::new(sessions))
}

pub async fn get_session_key(
    s: Services,
    req: Ruma<get_backup_keys_for_session::v3::Request>,
) -> Result<get_backup_keys_for_session::v3::Response> {
    let scope = Scope {
        room_id: Some(req.room_id.as_str()),
        session_id: Some(&req.session_id),
    };
    let mut rooms = s.backup.keys(req.user_id(), &req.version, scope).await?;
    let key = rooms
        .remove(&req.room_id)
        .and_then(|mut r| r.sessions.remove(&req.session_id))
        .ok_or_else(|| Error::not_found("No backed-up key for this session"))?;
    Ok(get_backup_keys_for_session::v3::Response::new(key))
}

pub async fn delete_keys(
    s: Services,
    req: Ruma<delete_backup_keys::v3::Request>,
) -> Result<delete_backup_keys::v3::Response> {
    let (etag, count) = s
        .backup
        .delete_keys(req.user_id(), &req.version, ALL)
        .await?;
    Ok(delete_backup_keys::v3::Response::new(etag, count))
}

pub async fn delete_room_keys(
    s: Services,
    req: Ruma<delete_backup_keys_for_room::v3::Request>,
) -> Result<delete_backup_keys_for_room::v3::Response> {
    let scope = Scope {
        room_id: Some(req.room_id.as_str()),
        session_id: None,
    };
    let (etag, count) = s
        .backup
        .delete_keys(req.user_id(), &req.version, scope)
        .await?;
    Ok(delete_backup_keys_for_room::v3::Response::new(etag, count))
}

pub async fn delete_session_key(
    s: Services,
    req: Ruma<delete_backup_keys_for_session::v3::Request>,
) -> Result<delete_backup_keys_for_session::v3::Response> {
    let scope = Scope {
        room_id: Some(req.room_id.as_str()),
        session_id: Some(&req.session_id),
    };
    let (etag, count) = s
        .backup
        .delete_keys(req.user_id(), &req.version, scope)
        .await?;
    Ok(delete_backup_keys_for_session::v3::Response::new(
        etag, count,
    ))
}
