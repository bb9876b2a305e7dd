//! Configuration: built-in defaults < TOML file < `HANDOVER_*` environment variables (figment).
//! Nested keys use a double underscore in the environment: `HANDOVER_LISTEN__CLIENT`.

mod audit;
mod clinical_media;
mod email;
mod voip;

use std::path::{Path, PathBuf};

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use serde::{Deserialize, Serialize};

pub use self::audit::AuditConfig;
pub use self::clinical_media::ClinicalMediaConfig;
pub use self::email::EmailConfig;
pub use self::voip::VoipConfig;
mod retention;
pub use self::retention::{CopyLifetimes, RetentionConfig, parse_duration_ms};
mod sessions;
pub use self::sessions::SessionsConfig;
mod http;
pub use self::http::HttpConfig;
mod listen;
pub use self::listen::{ListenConfig, MetricsConfig};
mod identity;
pub use self::identity::{AccountKind, ClientAuth, IdentityConfig, ProviderConfig};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The Matrix server name: the part after the colon in `@user:server`. Cannot change later.
    pub server_name: String,
    /// Directory for the database, media files and the signing key.
    pub data_dir: PathBuf,
    /// Public base URL advertised in `/.well-known/matrix/client`; defaults to `http(s)://server_name`.
    #[serde(default)]
    pub public_baseurl: Option<String>,
    pub listen: ListenConfig,
    pub database: DatabaseConfig,
    pub registration: RegistrationConfig,
    pub media: MediaConfig,
    pub tls: TlsConfig,
    pub log: LogConfig,
    pub rate_limit: RateLimitConfig,
    pub limits: LimitsConfig,
    /// Served at `/.well-known/matrix/support`; optional.
    #[serde(default)]
    pub support: SupportConfig,
    /// Room creation defaults.
    #[serde(default)]
    pub rooms: RoomsConfig,
    /// The governance rule set (docs/GOVERNANCE.md).
    #[serde(default)]
    pub policy: PolicyConfig,
    /// `[invites]`
    #[serde(default)]
    pub invites: InvitesConfig,
    /// Clinical media rules: allowed types, per-type caps, metadata stripping, scanning.
    #[serde(default)]
    pub clinical_media: ClinicalMediaConfig,
    /// Server-server federation (docs/FEDERATION.md).
    #[serde(default)]
    pub federation: FederationConfig,
    /// Message retention and purge (docs/GOVERNANCE.md, "Retention and purge").
    #[serde(default)]
    pub retention: RetentionConfig,
    /// Outgoing email (validation links), through a sendmail-compatible command.
    #[serde(default)]
    pub email: EmailConfig,
    /// Access token expiry and refresh tokens (off by default).
    #[serde(default)]
    pub sessions: SessionsConfig,
    /// Listener timeouts and connection cap.
    #[serde(default)]
    pub http: HttpConfig,
    /// Signed checkpoints of the audit trail (docs/GOVERNANCE.md, "Audit trail").
    #[serde(default)]
    pub audit: AuditConfig,
    /// TURN credentials for calls (`GET /voip/turnServer`).
    pub voip: VoipConfig,
    /// Prometheus metrics on their own listener (off by default).
    #[serde(default)]
    pub metrics: MetricsConfig,
    /// What `load` found that an operator should hear about (deprecated keys); logged at
    /// start-up and reported by `handover doctor`.
    #[serde(skip)]
    pub load_warnings: Vec<String>,
    /// Application services (bridges, bots): their registration files (docs/BRIDGES.md).
    #[serde(default)]
    pub appservices: AppservicesConfig,
    /// `[identity]`: OpenID providers and password sign-in (docs/IDENTITY.md).
    #[serde(default)]
    pub identity: IdentityConfig,
}

/// `[appservices]`: the application services this server talks to.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AppservicesConfig {
    /// Registration files (YAML, the format Synapse reads). Relative paths are resolved against
    /// the working directory. A bad or conflicting file stops the server at start-up.
    #[serde(default)]
    pub registration_files: Vec<PathBuf>,
}

