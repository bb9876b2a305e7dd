//! `/_synapse/admin/v1/registration_tokens...`: Synapse's shapes.

use axum::Json;
use axum::extract::State;
use serde::{Deserialize, Deserializer};
use serde_json::{Value, json};

use super::extract::{AdminSession, Body, Params, PathArgs};
use crate::error::{Error, Result};
use crate::service::Services;
use crate::service::admin::NewToken;
use crate::store::registration_tokens::{RegistrationToken, TokenUpdate};

type JsonResult = Result<Json<Value>>;

fn token_json(t: &RegistrationToken) -> Value {
    json!({
        "token": t.token,
        "uses_allowed": t.uses_allowed,
        "pending": t.pending,
        "completed": t.completed,
        "expiry_time": t.expiry_time,
    })
}

#[derive(Deserialize)]
pub struct ListParams {
    valid: Option<String>,
}

/// `GET /_synapse/admin/v1/registration_tokens[?valid=true|false]`
pub async fn list(
    State(s): State<Services>,
    AdminSession(who): AdminSession,
    Params(p): Params<ListParams>,
) -> JsonResult {
    let valid = match p.valid.as_deref() {
        None => None,
        Some("true") => Some(true),
        Some("false") => Some(false),
        Some(_) => return Err(Error::invalid_param("valid must be true or false")),
    };
    let tokens = s.admin.registration_tokens(&who, valid).await?;
    Ok(Json(json!({
        "registration_tokens": tokens.iter().map(token_json).collect::<Vec<_>>(),
    })))
}

/// `GET /_synapse/admin/v1/registration_tokens/{token}`
pub async fn get(
    State(s): State<Services>,
    AdminSession(who): AdminSession,
    PathArgs(token): PathArgs<String>,
) -> JsonResult {
    Ok(Json(token_json(
        &s.admin.registration_token(&who, &token).await?,
    )))
}

#[derive(Deserialize)]
pub struct NewBody {
    token: Option<String>,
    uses_allowed: Option<u64>,
    expiry_time: Option<i64>,
    length: Option<u64>,
}

/// `POST /_synapse/admin/v1/registration_tokens/new`
pub async fn create(
    State(s): State<Services>,
    AdminSession(who): AdminSession,
    Body(b): Body<NewBody>,
) -> JsonResult {
    if b.token.is_some() && b.length.is_some() {
        return Err(Error::invalid_param(
            "Give either token or length, not both",
        ));
    }
    let new = NewToken {
        token: b.token,
        uses_allowed: b.uses_allowed,
        expiry_time: b.expiry_time,
        length: b.length,
    };
    Ok(Json(token_json(
        &s.admin.create_registration_token(&who, new).await?,
    )))
}

/// Tells "absent" (leave alone) from `null` (no limit).
fn double<'de, D: Deserializer<'de>, T: Deserialize<'de>>(
    d: D,
) -> std::result::Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(d).map(Some)
}

#[derive(Deserialize)]
pub struct UpdateBody {
    #[serde(default, deserialize_with = "double")]
    uses_allowed: Option<Option<u64>>,
    #[serde(default, deserialize_with = "double")]
    expiry_time: Option<Option<i64>>,
}

/// `PUT /_synapse/admin/v1/registration_tokens/{token}`
pub async fn update(
    State(s): State<Services>,
    AdminSession(who): AdminSession,
    PathArgs(token): PathArgs<String>,
    Body(b): Body<UpdateBody>,
) -> JsonResult {
    let u = TokenUpdate {
        uses_allowed: b.uses_allowed,
        expiry_time: b.expiry_time,
    };
    Ok(Json(token_json(
        &s.admin.update_registration_token(&who, &token, u).await?,
    )))
}

/// `DELETE /_synapse/admin/v1/registration_tokens/{token}`
pub async fn delete(
    State(s): State<Services>,
    AdminSession(who): AdminSession,
    PathArgs(token): PathArgs<String>,
) -> JsonResult {
    s.admin.delete_registration_token(&who, &token).await?;
    Ok(Json(json!({})))
}
