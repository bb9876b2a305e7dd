//! `handover-epr` configuration (config/handover-epr.toml documents every key): the shared
//! `[appservice]` and `[log]` sections, the launch listener, the FHIR server and how to
//! authenticate to it, the staff identifier mapping, care-team seeding, filing and the state
//! file. Env overrides: `HANDOVER_EPR_<SECTION>__<KEY>`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use handover_bridge_core::appservice::AppserviceConfig;
use handover_bridge_core::cli::LogConfig;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub appservice: AppserviceConfig,
    pub launch: LaunchConfig,
    pub fhir: FhirConfig,
    pub staff: StaffConfig,
    pub care_team: CareTeamConfig,
    pub filing: FilingConfig,
    pub state: StateConfig,
    pub log: LogConfig,
}

/// Top-level keys (for the environment filter).
pub const KEYS: &[&str] = &[
    "appservice",
    "launch",
    "fhir",
    "staff",
    "care_team",
    "filing",
    "state",
    "log",
];

/// Who may open a patient's room from the EPR.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "snake_case")]
pub enum LaunchAllow {
    /// Any signed-in user of this server: the EPR decides who may open the record (it launches
    /// only from a record the clinician opened) and every launch is audited.
    #[default]
    AnyUser,
    /// Only users mapped from the patient's active FHIR `CareTeam` / `EpisodeOfCare`.
    CareTeam,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LaunchConfig {
    /// Listener for `GET /patient-room` (the EPR's launch link). Port 0 picks a free port
    /// (printed in the `HANDOVER_EPR_LISTENING` line).
    pub listen: SocketAddr,
    /// The bridge's URL as browsers reach it (the sign-in returns to
    /// `<public_url>/patient-room/callback`). Default `http://<the bound listen address>`.
    pub public_url: Option<String>,
    /// Handover's client URL as browsers reach it (default `appservice.homeserver_url`).
    pub homeserver_public_url: Option<String>,
    /// The `[[identity.providers]]` id to sign in with (skips Handover's chooser page).
    pub sso_idp: Option<String>,
    /// Where the browser goes once the room is ready: `{room_id}`, `{server_name}` replaced
    /// (URL-encoded). E.g. `https://app.element.io/#/room/{room_id}`.
    pub link_template: String,
    /// How long a browser has to finish signing in.
    pub session_secs: u64,
    pub allow: LaunchAllow,
}

impl Default for LaunchConfig {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:9012".parse().expect("addr"),
            public_url: None,
            homeserver_public_url: None,
            sso_idp: None,
            link_template: "https://matrix.to/#/{room_id}?via={server_name}".into(),
            session_secs: 600,
            allow: LaunchAllow::AnyUser,
        }
    }
}

