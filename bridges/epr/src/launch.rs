//! The EPR's launch link: `GET /patient-room?nhs_number=…` (or `?patient=<logical id>`, a
//! SMART-style launch with the patient's id). Answers with a redirect to the patient's room.
//!
//! Who is asking (docs/BRIDGES.md "Launch"): a browser arriving from the EPR is sent through
//! Handover's own sign-in (legacy SSO: `/login/sso/redirect`, the trust's identity provider —
//! CIS2 — with its single sign-on session, so one click when the clinician is signed in). It
//! comes back to `/patient-room/callback` with a single-use `loginToken`, which the bridge
//! exchanges (`m.login.token`) to learn the user and signs that session out at once. The launch
//! is bound to the browser that started it (a cookie with the random state), so a callback URL
//! cannot be replayed elsewhere. A caller that already holds the user's Matrix access token
//! (an embedded client) may send it as `Authorization: Bearer`; it is checked with `whoami`.
//!
//! The NHS number of a launch in progress is kept in memory only, never on disk or in a log.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use handover_bridge_core::store::AuditEntry;
use matrix_sdk::ruma::{OwnedUserId, RoomId};
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::sync::Mutex;

use crate::fhir::resources::{enc, is_logical_id};
use crate::nhs;
use crate::rooms::{Epr, LaunchError, PatientQuery};

const COOKIE: &str = "handover_epr_launch";
/// Launches in progress at most (oldest expired ones are dropped first).
const MAX_PENDING: usize = 10_000;

pub struct Launch {
    pub epr: Arc<Epr>,
    /// The bridge's URL as browsers reach it.
    public_url: String,
    http: reqwest::Client,
    pending: Mutex<HashMap<String, (PatientQuery, Instant)>>,
}

impl Launch {
    pub fn new(epr: Arc<Epr>, public_url: String) -> Self {
        Self {
            epr,
            public_url: public_url.trim_end_matches('/').to_owned(),
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()
                .expect("http client"),
            pending: Mutex::new(HashMap::new()),
        }
    }
}

pub fn router(l: Arc<Launch>) -> Router {
    Router::new()
        .route("/patient-room", get(start))
        .route("/patient-room/callback", get(callback))
        .fallback(|| async { error(LaunchError::new(404, "not_found", "no such page")) })
        .with_state(l)
}

fn error(e: LaunchError) -> Response {
    let status = StatusCode::from_u16(e.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (
        status,
        axum::Json(json!({"error": e.code, "message": e.message})),
    )
        .into_response()
}

fn see_other(to: &str) -> Response {
    let mut r = StatusCode::SEE_OTHER.into_response();
    if let Ok(v) = HeaderValue::from_str(to) {
        r.headers_mut().insert(header::LOCATION, v);
    }
    r
}

#[derive(Deserialize)]
struct StartQuery {
    nhs_number: Option<String>,
    patient: Option<String>,
}

/// The patient a launch names; a 400 naming the parameter otherwise.
fn parse_query(q: &StartQuery) -> Result<PatientQuery, LaunchError> {
    match (&q.nhs_number, &q.patient) {
        (Some(n), None) => nhs::parse(n).map(PatientQuery::NhsNumber).map_err(|why| {
            LaunchError::new(400, "invalid_nhs_number", format!("nhs_number: {why}"))
        }),
        (None, Some(p)) if is_logical_id(p) => Ok(PatientQuery::LogicalId(p.clone())),
        (None, Some(_)) => Err(LaunchError::new(
            400,
            "invalid_patient",
            "patient: a FHIR logical id is 1-64 letters, digits, '-' or '.'",
        )),
        (Some(_), Some(_)) => Err(LaunchError::new(
            400,
            "ambiguous_patient",
            "give nhs_number or patient, not both",
        )),
        (None, None) => Err(LaunchError::new(
            400,
            "missing_patient",
            "give nhs_number (10 digits) or patient (the FHIR logical id)",
        )),
    }
}

async fn start(
    State(l): State<Arc<Launch>>,
    headers: HeaderMap,
    Query(q): Query<StartQuery>,
) -> Response {
    let query = match parse_query(&q) {
        Ok(q) => q,
        Err(e) => return error(e),
    };
    if let Some(token) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
    {
        return match l.whoami(token).await {
            Ok(user) => l.complete(user, query, "access_token").await,
            Err(e) => error(e),
        };
    }
    let state = hex(&rand::random::<[u8; 32]>());
    {
        let mut p = l.pending.lock().await;
        let ttl = Duration::from_secs(l.epr.cfg.launch.session_secs);
        p.retain(|_, (_, at)| at.elapsed() < ttl);
        if p.len() >= MAX_PENDING {
            return error(LaunchError::new(
                503,
                "busy",
                "too many launches in progress; try again",
            ));
        }
        p.insert(state.clone(), (query, Instant::now()));
    }
    let cfg = &l.epr.cfg;
    let back = format!("{}/patient-room/callback?state={state}", l.public_url);
    let idp = cfg
        .launch
        .sso_idp
        .as_deref()
        .map(|i| format!("/{}", enc(i)))
        .unwrap_or_default();
    let to = format!(
        "{}/_matrix/client/v3/login/sso/redirect{idp}?redirectUrl={}",
        cfg.homeserver_public_url(),
        enc(&back)
    );
    let mut r = see_other(&to);
    let cookie = format!(
        "{COOKIE}={state}; Path=/patient-room; HttpOnly; SameSite=Lax; Max-Age={}",
        cfg.launch.session_secs
    );
    if let Ok(v) = HeaderValue::from_str(&cookie) {
        r.headers_mut().insert(header::SET_COOKIE, v);
    }
    r
}

#[derive(Deserialize)]
struct CallbackQuery {
    state: Option<String>,
    #[serde(rename = "loginToken")]
    login_token: Option<String>,
}

fn cookie_value(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_owned())
}

