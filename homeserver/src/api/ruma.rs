//! The bridge between axum and ruma: the `Ruma<T>` extractor (body limit, access-token auth,
//! typed request), the response wrapper, Matrix error rendering and the route helper.

use std::net::{IpAddr, SocketAddr};

use axum::body::Body;
use axum::extract::{ConnectInfo, FromRequest, RawPathParams, Request};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use http::StatusCode;
use ruma::api::auth_scheme::{
    AccessToken, AccessTokenOptional, AppserviceToken, AppserviceTokenOptional, NoAccessToken,
    NoAuthentication,
};
use ruma::api::error::{ErrorBody, ErrorKind, FromHttpRequestError, StandardErrorBody};
use ruma::api::federation::authentication::{ServerSignatures, XMatrix};
use ruma::api::{IncomingRequest, IncomingRequestExt, OutgoingResponse, OutgoingResponseExt};
use ruma::{OwnedDeviceId, OwnedServerName, OwnedUserId};

use crate::error::Error;
use crate::service::media::{TempUpload, io_error};
use crate::service::users::Session;
use crate::service::{Services, is_upload};

/// How an endpoint authenticates, derived from ruma's `AuthScheme` type.
pub trait AuthRequirement {
    const TOKEN: TokenNeed;
}
#[derive(PartialEq, Eq)]
pub enum TokenNeed {
    Required,
    Optional,
    None,
    /// Federation: a valid X-Matrix signature from a server on the federation list.
    ServerSignature,
}
impl AuthRequirement for ServerSignatures {
    const TOKEN: TokenNeed = TokenNeed::ServerSignature;
}
impl AuthRequirement for AccessToken {
    const TOKEN: TokenNeed = TokenNeed::Required;
}
impl AuthRequirement for AccessTokenOptional {
    const TOKEN: TokenNeed = TokenNeed::Optional;
}
/// Login and register accept an appservice token; without appservices it is an optional user token.
impl AuthRequirement for AppserviceTokenOptional {
    const TOKEN: TokenNeed = TokenNeed::Optional;
}
/// Appservice-only endpoints (`/appservice/{id}/ping`): the service checks it is an `as_token`.
impl AuthRequirement for AppserviceToken {
    const TOKEN: TokenNeed = TokenNeed::Required;
}
impl AuthRequirement for NoAuthentication {
    const TOKEN: TokenNeed = TokenNeed::None;
}
impl AuthRequirement for NoAccessToken {
    const TOKEN: TokenNeed = TokenNeed::None;
}

/// A parsed ruma request plus who sent it.
pub struct Ruma<T> {
    pub body: T,
    pub session: Option<Session>,
    pub client_ip: Option<IpAddr>,
    /// The verified origin server of a federation request signed with X-Matrix.
    pub origin: Option<OwnedServerName>,
    /// A media upload's body, streamed to a temp file as it arrived (the ruma request's `file`
    /// is then empty): many large uploads at once never sit in memory.
    pub upload: Option<TempUpload>,
}

impl<T> Ruma<T> {
    /// The authenticated session. Only call on endpoints whose auth scheme requires a token.
    pub fn session(&self) -> &Session {
        self.session
            .as_ref()
            .expect("endpoint requires authentication; extractor enforced it")
    }
    pub fn user_id(&self) -> &OwnedUserId {
        &self.session().user_id
    }
    pub fn device_id(&self) -> &OwnedDeviceId {
        &self.session().device_id
    }
    /// An upload endpoint's content: the streamed temp file.
    pub fn take_upload(&mut self) -> Option<TempUpload> {
        self.upload.take()
    }
}

impl<T> std::ops::Deref for Ruma<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.body
    }
}

