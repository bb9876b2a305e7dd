//! `/_synapse/admin/.../users...`, `whois`, `deactivate`, `reset_password`, `server_version`:
//! Synapse's request and response shapes (see docs/OPERATIONS.md for the list).

use axum::Json;
use axum::extract::State;
use http::StatusCode;
use ruma::OwnedDeviceId;
use serde::{Deserialize, Deserializer};
use serde_json::{Value, json};

use super::extract::{AdminSession, Body, Params, PathArgs};
use crate::error::{Error, Result};
use crate::service::Services;
use crate::service::admin::{AdminService, UserDetails, UserUpsert};
use crate::store::admin::{AdminUserRow, UserListQuery, UserOrder};
use crate::store::users::DeviceRecord;

type JsonResult = Result<Json<Value>>;

/// Public, as on Synapse: scripts call it to see what they are talking to.
pub async fn server_version() -> Json<Value> {
    Json(json!({ "server_version": format!("handover {}", env!("CARGO_PKG_VERSION")) }))
}

#[derive(Deserialize)]
pub struct ListParams {
    from: Option<String>,
    limit: Option<String>,
    name: Option<String>,
    user_id: Option<String>,
    guests: Option<String>,
    deactivated: Option<String>,
    admins: Option<String>,
    locked: Option<String>,
    order_by: Option<String>,
    dir: Option<String>,
}

fn flag(name: &str, v: &Option<String>) -> Result<Option<bool>> {
    match v.as_deref() {
        None => Ok(None),
        Some("true") => Ok(Some(true)),
        Some("false") => Ok(Some(false)),
        Some(_) => Err(Error::invalid_param(format!(
            "{name} must be true or false"
        ))),
    }
}

/// `dir`: `f` or `b`; `default_backwards` when absent.
pub(super) fn page_dir(v: &Option<String>, default_backwards: bool) -> Result<bool> {
    match v.as_deref() {
        None => Ok(default_backwards),
        Some("f") => Ok(false),
        Some("b") => Ok(true),
        Some(_) => Err(Error::invalid_param("dir must be f or b")),
    }
}

pub(super) fn number(name: &str, v: &Option<String>, default: u64) -> Result<u64> {
    match v.as_deref() {
        None => Ok(default),
        Some(s) => s
            .parse()
            .map_err(|_| Error::invalid_param(format!("{name} must be a non-negative integer"))),
    }
}

impl ListParams {
    fn into_query(self) -> Result<UserListQuery> {
        let order = match self.order_by.as_deref().unwrap_or("name") {
            "name" => UserOrder::Name,
            "admin" => UserOrder::Admin,
            "deactivated" => UserOrder::Deactivated,
            "displayname" => UserOrder::Displayname,
            "avatar_url" => UserOrder::AvatarUrl,
            "creation_ts" => UserOrder::CreationTs,
            "last_seen_ts" => UserOrder::LastSeenTs,
            "is_guest" | "user_type" | "shadow_banned" | "locked" => UserOrder::Constant,
            other => return Err(Error::invalid_param(format!("Unknown order_by {other:?}"))),
        };
        let backwards = page_dir(&self.dir, false)?;
        // No guest accounts exist here, so `guests` filters nothing; still validated.
        flag("guests", &self.guests)?;
        Ok(UserListQuery {
            from: number("from", &self.from, 0)?,
            limit: number("limit", &self.limit, 100)?,
            name: self.name.filter(|n| !n.is_empty()),
            user_id: self.user_id.filter(|n| !n.is_empty()),
            include_deactivated: flag("deactivated", &self.deactivated)?.unwrap_or(false),
            include_locked: flag("locked", &self.locked)?.unwrap_or(false),
            admins: flag("admins", &self.admins)?,
            order,
            backwards,
        })
    }
}

/// The fields the list and the query share. Synapse writes some flags as 0/1, others as bools.
fn user_json(r: &AdminUserRow) -> Value {
    json!({
        "name": r.user_id,
        "displayname": r.displayname,
        "avatar_url": r.avatar_url,
        "is_guest": 0,
        "admin": i32::from(r.is_admin),
        "deactivated": i32::from(r.deactivated),
        "erased": r.erased,
        "shadow_banned": 0,
        "user_type": null,
        "approved": true,
        "locked": r.locked,
        "suspended": r.suspended,
        // Milliseconds in the list, as Synapse's list gives it (`details_json` differs).
        "creation_ts": r.created_ts,
        "last_seen_ts": r.last_seen_ts,
    })
}

