//! Synapse's room moderation endpoints: room messages, delete room (v1, answered when done;
//! v2, a background job) with its status, block room, purge history with its status. Request
//! and response shapes follow Synapse's admin API docs; the work and the admin check are in
//! `AdminService` (service/admin/room_{delete,history,block,jobs}.rs).

use axum::Json;
use axum::extract::State;
use ruma::api::client::filter::RoomEventFilter;
use serde::Deserialize;
use serde_json::{Value, json};

use super::extract::{AdminSession, Body, Params, PathArgs};
use super::rooms::parse_room_id;
use super::users::number;
use crate::error::{Error, Result};
use crate::service::Services;
use crate::service::admin::{DeleteRoomParams, MessagesQuery, PurgePoint, RoomJob};
use crate::service::filter::parse_token;
use crate::store::room_jobs::{JobKind, JobStatus};
use crate::store::rooms::Direction;

type JsonResult = Result<Json<Value>>;

#[derive(Deserialize)]
pub struct MessagesParams {
    from: Option<String>,
    to: Option<String>,
    limit: Option<String>,
    dir: Option<String>,
    filter: Option<String>,
}

fn token(name: &str, t: Option<&str>) -> Result<Option<i64>> {
    t.map(|t| {
        parse_token(t).ok_or_else(|| Error::invalid_param(format!("Invalid {name} token {t:?}")))
    })
    .transpose()
}

/// `GET /_synapse/admin/v1/rooms/{roomId}/messages`: the client `/messages` for admins
/// (`dir` defaults to `f`, `limit` to 10, as Synapse's docs say).
pub async fn messages(
    State(s): State<Services>,
    AdminSession(who): AdminSession,
    PathArgs(room): PathArgs<String>,
    Params(p): Params<MessagesParams>,
) -> JsonResult {
    let room_id = parse_room_id(&room)?;
    let dir = match p.dir.as_deref() {
        None | Some("f") => Direction::Forward,
        Some("b") => Direction::Backward,
        Some(_) => return Err(Error::invalid_param("dir must be f or b")),
    };
    let filter: RoomEventFilter = match p.filter.as_deref() {
        None => RoomEventFilter::default(),
        Some(f) => serde_json::from_str(f)
            .map_err(|e| Error::invalid_param(format!("Invalid filter: {e}")))?,
    };
    let q = MessagesQuery {
        from: token("from", p.from.as_deref())?,
        to: token("to", p.to.as_deref())?,
        dir,
        limit: number("limit", &p.limit, 10)?.min(1000) as usize,
        filter,
    };
    let m = s.admin.room_messages(&who, &room_id, q).await?;
    let mut out = json!({ "chunk": m.chunk, "start": m.start });
    if let Some(end) = m.end {
        out["end"] = end.into();
    }
    if !m.state.is_empty() {
        out["state"] = m.state.into();
    }
    Ok(Json(out))
}

fn yes() -> bool {
    true
}

/// The body of both delete room versions (at least `{}`).
#[derive(Deserialize)]
pub struct DeleteBody {
    new_room_user_id: Option<String>,
    room_name: Option<String>,
    message: Option<String>,
    #[serde(default)]
    block: bool,
    #[serde(default = "yes")]
    purge: bool,
    #[serde(default)]
    force_purge: bool,
}

impl DeleteBody {
    fn into_params(self) -> Result<DeleteRoomParams> {
        let new_room_user_id = match self.new_room_user_id {
            Some(u) => Some(crate::service::admin::AdminService::parse_user_id(&u)?),
            None => None,
        };
        Ok(DeleteRoomParams {
            new_room_user_id,
            room_name: self.room_name,
            message: self.message,
            block: self.block,
            purge: self.purge,
            force_purge: self.force_purge,
        })
    }
}

/// `DELETE /_synapse/admin/v1/rooms/{roomId}` (and the older `POST .../delete`): done before
/// the answer, which is the shutdown's outcome.
pub async fn delete_v1(
    State(s): State<Services>,
    AdminSession(who): AdminSession,
    PathArgs(room): PathArgs<String>,
    Body(b): Body<DeleteBody>,
) -> JsonResult {
    let room_id = parse_room_id(&room)?;
    let r = s
        .admin
        .delete_room_now(&who, &room_id, b.into_params()?)
        .await?;
    Ok(Json(serde_json::to_value(r).map_err(Error::internal)?))
}

/// `DELETE /_synapse/admin/v2/rooms/{roomId}`: `{"delete_id"}` at once.
pub async fn delete_v2(
    State(s): State<Services>,
    AdminSession(who): AdminSession,
    PathArgs(room): PathArgs<String>,
    Body(b): Body<DeleteBody>,
) -> JsonResult {
    let room_id = parse_room_id(&room)?;
    let id = s
        .admin
        .delete_room(&who, &room_id, b.into_params()?)
        .await?;
    Ok(Json(json!({ "delete_id": id })))
}

