//! Rota import from a FHIR R4 server (UK Core shapes), beside the CSV import:
//! - a `PractitionerRole` is an on-call role when one of its `code` codings has the system
//!   [`ROLE_SYSTEM`] and a configured role id as code (other roles are not this bridge's);
//!   `active: false` ones are ignored;
//! - the holder is the Matrix user named by a `telecom` entry (system `url` or `other`) holding
//!   a Matrix URI, `matrix:u/<localpart>:<server>`, on the PractitionerRole or else on its
//!   `practitioner` (a user of this server);
//! - when it is given, the `Schedule`s whose `actor` is the PractitionerRole say when: each of
//!   their `Slot`s with status `busy` (rostered) is one rota slot `start`–`end`; without a
//!   Schedule, the PractitionerRole's `period` (start and end) is the slot.
//!
//! An import replaces every FHIR-imported slot (CSV slots stay): the FHIR server is the source
//! of truth for what came from it. Any error (listed by resource) stores nothing.
//! `POST /rota/fhir` (admin bearer token) runs one; `[fhir_rota] poll_secs` runs them
//! periodically.

use std::collections::HashMap;
use std::time::Duration;

use serde_json::Value;

use crate::alert::FieldError;
use crate::config::{Config, FhirRotaConfig};
use crate::roles::Slot;

/// The CodeSystem of on-call role codes (code = the `[[roles]]` id).
pub const ROLE_SYSTEM: &str = "https://handover.nhs.uk/fhir/CodeSystem/oncall-role";

/// Search result pages followed at most (100 entries each).
const MAX_PAGES: usize = 100;

/// What the FHIR server holds about on-call roles.
#[derive(Debug, Default)]
pub struct FhirRota {
    pub roles: Vec<Value>,
    /// By logical id.
    pub practitioners: HashMap<String, Value>,
    pub schedules: Vec<Value>,
    pub slots: Vec<Value>,
}

fn err(errors: &mut Vec<FieldError>, field: String, error: impl Into<String>) {
    errors.push(FieldError {
        field,
        error: error.into(),
    });
}

/// The on-call role ids a PractitionerRole carries (configured or not).
pub fn role_codes(pr: &Value) -> Vec<String> {
    let codings = pr["code"].as_array().into_iter().flatten();
    codings
        .flat_map(|c| c["coding"].as_array().into_iter().flatten())
        .filter(|c| c["system"] == ROLE_SYSTEM)
        .filter_map(|c| c["code"].as_str().map(str::to_owned))
        .collect()
}

/// `@user:server` from a `telecom` list holding a Matrix URI.
fn matrix_user(telecom: &Value) -> Option<String> {
    telecom.as_array()?.iter().find_map(|t| {
        let system = t["system"].as_str().unwrap_or("url");
        let value = t["value"].as_str()?;
        let rest = value.strip_prefix("matrix:u/")?;
        let id = rest.split(['?', '#']).next()?;
        (matches!(system, "url" | "other") && id.contains(':')).then(|| format!("@{id}"))
    })
}

fn millis(v: &Value) -> Option<i64> {
    chrono::DateTime::parse_from_rfc3339(v.as_str()?)
        .ok()
        .map(|t| t.timestamp_millis())
}

