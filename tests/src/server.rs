//! The `handover` process under test: its configuration, start, stop and restart, and
//! matrix-sdk clients logged in to it.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use matrix_sdk::Client;
use matrix_sdk::config::RequestConfig;
use matrix_sdk::ruma::api::client::account::register;
use matrix_sdk::ruma::api::client::uiaa::{AuthData, Dummy, RegistrationToken};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, Command};

use crate::*;

// ---------------------------------------------------------------------------------------------
// Server configuration
// ---------------------------------------------------------------------------------------------

/// Registration mode of the server under test.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Registration {
    /// `mode = "open"`: `m.login.dummy`.
    Open,
    /// `mode = "token"`: `m.login.registration_token` with these tokens.
    Token(Vec<String>),
    /// `mode = "closed"`: only `handover admin create-user`.
    Closed,
}

/// Login rate limit (`[rate_limit] enabled = true`).
#[derive(Clone, Debug)]
pub struct LoginRateLimit {
    pub login_burst: u32,
    pub login_per_second: f64,
}

/// Options for the generated config file.
#[derive(Clone, Debug)]
pub struct ServerOptions {
    pub registration: Registration,
    pub max_upload_bytes: u64,
    /// `None` writes `[rate_limit] enabled = false`.
    pub rate_limit: Option<LoginRateLimit>,
    pub log_level: String,
    /// `[registration] allowed_email_domains` (empty: not written).
    pub allowed_email_domains: Vec<String>,
    /// More configuration appended at the end of the file (whole `[section]`s).
    pub extra_toml: String,
}

impl Default for ServerOptions {
    fn default() -> Self {
        Self {
            registration: Registration::Open,
            max_upload_bytes: 10 * 1024 * 1024,
            rate_limit: None,
            log_level: std::env::var("HANDOVER_E2E_LOG").unwrap_or_else(|_| "info".into()),
            allowed_email_domains: vec![],
            extra_toml: String::new(),
        }
    }
}

