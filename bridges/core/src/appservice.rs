//! The appservice side of a bridge: its registration values and the HTTP receiver for the
//! homeserver's pushes (spec: Application Service API): `PUT /_matrix/app/v1/transactions/{txnId}`
//! (hs_token checked, a retried transaction id answered without reprocessing),
//! `POST /_matrix/app/v1/ping`, `GET /_matrix/app/v1/users/{userId}` and
//! `GET /_matrix/app/v1/rooms/{roomAlias}`.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::store::Db;

/// The `[appservice]` section every bridge has: who it is to the homeserver.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AppserviceConfig {
    /// The registration's `id`.
    pub id: String,
    /// Client-server API base URL of the homeserver.
    pub homeserver_url: String,
    /// The homeserver's `server_name` (user ids and aliases are built with it).
    pub server_name: String,
    /// Where this bridge listens for the homeserver's transactions.
    pub listen: SocketAddr,
    /// The `url` written in the registration (default `http://<listen>`).
    pub url: Option<String>,
    /// Token the bridge presents to the homeserver.
    pub as_token: String,
    /// Token the homeserver presents to the bridge.
    pub hs_token: String,
    /// Localpart of the bridge bot.
    pub sender_localpart: String,
}

impl Default for AppserviceConfig {
    fn default() -> Self {
        Self {
            id: String::new(),
            homeserver_url: "http://127.0.0.1:8008".into(),
            server_name: "localhost".into(),
            listen: "127.0.0.1:9010".parse().expect("addr"),
            url: None,
            as_token: String::new(),
            hs_token: String::new(),
            sender_localpart: String::new(),
        }
    }
}

impl AppserviceConfig {
    /// Refuses a config the homeserver could not use.
    pub fn validate(&self) -> Result<(), String> {
        for (k, v) in [
            ("appservice.id", &self.id),
            ("appservice.as_token", &self.as_token),
            ("appservice.hs_token", &self.hs_token),
            ("appservice.sender_localpart", &self.sender_localpart),
        ] {
            if v.trim().is_empty() {
                return Err(format!("configuration error: {k} must be set"));
            }
        }
        if self.as_token == self.hs_token {
            return Err("configuration error: appservice.as_token and hs_token must differ".into());
        }
        Ok(())
    }

    /// `@sender_localpart:server_name`.
    pub fn bot_user_id(&self) -> String {
        format!("@{}:{}", self.sender_localpart, self.server_name)
    }

    /// The registration file for the homeserver. JSON is valid YAML, so this is a file the
    /// server's (and Synapse's) YAML reader accepts. `alias_regexes` are exclusive alias
    /// namespaces; the bot is the only user.
    pub fn registration(&self, alias_regexes: &[String]) -> Value {
        let url = self
            .url
            .clone()
            .unwrap_or_else(|| format!("http://{}", self.listen));
        let user = format!(
            "@{}:{}",
            regex_escape(&self.sender_localpart),
            regex_escape(&self.server_name)
        );
        json!({
            "id": self.id,
            "url": url,
            "as_token": self.as_token,
            "hs_token": self.hs_token,
            "sender_localpart": self.sender_localpart,
            "rate_limited": false,
            "receive_ephemeral": true,
            "namespaces": {
                "users": [{"exclusive": true, "regex": format!("{user}$")}],
                "aliases": alias_regexes.iter().map(|r| json!({"exclusive": true, "regex": r})).collect::<Vec<_>>(),
                "rooms": [],
            },
        })
    }
}

/// Escapes regex metacharacters (for namespaces built from ids).
pub fn regex_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if "\\.+*?()|[]{}^$#&-~".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// What a bridge does with the homeserver's pushes. Errors are logged; the transaction is
/// still answered 200 once handled, as the events are processed idempotently.
pub trait AppserviceHandler: Send + Sync + 'static {
    /// Timeline events and ephemeral events (receipts, typing) of one transaction.
    fn on_transaction(
        &self,
        events: Vec<Value>,
        ephemeral: Vec<Value>,
    ) -> impl Future<Output = ()> + Send;
    /// The homeserver asks whether this alias exists; true after the bridge created it.
    fn query_alias(&self, alias: String) -> impl Future<Output = bool> + Send;
    /// The homeserver asks whether this user exists; true after the bridge created it.
    fn query_user(&self, user_id: String) -> impl Future<Output = bool> + Send;
}

struct Ctx<H> {
    hs_token: String,
    db: Db,
    handler: Arc<H>,
}