impl<T> FromRequest<Services> for Ruma<T>
where
    T: IncomingRequest + Send + 'static,
    T::Authentication: AuthRequirement,
{
    type Rejection = Error;

    async fn from_request(req: Request, services: &Services) -> Result<Self, Error> {
        let (mut parts, body) = req.into_parts();
        use axum::extract::FromRequestParts;
        let params = RawPathParams::from_request_parts(&mut parts, services)
            .await
            .map_err(|e| Error::invalid_param(format!("bad path parameter: {e}")))?;
        let mut path_args: Vec<String> = params.iter().map(|(_, v)| v.to_owned()).collect();
        // Routes registered without an empty trailing parameter (see router.rs) get it back here.
        use ruma::api::path_builder::PathBuilder;
        let expected = T::PATH_BUILDER
            .all_paths()
            .next()
            .map_or(0, |p| p.matches('{').count());
        while path_args.len() < expected {
            path_args.push(String::new());
        }
        let client_ip = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0.ip());
        let client_ip = services.rate_limits.client_ip(client_ip, &parts.headers);

        // Authenticate from the headers before reading the body, so an anonymous client, a bad
        // token or an unlisted server cannot make us read (up to the upload limit of) a body.
        let need = <T::Authentication as AuthRequirement>::TOKEN;
        let offered = is_server_server_path(parts.uri.path())
            && parts
                .headers
                .get(http::header::AUTHORIZATION)
                .and_then(|h| h.to_str().ok())
                .is_some_and(|h| {
                    h.trim_start()
                        .get(..XMatrix::AUTH_SCHEME.len())
                        .is_some_and(|p| p.eq_ignore_ascii_case(XMatrix::AUTH_SCHEME))
                });
        // Federation: a required X-Matrix header, or one offered on a server-server path; its
        // signature is verified below over the body exactly as received (before any defaulting).
        let x_matrix = if need == TokenNeed::ServerSignature || offered {
            let fed = &services.federation;
            Some(fed.check_x_matrix_header(&parts.headers, client_ip).await?)
        } else {
            None
        };
        let token = || token_from(&parts.headers, &parts.uri);
        let session = match need {
            TokenNeed::ServerSignature => None,
            // No token needed, but one sent still says who is asking (best effort: a bad token
            // is ignored here), so a service can refuse anonymous callers work such as asking
            // another server (federation queries).
            TokenNeed::None => match token() {
                Ok(Some(tok)) => authenticate(services, &tok, &parts.uri, client_ip).await.ok(),
                _ => None,
            },
            need => match (token()?, need) {
                (Some(tok), _) => Some(authenticate(services, &tok, &parts.uri, client_ip).await?),
                (None, TokenNeed::Required) => {
                    return Err(Error::new(
                        StatusCode::UNAUTHORIZED,
                        ErrorKind::MissingToken,
                        "Missing access token",
                    ));
                }
                (None, _) => None,
            },
        };

        let limit = services
            .limits
            .body_limit_for(&parts.method, parts.uri.path());
        // Uploads (client endpoints, never X-Matrix signed) go to a temp file; ruma parses the
        // rest of the request (path, query, headers) with an empty body.
        let (mut bytes, upload) =
            if is_upload(&parts.method, parts.uri.path()) && x_matrix.is_none() {
                let temp = stream_to_file(body, limit, services).await?;
                (Bytes::new(), Some(temp))
            } else {
                (read_body(body, limit).await?, None)
            };
        let origin = match x_matrix {
            Some(x) => {
                let signed = http::Request::from_parts(parts.clone(), bytes.as_ref());
                Some(services.federation.verify_x_matrix(x, &signed).await?)
            }
            None => None,
        };

        // Clients (matrix-nio, older Element) send some POSTs with no body at all; Synapse
        // reads that as `{}`, and so do we. Media uploads keep their (empty) bytes.
        if bytes.is_empty()
            && matches!(parts.method, http::Method::POST | http::Method::PUT)
            && !parts.uri.path().contains("/media/")
        {
            bytes = Bytes::from_static(b"{}");
        }
        let http_req = http::Request::from_parts(parts, bytes.as_ref());

        let args: Vec<&str> = path_args.iter().map(String::as_str).collect();
        // A request type's deserialiser can panic on input it did not expect (ruma 0.25's
        // `LoginInfo` indexes a missing "type" key); that is the client's bad JSON, not a reason
        // to drop the connection.
        let parsed = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            T::try_from_http_request(http_req, &args)
        }));
        let body = match parsed {
            Ok(r) => r.map_err(map_parse_error)?,
            Err(_) => return Err(Error::bad_json("Malformed request body")),
        };
        Ok(Ruma {
            body,
            session,
            client_ip,
            origin,
            upload,
        })
    }
}

