//! `/_synapse/admin/v1/rooms...` and `/_synapse/admin/v1/event_reports...`: Synapse's shapes.

use axum::Json;
use axum::extract::State;
use serde::Deserialize;
use serde_json::{Value, json};

use super::extract::{AdminSession, Params, PathArgs};
use super::users::{number, page_dir};
use crate::error::{Error, Result};
use crate::service::Services;
use crate::service::admin::{LabelledReport, RoomListQuery, RoomOrder, RoomSummary};
use crate::store::admin::ReportListQuery;

type JsonResult = Result<Json<Value>>;

pub(super) fn parse_room_id(raw: &str) -> Result<ruma::OwnedRoomId> {
    ruma::RoomId::parse(raw)
        .map_err(|e| Error::invalid_param(format!("Invalid room id {raw:?}: {e}")))
}

#[derive(Deserialize)]
pub struct RoomListParams {
    from: Option<String>,
    limit: Option<String>,
    order_by: Option<String>,
    dir: Option<String>,
    search_term: Option<String>,
}

fn room_order(v: Option<&str>) -> Result<RoomOrder> {
    Ok(match v.unwrap_or("name") {
        "name" | "alphabetical" => RoomOrder::Name,
        "canonical_alias" => RoomOrder::CanonicalAlias,
        "joined_members" | "size" => RoomOrder::JoinedMembers,
        "joined_local_members" => RoomOrder::JoinedLocalMembers,
        "version" => RoomOrder::Version,
        "creator" => RoomOrder::Creator,
        "encryption" => RoomOrder::Encryption,
        "federatable" => RoomOrder::Federatable,
        "public" => RoomOrder::Public,
        "join_rules" => RoomOrder::JoinRules,
        "guest_access" => RoomOrder::GuestAccess,
        "history_visibility" => RoomOrder::HistoryVisibility,
        "state_events" => RoomOrder::StateEvents,
        other => return Err(Error::invalid_param(format!("Unknown order_by {other:?}"))),
    })
}

fn room_json(s: &RoomSummary) -> Value {
    json!({
        "room_id": s.row.room_id,
        "name": s.name,
        "canonical_alias": s.canonical_alias,
        "joined_members": s.joined_members,
        "joined_local_members": s.joined_local_members,
        "version": s.row.version,
        "creator": s.row.creator,
        "encryption": s.encryption,
        "federatable": s.federatable,
        "public": s.row.is_public,
        "join_rules": s.join_rules,
        "guest_access": s.guest_access,
        "history_visibility": s.history_visibility,
        "state_events": s.state_events,
        "room_type": s.room_type,
    })
}

/// `GET /_synapse/admin/v1/rooms`
pub async fn list(
    State(s): State<Services>,
    AdminSession(who): AdminSession,
    Params(p): Params<RoomListParams>,
) -> JsonResult {
    let q = RoomListQuery {
        from: number("from", &p.from, 0)?,
        limit: number("limit", &p.limit, 100)?,
        order: room_order(p.order_by.as_deref())?,
        backwards: page_dir(&p.dir, false)?,
        search_term: p.search_term.filter(|t| !t.is_empty()),
    };
    let (from, limit) = (q.from, q.limit);
    let (rooms, total) = s.admin.list_rooms(&who, q).await?;
    let mut out = json!({
        "rooms": rooms.iter().map(room_json).collect::<Vec<_>>(),
        "offset": from,
        "total_rooms": total,
    });
    let next = from.saturating_add(rooms.len() as u64);
    if limit > 0 && next < total {
        out["next_batch"] = next.into();
    }
    if from > 0 {
        out["prev_batch"] = from.saturating_sub(limit).into();
    }
    Ok(Json(out))
}