/// How the bridge authenticates to the FHIR server.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "snake_case")]
pub enum FhirAuth {
    /// Nothing (or mutual TLS alone, with `client_identity_pem`).
    #[default]
    None,
    /// A static `Authorization: Bearer` token.
    Bearer,
    /// OAuth 2.0 client credentials (RFC 6749 4.4) at `token_url`; the token is cached until
    /// shortly before it expires and fetched again on a 401.
    ClientCredentials,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FhirConfig {
    /// The FHIR R4 base URL, e.g. `https://epr.trust.nhs.uk/fhir/R4`.
    pub base_url: String,
    pub auth: FhirAuth,
    /// `auth = "bearer"`: the token, or `bearer_token_file` (preferred).
    pub bearer_token: Option<String>,
    pub bearer_token_file: Option<PathBuf>,
    /// `auth = "client_credentials"`.
    pub token_url: Option<String>,
    pub client_id: Option<String>,
    pub client_secret: Option<String>,
    pub client_secret_file: Option<PathBuf>,
    pub scope: Option<String>,
    /// Mutual TLS: a PEM file with the bridge's certificate chain and private key.
    pub client_identity_pem: Option<PathBuf>,
    /// Extra CA certificates (PEM) to trust for the FHIR server and token endpoint.
    pub ca_pem: Option<PathBuf>,
    pub timeout_secs: u64,
}

impl Default for FhirConfig {
    fn default() -> Self {
        Self {
            base_url: String::new(),
            auth: FhirAuth::None,
            bearer_token: None,
            bearer_token_file: None,
            token_url: None,
            client_id: None,
            client_secret: None,
            client_secret_file: None,
            scope: None,
            client_identity_pem: None,
            ca_pem: None,
            timeout_secs: 20,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct StaffConfig {
    /// CSV with a header `system,value,user_id`: a staff identifier (e.g. the SDS user id
    /// `https://fhir.nhs.uk/Id/sds-user-id`) and the Matrix user it is.
    pub csv: Option<PathBuf>,
    /// A Practitioner's `telecom` email at one of these domains is `@<local part>:<server_name>`.
    pub email_domains: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct CareTeamConfig {
    /// Invite the patient's active `CareTeam` participants and `EpisodeOfCare` care managers
    /// (mapped to local users) when the room is created.
    pub seed: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FilingConfig {
    /// The reaction that files a message to the record (with and without U+FE0F).
    pub reaction: String,
    /// Retries of a filing the FHIR server could not take: first after this, doubling.
    pub retry_initial_secs: u64,
    pub retry_max_secs: u64,
    /// How often due retries are checked.
    pub tick_ms: u64,
    /// Files larger than this are not filed (FHIR servers cap request sizes).
    pub max_file_bytes: u64,
}

impl Default for FilingConfig {
    fn default() -> Self {
        Self {
            reaction: "📋".into(),
            retry_initial_secs: 10,
            retry_max_secs: 600,
            tick_ms: 1000,
            max_file_bytes: 10 * 1024 * 1024,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StateConfig {
    /// The bridge's SQLite file (patient links, the filing queue, audit).
    pub path: PathBuf,
}

impl Default for StateConfig {
    fn default() -> Self {
        Self {
            path: "/var/lib/handover-epr/epr.db".into(),
        }
    }
}

impl Config {
    pub fn load(file: Option<&Path>) -> Result<Self, String> {
        let cfg: Self = handover_bridge_core::config::load(file, "HANDOVER_EPR_", KEYS)?;
        cfg.validate()?;
        Ok(cfg)
    }

    pub fn validate(&self) -> Result<(), String> {
        self.appservice.validate()?;
        let err = |m: &str| Err(format!("configuration error: {m}"));
        match url::Url::parse(&self.fhir.base_url) {
            Ok(u) if matches!(u.scheme(), "http" | "https") => {}
            _ => return err("fhir.base_url must be an http(s) URL"),
        }
        match self.fhir.auth {
            FhirAuth::Bearer
                if self.fhir.bearer_token.is_none() && self.fhir.bearer_token_file.is_none() =>
            {
                return err("fhir.auth = \"bearer\" needs bearer_token or bearer_token_file");
            }
            FhirAuth::ClientCredentials
                if self.fhir.token_url.is_none()
                    || self.fhir.client_id.is_none()
                    || (self.fhir.client_secret.is_none()
                        && self.fhir.client_secret_file.is_none()) =>
            {
                return err(
                    "fhir.auth = \"client_credentials\" needs token_url, client_id and client_secret (or client_secret_file)",
                );
            }
            _ => {}
        }
        if !self.launch.link_template.contains("{room_id}") {
            return err("launch.link_template must contain {room_id}");
        }
        let reaction = self.filing.reaction.trim_end_matches('\u{fe0f}');
        if reaction.is_empty() {
            return err("filing.reaction must not be empty");
        }
        Ok(())
    }

    pub fn homeserver_public_url(&self) -> String {
        self.launch
            .homeserver_public_url
            .clone()
            .unwrap_or_else(|| self.appservice.homeserver_url.clone())
            .trim_end_matches('/')
            .to_owned()
    }

    /// The FHIR base URL without a trailing slash.
    pub fn fhir_base(&self) -> String {
        self.fhir.base_url.trim_end_matches('/').to_owned()
    }
}

/// Reads a secret given inline or in a file (trimmed).
pub fn secret(
    inline: &Option<String>,
    file: &Option<PathBuf>,
    what: &str,
) -> Result<String, String> {
    match (inline, file) {
        (Some(s), _) if !s.is_empty() => Ok(s.clone()),
        (_, Some(p)) => std::fs::read_to_string(p)
            .map(|t| t.trim().to_owned())
            .map_err(|e| format!("configuration error: {what} file {}: {e}", p.display())),
        _ => Err(format!("configuration error: {what} is not set")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> Config {
        let mut c = Config::default();
        c.appservice.id = "epr".into();
        c.appservice.as_token = "a".into();
        c.appservice.hs_token = "h".into();
        c.appservice.sender_localpart = "epr".into();
        c.fhir.base_url = "http://127.0.0.1:1/fhir/R4/".into();
        c
    }

    #[test]
    fn validation_names_the_key() {
        assert_eq!(base().validate(), Ok(()));
        assert_eq!(base().fhir_base(), "http://127.0.0.1:1/fhir/R4");
        let mut c = base();
        c.fhir.base_url = "ftp://x".into();
        assert!(c.validate().unwrap_err().contains("fhir.base_url"));
        let mut c = base();
        c.fhir.auth = FhirAuth::ClientCredentials;
        c.fhir.token_url = Some("http://x/token".into());
        assert!(c.validate().unwrap_err().contains("client_credentials"));
        c.fhir.client_id = Some("epr".into());
        c.fhir.client_secret = Some("s".into());
        assert_eq!(c.validate(), Ok(()));
        let mut c = base();
        c.fhir.auth = FhirAuth::Bearer;
        assert!(c.validate().unwrap_err().contains("bearer_token"));
        let mut c = base();
        c.launch.link_template = "https://x/".into();
        assert!(c.validate().unwrap_err().contains("{room_id}"));
    }

    #[test]
    fn the_shipped_example_loads() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../config/handover-epr.toml");
        let c = Config::load(Some(&path)).unwrap();
        assert_eq!(c.fhir.auth, FhirAuth::ClientCredentials);
        assert_eq!(c.launch.allow, LaunchAllow::AnyUser);
        assert_eq!(c.filing.reaction, "📋");
    }

    #[test]
    fn secrets_inline_or_from_file() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("s");
        std::fs::write(&f, "  tok\n").unwrap();
        assert_eq!(secret(&None, &Some(f), "x").unwrap(), "tok");
        assert_eq!(secret(&Some("i".into()), &None, "x").unwrap(), "i");
        assert!(
            secret(&None, &None, "fhir.x")
                .unwrap_err()
                .contains("fhir.x")
        );
    }
}