fn delete_json(j: &RoomJob) -> Value {
    let mut v = json!({
        "delete_id": j.id,
        "room_id": j.room_id,
        "status": j.status.as_str(),
        "shutdown_room": j.shutdown.clone().unwrap_or_default(),
    });
    if let Some(e) = &j.error {
        v["error"] = e.as_str().into();
    }
    v
}

/// `GET /_synapse/admin/v2/rooms/{roomId}/delete_status`
pub async fn delete_status_by_room(
    State(s): State<Services>,
    AdminSession(who): AdminSession,
    PathArgs(room): PathArgs<String>,
) -> JsonResult {
    let room_id = parse_room_id(&room)?;
    let jobs = s.admin.room_delete_jobs(&who, &room_id).await?;
    Ok(Json(
        json!({ "results": jobs.iter().map(delete_json).collect::<Vec<_>>() }),
    ))
}

/// `GET /_synapse/admin/v2/rooms/delete_status/{deleteId}`
pub async fn delete_status(
    State(s): State<Services>,
    AdminSession(who): AdminSession,
    PathArgs(id): PathArgs<String>,
) -> JsonResult {
    let job = s.admin.room_job(&who, JobKind::Delete, &id).await?;
    Ok(Json(delete_json(&job)))
}

#[derive(Deserialize)]
pub struct BlockBody {
    block: bool,
}

/// `PUT /_synapse/admin/v1/rooms/{roomId}/block`
pub async fn put_block(
    State(s): State<Services>,
    AdminSession(who): AdminSession,
    PathArgs(room): PathArgs<String>,
    Body(b): Body<BlockBody>,
) -> JsonResult {
    let room_id = parse_room_id(&room)?;
    let block = s.admin.set_room_blocked(&who, &room_id, b.block).await?;
    Ok(Json(json!({ "block": block })))
}

/// `GET /_synapse/admin/v1/rooms/{roomId}/block`
pub async fn get_block(
    State(s): State<Services>,
    AdminSession(who): AdminSession,
    PathArgs(room): PathArgs<String>,
) -> JsonResult {
    let room_id = parse_room_id(&room)?;
    Ok(Json(match s.admin.room_blocked(&who, &room_id).await? {
        Some(by) => json!({ "block": true, "user_id": by }),
        None => json!({ "block": false }),
    }))
}

#[derive(Deserialize)]
pub struct PurgeBody {
    #[serde(default)]
    delete_local_events: bool,
    purge_up_to_event_id: Option<String>,
    purge_up_to_ts: Option<i64>,
}

async fn purge(
    s: Services,
    who: crate::service::users::Session,
    room: &str,
    event: Option<String>,
    b: PurgeBody,
) -> JsonResult {
    let room_id = parse_room_id(room)?;
    let point = match (event.or(b.purge_up_to_event_id), b.purge_up_to_ts) {
        (Some(e), _) => PurgePoint::Event(
            ruma::EventId::parse(&e)
                .map_err(|err| Error::invalid_param(format!("Invalid event id {e:?}: {err}")))?,
        ),
        (None, Some(ts)) => PurgePoint::Ts(ts),
        (None, None) => {
            return Err(Error::missing_param(
                "must specify purge_up_to_event_id or purge_up_to_ts",
            ));
        }
    };
    let id = s
        .admin
        .purge_history(&who, &room_id, point, b.delete_local_events)
        .await?;
    Ok(Json(json!({ "purge_id": id })))
}

/// `POST /_synapse/admin/v1/purge_history/{roomId}`
pub async fn purge_history(
    State(s): State<Services>,
    AdminSession(who): AdminSession,
    PathArgs(room): PathArgs<String>,
    Body(b): Body<PurgeBody>,
) -> JsonResult {
    purge(s, who, &room, None, b).await
}

/// `POST /_synapse/admin/v1/purge_history/{roomId}/{eventId}`
pub async fn purge_history_to(
    State(s): State<Services>,
    AdminSession(who): AdminSession,
    PathArgs((room, event)): PathArgs<(String, String)>,
    Body(b): Body<PurgeBody>,
) -> JsonResult {
    purge(s, who, &room, Some(event), b).await
}

/// `GET /_synapse/admin/v1/purge_history_status/{purgeId}`: `active`, `complete` or
/// `failed` (with `error`); a job not yet started reads as active, as in Synapse.
pub async fn purge_status(
    State(s): State<Services>,
    AdminSession(who): AdminSession,
    PathArgs(id): PathArgs<String>,
) -> JsonResult {
    let job = s.admin.room_job(&who, JobKind::PurgeHistory, &id).await?;
    let status = match job.status {
        JobStatus::Scheduled => JobStatus::Active,
        other => other,
    };
    let mut v = json!({ "status": status.as_str() });
    if let Some(e) = job.error {
        v["error"] = e.into();
    }
    Ok(Json(v))
}
