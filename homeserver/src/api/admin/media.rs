//! Synapse's media admin API (`/_synapse/admin/v1/media/...`, a user's and a room's media):
//! Synapse's shapes; the rules are `AdminService`'s (service/admin/media.rs).

use axum::Json;
use axum::extract::State;
use serde::Deserialize;
use serde_json::{Value, json};

use super::extract::{AdminSession, Params, PathArgs};
use super::rooms::parse_room_id;
use super::users::{number, page_dir};
use crate::error::{Error, Result};
use crate::service::Services;
use crate::service::admin::AdminService;
use crate::store::admin_media::{
    AdminMediaRow, MediaListQuery, MediaOrder, MediaStatsQuery, StatsOrder,
};

type JsonResult = Result<Json<Value>>;

#[derive(Deserialize)]
pub struct MediaListParams {
    from: Option<String>,
    limit: Option<String>,
    order_by: Option<String>,
    dir: Option<String>,
}

impl MediaListParams {
    fn into_query(self) -> Result<MediaListQuery> {
        let order = match self.order_by.as_deref().unwrap_or("created_ts") {
            "media_id" => MediaOrder::MediaId,
            "upload_name" => MediaOrder::UploadName,
            "created_ts" => MediaOrder::CreatedTs,
            "last_access_ts" => MediaOrder::LastAccessTs,
            "media_length" => MediaOrder::MediaLength,
            "media_type" => MediaOrder::MediaType,
            "quarantined_by" => MediaOrder::QuarantinedBy,
            "safe_from_quarantine" => MediaOrder::SafeFromQuarantine,
            other => return Err(Error::invalid_param(format!("Unknown order_by {other:?}"))),
        };
        Ok(MediaListQuery {
            from: number("from", &self.from, 0)?,
            limit: number("limit", &self.limit, 100)?,
            order,
            backwards: page_dir(&self.dir, false)?,
        })
    }
}

fn media_json(m: &AdminMediaRow) -> Value {
    json!({
        "media_id": m.media_id,
        "media_type": m.media_type,
        "media_length": m.media_length,
        "upload_name": m.upload_name,
        "created_ts": m.created_ts,
        // Not recorded here (no access tracking): Synapse's "never accessed".
        "last_access_ts": null,
        "quarantined_by": m.quarantined_by,
        "safe_from_quarantine": m.safe_from_quarantine,
    })
}

/// `GET /_synapse/admin/v1/users/{userId}/media`
pub async fn user_media(
    State(s): State<Services>,
    AdminSession(who): AdminSession,
    PathArgs(user): PathArgs<String>,
    Params(p): Params<MediaListParams>,
) -> JsonResult {
    let user_id = AdminService::parse_user_id(&user)?;
    let q = p.into_query()?;
    let (from, limit) = (q.from, q.limit);
    let (rows, total) = s.admin.user_media(&who, &user_id, q).await?;
    let mut out = json!({
        "media": rows.iter().map(media_json).collect::<Vec<_>>(),
        "total": total,
    });
    let next = from.saturating_add(rows.len() as u64);
    if limit > 0 && next < total {
        out["next_token"] = next.into();
    }
    Ok(Json(out))
}

fn deleted(ids: Vec<String>) -> Json<Value> {
    let total = ids.len();
    Json(json!({ "deleted_media": ids, "total": total }))
}

/// `DELETE /_synapse/admin/v1/users/{userId}/media`
pub async fn delete_user_media(
    State(s): State<Services>,
    AdminSession(who): AdminSession,
    PathArgs(user): PathArgs<String>,
    Params(p): Params<MediaListParams>,
) -> JsonResult {
    let user_id = AdminService::parse_user_id(&user)?;
    let ids = (s.admin)
        .delete_user_media(&who, &user_id, p.into_query()?)
        .await?;
    Ok(deleted(ids))
}

/// `GET /_synapse/admin/v1/room/{roomId}/media`
pub async fn room_media(
    State(s): State<Services>,
    AdminSession(who): AdminSession,
    PathArgs(room): PathArgs<String>,
) -> JsonResult {
    let m = s.admin.room_media(&who, &parse_room_id(&room)?).await?;
    Ok(Json(json!({ "local": m.local, "remote": m.remote })))
}

/// `POST /_synapse/admin/v1/media/quarantine/{serverName}/{mediaId}`
pub async fn quarantine(
    State(s): State<Services>,
    AdminSession(who): AdminSession,
    PathArgs((server, media_id)): PathArgs<(String, String)>,
) -> JsonResult {
    s.admin.quarantine_media(&who, &server, &media_id).await?;
    Ok(Json(json!({})))
}

/// `POST /_synapse/admin/v1/media/unquarantine/{serverName}/{mediaId}`
pub async fn unquarantine(
    State(s): State<Services>,
    AdminSession(who): AdminSession,
    PathArgs((server, media_id)): PathArgs<(String, String)>,
) -> JsonResult {
    s.admin.unquarantine_media(&who, &server, &media_id).await?;
    Ok(Json(json!({})))
}

/// `POST /_synapse/admin/v1/room/{roomId}/media/quarantine` (and the older
/// `/quarantine_media/{roomId}`)
pub async fn quarantine_room(
    State(s): State<Services>,
    AdminSession(who): AdminSession,
    PathArgs(room): PathArgs<String>,
) -> JsonResult {
    let n = (s.admin)
        .quarantine_room_media(&who, &parse_room_id(&room)?)
        .await?;
    Ok(Json(json!({ "num_quarantined": n })))
}