/// A user's access token, or an appservice's `as_token` (acting as its sender, or as the
/// `?user_id=` it asserts, on the `?device_id=` of MSC3202).
async fn authenticate(
    services: &Services,
    token: &str,
    uri: &http::Uri,
    client_ip: Option<IpAddr>,
) -> Result<Session, Error> {
    let Some(a) = services.appservices.registry().by_as_token(token) else {
        return services.users.authenticate(token, client_ip).await;
    };
    let mut user_id = None;
    let mut device_id = None;
    for (k, v) in uri.query().map(url_query_pairs).into_iter().flatten() {
        match k.as_str() {
            "user_id" => {
                let id = OwnedUserId::try_from(v.as_str())
                    .map_err(|e| Error::invalid_param(format!("user_id is not a user id: {e}")))?;
                user_id = Some(id);
            }
            "device_id" | "org.matrix.msc3202.device_id" => device_id = Some(v.as_str().into()),
            _ => {}
        }
    }
    services
        .appservices
        .session(a, token, user_id, device_id)
        .await
}

/// Paths of the server-server API, where an X-Matrix header is verified whenever present.
fn is_server_server_path(path: &str) -> bool {
    path.starts_with("/_matrix/federation/") || path.starts_with("/_matrix/key/")
}

/// How much of an oversized body we read and discard before answering 413: clients that send
/// the whole body before reading (reqwest, matrix-sdk) then get the 413 instead of a reset
/// connection. Beyond this the connection is simply dropped.
const DRAIN_LIMIT: usize = 64 * 1024 * 1024;

/// Streams an upload's body into a temp file, up to `limit` bytes; a larger body is drained
/// (bounded) and refused, and the partial file removed (dropped).
async fn stream_to_file(
    body: Body,
    limit: usize,
    services: &Services,
) -> Result<TempUpload, Error> {
    use http_body_util::BodyExt;
    let mut temp = services.media.begin_upload().await?;
    let mut body = body;
    let mut seen = 0usize;
    while let Some(frame) = body.frame().await {
        let frame =
            frame.map_err(|e| Error::bad_json(format!("could not read request body: {e}")))?;
        let Ok(data) = frame.into_data() else {
            continue;
        };
        seen += data.len();
        if seen > limit {
            if seen > DRAIN_LIMIT {
                break;
            }
            continue;
        }
        temp.write(&data).await.map_err(io_error)?;
    }
    if seen > limit {
        return Err(Error::too_large(format!(
            "request body exceeds the limit of {limit} bytes"
        )));
    }
    temp.finish().await.map_err(io_error)?;
    Ok(temp)
}

/// Buffers the body up to `limit` bytes; a larger body is drained (bounded) and refused.
async fn read_body(body: Body, limit: usize) -> Result<Bytes, Error> {
    use http_body_util::BodyExt;
    let mut body = body;
    let mut buf = bytes::BytesMut::new();
    let mut seen = 0usize;
    while let Some(frame) = body.frame().await {
        let frame =
            frame.map_err(|e| Error::bad_json(format!("could not read request body: {e}")))?;
        let Ok(data) = frame.into_data() else {
            continue;
        };
        seen += data.len();
        if seen > limit {
            if seen > DRAIN_LIMIT {
                break;
            }
            continue;
        }
        buf.extend_from_slice(&data);
    }
    if seen > limit {
        return Err(Error::too_large(format!(
            "request body exceeds the limit of {limit} bytes"
        )));
    }
    Ok(buf.freeze())
}

/// The token from `Authorization: Bearer`. A token in the query string (`?access_token=`, no
/// longer in the spec) is refused, never read: URLs end up in proxy and access logs, so a
/// client that sends one is told to move it to the header rather than silently served.
pub(crate) fn access_token(req: &http::Request<&[u8]>) -> Result<Option<String>, Error> {
    token_from(req.headers(), req.uri())
}

/// [`access_token`] from a request's head (the body need not have been read).
fn token_from(headers: &http::HeaderMap, uri: &http::Uri) -> Result<Option<String>, Error> {
    if query_has_token(uri.query()) {
        return Err(Error::new(
            StatusCode::UNAUTHORIZED,
            ErrorKind::MissingToken,
            "Access tokens in the query string are not accepted; \
             send them in an Authorization: Bearer header",
        ));
    }
    if let Some(h) = headers.get(http::header::AUTHORIZATION) {
        let h = h
            .to_str()
            .map_err(|_| Error::unknown_token("Malformed Authorization header"))?;
        return match h.strip_prefix("Bearer ") {
            Some(t) => Ok(Some(t.trim().to_owned())),
            None => Err(Error::unknown_token(
                "Authorization header is not a Bearer token",
            )),
        };
    }
    Ok(None)
}