fn details_json(d: &UserDetails) -> Value {
    let mut v = user_json(&d.row);
    let threepids: Vec<Value> = (d.threepids.iter())
        .map(|t| {
            json!({
                "medium": t.medium,
                "address": t.address,
                "added_at": t.added_ts,
                "validated_at": t.validated_ts,
            })
        })
        .collect();
    v["threepids"] = threepids.into();
    // Synapse's single-user query gives its stored seconds (the list multiplies by 1000);
    // synapse-admin's edit page relies on it.
    v["creation_ts"] = (d.row.created_ts / 1000).into();
    v["external_ids"] = json!([]);
    v["appservice_id"] = Value::Null;
    v["consent_server_notice_sent"] = Value::Null;
    v["consent_version"] = Value::Null;
    v["consent_ts"] = Value::Null;
    // Handover's own field (docs/IDENTITY.md "Patient accounts"); PUT accepts it too.
    v["account_kind"] = d.account_kind.as_str().into();
    v
}

/// `GET /_synapse/admin/v2/users`
pub async fn list(
    State(s): State<Services>,
    AdminSession(who): AdminSession,
    Params(p): Params<ListParams>,
) -> JsonResult {
    let q = p.into_query()?;
    let (from, limit) = (q.from, q.limit);
    let (rows, total) = s.admin.list_users(&who, q).await?;
    let mut out = json!({
        "users": rows.iter().map(user_json).collect::<Vec<_>>(),
        "total": total,
    });
    let next = from.saturating_add(rows.len() as u64);
    if limit > 0 && next < total {
        out["next_token"] = next.to_string().into();
    }
    Ok(Json(out))
}

/// `GET /_synapse/admin/v2/users/{userId}`
pub async fn get(
    State(s): State<Services>,
    AdminSession(who): AdminSession,
    PathArgs(user): PathArgs<String>,
) -> JsonResult {
    let user_id = AdminService::parse_user_id(&user)?;
    let d = s.admin.user_details(&who, &user_id).await?;
    Ok(Json(details_json(&d)))
}

/// Tells "absent" (leave alone) from `null` (clear).
fn double<'de, D: Deserializer<'de>>(
    d: D,
) -> std::result::Result<Option<Option<String>>, D::Error> {
    Option::<String>::deserialize(d).map(Some)
}

#[derive(Deserialize)]
pub struct ThreepidIn {
    medium: String,
    address: String,
}

#[derive(Deserialize)]
pub struct PutUser {
    password: Option<String>,
    logout_devices: Option<bool>,
    #[serde(default, deserialize_with = "double")]
    displayname: Option<Option<String>>,
    #[serde(default, deserialize_with = "double")]
    avatar_url: Option<Option<String>>,
    threepids: Option<Vec<ThreepidIn>>,
    external_ids: Option<Vec<Value>>,
    admin: Option<bool>,
    deactivated: Option<bool>,
    locked: Option<bool>,
    user_type: Option<String>,
    /// Handover's own: `"staff"` or `"patient"`.
    account_kind: Option<String>,
}

/// `PUT /_synapse/admin/v2/users/{userId}`: 201 when created, 200 when modified.
pub async fn put(
    State(s): State<Services>,
    AdminSession(who): AdminSession,
    PathArgs(user): PathArgs<String>,
    Body(b): Body<PutUser>,
) -> Result<(StatusCode, Json<Value>)> {
    let user_id = AdminService::parse_user_id(&user)?;
    if b.external_ids.as_ref().is_some_and(|e| !e.is_empty()) {
        return Err(Error::invalid_param(
            "external_ids are not supported (no SSO here)",
        ));
    }
    if b.user_type.is_some() {
        return Err(Error::invalid_param("user_type is not supported"));
    }
    let account_kind = match b.account_kind.as_deref() {
        None => None,
        Some(k) => Some(handover_policy::AccountKind::parse(k).ok_or_else(|| {
            Error::invalid_param("account_kind must be \"staff\" or \"patient\"")
        })?),
    };
    let up = UserUpsert {
        password: b.password,
        logout_devices: b.logout_devices.unwrap_or(true),
        displayname: b.displayname,
        avatar_url: b.avatar_url,
        threepids: b
            .threepids
            .map(|t| t.into_iter().map(|t| (t.medium, t.address)).collect()),
        admin: b.admin,
        deactivated: b.deactivated,
        locked: b.locked,
        account_kind,
    };
    let (created, d) = s.admin.upsert_user(&who, &user_id, up).await?;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(details_json(&d))))
}