/// A TOML basic string (quotes and backslashes escaped).
pub fn toml_str(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

impl ServerOptions {
    pub fn to_toml(&self, data_dir: &Path) -> String {
        let (mode, tokens) = match &self.registration {
            Registration::Open => ("open", vec![]),
            Registration::Token(t) => ("token", t.clone()),
            Registration::Closed => ("closed", vec![]),
        };
        let tokens = tokens
            .iter()
            .map(|t| toml_str(t))
            .collect::<Vec<_>>()
            .join(", ");
        let rate_limit = match &self.rate_limit {
            None => "enabled = false\n".to_string(),
            Some(rl) => format!(
                "enabled = true\nlogin_burst = {}\nlogin_per_second = {:?}\n",
                rl.login_burst, rl.login_per_second
            ),
        };
        let domains = self
            .allowed_email_domains
            .iter()
            .map(|d| toml_str(d))
            .collect::<Vec<_>>()
            .join(", ");
        format!(
            r#"server_name = "localhost"
data_dir = {data_dir}

[listen]
client = "127.0.0.1:0"

[registration]
mode = "{mode}"
tokens = [{tokens}]
allowed_email_domains = [{domains}]

[media]
max_upload_bytes = {max_upload}

[log]
format = "text"
level = {level}

[rate_limit]
{rate_limit}
{extra}"#,
            extra = self.extra_toml,
            data_dir = toml_str(&data_dir.to_string_lossy()),
            max_upload = self.max_upload_bytes,
            level = toml_str(&self.log_level),
        )
    }
}

// ---------------------------------------------------------------------------------------------
// The server process
// ---------------------------------------------------------------------------------------------

/// Path of the `handover` binary under test.
pub fn handover_bin() -> PathBuf {
    let path = match std::env::var_os("HANDOVER_BIN") {
        Some(p) => PathBuf::from(p),
        // Where `cargo build -p handover` put it, also with a shared CARGO_TARGET_DIR.
        None => match std::env::var_os("CARGO_TARGET_DIR") {
            Some(t) => Path::new(env!("CARGO_MANIFEST_DIR"))
                .join(t)
                .join("debug/handover"),
            None => Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/debug/handover"),
        },
    };
    if !path.is_file() {
        panic!(
            "handover binary not found at {}.\nBuild it first with `cargo build -p handover` in the \
             repository root (or run scripts/test-e2e.sh), or point HANDOVER_BIN at a binary.",
            path.display()
        );
    }
    path
}

/// A running (or stopped) `handover serve` process with its own temp directory.
pub struct TestServer {
    dir: tempfile::TempDir,
    config_path: PathBuf,
    child: Option<Child>,
    base_url: String,
    /// `federation=` URL of the listening line, when the config has a federation listener.
    federation_url: Option<String>,
    /// `metrics=` URL of the listening line, when `[metrics] listen` is set.
    metrics_url: Option<String>,
    /// Incremented at every start; log files are `stderr.N.log` / `stdout.N.log`.
    generation: u32,
}

impl TestServer {
    /// Starts a server with default options (open registration, rate limiting off).
    pub async fn start() -> Self {
        Self::start_with(ServerOptions::default()).await
    }

    /// Starts a server with the given options.
    pub async fn start_with(opts: ServerOptions) -> Self {
        let dir = tempfile::Builder::new()
            .prefix("handover-e2e-")
            .tempdir()
            .expect("tempdir");
        let data_dir = dir.path().join("data");
        let config_path = dir.path().join("handover.toml");
        std::fs::write(&config_path, opts.to_toml(&data_dir)).expect("write config");
        Self::start_in(dir, config_path).await
    }

    /// Starts a server on a config file the caller wrote (the federation harness).
    pub async fn start_in(dir: tempfile::TempDir, config_path: PathBuf) -> Self {
        let mut server = TestServer {
            dir,
            config_path,
            child: None,
            base_url: String::new(),
            federation_url: None,
            metrics_url: None,
            generation: 0,
        };
        server.spawn().await;
        server
    }

    /// Base URL of the federation listener (`https://...`), if the config has one.
    pub fn federation_url(&self) -> Option<&str> {
        self.federation_url.as_deref()
    }

    /// Base URL of the metrics listener, if `[metrics] listen` is set.
    pub fn metrics_url(&self) -> Option<&str> {
        self.metrics_url.as_deref()
    }

    /// Process id of the running server (to send it SIGHUP).
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().and_then(|c| c.id())
    }

    /// Base URL of the client API, e.g. `http://127.0.0.1:41234`.
    pub fn url(&self) -> &str {
        &self.base_url
    }

    pub fn config_path(&self) -> &Path {
        &self.config_path
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    fn stderr_path(&self) -> PathBuf {
        self.dir
            .path()
            .join(format!("stderr.{}.log", self.generation))
    }

    async fn spawn(&mut self) {
        assert!(self.child.is_none(), "server already running");
        self.generation += 1;
        let bin = handover_bin();
        let stderr_file = std::fs::File::create(self.stderr_path()).expect("create stderr log");
        let mut child = Command::new(&bin)
            .arg("serve")
            .arg("--config")
            .arg(&self.config_path)
            .env("RUST_BACKTRACE", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(stderr_file))
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| panic!("failed to spawn {}: {e}", bin.display()));

        let stdout = child.stdout.take().expect("piped stdout");
        let mut lines = BufReader::new(stdout).lines();
        let mut seen = Vec::new();
        let startup = startup_timeout();
        let found = tokio::time::timeout(startup, async {
            while let Ok(Some(line)) = lines.next_line().await {
                if let Some(rest) = line.trim().strip_prefix("HANDOVER_LISTENING ") {
                    let field = |k: &str| {
                        rest.split_whitespace()
                            .find_map(|kv| kv.strip_prefix(k))
                            .map(|u| u.trim_end_matches('/').to_string())
                    };
                    return field("client=").map(|c| (c, field("federation="), field("metrics=")));
                }
                seen.push(line);
            }
            None
        })
        .await;

        let (url, federation_url, metrics_url) = match found {
            Ok(Some(urls)) => urls,
            other => {
                let why = match other {
                    Err(_) => format!("no HANDOVER_LISTENING line within {startup:?}"),
                    Ok(None) => "stdout closed before the HANDOVER_LISTENING line".into(),
                    Ok(Some(_)) => unreachable!(),
                };
                let _ = child.start_kill();
                let status = tokio::time::timeout(Duration::from_secs(5), child.wait()).await;
                panic!(
                    "handover failed to start: {why}; exit: {status:?}\nstdout:\n{}\nstderr:\n{}",
                    seen.join("\n"),
                    tail(
                        &std::fs::read_to_string(self.stderr_path()).unwrap_or_default(),
                        80
                    ),
                );
            }
        };

        // Keep draining stdout so the server never blocks on a full pipe.
        let stdout_log = self
            .dir
            .path()
            .join(format!("stdout.{}.log", self.generation));
        tokio::spawn(async move {
            let mut f = tokio::fs::File::create(stdout_log).await.ok();
            while let Ok(Some(line)) = lines.next_line().await {
                if let Some(f) = f.as_mut() {
                    let _ = f.write_all(format!("{line}\n").as_bytes()).await;
                }
            }
        });

        self.base_url = url;
        self.federation_url = federation_url;
        self.metrics_url = metrics_url;
        self.child = Some(child);
    }

    /// Stops the server: SIGTERM, then SIGKILL after 10 s. Returns whether it exited on
    /// SIGTERM by itself.
    pub async fn stop(&mut self) -> bool {
        let Some(mut child) = self.child.take() else {
            return true;
        };
        if let Some(pid) = child.id() {
            // SAFETY: plain kill(2) on our own child's pid.
            unsafe {
                libc::kill(pid as libc::pid_t, libc::SIGTERM);
            }
        }
        match tokio::time::timeout(Duration::from_secs(10), child.wait()).await {
            Ok(_) => true,
            Err(_) => {
                eprintln!("handover did not exit within 10s of SIGTERM; killing it");
                let _ = child.kill().await;
                false
            }
        }
    }

    /// Kills the server with SIGKILL (a crash or power cut: no shutdown code runs) and waits
    /// for it to be gone.
    pub async fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            if let Some(pid) = child.id() {
                // SAFETY: plain kill(2) on our own child's pid.
                unsafe {
                    libc::kill(pid as libc::pid_t, libc::SIGKILL);
                }
            }
            let _ = child.wait().await;
        }
    }

    /// Starts a stopped (or killed) server again on the same data (the port may change).
    pub async fn start_again(&mut self) {
        self.spawn().await;
    }

    /// Stops and starts the server on the same data directory (the port may change).
    pub async fn restart(&mut self) {
        self.stop().await;
        self.spawn().await;
    }

    /// Restarts on the same client port, so peers that only know the URL (a bridge) reconnect.
    pub async fn restart_same_port(&mut self) {
        let port = self.base_url.rsplit(':').next().expect("port").to_owned();
        let text = std::fs::read_to_string(&self.config_path).expect("config");
        let fixed = text.replacen(
            "client = \"127.0.0.1:0\"",
            &format!("client = \"127.0.0.1:{port}\""),
            1,
        );
        std::fs::write(&self.config_path, fixed).expect("config");
        self.restart().await;
    }

    /// Whether the process is still running.
    pub fn is_running(&mut self) -> bool {
        match self.child.as_mut() {
            Some(c) => matches!(c.try_wait(), Ok(None)),
            None => false,
        }
    }

    /// Runs `handover admin create-user` against this server's config.
    pub async fn admin_create_user(
        &self,
        username: &str,
        password: &str,
        admin: bool,
    ) -> std::process::Output {
        let mut cmd = Command::new(handover_bin());
        cmd.arg("admin")
            .arg("create-user")
            .arg("--config")
            .arg(&self.config_path)
            .arg("--username")
            .arg(username)
            .arg("--password")
            .arg(password);
        if admin {
            cmd.arg("--admin");
        }
        cmd.stdin(Stdio::null()).kill_on_drop(true);
        within(60, "handover admin create-user", cmd.output())
            .await
            .expect("failed to run handover admin create-user")
    }

    /// Runs `handover <args> --config <this server's config>` (admin, audit commands).
    pub async fn cli(&self, args: &[&str]) -> std::process::Output {
        let mut cmd = Command::new(handover_bin());
        cmd.args(args)
            .arg("--config")
            .arg(&self.config_path)
            .env_remove("RUST_BACKTRACE")
            .stdin(Stdio::null())
            .kill_on_drop(true);
        within(120, &format!("handover {args:?}"), cmd.output())
            .await
            .unwrap_or_else(|e| panic!("failed to run handover {args:?}: {e}"))
    }

    /// The data directory (database, media).
    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// Whether `marker` occurs in the raw bytes of the database file or its WAL.
    pub fn db_contains(&self, marker: &str) -> bool {
        ["handover.db", "handover.db-wal"].iter().any(|f| {
            std::fs::read(self.data_dir().join(f))
                .map(|b| b.windows(marker.len()).any(|w| w == marker.as_bytes()))
                .unwrap_or(false)
        })
    }

    /// The server's stderr of the current (or last) run.
    pub fn stderr(&self) -> String {
        std::fs::read_to_string(self.stderr_path()).unwrap_or_default()
    }

    // --- clients -------------------------------------------------------------------------

    /// A fresh, logged-out matrix-sdk client for this server (in-memory store, no retries).
    pub async fn client(&self) -> Client {
        new_client(self.url()).await
    }

    /// Registers `username` with matrix-sdk (UIA `m.login.dummy`) and returns the logged-in
    /// client.
    pub async fn register(&self, username: &str) -> Client {
        let client = self.client().await;
        register_with(&client, username, PASSWORD, None)
            .await
            .unwrap_or_else(|e| panic!("registering {username} failed: {e:?}"));
        assert!(
            client.user_id().is_some(),
            "register did not log {username} in"
        );
        client
    }

    /// Logs `username` in with a password on a fresh client.
    pub async fn login(&self, username: &str, password: &str) -> Client {
        let client = self.client().await;
        client
            .matrix_auth()
            .login_username(username, password)
            .initial_device_display_name("e2e")
            .await
            .unwrap_or_else(|e| panic!("login as {username} failed: {e:?}"));
        client
    }

    /// Raw HTTP helper for this server.
    pub fn http(&self) -> Http {
        Http::new(self.url())
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        let running = self.is_running();
        if let Some(child) = self.child.as_mut() {
            let _ = child.start_kill();
        }
        if std::thread::panicking() || std::env::var_os("HANDOVER_E2E_SHOW_LOGS").is_some() {
            eprintln!(
                "---- handover stderr (run {}, still running: {running}, dir {}) ----\n{}\n---- end of handover stderr ----",
                self.generation,
                self.dir.path().display(),
                tail(&self.stderr(), 150)
            );
        }
        if std::env::var_os("HANDOVER_E2E_KEEP").is_some() {
            let path = std::mem::replace(&mut self.dir, tempfile::tempdir().unwrap()).keep();
            eprintln!("kept test dir {}", path.display());
        }
    }
}