/// `POST /_synapse/admin/v1/user/{userId}/media/quarantine`
pub async fn quarantine_user(
    State(s): State<Services>,
    AdminSession(who): AdminSession,
    PathArgs(user): PathArgs<String>,
) -> JsonResult {
    let user_id = AdminService::parse_user_id(&user)?;
    let n = s.admin.quarantine_user_media(&who, &user_id).await?;
    Ok(Json(json!({ "num_quarantined": n })))
}

/// `POST /_synapse/admin/v1/media/protect/{mediaId}`
pub async fn protect(
    State(s): State<Services>,
    AdminSession(who): AdminSession,
    PathArgs(media_id): PathArgs<String>,
) -> JsonResult {
    s.admin.protect_media(&who, &media_id, true).await?;
    Ok(Json(json!({})))
}

/// `POST /_synapse/admin/v1/media/unprotect/{mediaId}`
pub async fn unprotect(
    State(s): State<Services>,
    AdminSession(who): AdminSession,
    PathArgs(media_id): PathArgs<String>,
) -> JsonResult {
    s.admin.protect_media(&who, &media_id, false).await?;
    Ok(Json(json!({})))
}

/// `DELETE /_synapse/admin/v1/media/{serverName}/{mediaId}`
pub async fn delete(
    State(s): State<Services>,
    AdminSession(who): AdminSession,
    PathArgs((server, media_id)): PathArgs<(String, String)>,
) -> JsonResult {
    Ok(deleted(
        s.admin.delete_media(&who, &server, &media_id).await?,
    ))
}

#[derive(Deserialize)]
pub struct DeleteOldParams {
    before_ts: Option<String>,
    size_gt: Option<String>,
    keep_profiles: Option<String>,
}

/// `POST /_synapse/admin/v1/media/delete?before_ts=` (and the older
/// `/media/{serverName}/delete`, which synapse-admin calls).
pub async fn delete_old(
    State(s): State<Services>,
    AdminSession(who): AdminSession,
    Params(p): Params<DeleteOldParams>,
) -> JsonResult {
    delete_old_inner(s, who, p).await
}

pub async fn delete_old_on(
    State(s): State<Services>,
    AdminSession(who): AdminSession,
    PathArgs(server): PathArgs<String>,
    Params(p): Params<DeleteOldParams>,
) -> JsonResult {
    if server != s.users.server_name() {
        return Err(Error::invalid_param("Can only delete local media"));
    }
    delete_old_inner(s, who, p).await
}

async fn delete_old_inner(
    s: Services,
    who: crate::service::users::Session,
    p: DeleteOldParams,
) -> JsonResult {
    let before_ts = p
        .before_ts
        .as_deref()
        .ok_or_else(|| Error::invalid_param("Missing integer query parameter 'before_ts'"))?
        .parse::<i64>()
        .ok()
        .filter(|t| *t >= 0)
        .ok_or_else(|| Error::invalid_param("before_ts must be a non-negative integer"))?;
    let size_gt = number("size_gt", &p.size_gt, 0)?;
    let keep_profiles = match p.keep_profiles.as_deref() {
        None | Some("true") => true,
        Some("false") => false,
        Some(_) => return Err(Error::invalid_param("keep_profiles must be true or false")),
    };
    let ids = (s.admin)
        .delete_media_before(&who, before_ts, size_gt, keep_profiles)
        .await?;
    Ok(deleted(ids))
}

#[derive(Deserialize)]
pub struct StatsParams {
    from: Option<String>,
    limit: Option<String>,
    order_by: Option<String>,
    dir: Option<String>,
    from_ts: Option<String>,
    until_ts: Option<String>,
    search_term: Option<String>,
}

fn timestamp(name: &str, v: &Option<String>) -> Result<Option<i64>> {
    v.as_deref()
        .map(|t| {
            t.parse::<i64>().ok().filter(|t| *t >= 0).ok_or_else(|| {
                Error::invalid_param(format!("{name} must be a non-negative integer"))
            })
        })
        .transpose()
}

/// `GET /_synapse/admin/v1/statistics/users/media`
pub async fn statistics(
    State(s): State<Services>,
    AdminSession(who): AdminSession,
    Params(p): Params<StatsParams>,
) -> JsonResult {
    let order = match p.order_by.as_deref().unwrap_or("user_id") {
        "user_id" => StatsOrder::UserId,
        "displayname" => StatsOrder::Displayname,
        "media_length" => StatsOrder::MediaLength,
        "media_count" => StatsOrder::MediaCount,
        other => return Err(Error::invalid_param(format!("Unknown order_by {other:?}"))),
    };
    let q = MediaStatsQuery {
        from: number("from", &p.from, 0)?,
        limit: number("limit", &p.limit, 100)?,
        order,
        backwards: page_dir(&p.dir, false)?,
        from_ts: timestamp("from_ts", &p.from_ts)?,
        until_ts: timestamp("until_ts", &p.until_ts)?,
        search_term: p.search_term.filter(|t| !t.is_empty()),
    };
    let (from, limit) = (q.from, q.limit);
    let (rows, total) = s.admin.media_statistics(&who, q).await?;
    let users: Vec<Value> = (rows.iter())
        .map(|r| {
            json!({
                "user_id": r.user_id, "displayname": r.displayname,
                "media_count": r.media_count, "media_length": r.media_length,
            })
        })
        .collect();
    let n = users.len() as u64;
    let mut out = json!({ "users": users, "total": total });
    if limit > 0 && from + n < total {
        out["next_token"] = (from + n).into();
    }
    Ok(Json(out))
}