/// Federation: the NHS federation list, outbound TLS and discovery (docs/FEDERATION.md).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FederationConfig {
    /// `host[:port]` served as `m.server` at `/.well-known/matrix/server` (delegation). Unset:
    /// that path answers 404.
    #[serde(default)]
    pub public_server: Option<String>,
    /// The NHS federation list (JSON). Unset: this server federates with no one.
    #[serde(default)]
    pub list_file: Option<PathBuf>,
    /// The list's detached signature (base64 ed25519). Default: `<list_file>.sig`.
    #[serde(default)]
    pub list_signature_file: Option<PathBuf>,
    /// The list signer's ed25519 public key (base64). When set, only a list signed by it is
    /// accepted.
    #[serde(default)]
    pub list_signing_key: Option<String>,
    /// How often the list files are checked for changes (SIGHUP also reloads at once).
    pub list_poll_secs: u64,
    /// PEM bundle of the CAs trusted for outbound federation TLS. Unset: the platform's roots.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// Verify peers' TLS certificates. Turn off only for local experiments.
    pub verify_tls: bool,
    /// Timeout of one outbound federation request, in seconds.
    pub request_timeout_secs: u64,
    /// Exchange public room directories with listed servers: serve ours at
    /// `/_matrix/federation/v1/publicRooms` and let local users browse theirs
    /// (`/publicRooms?server=`). Off: both refused with 403 (docs/FEDERATION.md).
    #[serde(default)]
    pub serve_public_rooms: bool,
}

impl Default for FederationConfig {
    fn default() -> Self {
        Self {
            public_server: None,
            list_file: None,
            list_signature_file: None,
            list_signing_key: None,
            list_poll_secs: 10,
            ca_file: None,
            verify_tls: true,
            request_timeout_secs: 30,
            serve_public_rooms: false,
        }
    }
}

impl FederationConfig {
    /// Where the list's signature is read from.
    pub fn signature_path(&self) -> Option<PathBuf> {
        self.list_signature_file.clone().or_else(|| {
            self.list_file.as_ref().map(|f| {
                let mut s = f.clone().into_os_string();
                s.push(".sig");
                PathBuf::from(s)
            })
        })
    }
}

/// Which rule set the server enforces.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PolicyRules {
    /// The NHS rules (default: this is an NHS distribution).
    Nhs,
    /// No rules; for development and non-clinical deployments only.
    AllowAll,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoomsConfig {
    /// Private rooms start end-to-end encrypted (`m.room.encryption`, megolm) unless the
    /// creation request sets its own. On by default: clinical conversations are private.
    #[serde(default = "yes")]
    pub encrypt_by_default: bool,
}

fn yes() -> bool {
    true
}