/// The last `n` lines of a log.
pub fn server_tail(s: &str, n: usize) -> String {
    tail(s, n)
}

fn tail(s: &str, n: usize) -> String {
    let s = strip_ansi(s);
    let lines: Vec<&str> = s.lines().collect();
    let start = lines.len().saturating_sub(n);
    lines[start..].join("\n")
}

/// Removes ANSI escape sequences (colored logs written to a file).
pub fn strip_ansi(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' && chars.peek() == Some(&'[') {
            chars.next();
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// A matrix-sdk client for `url` with the in-memory store and without automatic retries
/// (so server errors surface immediately).
pub async fn new_client(url: &str) -> Client {
    Client::builder()
        .homeserver_url(url)
        .request_config(
            RequestConfig::new()
                .disable_retry()
                .timeout(Duration::from_secs(30)),
        )
        .build()
        .await
        .expect("building matrix-sdk client")
}

/// A `createRoom` request with the `public_chat` preset: Handover encrypts private rooms by
/// default (`rooms.encrypt_by_default`), so tests that inspect server-side plaintext (edits,
/// redactions, history read by a new device) use a public room instead.
pub fn unencrypted_room() -> matrix_sdk::ruma::api::client::room::create_room::v3::Request {
    use matrix_sdk::ruma::api::client::room::create_room::v3::{Request, RoomPreset};
    let mut req = Request::new();
    req.preset = Some(RoomPreset::PublicChat);
    req
}

/// Registers through matrix-sdk, answering the 401 user-interactive-auth challenges as
/// matrix-sdk users do: send without `auth`, read `flows`/`session`/`completed` from the UIA
/// response, complete the next stage of a flow made only of `m.login.dummy` and (if `token`
/// is given) `m.login.registration_token`, resend with `auth`, repeat.
pub async fn register_with(
    client: &Client,
    username: &str,
    password: &str,
    token: Option<&str>,
) -> matrix_sdk::Result<register::v3::Response> {
    let mut req = register::v3::Request::new();
    req.username = Some(username.to_owned());
    req.password = Some(password.to_owned());
    req.initial_device_display_name = Some("e2e".to_owned());
    let doable = |stage: &str| {
        stage == "m.login.dummy" || (token.is_some() && stage == "m.login.registration_token")
    };
    for _ in 0..5 {
        let err = match client.matrix_auth().register(req.clone()).await {
            Ok(resp) => return Ok(resp),
            Err(e) => e,
        };
        let Some(info) = err.as_uiaa_response() else {
            return Err(err);
        };
        // A failed stage (auth_error set) is final: do not loop on a wrong token.
        if info.auth_error.is_some() && req.auth.is_some() {
            return Err(err);
        }
        let completed: Vec<&str> = info.completed.iter().map(|s| s.as_str()).collect();
        let Some(next) = info
            .flows
            .iter()
            .filter(|f| f.stages.iter().all(|s| doable(s.as_str())))
            .find_map(|f| {
                f.stages
                    .iter()
                    .map(|s| s.as_str())
                    .find(|s| !completed.contains(s))
            })
        else {
            return Err(err);
        };
        let session = info.session.clone();
        let auth = if next == "m.login.registration_token" {
            let mut rt = RegistrationToken::new(token.unwrap().to_owned());
            rt.session = session;
            AuthData::RegistrationToken(rt)
        } else {
            let mut d = Dummy::new();
            d.session = session;
            AuthData::Dummy(d)
        };
        req.auth = Some(auth);
    }
    panic!("registration of {username}: UIA did not finish after 5 rounds");
}