/// `GET /_synapse/admin/v1/users/{userId}/admin`
pub async fn get_admin(
    State(s): State<Services>,
    AdminSession(who): AdminSession,
    PathArgs(user): PathArgs<String>,
) -> JsonResult {
    let user_id = AdminService::parse_user_id(&user)?;
    let admin = s.admin.is_admin(&who, &user_id).await?;
    Ok(Json(json!({ "admin": admin })))
}

#[derive(Deserialize)]
pub struct PutAdmin {
    admin: bool,
}

/// `PUT /_synapse/admin/v1/users/{userId}/admin`
pub async fn put_admin(
    State(s): State<Services>,
    AdminSession(who): AdminSession,
    PathArgs(user): PathArgs<String>,
    Body(b): Body<PutAdmin>,
) -> JsonResult {
    let user_id = AdminService::parse_user_id(&user)?;
    s.admin.set_admin(&who, &user_id, b.admin).await?;
    Ok(Json(json!({})))
}

#[derive(Deserialize)]
pub struct Deactivate {
    #[serde(default)]
    erase: bool,
}

/// `POST /_synapse/admin/v1/deactivate/{userId}`
pub async fn deactivate(
    State(s): State<Services>,
    AdminSession(who): AdminSession,
    PathArgs(user): PathArgs<String>,
    Body(b): Body<Deactivate>,
) -> JsonResult {
    let user_id = AdminService::parse_user_id(&user)?;
    s.admin.deactivate(&who, &user_id, b.erase).await?;
    // No identity server bindings exist here, so there was nothing to unbind.
    Ok(Json(json!({ "id_server_unbind_result": "success" })))
}

#[derive(Deserialize)]
pub struct ResetPassword {
    new_password: String,
    #[serde(default = "yes")]
    logout_devices: bool,
}

fn yes() -> bool {
    true
}

/// `POST /_synapse/admin/v1/reset_password/{userId}`
pub async fn reset_password(
    State(s): State<Services>,
    AdminSession(who): AdminSession,
    PathArgs(user): PathArgs<String>,
    Body(b): Body<ResetPassword>,
) -> JsonResult {
    let user_id = AdminService::parse_user_id(&user)?;
    (s.admin)
        .reset_password(&who, &user_id, &b.new_password, b.logout_devices)
        .await?;
    Ok(Json(json!({})))
}

/// `GET /_synapse/admin/v1/whois/{userId}`: the client whois shape, one entry per device.
pub async fn whois(
    State(s): State<Services>,
    AdminSession(who): AdminSession,
    PathArgs(user): PathArgs<String>,
) -> JsonResult {
    let user_id = AdminService::parse_user_id(&user)?;
    let devices = s.admin.whois(&who, &user_id).await?;
    let mut out = serde_json::Map::new();
    for d in devices {
        let connections: Vec<Value> = match (d.last_seen_ts, &d.last_seen_ip) {
            (None, None) => vec![],
            (ts, ip) => vec![json!({ "ip": ip, "last_seen": ts, "user_agent": null })],
        };
        let sessions = json!({ "sessions": [{ "connections": connections }] });
        out.insert(d.device_id.to_string(), sessions);
    }
    Ok(Json(json!({ "user_id": user_id, "devices": out })))
}

fn device_json(user_id: &str, d: &DeviceRecord) -> Value {
    json!({
        "device_id": d.device_id,
        "display_name": d.display_name,
        "last_seen_ip": d.last_seen_ip,
        "last_seen_ts": d.last_seen_ts,
        "last_seen_user_agent": null,
        "user_id": user_id,
    })
}