/// Whether the query string carries an `access_token` parameter (percent-encoded or not).
fn query_has_token(query: Option<&str>) -> bool {
    query.is_some_and(|q| url_query_pairs(q).any(|(k, _)| k == "access_token"))
}

fn url_query_pairs(q: &str) -> impl Iterator<Item = (String, String)> + '_ {
    q.split('&').filter_map(|kv| {
        let (k, v) = kv.split_once('=')?;
        let dec = |s: &str| percent_decode(s);
        Some((dec(k), dec(v)))
    })
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).ok();
                match hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                    Some(b) => {
                        out.push(b);
                        i += 3;
                        continue;
                    }
                    None => out.push(b'%'),
                }
            }
            b'+' => out.push(b' '),
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn map_parse_error(e: FromHttpRequestError) -> Error {
    use ruma::api::error::DeserializationError as D;
    match e {
        FromHttpRequestError::Deserialization(D::Json(j)) => {
            if j.is_syntax() || j.is_eof() {
                Error::new(
                    StatusCode::BAD_REQUEST,
                    ErrorKind::NotJson,
                    format!("Body is not valid JSON: {j}"),
                )
            } else {
                Error::bad_json(format!("Invalid request body: {j}"))
            }
        }
        FromHttpRequestError::Deserialization(D::Ident(id)) => {
            Error::invalid_param(format!("Invalid identifier: {id}"))
        }
        FromHttpRequestError::Deserialization(D::Query(q)) => {
            Error::invalid_param(format!("Invalid query parameters: {q}"))
        }
        FromHttpRequestError::MethodMismatch { .. } => Error::unrecognized(
            StatusCode::METHOD_NOT_ALLOWED,
            "Method not allowed on this endpoint",
        ),
        other => Error::bad_json(format!("Invalid request: {other}")),
    }
}

/// A ruma response, rendered with ruma's own serialiser.
pub struct RumaResponse<T>(pub T);

impl<T: OutgoingResponse> IntoResponse for RumaResponse<T> {
    fn into_response(self) -> Response {
        match self.0.try_into_http_response::<Vec<u8>>() {
            Ok(res) => res.map(Body::from).into_response(),
            Err(e) => {
                Error::internal(format!("response serialisation failed: {e}")).into_response()
            }
        }
    }
}

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        let res = match self {
            Error::Matrix {
                status,
                kind,
                message,
            } => {
                let err = ruma::api::error::Error::new(
                    status,
                    ErrorBody::Standard(StandardErrorBody::new(kind, message)),
                );
                err.try_into_http_response::<Vec<u8>>()
            }
            Error::Uiaa(info) => ruma::api::client::uiaa::UiaaResponse::AuthResponse(*info)
                .try_into_http_response::<Vec<u8>>(),
        };
        match res {
            Ok(r) => r.map(Body::from).into_response(),
            Err(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal error").into_response(),
        }
    }
}

/// The handler result type: a ruma response or a Matrix error.
pub type ApiResult<T> = Result<RumaResponse<T>, Error>;

#[cfg(test)]
mod tests {
    use super::*;

    fn req(uri: &str, bearer: Option<&str>) -> http::Request<&'static [u8]> {
        let mut b = http::Request::builder().uri(uri);
        if let Some(t) = bearer {
            b = b.header(http::header::AUTHORIZATION, format!("Bearer {t}"));
        }
        b.body(&b""[..]).unwrap()
    }

    #[test]
    fn query_string_token_is_refused_never_read() {
        for uri in [
            "/_matrix/client/v3/account/whoami?access_token=hot_x",
            "/_matrix/client/v3/sync?timeout=0&access%5Ftoken=hot_x",
        ] {
            let err = access_token(&req(uri, None)).unwrap_err();
            assert_eq!(err.kind(), Some(&ErrorKind::MissingToken), "{uri}");
            // Even next to a valid header: the request still put a token into a URL.
            assert!(access_token(&req(uri, Some("hot_y"))).is_err(), "{uri}");
        }
        let t = access_token(&req("/_matrix/client/v3/sync?since=s1", Some("hot_y")));
        assert_eq!(t.unwrap().as_deref(), Some("hot_y"));
        assert_eq!(access_token(&req("/x?token=a", None)).unwrap(), None);
    }
}
