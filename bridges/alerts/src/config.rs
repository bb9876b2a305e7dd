//! `handover-alerts` configuration (config/alerts.toml documents every key): the shared
//! `[appservice]` section, the webhook listener, the state file, sources and their secrets,
//! managed rooms, on-call roles and routing rules. Env overrides: `HANDOVER_ALERTS_<SECTION>__<KEY>`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use handover_bridge_core::appservice::AppserviceConfig;
use handover_bridge_core::cli::LogConfig;
use serde::{Deserialize, Serialize};

use crate::routing::{Rules, Target};

#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub appservice: AppserviceConfig,
    pub webhook: WebhookConfig,
    pub state: StateConfig,
    pub escalation: EscalationConfig,
    pub callbacks: CallbackConfig,
    pub fhir_rota: FhirRotaConfig,
    pub log: LogConfig,
    pub sources: Vec<SourceConfig>,
    pub rooms: Vec<RoomConfig>,
    pub roles: Vec<RoleConfig>,
    pub rules: Vec<RuleConfig>,
}

/// Top-level keys (for the environment filter).
pub const KEYS: &[&str] = &[
    "appservice",
    "webhook",
    "state",
    "escalation",
    "callbacks",
    "fhir_rota",
    "log",
    "sources",
    "rooms",
    "roles",
    "rules",
];

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WebhookConfig {
    /// Listener for clinical systems: `POST /alerts`, `GET /alerts/{source}/{id}`, `POST /rota`,
    /// `GET /metrics`. Port 0 picks a free port (printed in the `HANDOVER_ALERTS_LISTENING` line).
    pub listen: SocketAddr,
    /// Larger bodies are refused with 413.
    pub max_body_bytes: usize,
    /// Signed timestamps further than this from now are refused (replays, skewed clocks).
    pub replay_window_secs: i64,
    /// Bearer token for `POST /rota` (rota import); unset disables the endpoint.
    pub admin_token: Option<String>,
}

impl Default for WebhookConfig {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:9011".parse().expect("addr"),
            max_body_bytes: 64 * 1024,
            replay_window_secs: 300,
            admin_token: None,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StateConfig {
    /// The bridge's SQLite file (alerts, escalation timers, rota, audit).
    pub path: PathBuf,
    /// The bot's device (matrix-sdk's state and crypto stores); default: `bot-device/` beside
    /// `path`.
    pub bot_store: Option<PathBuf>,
    /// A file holding the passphrase that encrypts the bot's stores at rest (recommended).
    pub bot_store_passphrase_file: Option<PathBuf>,
}

impl Default for StateConfig {
    fn default() -> Self {
        Self {
            path: "/var/lib/handover-alerts/alerts.db".into(),
            bot_store: None,
            bot_store_passphrase_file: None,
        }
    }
}

impl StateConfig {
    /// Where the bot keeps its device, and the passphrase of its stores.
    pub fn device_store(&self) -> Result<handover_bridge_core::bot::DeviceStore, String> {
        let dir = self.bot_store.clone().unwrap_or_else(|| {
            self.path
                .parent()
                .unwrap_or_else(|| Path::new("."))
                .join("bot-device")
        });
        let passphrase = match &self.bot_store_passphrase_file {
            Some(f) => Some(
                std::fs::read_to_string(f)
                    .map(|t| t.trim().to_owned())
                    .map_err(|e| {
                        format!("configuration error: state.bot_store_passphrase_file: {e}")
                    })?,
            ),
            None => None,
        };
        Ok(handover_bridge_core::bot::DeviceStore { dir, passphrase })
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EscalationConfig {
    /// How often due escalations and rota changes are checked.
    pub tick_ms: u64,
}

impl Default for EscalationConfig {
    fn default() -> Self {
        Self { tick_ms: 1000 }
    }
}

/// Retries of the status callbacks (callback.rs).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CallbackConfig {
    /// Wait after the first failed attempt; doubles with each further failure.
    pub first_backoff_ms: u64,
    /// Longest wait between attempts.
    pub max_backoff_secs: u64,
    /// A callback still not accepted this long after the change is dropped (audited).
    pub give_up_after_secs: u64,
    /// Per attempt.
    pub timeout_secs: u64,
}

impl Default for CallbackConfig {
    fn default() -> Self {
        Self {
            first_backoff_ms: 1000,
            max_backoff_secs: 300,
            give_up_after_secs: 86_400,
            timeout_secs: 10,
        }
    }
}

/// Rota import from a FHIR R4 server (rota_fhir.rs): PractitionerRole with Schedule/Slot.
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct FhirRotaConfig {
    /// Base URL of the FHIR R4 API (e.g. `https://epr.trust.nhs.uk/fhir/R4`); unset: off.
    pub base_url: Option<String>,
    /// Bearer token for it, or `token_file` (preferred).
    pub token: Option<String>,
    pub token_file: Option<PathBuf>,
    /// Import every this many seconds (0: only on `POST /rota/fhir`).
    pub poll_secs: u64,
}

/// A clinical system allowed to send alerts.
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct SourceConfig {
    pub id: String,
    /// The HMAC secret, or `secret_file` (preferred: keeps it out of the config file).
    pub secret: Option<String>,
    pub secret_file: Option<PathBuf>,
    /// POSTed the alert's status (signed like the webhook) on each change.
    pub callback_url: Option<String>,
}

/// A room the bridge creates and manages (invites its members).
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct RoomConfig {
    pub id: String,
    pub name: String,
    pub members: Vec<String>,
}

/// An on-call role: `#<id>:server` is the room with its current holder.
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct RoleConfig {
    pub id: String,
    pub name: String,
    /// Who may take the role by command (empty: any user of this server).
    pub eligible: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct RuleConfig {
    pub name: String,
    /// Empty lists match anything.
    pub sources: Vec<String>,
    pub severities: Vec<String>,
    pub wards: Vec<String>,
    pub specialties: Vec<String>,
    /// `room:<id>`, `role:<id>` or `user:@someone:server`.
    pub target: String,
    pub escalation: Vec<StepConfig>,
}

#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct StepConfig {
    /// Seconds without acknowledgement since the previous post.
    pub after_secs: u64,
    pub to: String,
}

impl Config {
    pub fn load(file: Option<&Path>) -> Result<Self, String> {
        let cfg: Self = handover_bridge_core::config::load(file, "HANDOVER_ALERTS_", KEYS)?;
        cfg.appservice.validate()?;
        cfg.rules()?;
        for s in &cfg.sources {
            cfg.secret_of(&s.id).ok_or_else(|| {
                format!(
                    "configuration error: source {:?} needs secret or secret_file",
                    s.id
                )
            })??;
        }
        Ok(cfg)
    }

