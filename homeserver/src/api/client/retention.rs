//! `GET /_matrix/client/unstable/org.matrix.msc1763/rooms/{roomId}/retention`: the room's
//! effective retention (MSC1763 `m.room.retention` clamped by the server), for members (current
//! or past) and server admins. Lifetimes in milliseconds; an absent key means "kept forever" /
//! "no minimum". A plain axum handler: ruma has no definition of this unstable endpoint.

use axum::Json;
use axum::extract::{Path, Request, State};
use serde_json::{Map, Value};

use crate::api::ruma::access_token;
use crate::error::{Error, Result};
use crate::service::Services;

pub const PATH: &str = "/_matrix/client/unstable/org.matrix.msc1763/rooms/{room_id}/retention";

pub async fn get(
    State(s): State<Services>,
    Path(room_id): Path<String>,
    req: Request,
) -> Result<Json<Value>> {
    let (parts, _) = req.into_parts();
    let probe = http::Request::from_parts(parts, &[][..]);
    let token = access_token(&probe)?.ok_or_else(|| {
        Error::new(
            http::StatusCode::UNAUTHORIZED,
            ruma::api::error::ErrorKind::MissingToken,
            "Missing access token",
        )
    })?;
    let session = s.users.authenticate(&token, None).await?;
    let room_id = ruma::RoomId::parse(&room_id)
        .map_err(|e| Error::invalid_param(format!("bad room id: {e}")))?;
    let r = s
        .retention
        .effective_for_user(&session.user_id, session.is_admin, &room_id)
        .await?;
    let mut out = Map::new();
    if let Some(v) = r.max_lifetime {
        out.insert("max_lifetime".into(), v.into());
    }
    if let Some(v) = r.min_lifetime {
        out.insert("min_lifetime".into(), v.into());
    }
    Ok(Json(Value::Object(out)))
}