/// The rota slots in `data`, or every error found.
pub fn slots_of(cfg: &Config, data: &FhirRota) -> Result<Vec<Slot>, Vec<FieldError>> {
    let (mut slots, mut errors) = (Vec::new(), Vec::new());
    let suffix = format!(":{}", cfg.appservice.server_name);
    for pr in &data.roles {
        let id = pr["id"].as_str().unwrap_or_default();
        let field = format!("PractitionerRole/{id}");
        let roles: Vec<String> = role_codes(pr)
            .into_iter()
            .filter(|r| cfg.role(r).is_some())
            .collect();
        if roles.is_empty() || pr["active"] == false {
            continue;
        }
        let practitioner = pr["practitioner"]["reference"]
            .as_str()
            .and_then(|r| r.strip_prefix("Practitioner/"))
            .and_then(|p| data.practitioners.get(p));
        let user = matrix_user(&pr["telecom"])
            .or_else(|| practitioner.and_then(|p| matrix_user(&p["telecom"])));
        let Some(user) = user else {
            err(
                &mut errors,
                field,
                "no Matrix user: a telecom {system: url, value: matrix:u/<user>:<server>} on the PractitionerRole or its Practitioner",
            );
            continue;
        };
        if !user.ends_with(&suffix) {
            err(
                &mut errors,
                field,
                format!("{user} is not a user of {}", cfg.appservice.server_name),
            );
            continue;
        }
        let reference = format!("PractitionerRole/{id}");
        let schedules: Vec<&str> = data
            .schedules
            .iter()
            .filter(|s| s["active"] != false)
            .filter(|s| {
                s["actor"]
                    .as_array()
                    .is_some_and(|a| a.iter().any(|x| x["reference"] == reference.as_str()))
            })
            .filter_map(|s| s["id"].as_str())
            .collect();
        let mut spans = Vec::new();
        if schedules.is_empty() {
            match (millis(&pr["period"]["start"]), millis(&pr["period"]["end"])) {
                (Some(a), Some(b)) if a < b => spans.push((a, b)),
                _ => err(
                    &mut errors,
                    field,
                    "neither a Schedule with Slots nor a period with start before end says when",
                ),
            }
        }
        for slot in data.slots.iter().filter(|s| s["status"] == "busy") {
            let on = slot["schedule"]["reference"]
                .as_str()
                .and_then(|r| r.strip_prefix("Schedule/"))
                .is_some_and(|s| schedules.contains(&s));
            if !on {
                continue;
            }
            match (millis(&slot["start"]), millis(&slot["end"])) {
                (Some(a), Some(b)) if a < b => spans.push((a, b)),
                _ => err(
                    &mut errors,
                    format!("Slot/{}", slot["id"].as_str().unwrap_or_default()),
                    "start and end must be instants with start before end",
                ),
            }
        }
        for role in &roles {
            for &(start_ms, end_ms) in &spans {
                slots.push(Slot {
                    role: role.clone(),
                    user_id: user.clone(),
                    start_ms,
                    end_ms,
                });
            }
        }
    }
    if errors.is_empty() {
        Ok(slots)
    } else {
        Err(errors)
    }
}

/// Reads the on-call PractitionerRoles, their Practitioners, Schedules and Slots.
pub async fn fetch(cfg: &Config, fhir: &FhirRotaConfig) -> anyhow::Result<FhirRota> {
    let base = fhir
        .base_url
        .as_deref()
        .ok_or_else(|| anyhow::anyhow!("no [fhir_rota] base_url"))?
        .trim_end_matches('/')
        .to_owned();
    let token = match (&fhir.token, &fhir.token_file) {
        (Some(t), _) if !t.is_empty() => Some(t.clone()),
        (_, Some(f)) => Some(std::fs::read_to_string(f)?.trim().to_owned()),
        _ => None,
    };
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()?;
    let client = Fhir { http, base, token };
    let mut out = FhirRota::default();
    for pr in client.search("PractitionerRole?_count=100").await? {
        if role_codes(&pr).iter().all(|r| cfg.role(r).is_none()) {
            continue;
        }
        let id = pr["id"].as_str().unwrap_or_default().to_owned();
        if let Some(p) = pr["practitioner"]["reference"]
            .as_str()
            .and_then(|r| r.strip_prefix("Practitioner/"))
            && !out.practitioners.contains_key(p)
        {
            let practitioner = client.read(&format!("Practitioner/{p}")).await?;
            out.practitioners.insert(p.to_owned(), practitioner);
        }
        for s in client
            .search(&format!("Schedule?actor=PractitionerRole/{id}"))
            .await?
        {
            let sid = s["id"].as_str().unwrap_or_default().to_owned();
            out.slots.extend(
                client
                    .search(&format!("Slot?schedule=Schedule/{sid}&_count=100"))
                    .await?,
            );
            out.schedules.push(s);
        }
        out.roles.push(pr);
    }
    Ok(out)
}

struct Fhir {
    http: reqwest::Client,
    base: String,
    token: Option<String>,
}

impl Fhir {
    async fn get(&self, url: &str) -> anyhow::Result<Value> {
        let mut req = self.http.get(url).header("accept", "application/fhir+json");
        if let Some(t) = &self.token {
            req = req.bearer_auth(t);
        }
        let res = req
            .send()
            .await
            .map_err(|e| anyhow::anyhow!("FHIR server unreachable: {}", e.without_url()))?;
        let status = res.status();
        if !status.is_success() {
            anyhow::bail!("FHIR server answered {status}");
        }
        Ok(res.json().await?)
    }

    async fn read(&self, path: &str) -> anyhow::Result<Value> {
        self.get(&format!("{}/{path}", self.base)).await
    }