/// The routes the homeserver calls.
pub fn router<H: AppserviceHandler>(cfg: &AppserviceConfig, db: Db, handler: Arc<H>) -> Router {
    let ctx = Arc::new(Ctx {
        hs_token: cfg.hs_token.clone(),
        db,
        handler,
    });
    Router::new()
        .route(
            "/_matrix/app/v1/transactions/{txn_id}",
            put(transaction::<H>),
        )
        .route("/_matrix/app/v1/ping", post(ping::<H>))
        .route("/_matrix/app/v1/users/{user_id}", get(user_query::<H>))
        .route("/_matrix/app/v1/rooms/{alias}", get(alias_query::<H>))
        .fallback(|| async {
            matrix_error(
                StatusCode::NOT_FOUND,
                "M_UNRECOGNIZED",
                "Unrecognized request",
            )
        })
        .with_state(ctx)
}

/// A Matrix-shaped JSON error.
pub fn matrix_error(status: StatusCode, errcode: &str, error: &str) -> Response {
    (status, Json(json!({"errcode": errcode, "error": error}))).into_response()
}

#[derive(Deserialize)]
struct TokenQuery {
    access_token: Option<String>,
}

/// `Authorization: Bearer <hs_token>` (or the deprecated `?access_token=`): 401 when missing,
/// 403 when wrong, compared in constant time.
#[allow(clippy::result_large_err)] // the Err is the finished response, built once per refusal
fn check_hs_token(expected: &str, headers: &HeaderMap, q: &TokenQuery) -> Result<(), Response> {
    let given = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::to_owned)
        .or_else(|| q.access_token.clone());
    match given {
        None => Err(matrix_error(
            StatusCode::UNAUTHORIZED,
            "M_UNAUTHORIZED",
            "Missing hs_token",
        )),
        Some(t) if constant_time_eq(t.as_bytes(), expected.as_bytes()) => Ok(()),
        Some(_) => Err(matrix_error(
            StatusCode::FORBIDDEN,
            "M_FORBIDDEN",
            "Invalid hs_token",
        )),
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

async fn transaction<H: AppserviceHandler>(
    State(ctx): State<Arc<Ctx<H>>>,
    Path(txn_id): Path<String>,
    Query(q): Query<TokenQuery>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    if let Err(r) = check_hs_token(&ctx.hs_token, &headers, &q) {
        return r;
    }
    let Ok(body) = serde_json::from_slice::<Value>(&body) else {
        return matrix_error(StatusCode::BAD_REQUEST, "M_NOT_JSON", "Body is not JSON");
    };
    match ctx.db.txn_seen(txn_id.clone()).await {
        Ok(true) => return Json(json!({})).into_response(),
        Ok(false) => {}
        Err(e) => {
            tracing::error!(error = %e, "transaction dedupe lookup failed");
            return matrix_error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "M_UNKNOWN",
                "State store error",
            );
        }
    }
    let list = |k: &str| {
        body.get(k)
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default()
    };
    let events = list("events");
    let mut ephemeral = list("ephemeral");
    ephemeral.extend(list("de.sorunome.msc2409.ephemeral"));
    tracing::debug!(
        txn_id,
        events = events.len(),
        ephemeral = ephemeral.len(),
        "transaction"
    );
    ctx.handler.on_transaction(events, ephemeral).await;
    // Recorded after handling: a crash in between means the homeserver resends it and the
    // handler sees the events again, which it tolerates (idempotent by event id).
    if let Err(e) = ctx.db.first_sight_of_txn(txn_id).await {
        tracing::error!(error = %e, "recording transaction failed");
    }
    Json(json!({})).into_response()
}

async fn ping<H: AppserviceHandler>(
    State(ctx): State<Arc<Ctx<H>>>,
    Query(q): Query<TokenQuery>,
    headers: HeaderMap,
) -> Response {
    if let Err(r) = check_hs_token(&ctx.hs_token, &headers, &q) {
        return r;
    }
    Json(json!({})).into_response()
}

async fn user_query<H: AppserviceHandler>(
    State(ctx): State<Arc<Ctx<H>>>,
    Path(user_id): Path<String>,
    Query(q): Query<TokenQuery>,
    headers: HeaderMap,
) -> Response {
    if let Err(r) = check_hs_token(&ctx.hs_token, &headers, &q) {
        return r;
    }
    if ctx.handler.query_user(user_id).await {
        Json(json!({})).into_response()
    } else {
        matrix_error(StatusCode::NOT_FOUND, "M_NOT_FOUND", "No such user")
    }
}

async fn alias_query<H: AppserviceHandler>(
    State(ctx): State<Arc<Ctx<H>>>,
    Path(alias): Path<String>,
    Query(q): Query<TokenQuery>,
    headers: HeaderMap,
) -> Response {
    if let Err(r) = check_hs_token(&ctx.hs_token, &headers, &q) {
        return r;
    }
    if ctx.handler.query_alias(alias).await {
        Json(json!({})).into_response()
    } else {
        matrix_error(StatusCode::NOT_FOUND, "M_NOT_FOUND", "No such room alias")
    }
}