/// `GET /_synapse/admin/v1/rooms/{roomId}`
pub async fn get(
    State(s): State<Services>,
    AdminSession(who): AdminSession,
    PathArgs(room): PathArgs<String>,
) -> JsonResult {
    let room_id = parse_room_id(&room)?;
    let r = s.admin.room_details(&who, &room_id).await?;
    let mut v = room_json(&r);
    v["topic"] = json!(r.topic);
    v["avatar"] = json!(r.avatar);
    v["forgotten"] = false.into();
    Ok(Json(v))
}

/// `GET /_synapse/admin/v1/rooms/{roomId}/members`
pub async fn members(
    State(s): State<Services>,
    AdminSession(who): AdminSession,
    PathArgs(room): PathArgs<String>,
) -> JsonResult {
    let room_id = parse_room_id(&room)?;
    let members = s.admin.room_members(&who, &room_id).await?;
    Ok(Json(json!({ "members": members, "total": members.len() })))
}

/// `GET /_synapse/admin/v1/rooms/{roomId}/state`
pub async fn state(
    State(s): State<Services>,
    AdminSession(who): AdminSession,
    PathArgs(room): PathArgs<String>,
) -> JsonResult {
    let room_id = parse_room_id(&room)?;
    let state = s.admin.room_state(&who, &room_id).await?;
    Ok(Json(json!({ "state": state })))
}

#[derive(Deserialize)]
pub struct ReportParams {
    from: Option<String>,
    limit: Option<String>,
    dir: Option<String>,
    user_id: Option<String>,
    room_id: Option<String>,
}

fn report_json(r: &LabelledReport) -> Value {
    let p = &r.report;
    json!({
        "id": p.id,
        "received_ts": p.received_ts,
        "room_id": p.room_id,
        "name": r.room_name,
        "canonical_alias": r.canonical_alias,
        "event_id": p.event_id,
        "user_id": p.reporter,
        "reason": p.reason,
        "score": p.score,
        "sender": p.sender,
    })
}

/// `GET /_synapse/admin/v1/event_reports` (newest first unless `dir=f`).
pub async fn reports(
    State(s): State<Services>,
    AdminSession(who): AdminSession,
    Params(p): Params<ReportParams>,
) -> JsonResult {
    let q = ReportListQuery {
        from: number("from", &p.from, 0)?,
        limit: number("limit", &p.limit, 100)?,
        backwards: page_dir(&p.dir, true)?,
        room_id: p.room_id.filter(|r| !r.is_empty()),
        reporter: p.user_id.filter(|u| !u.is_empty()),
    };
    let (from, limit) = (q.from, q.limit);
    let (rows, total) = s.admin.event_reports(&who, q).await?;
    let mut out = json!({
        "event_reports": rows.iter().map(report_json).collect::<Vec<_>>(),
        "total": total,
    });
    let next = from.saturating_add(rows.len() as u64);
    if limit > 0 && next < total {
        out["next_token"] = next.into();
    }
    Ok(Json(out))
}

fn report_id(raw: &str) -> Result<i64> {
    raw.parse::<i64>()
        .ok()
        .filter(|id| *id >= 0)
        .ok_or_else(|| Error::invalid_param("The report ID must be a non-negative integer"))
}

/// `GET /_synapse/admin/v1/event_reports/{reportId}`: the report with `event_json`.
pub async fn report(
    State(s): State<Services>,
    AdminSession(who): AdminSession,
    PathArgs(id): PathArgs<String>,
) -> JsonResult {
    let (r, event) = s.admin.event_report(&who, report_id(&id)?).await?;
    let mut v = report_json(&r);
    v["event_json"] = event.unwrap_or(Value::Null);
    Ok(Json(v))
}

/// `DELETE /_synapse/admin/v1/event_reports/{reportId}`
pub async fn delete_report(
    State(s): State<Services>,
    AdminSession(who): AdminSession,
    PathArgs(id): PathArgs<String>,
) -> JsonResult {
    s.admin.delete_event_report(&who, report_id(&id)?).await?;
    Ok(Json(json!({})))
}