/// `GET /_synapse/admin/v2/users/{userId}/devices`
pub async fn devices(
    State(s): State<Services>,
    AdminSession(who): AdminSession,
    PathArgs(user): PathArgs<String>,
) -> JsonResult {
    let user_id = AdminService::parse_user_id(&user)?;
    let devices = s.admin.devices(&who, &user_id).await?;
    let list: Vec<Value> = (devices.iter())
        .map(|d| device_json(user_id.as_str(), d))
        .collect();
    Ok(Json(json!({ "total": list.len(), "devices": list })))
}

/// `GET /_synapse/admin/v2/users/{userId}/devices/{deviceId}`
pub async fn device(
    State(s): State<Services>,
    AdminSession(who): AdminSession,
    PathArgs((user, device)): PathArgs<(String, String)>,
) -> JsonResult {
    let user_id = AdminService::parse_user_id(&user)?;
    let devices = s.admin.devices(&who, &user_id).await?;
    let d = (devices.iter())
        .find(|d| d.device_id.as_str() == device)
        .ok_or_else(|| Error::not_found("Device not found"))?;
    Ok(Json(device_json(user_id.as_str(), d)))
}

/// `DELETE /_synapse/admin/v2/users/{userId}/devices/{deviceId}`
pub async fn delete_device(
    State(s): State<Services>,
    AdminSession(who): AdminSession,
    PathArgs((user, device)): PathArgs<(String, String)>,
) -> JsonResult {
    let user_id = AdminService::parse_user_id(&user)?;
    let ids = vec![OwnedDeviceId::from(device)];
    s.admin.delete_devices(&who, &user_id, ids).await?;
    Ok(Json(json!({})))
}

#[derive(Deserialize)]
pub struct DeleteDevices {
    devices: Vec<String>,
}

/// `POST /_synapse/admin/v2/users/{userId}/delete_devices`
pub async fn delete_devices(
    State(s): State<Services>,
    AdminSession(who): AdminSession,
    PathArgs(user): PathArgs<String>,
    Body(b): Body<DeleteDevices>,
) -> JsonResult {
    let user_id = AdminService::parse_user_id(&user)?;
    let ids = b.devices.into_iter().map(OwnedDeviceId::from).collect();
    s.admin.delete_devices(&who, &user_id, ids).await?;
    Ok(Json(json!({})))
}

/// `GET /_synapse/admin/v1/users/{userId}/joined_rooms`
pub async fn joined_rooms(
    State(s): State<Services>,
    AdminSession(who): AdminSession,
    PathArgs(user): PathArgs<String>,
) -> JsonResult {
    let user_id = AdminService::parse_user_id(&user)?;
    let rooms = s.admin.joined_rooms(&who, &user_id).await?;
    Ok(Json(json!({ "total": rooms.len(), "joined_rooms": rooms })))
}

#[derive(Deserialize)]
pub struct Suspend {
    suspend: bool,
}

/// `PUT /_synapse/admin/v1/suspend/{userId}` (Synapse's form of the spec's suspend).
pub async fn synapse_suspend(
    State(s): State<Services>,
    AdminSession(who): AdminSession,
    PathArgs(user): PathArgs<String>,
    Body(b): Body<Suspend>,
) -> JsonResult {
    let user_id = AdminService::parse_user_id(&user)?;
    s.admin.set_suspended(&who, &user_id, b.suspend).await?;
    let key = format!("user_{user_id}_suspended");
    Ok(Json(json!({ key: b.suspend })))
}

/// `GET /_synapse/admin/v1/users/{userId}/pushers`
pub async fn pushers(
    State(s): State<Services>,
    AdminSession(who): AdminSession,
    PathArgs(user): PathArgs<String>,
) -> JsonResult {
    let user_id = AdminService::parse_user_id(&user)?;
    let list = s.admin.user_pushers(&who, &user_id).await?;
    let mut out = Vec::with_capacity(list.len());
    for p in &list {
        let mut v = serde_json::to_value(p).map_err(Error::internal)?;
        v["user_name"] = user_id.as_str().into();
        out.push(v);
    }
    let total = out.len();
    Ok(Json(json!({ "pushers": out, "total": total })))
}