impl Default for RoomsConfig {
    fn default() -> Self {
        Self {
            encrypt_by_default: true,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyConfig {
    pub rules: PolicyRules,
    /// With `rules = "nhs"`: also refuse NHS numbers in unencrypted message bodies.
    pub nhs_number_in_messages: bool,
    /// Users cannot change their own display name (rule `display_name_locked`); an admin sets
    /// it (`handover admin create-user --displayname`). Off by default.
    #[serde(default)]
    pub lock_display_names: bool,
}

/// `[invites]`: who may be invited.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InvitesConfig {
    /// Other servers whose users may be invited (rule `invite_outside_organisation`). Empty:
    /// only users of this server.
    #[serde(default)]
    pub allowed_servers: Vec<String>,
}

impl Default for PolicyConfig {
    fn default() -> Self {
        Self {
            rules: PolicyRules::Nhs,
            nhs_number_in_messages: false,
            lock_display_names: false,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatabaseConfig {
    /// SQLite file; relative paths are resolved against `data_dir`.
    pub path: PathBuf,
    /// Read-only connections kept for concurrent readers.
    pub readers: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RegistrationMode {
    /// Anyone may register (m.login.dummy).
    Open,
    /// Registration needs a registration token (m.login.registration_token): one of
    /// `registration.tokens` or one made with the admin API.
    Token,
    /// Only `handover admin create-user` creates accounts.
    Closed,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegistrationConfig {
    pub mode: RegistrationMode,
    #[serde(default)]
    pub tokens: Vec<String>,
    /// Minimum password length for new passwords.
    pub min_password_length: usize,
    /// With these (`nhs.net`, `*.nhs.uk`), registering through the API needs an email address
    /// in one of them, proven by an emailed link (`m.login.email.identity`; rule
    /// `email_domain_not_allowed`). Empty: no email is asked for.
    #[serde(default)]
    pub allowed_email_domains: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MediaConfig {
    pub max_upload_bytes: u64,
    /// Largest thumbnail edge we generate, in pixels.
    pub max_thumbnail_size: u32,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// PEM certificate chain. With `key`, the client listener serves HTTPS (rustls).
    pub cert: Option<PathBuf>,
    pub key: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogConfig {
    pub format: LogFormat,
    /// A tracing filter, e.g. `info` or `handover=debug,info`. `RUST_LOG` overrides it.
    pub level: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimitConfig {
    pub enabled: bool,
    /// Token bucket per client IP (and per user for login): burst size and refill rate.
    pub login_burst: u32,
    pub login_per_second: f64,
    pub register_burst: u32,
    pub register_per_second: f64,
    /// Per user (Synapse's defaults): messages sent (`rc_message`), room joins (`rc_joins`),
    /// invites issued (`rc_invites.per_issuer`), rooms created (`rc_room_creation`), media
    /// uploads (`rc_media_create`).
    pub message_burst: u32,
    pub message_per_second: f64,
    pub join_burst: u32,
    pub join_per_second: f64,
    pub invite_burst: u32,
    pub invite_per_second: f64,
    pub room_creation_burst: u32,
    pub room_creation_per_second: f64,
    pub upload_burst: u32,
    pub upload_per_second: f64,
    /// Per origin server on federation `/send` transactions.
    pub federation_send_burst: u32,
    pub federation_send_per_second: f64,
    /// Deprecated: use `[listen] trusted_proxies` (both lists are merged, with a warning).
    pub trusted_proxies: Vec<std::net::IpAddr>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitsConfig {
    /// Largest request body accepted on non-media endpoints.
    pub max_request_bytes: usize,
    /// Longest /sync long-poll a client may ask for.
    pub max_sync_timeout_ms: u64,
}

/// Who to contact about this server (MSC1929, `/.well-known/matrix/support`).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SupportConfig {
    #[serde(default)]
    pub contacts: Vec<SupportContact>,
    #[serde(default)]
    pub support_page: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SupportContact {
    /// `m.role.admin`, `m.role.security`, or a namespaced custom role.
    pub role: String,
    #[serde(default)]
    pub matrix_id: Option<String>,
    #[serde(default)]
    pub email_address: Option<String>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            server_name: "localhost".into(),
            data_dir: "data".into(),
            public_baseurl: None,
            listen: ListenConfig::default(),
            database: DatabaseConfig {
                path: "handover.db".into(),
                readers: 4,
            },
            registration: RegistrationConfig {
                mode: RegistrationMode::Closed,
                tokens: vec![],
                min_password_length: 8,
                allowed_email_domains: vec![],
            },
            media: MediaConfig {
                max_upload_bytes: 50 * 1024 * 1024,
                max_thumbnail_size: 800,
            },
            tls: TlsConfig::default(),
            log: LogConfig {
                format: LogFormat::Text,
                level: "info".into(),
            },
            rate_limit: RateLimitConfig {
                enabled: true,
                login_burst: 10,
                login_per_second: 0.2,
                register_burst: 5,
                register_per_second: 0.1,
                message_burst: 10,
                message_per_second: 0.2,
                join_burst: 10,
                join_per_second: 0.1,
                invite_burst: 5,
                invite_per_second: 0.5,
                room_creation_burst: 10,
                room_creation_per_second: 0.016,
                upload_burst: 50,
                upload_per_second: 10.0,
                federation_send_burst: 50,
                federation_send_per_second: 20.0,
                trusted_proxies: vec![],
            },
            limits: LimitsConfig {
                max_request_bytes: 1024 * 1024,
                max_sync_timeout_ms: 60_000,
            },
            support: SupportConfig::default(),
            rooms: RoomsConfig::default(),
            policy: PolicyConfig::default(),
            invites: InvitesConfig::default(),
            clinical_media: ClinicalMediaConfig::default(),
            federation: FederationConfig::default(),
            retention: RetentionConfig::default(),
            email: EmailConfig::default(),
            sessions: SessionsConfig::default(),
            http: HttpConfig::default(),
            audit: AuditConfig::default(),
            voip: VoipConfig::default(),
            metrics: MetricsConfig::default(),
            load_warnings: vec![],
            appservices: AppservicesConfig::default(),
            identity: IdentityConfig::default(),
        }
    }
}

/// The top-level keys of the configuration, read off the type itself so they never drift.
fn top_level_keys() -> Vec<String> {
    match serde_json::to_value(Config::default()) {
        Ok(serde_json::Value::Object(m)) => m.keys().cloned().collect(),
        _ => vec![],
    }
}

impl Config {
    /// Loads defaults, then `file` (if given), then `HANDOVER_*` variables. Errors name the key.
    pub fn load(file: Option<&Path>) -> Result<Self, String> {
        let mut fig = Figment::from(Serialized::defaults(Config::default()));
        if let Some(file) = file {
            if !file.exists() {
                return Err(format!("config file {} does not exist", file.display()));
            }
            fig = fig.merge(Toml::file_exact(file));
        }
        // Only variables naming a config section or key are configuration: tools around the
        // server use other HANDOVER_* variables (HANDOVER_BIN, HANDOVER_NEW_PASSWORD). A typo
        // inside a section (HANDOVER_LISTEN__CLEINT) is still refused by deny_unknown_fields.
        let known = top_level_keys();
        fig = fig.merge(
            Env::prefixed("HANDOVER_")
                .filter(move |k| {
                    let first = k
                        .as_str()
                        .split("__")
                        .next()
                        .unwrap_or_default()
                        .to_ascii_lowercase();
                    known.contains(&first)
                })
                .split("__"),
        );
        let mut cfg: Config = fig.extract().map_err(|e| {
            e.into_iter()
                .map(|e| format!("configuration error: {e}"))
                .collect::<Vec<_>>()
                .join("\n")
        })?;
        cfg.validate()?;
        cfg.merge_trusted_proxies();
        if cfg.database.path.is_relative() {
            cfg.database.path = cfg.data_dir.join(&cfg.database.path);
        }
        Ok(cfg)
    }

    fn validate(&self) -> Result<(), String> {
        self.audit.checkpoint_interval_ms()?;
        ruma::ServerName::parse(&self.server_name)
            .map_err(|e| format!("configuration error: key `server_name`: {e}"))?;
        // `mode = "token"` with no `tokens` is valid: tokens are then made with the admin API
        // (`/_synapse/admin/v1/registration_tokens/new`), and until one is, nobody registers.
        if self.tls.cert.is_some() != self.tls.key.is_some() {
            return Err(
                "configuration error: keys `tls.cert` and `tls.key` must be set together".into(),
            );
        }
        for (i, c) in self.support.contacts.iter().enumerate() {
            if c.matrix_id.is_none() && c.email_address.is_none() {
                return Err(format!(
                    "configuration error: `support.contacts[{i}]` needs `matrix_id` or `email_address`"
                ));
            }
            if let Some(id) = &c.matrix_id {
                ruma::UserId::parse(id).map_err(|e| {
                    format!("configuration error: key `support.contacts[{i}].matrix_id`: {e}")
                })?;
            }
        }
        if self.clinical_media.scanner_timeout_secs == 0 {
            return Err(
                "configuration error: key `clinical_media.scanner_timeout_secs` must be at least 1"
                    .into(),
            );
        }
        if self.listen.federation.is_some() && self.listen.federation_tls && self.tls.cert.is_none()
        {
            return Err(
                "configuration error: key `listen.federation` needs `tls.cert` and \
                        `tls.key` (or `listen.federation_tls = false` behind a proxy that \
                        terminates TLS): federation is served over TLS"
                    .into(),
            );
        }
        if self.listen.client_tls == Some(true) && self.tls.cert.is_none() {
            return Err(
                "configuration error: key `listen.client_tls` needs `tls.cert` and `tls.key`"
                    .into(),
            );
        }
        if self.metrics.listen.is_some() && self.metrics.tls && self.tls.cert.is_none() {
            return Err(
                "configuration error: key `metrics.tls` needs `tls.cert` and `tls.key`".into(),
            );
        }
        if let Some(s) = &self.federation.public_server {
            ruma::ServerName::parse(s)
                .map_err(|e| format!("configuration error: key `federation.public_server`: {e}"))?;
        }
        if let Some(k) = &self.federation.list_signing_key {
            handover_policy::federation::parse_verifying_key(k).map_err(|e| {
                format!("configuration error: key `federation.list_signing_key`: {e}")
            })?;
        }
        if self.federation.list_poll_secs == 0 {
            return Err(
                "configuration error: key `federation.list_poll_secs` must be at least 1".into(),
            );
        }
        self.retention.validate()?;
        self.sessions.validate()?;
        self.http.validate()?;
        self.voip.validate()?;
        self.identity.validate()?;
        self.email
            .validate(&self.registration.allowed_email_domains)?;
        if self.database.readers == 0 {
            return Err("configuration error: key `database.readers` must be at least 1".into());
        }
        Ok(())
    }

    /// `[rate_limit] trusted_proxies` is the old place of `[listen] trusted_proxies`: still
    /// read, merged into the new key, with a warning. Rate limits read the merged list.
    fn merge_trusted_proxies(&mut self) {
        if self.rate_limit.trusted_proxies.is_empty() {
            self.rate_limit.trusted_proxies = self.listen.trusted_proxies.clone();
            return;
        }
        self.load_warnings.push(
            "`rate_limit.trusted_proxies` is deprecated: move the list to \
             `listen.trusted_proxies` (both are used for now)"
                .into(),
        );
        for ip in std::mem::take(&mut self.rate_limit.trusted_proxies) {
            if !self.listen.trusted_proxies.contains(&ip) {
                self.listen.trusted_proxies.push(ip);
            }
        }
        self.rate_limit.trusted_proxies = self.listen.trusted_proxies.clone();
    }

    pub fn media_dir(&self) -> PathBuf {
        self.data_dir.join("media")
    }

    pub fn base_url(&self) -> String {
        self.public_baseurl
            .clone()
            .unwrap_or_else(|| self.listen.default_base_url(&self.server_name, &self.tls))
    }

    /// The base URL for a request that came through a trusted proxy reporting the client's
    /// scheme (`X-Forwarded-Proto`): `public_baseurl` when set, else `server_name` with that
    /// scheme (the proxy serves its default port).
    pub fn base_url_for(&self, forwarded_proto: Option<&str>) -> String {
        match (&self.public_baseurl, forwarded_proto) {
            (None, Some(proto)) => format!("{proto}://{}", self.server_name),
            _ => self.base_url(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_key_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("c.toml");
        std::fs::write(
            &f,
            "server_name = \"x\"\n[listen]\nclient = \"not an address\"\n",
        )
        .unwrap();
        let err = Config::load(Some(&f)).unwrap_err();
        assert!(err.contains("listen.client"), "{err}");
        std::fs::write(&f, "srever_name = \"x\"\n").unwrap();
        let err = Config::load(Some(&f)).unwrap_err();
        assert!(err.contains("srever_name"), "{err}");
    }

    #[test]
    fn support_contacts_load_and_are_checked() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("c.toml");
        std::fs::write(
            &f,
            "server_name = \"x\"\n[support]\nsupport_page = \"https://x/help\"\n\
             contacts = [{ matrix_id = \"@admin:x\", role = \"m.role.admin\" }]\n",
        )
        .unwrap();
        let cfg = Config::load(Some(&f)).unwrap();
        assert_eq!(
            cfg.support.contacts[0].matrix_id.as_deref(),
            Some("@admin:x")
        );
        assert_eq!(cfg.support.support_page.as_deref(), Some("https://x/help"));
        std::fs::write(
            &f,
            "server_name = \"x\"\n[support]\ncontacts = [{ role = \"m.role.admin\" }]\n",
        )
        .unwrap();
        let err = Config::load(Some(&f)).unwrap_err();
        assert!(err.contains("support.contacts[0]"), "{err}");
    }

    #[test]
    fn file_then_defaults() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("c.toml");
        std::fs::write(
            &f,
            "server_name = \"trust.nhs.uk\"\ndata_dir = \"/tmp/x\"\n",
        )
        .unwrap();
        let cfg = Config::load(Some(&f)).unwrap();
        assert_eq!(cfg.server_name, "trust.nhs.uk");
        assert_eq!(cfg.database.path, PathBuf::from("/tmp/x/handover.db"));
        assert_eq!(cfg.registration.mode, RegistrationMode::Closed);
        assert_eq!(cfg.policy.rules, PolicyRules::Nhs);
        assert!(!cfg.policy.nhs_number_in_messages);
        assert!(cfg.clinical_media.strip_image_metadata);
        assert!(cfg.clinical_media.scanner_command.is_empty());
        assert!(
            cfg.clinical_media
                .allowed_types
                .contains(&"application/octet-stream".to_owned())
        );
    }

    #[test]
    fn clinical_media_section_loads() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("c.toml");
        std::fs::write(
            &f,
            "server_name = \"x\"\n[clinical_media]\nallowed_types = [\"image/png\"]\n\
             scanner_command = [\"clamdscan\", \"--no-summary\", \"-\"]\n\
             [clinical_media.max_bytes_by_type]\n\"image/png\" = 5\n",
        )
        .unwrap();
        let cfg = Config::load(Some(&f)).unwrap();
        let rules = cfg.clinical_media.rules();
        assert_eq!(rules.allowed_types, vec!["image/png"]);
        assert_eq!(rules.max_bytes_by_type["image/png"], 5);
        // Merged with the defaults (documented in GOVERNANCE.md).
        assert_eq!(rules.max_bytes_by_type["text/plain"], 1024 * 1024);
        assert_eq!(cfg.clinical_media.scanner_command[0], "clamdscan");
        assert_eq!(cfg.clinical_media.scanner_timeout_secs, 60);
    }

    #[test]
    fn federation_section_loads_and_is_checked() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("c.toml");
        std::fs::write(
            &f,
            "server_name = \"x\"\n[federation]\nlist_file = \"/etc/handover/list.json\"\n\
             public_server = \"matrix.x:443\"\nverify_tls = false\n",
        )
        .unwrap();
        let cfg = Config::load(Some(&f)).unwrap();
        assert_eq!(
            cfg.federation.signature_path().unwrap(),
            PathBuf::from("/etc/handover/list.json.sig")
        );
        assert!(!cfg.federation.verify_tls);
        assert_eq!(cfg.federation.list_poll_secs, 10);
        assert!(cfg.listen.federation.is_none());
        std::fs::write(
            &f,
            "server_name = \"x\"\n[listen]\nclient = \"127.0.0.1:0\"\nfederation = \"127.0.0.1:0\"\n",
        )
        .unwrap();
        let err = Config::load(Some(&f)).unwrap_err();
        assert!(err.contains("listen.federation"), "{err}");
        std::fs::write(
            &f,
            "server_name = \"x\"\n[federation]\nlist_signing_key = \"nope\"\n",
        )
        .unwrap();
        let err = Config::load(Some(&f)).unwrap_err();
        assert!(err.contains("federation.list_signing_key"), "{err}");
    }

    #[test]
    fn policy_section_loads() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("c.toml");
        std::fs::write(
            &f,
            "server_name = \"x\"\n[policy]\nrules = \"allow-all\"\nnhs_number_in_messages = true\n",
        )
        .unwrap();
        let cfg = Config::load(Some(&f)).unwrap();
        assert_eq!(cfg.policy.rules, PolicyRules::AllowAll);
        assert!(cfg.policy.nhs_number_in_messages);
        std::fs::write(&f, "server_name = \"x\"\n[policy]\nrules = \"strict\"\n").unwrap();
        let err = Config::load(Some(&f)).unwrap_err();
        assert!(err.contains("policy.rules"), "{err}");
    }
}