async fn callback(
    State(l): State<Arc<Launch>>,
    headers: HeaderMap,
    Query(q): Query<CallbackQuery>,
) -> Response {
    let (Some(state), Some(token)) = (q.state, q.login_token) else {
        return error(LaunchError::new(
            400,
            "missing_parameter",
            "state and loginToken are required",
        ));
    };
    if cookie_value(&headers, COOKIE).as_deref() != Some(state.as_str()) {
        return error(LaunchError::new(
            400,
            "launch_not_started_here",
            "this sign-in was not started from this browser; open the link from the EPR again",
        ));
    }
    let pending = l.pending.lock().await.remove(&state);
    let ttl = Duration::from_secs(l.epr.cfg.launch.session_secs);
    let Some((query, _)) = pending.filter(|(_, at)| at.elapsed() < ttl) else {
        return error(LaunchError::new(
            400,
            "launch_expired",
            "this launch has expired or was already used; open the link from the EPR again",
        ));
    };
    match l.user_of_login_token(&token).await {
        Ok(user) => l.complete(user, query, "sso").await,
        Err(e) => error(e),
    }
}

impl Launch {
    fn hs(&self) -> String {
        self.epr
            .cfg
            .appservice
            .homeserver_url
            .trim_end_matches('/')
            .to_owned()
    }

    /// The local user of an access token (`/account/whoami`); not the bridge's own bot.
    async fn whoami(&self, token: &str) -> Result<OwnedUserId, LaunchError> {
        let res = self
            .http
            .get(format!("{}/_matrix/client/v3/account/whoami", self.hs()))
            .bearer_auth(token)
            .send()
            .await
            .map_err(|_| {
                LaunchError::new(502, "homeserver_unavailable", "cannot reach the homeserver")
            })?;
        if !res.status().is_success() {
            return Err(LaunchError::new(
                401,
                "invalid_token",
                "the access token is not valid",
            ));
        }
        let v: Value = res.json().await.unwrap_or_default();
        self.local_user(v["user_id"].as_str())
    }

    fn local_user(&self, user: Option<&str>) -> Result<OwnedUserId, LaunchError> {
        let user: OwnedUserId = user.and_then(|u| u.try_into().ok()).ok_or_else(|| {
            LaunchError::new(
                502,
                "homeserver_unavailable",
                "no user id from the homeserver",
            )
        })?;
        if user.server_name().as_str() != self.epr.cfg.appservice.server_name
            || user.as_str() == self.epr.bot.user_id().as_str()
        {
            return Err(LaunchError::new(
                403,
                "not_a_local_user",
                "launch as a user of this server",
            ));
        }
        Ok(user)
    }