    /// Validated routing rules (targets checked against rooms and roles).
    pub fn rules(&self) -> Result<Rules, String> {
        Rules::from_config(self)
    }

    pub fn source(&self, id: &str) -> Option<&SourceConfig> {
        self.sources.iter().find(|s| s.id == id)
    }

    /// The source's secret (read from its file if so configured).
    pub fn secret_of(&self, id: &str) -> Option<Result<Vec<u8>, String>> {
        let s = self.source(id)?;
        match (&s.secret, &s.secret_file) {
            (Some(secret), _) if !secret.is_empty() => Some(Ok(secret.as_bytes().to_vec())),
            (_, Some(path)) => Some(
                std::fs::read_to_string(path)
                    .map(|t| t.trim().as_bytes().to_vec())
                    .map_err(|e| format!("configuration error: secret_file of source {id:?}: {e}")),
            ),
            _ => None,
        }
    }

    pub fn role(&self, id: &str) -> Option<&RoleConfig> {
        self.roles.iter().find(|r| r.id == id)
    }

    pub fn room(&self, id: &str) -> Option<&RoomConfig> {
        self.rooms.iter().find(|r| r.id == id)
    }

    /// Exclusive alias namespaces for the registration: one per role.
    pub fn alias_regexes(&self) -> Vec<String> {
        use handover_bridge_core::appservice::regex_escape;
        self.roles
            .iter()
            .map(|r| {
                format!(
                    "#{}:{}$",
                    regex_escape(&r.id),
                    regex_escape(&self.appservice.server_name)
                )
            })
            .collect()
    }

    /// Checks a target names a configured room or role.
    pub fn check_target(&self, t: &Target) -> Result<(), String> {
        match t {
            Target::Room(id) if self.room(id).is_none() => {
                Err(format!("no [[rooms]] with id {id:?}"))
            }
            Target::Role(id) if self.role(id).is_none() => {
                Err(format!("no [[roles]] with id {id:?}"))
            }
            _ => Ok(()),
        }
    }
}