    /// Every resource of a search, following `next` links.
    async fn search(&self, query: &str) -> anyhow::Result<Vec<Value>> {
        let mut url = format!("{}/{query}", self.base);
        let mut out = Vec::new();
        for _ in 0..MAX_PAGES {
            let bundle = self.get(&url).await?;
            let entries = bundle["entry"].as_array().into_iter().flatten();
            out.extend(entries.map(|e| e["resource"].clone()));
            let next = bundle["link"].as_array().and_then(|l| {
                l.iter()
                    .find(|x| x["relation"] == "next")
                    .and_then(|x| x["url"].as_str())
            });
            match next {
                Some(n) => url = n.to_owned(),
                None => return Ok(out),
            }
        }
        anyhow::bail!("more than {MAX_PAGES} pages of {query}")
    }
}

/// Why a FHIR rota import stored nothing.
#[derive(Debug)]
pub enum FhirImportError {
    /// No `[fhir_rota] base_url`.
    Disabled,
    /// The FHIR server could not be read.
    Unavailable(String),
    /// The data has errors (listed by resource).
    Invalid(Vec<FieldError>),
    Store(String),
}

impl<P: crate::engine::Poster> crate::engine::Engine<P> {
    /// One import: fetch, check, replace the FHIR slots, apply holder changes.
    pub async fn import_fhir_rota(
        &self,
        actor: &str,
    ) -> Result<(usize, Vec<String>), FhirImportError> {
        let fhir = &self.cfg.fhir_rota;
        if fhir.base_url.as_deref().is_none_or(str::is_empty) {
            return Err(FhirImportError::Disabled);
        }
        let data = fetch(&self.cfg, fhir)
            .await
            .map_err(|e| FhirImportError::Unavailable(e.to_string()))?;
        let slots = slots_of(&self.cfg, &data).map_err(FhirImportError::Invalid)?;
        let n = slots.len();
        let all = self.cfg.roles.iter().map(|r| r.id.clone()).collect();
        let roles = self
            .store
            .import_rota_from(slots, "fhir", all, actor.to_owned())
            .await
            .map_err(|e| FhirImportError::Store(e.to_string()))?;
        if let Err(e) = self.reconcile_roles().await {
            tracing::warn!(error = %e, "applying the new rota failed; the next tick retries");
        }
        Ok((n, roles))
    }

    /// Imports every `poll_secs` (when set); failures are logged and audited, the previous
    /// rota stays.
    pub async fn poll_fhir_rota(self: std::sync::Arc<Self>) {
        let every = self.cfg.fhir_rota.poll_secs;
        if every == 0 || self.cfg.fhir_rota.base_url.is_none() {
            return;
        }
        loop {
            if let Err(e) = self.import_fhir_rota("fhir-poll").await {
                tracing::warn!(error = ?e, "FHIR rota import failed; the previous rota stays");
                let audit =
                    handover_bridge_core::store::AuditEntry::new("rota.import_failed", "error")
                        .actor("fhir-poll")
                        .detail("error", format!("{e:?}"));
                let _ = self.store.db.audit(audit).await;
            }
            tokio::time::sleep(Duration::from_secs(every)).await;
        }
    }
}

/// `POST /rota/fhir`: runs one import now (admin bearer token, like `POST /rota`).
pub async fn import_now<P: crate::engine::Poster>(
    axum::extract::State(st): axum::extract::State<std::sync::Arc<crate::webhook::WebState<P>>>,
    headers: axum::http::HeaderMap,
) -> axum::response::Response {
    use axum::http::StatusCode;
    use axum::response::IntoResponse;

    use crate::webhook::{admin_check, error, refuse};
    if let Err(r) = admin_check(&st, &headers).await {
        return r;
    }
    match st.engine.import_fhir_rota("admin").await {
        Ok((n, roles)) => {
            axum::Json(serde_json::json!({"imported": n, "roles": roles, "origin": "fhir"}))
                .into_response()
        }
        Err(FhirImportError::Disabled) => error(
            StatusCode::NOT_FOUND,
            "not_found",
            "FHIR rota import is disabled (no [fhir_rota] base_url)".into(),
            None,
        ),
        Err(FhirImportError::Unavailable(e)) => {
            refuse(
                &st,
                None,
                StatusCode::BAD_GATEWAY,
                "fhir_unavailable",
                e,
                None,
            )
            .await
        }
        Err(FhirImportError::Invalid(errs)) => {
            let msg = "the FHIR rota has errors; nothing imported".to_owned();
            refuse(
                &st,
                None,
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_rota",
                msg,
                Some(errs),
            )
            .await
        }
        Err(FhirImportError::Store(e)) => {
            tracing::error!(error = %e, "FHIR rota import not stored");
            error(
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                "rota not stored".into(),
                None,
            )
        }
    }
}