    /// Exchanges the single-use login token for the user's id, then ends that session.
    async fn user_of_login_token(&self, token: &str) -> Result<OwnedUserId, LaunchError> {
        let res = self
            .http
            .post(format!("{}/_matrix/client/v3/login", self.hs()))
            .json(&json!({"type": "m.login.token", "token": token,
                          "initial_device_display_name": "EPR launch (signed out at once)"}))
            .send()
            .await
            .map_err(|_| {
                LaunchError::new(502, "homeserver_unavailable", "cannot reach the homeserver")
            })?;
        if !res.status().is_success() {
            return Err(LaunchError::new(
                401,
                "sign_in_failed",
                "the sign-in was not accepted (expired or already used); open the link from the EPR again",
            ));
        }
        let v: Value = res.json().await.unwrap_or_default();
        // The bridge needed to know who; it keeps no session of the user's.
        if let Some(access) = v["access_token"].as_str() {
            let out = self
                .http
                .post(format!("{}/_matrix/client/v3/logout", self.hs()))
                .bearer_auth(access)
                .json(&json!({}))
                .send()
                .await;
            if !out.is_ok_and(|r| r.status().is_success()) {
                tracing::warn!("ending the launch's sign-in session failed");
            }
        }
        self.local_user(v["user_id"].as_str())
    }

    /// Finds or creates the room, invites the user, redirects to the link. Audited.
    async fn complete(&self, user: OwnedUserId, query: PatientQuery, via: &str) -> Response {
        let epr = &self.epr;
        let outcome = match epr.resolve(&query).await {
            Ok(patient_id) => epr
                .open_for(&patient_id, &user)
                .await
                .map(|room| (room, patient_id)),
            Err(e) => Err(e),
        };
        let (room_id, patient_id) = match outcome {
            Ok(x) => x,
            Err(e) => {
                let _ = epr
                    .store
                    .db
                    .audit(
                        AuditEntry::new("launch", if e.status == 403 { "denied" } else { "error" })
                            .actor(user.as_str())
                            .detail("via", via)
                            .detail("code", e.code),
                    )
                    .await;
                return error(e);
            }
        };
        let _ = epr
            .store
            .db
            .audit(
                AuditEntry::new("launch", "ok")
                    .actor(user.as_str())
                    .target(room_id.as_str())
                    .detail("via", via)
                    .detail("patient", format!("Patient/{patient_id}")),
            )
            .await;
        see_other(&link(
            &epr.cfg.launch.link_template,
            &room_id,
            &epr.cfg.appservice.server_name,
        ))
    }
}

/// The client link for a room from the template.
pub fn link(template: &str, room_id: &RoomId, server_name: &str) -> String {
    template
        .replace("{room_id}", &enc(room_id.as_str()))
        .replace("{server_name}", &enc(server_name))
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(nhs: Option<&str>, patient: Option<&str>) -> Result<PatientQuery, LaunchError> {
        parse_query(&StartQuery {
            nhs_number: nhs.map(str::to_owned),
            patient: patient.map(str::to_owned),
        })
    }

    #[test]
    fn launch_queries() {
        assert_eq!(
            q(Some("943 476 5919"), None).unwrap(),
            PatientQuery::NhsNumber("9434765919".into())
        );
        assert_eq!(
            q(None, Some("pat-1")).unwrap(),
            PatientQuery::LogicalId("pat-1".into())
        );
        let e = q(Some("9434765918"), None).unwrap_err();
        assert_eq!((e.status, e.code), (400, "invalid_nhs_number"));
        assert!(
            !e.message.contains("9434765918"),
            "the number is never echoed"
        );
        assert_eq!(q(None, Some("../x")).unwrap_err().code, "invalid_patient");
        assert_eq!(q(None, None).unwrap_err().code, "missing_patient");
        assert_eq!(
            q(Some("9434765919"), Some("p")).unwrap_err().code,
            "ambiguous_patient"
        );
    }

    #[test]
    fn links_and_cookies() {
        let room = <&RoomId>::try_from("!abc:trust.nhs.uk").unwrap();
        assert_eq!(
            link(
                "https://matrix.to/#/{room_id}?via={server_name}",
                room,
                "trust.nhs.uk"
            ),
            "https://matrix.to/#/%21abc%3Atrust.nhs.uk?via=trust.nhs.uk"
        );
        let mut h = HeaderMap::new();
        h.insert(
            header::COOKIE,
            HeaderValue::from_static("a=1; handover_epr_launch=s3; b=2"),
        );
        assert_eq!(cookie_value(&h, COOKIE).as_deref(), Some("s3"));
        assert_eq!(cookie_value(&h, "c"), None);
        assert_eq!(hex(&[0, 255, 16]), "00ff10");
    }
}
