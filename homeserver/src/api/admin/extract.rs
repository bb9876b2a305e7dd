//! Extractors for the Synapse admin routes that answer bad input with Matrix JSON errors
//! (axum's own rejections are plain text).

use axum::extract::{FromRequest, FromRequestParts, Path, Query, Request};
use http::StatusCode;
use http::request::Parts;
use ruma::api::error::ErrorKind;
use serde::de::DeserializeOwned;

use crate::api::ruma::access_token;
use crate::error::Error;
use crate::service::Services;
use crate::service::users::Session;

/// The caller's session, from the access token. Whether they are an admin is the admin
/// service's decision, not this extractor's.
pub struct AdminSession(pub Session);

impl FromRequestParts<Services> for AdminSession {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, s: &Services) -> Result<Self, Error> {
        let mut probe = http::Request::new(&[][..]);
        *probe.uri_mut() = parts.uri.clone();
        *probe.headers_mut() = parts.headers.clone();
        let token = access_token(&probe)?.ok_or_else(|| {
            Error::new(
                StatusCode::UNAUTHORIZED,
                ErrorKind::MissingToken,
                "Missing access token",
            )
        })?;
        let ip = parts
            .extensions
            .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
            .map(|c| c.0.ip());
        Ok(Self(s.users.authenticate(&token, ip).await?))
    }
}

/// Query parameters; a malformed one is `400 M_INVALID_PARAM` naming it.
pub struct Params<T>(pub T);

impl<T: DeserializeOwned + Send> FromRequestParts<Services> for Params<T> {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, s: &Services) -> Result<Self, Error> {
        Query::<T>::from_request_parts(parts, s)
            .await
            .map(|q| Self(q.0))
            .map_err(|e| {
                Error::invalid_param(format!("Invalid query parameter: {}", e.body_text()))
            })
    }
}

/// Path parameters, decoded; a malformed one is `400 M_INVALID_PARAM`.
pub struct PathArgs<T>(pub T);

impl<T: DeserializeOwned + Send> FromRequestParts<Services> for PathArgs<T> {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, s: &Services) -> Result<Self, Error> {
        Path::<T>::from_request_parts(parts, s)
            .await
            .map(|p| Self(p.0))
            .map_err(|e| Error::invalid_param(format!("Invalid path parameter: {}", e.body_text())))
    }
}

/// A JSON body (an empty one reads as `{}`, as Synapse does); malformed JSON is
/// `400 M_NOT_JSON`, the wrong shape `400 M_BAD_JSON` naming the field.
pub struct Body<T>(pub T);

impl<T: DeserializeOwned> FromRequest<Services> for Body<T> {
    type Rejection = Error;

    async fn from_request(req: Request, s: &Services) -> Result<Self, Error> {
        let limit = s.limits.max_request_bytes;
        let bytes = axum::body::to_bytes(req.into_body(), limit)
            .await
            .map_err(|_| Error::too_large("Request body too large"))?;
        let bytes: &[u8] = if bytes.is_empty() { b"{}" } else { &bytes };
        let value: serde_json::Value = serde_json::from_slice(bytes).map_err(|e| {
            Error::new(
                StatusCode::BAD_REQUEST,
                ErrorKind::NotJson,
                format!("Body is not JSON: {e}"),
            )
        })?;
        serde_json::from_value(value)
            .map(Self)
            .map_err(|e| Error::bad_json(format!("Invalid request body: {e}")))
    }
}
