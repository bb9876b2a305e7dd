//! Harness for Handover's end-to-end tests.
//!
//! [`TestServer`] starts the real `handover` binary (`$HANDOVER_BIN`, else
//! `$CARGO_TARGET_DIR/debug/handover` or `<repo>/target/debug/handover`) on a fresh data
//! directory, waits for its `HANDOVER_LISTENING client=...` line and can stop/restart it on
//! the same data. Helpers build matrix-sdk clients ([`TestServer::register`], [`TestServer::login`]),
//! drive `/sync` until a condition holds ([`sync_until`]) and make raw HTTP calls
//! ([`Http`]) for the bad-input tests.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use matrix_sdk::Client;
use matrix_sdk::config::{RequestConfig, SyncSettings};
use matrix_sdk::ruma::api::client::account::register;
use matrix_sdk::ruma::api::client::uiaa::{AuthData, Dummy, RegistrationToken};
use matrix_sdk::ruma::{OwnedRoomId, RoomId};
use matrix_sdk::sync::SyncResponse;
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, Command};

pub use serde_json::json;

pub mod account;
pub mod federation;
pub mod synapse;

/// Default password used by the helpers.
pub const PASSWORD: &str = "correct horse battery staple";

/// How long the server may take to print its listening line (`HANDOVER_E2E_STARTUP_SECS`,
/// default 30).
fn startup_timeout() -> Duration {
    let secs = std::env::var("HANDOVER_E2E_STARTUP_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(30);
    Duration::from_secs(secs)
}

// ---------------------------------------------------------------------------------------------
// Timeouts
// ---------------------------------------------------------------------------------------------

/// Runs a test body with an overall deadline, so a hung server fails the test instead of
/// hanging CI. On timeout it panics *while the body is still alive*, so a [`TestServer`]
/// inside it is dropped during unwinding and prints its logs.
pub async fn with_timeout<F: Future<Output = ()>>(secs: u64, body: F) {
    let mut body = Box::pin(body);
    tokio::select! {
        () = &mut body => {}
        () = tokio::time::sleep(Duration::from_secs(secs)) => {
            panic!("test timed out after {secs}s (server hung or a condition never became true)")
        }
    }
}

/// Awaits `fut` for at most `secs` seconds, panicking with `what` otherwise.
pub async fn within<T>(secs: u64, what: &str, fut: impl Future<Output = T>) -> T {
    match tokio::time::timeout(Duration::from_secs(secs), fut).await {
        Ok(v) => v,
        Err(_) => panic!("timed out after {secs}s: {what}"),
    }
}

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
    fn to_toml(&self, data_dir: &Path) -> String {
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
            generation: 0,
        };
        server.spawn().await;
        server
    }

    /// Base URL of the federation listener (`https://...`), if the config has one.
    pub fn federation_url(&self) -> Option<&str> {
        self.federation_url.as_deref()
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
                    return field("client=").map(|c| (c, field("federation=")));
                }
                seen.push(line);
            }
            None
        })
        .await;

        let (url, federation_url) = match found {
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

    /// Stops and starts the server on the same data directory (the port may change).
    pub async fn restart(&mut self) {
        self.stop().await;
        self.spawn().await;
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

// ---------------------------------------------------------------------------------------------
// Sync helpers
// ---------------------------------------------------------------------------------------------

/// Syncs `client` repeatedly (short long-poll, reusing the previous token) until `check`
/// returns `Some`, or panics after `secs` seconds with `what`.
pub async fn sync_until<T>(
    client: &Client,
    secs: u64,
    what: &str,
    mut check: impl FnMut(&SyncResponse) -> Option<T>,
) -> T {
    within(secs, &format!("waiting for sync: {what}"), async {
        loop {
            let resp = client
                .sync_once(SyncSettings::default().timeout(Duration::from_millis(500)))
                .await
                .unwrap_or_else(|e| panic!("sync failed while waiting for {what}: {e:?}"));
            if let Some(v) = check(&resp) {
                return v;
            }
        }
    })
    .await
}

/// Parses a raw event to JSON.
pub fn raw_json<T>(raw: &matrix_sdk::ruma::serde::Raw<T>) -> Value {
    serde_json::from_str(raw.json().get()).expect("event JSON")
}

/// Timeline events (as JSON) of a joined room in a sync response.
pub fn timeline(resp: &SyncResponse, room_id: &RoomId) -> Vec<Value> {
    resp.rooms
        .joined
        .get(room_id)
        .map(|r| {
            r.timeline
                .events
                .iter()
                .map(|e| raw_json(e.raw()))
                .collect()
        })
        .unwrap_or_default()
}

/// Ephemeral events (as JSON) of a joined room in a sync response.
pub fn ephemeral(resp: &SyncResponse, room_id: &RoomId) -> Vec<Value> {
    resp.rooms
        .joined
        .get(room_id)
        .map(|r| r.ephemeral.iter().map(raw_json).collect())
        .unwrap_or_default()
}

/// Rooms this sync response reports as invites.
pub fn invited_rooms(resp: &SyncResponse) -> Vec<OwnedRoomId> {
    resp.rooms.invited.keys().cloned().collect()
}

/// `content.body` of an `m.room.message` event, if it is one.
pub fn message_body(ev: &Value) -> Option<&str> {
    if ev["type"] != "m.room.message" {
        return None;
    }
    ev["content"]["body"].as_str()
}

// ---------------------------------------------------------------------------------------------
// Raw HTTP
// ---------------------------------------------------------------------------------------------

/// Minimal raw HTTP client for requests matrix-sdk cannot (or would not) make.
#[derive(Clone)]
pub struct Http {
    base: String,
    client: reqwest::Client,
}

/// A raw HTTP response.
#[derive(Debug)]
pub struct Resp {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: Vec<u8>,
    /// `METHOD path`, for messages.
    pub what: String,
}

impl Resp {
    /// Body as JSON (`Value::Null` if it is not JSON).
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body)
            .chars()
            .take(2000)
            .collect()
    }

    pub fn errcode(&self) -> Option<String> {
        self.json()
            .get("errcode")
            .and_then(|v| v.as_str())
            .map(str::to_owned)
    }

    pub fn content_type(&self) -> Option<String> {
        self.headers
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    }

    /// Asserts a 2xx-or-exact status and returns the JSON body.
    #[track_caller]
    pub fn ok(&self) -> Value {
        assert_eq!(
            self.status,
            200,
            "{}: expected 200, got {} {}",
            self.what,
            self.status,
            self.text()
        );
        self.json()
    }

    /// Asserts the status code and that `errcode` is one of `errcodes`.
    #[track_caller]
    pub fn assert_error(&self, status: u16, errcodes: &[&str]) {
        let errcode = self.errcode();
        assert!(
            self.status == status && errcode.as_deref().is_some_and(|c| errcodes.contains(&c)),
            "{}: expected {status} {errcodes:?}, got {} body={}",
            self.what,
            self.status,
            self.text()
        );
        self.assert_error_shape();
    }

    /// Asserts a governance refusal: the status, the spec's errcode, and an `error` message
    /// naming the rule (``Denied by policy rule `<rule>`: ...``).
    #[track_caller]
    pub fn assert_rule(&self, status: u16, errcode: &str, rule: &str) {
        self.assert_error(status, &[errcode]);
        let msg = self.json()["error"].as_str().unwrap_or_default().to_owned();
        assert!(
            msg.contains(&format!("`{rule}`")),
            "{}: the error should name rule `{rule}`: {msg}",
            self.what
        );
    }

    /// Asserts that `(status, errcode)` is one of `allowed`.
    #[track_caller]
    pub fn assert_error_any(&self, allowed: &[(u16, &str)]) {
        let errcode = self.errcode();
        assert!(
            allowed
                .iter()
                .any(|(s, c)| *s == self.status && errcode.as_deref() == Some(*c)),
            "{}: expected one of {allowed:?}, got {} body={}",
            self.what,
            self.status,
            self.text()
        );
        self.assert_error_shape();
    }

    #[track_caller]
    fn assert_error_shape(&self) {
        assert!(
            self.content_type()
                .is_some_and(|c| c.starts_with("application/json")),
            "{}: error response content-type must be application/json, got {:?}",
            self.what,
            self.content_type()
        );
        let json = self.json();
        assert!(
            json.get("error").is_none_or(|e| e.is_string()),
            "{}: `error` must be a string: {}",
            self.what,
            self.text()
        );
    }
}

impl Http {
    /// The underlying reqwest client (for requests the helpers do not cover).
    pub fn client(&self) -> &reqwest::Client {
        &self.client
    }

    pub fn new(base: &str) -> Self {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("reqwest client");
        Self::with_client(base, client)
    }

    /// An `Http` for `base` using `client` (e.g. one that trusts a test CA).
    pub fn with_client(base: &str, client: reqwest::Client) -> Self {
        Http {
            base: base.trim_end_matches('/').to_owned(),
            client,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// Sends a request; `body` is `(content_type, bytes)`. Panics if no response arrives.
    pub async fn request(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<(&str, Vec<u8>)>,
    ) -> Resp {
        self.try_request(method, path, token, body)
            .await
            .unwrap_or_else(|e| panic!("{method} {path}: request failed: {e:?}"))
    }

    /// Like [`Http::request`], but returns transport errors instead of panicking.
    pub async fn try_request(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<(&str, Vec<u8>)>,
    ) -> Result<Resp, reqwest::Error> {
        let method = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
        let mut req = self.client.request(method.clone(), self.url(path));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some((ct, bytes)) = body {
            req = req.header(reqwest::header::CONTENT_TYPE, ct).body(bytes);
        }
        let what = format!("{method} {path}");
        let resp = req.send().await?;
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let body = resp.bytes().await?.to_vec();
        Ok(Resp {
            status,
            headers,
            body,
            what,
        })
    }

    pub async fn get(&self, path: &str, token: Option<&str>) -> Resp {
        self.request("GET", path, token, None).await
    }

    pub async fn post_json(&self, path: &str, token: Option<&str>, body: &Value) -> Resp {
        let bytes = serde_json::to_vec(body).unwrap();
        self.request("POST", path, token, Some(("application/json", bytes)))
            .await
    }

    pub async fn put_json(&self, path: &str, token: Option<&str>, body: &Value) -> Resp {
        let bytes = serde_json::to_vec(body).unwrap();
        self.request("PUT", path, token, Some(("application/json", bytes)))
            .await
    }

    /// Registers with `m.login.dummy` over raw HTTP; returns `(user_id, access_token)`.
    pub async fn register(&self, username: &str, password: &str) -> (String, String) {
        let body = json!({"username": username, "password": password});
        let first = self
            .post_json("/_matrix/client/v3/register", None, &body)
            .await;
        let resp = if first.status == 401 {
            let session = first.json()["session"].clone();
            let mut body = body.clone();
            body["auth"] = json!({"type": "m.login.dummy", "session": session});
            self.post_json("/_matrix/client/v3/register", None, &body)
                .await
        } else {
            first
        };
        let json = resp.ok();
        (
            json["user_id"].as_str().expect("user_id").to_owned(),
            json["access_token"]
                .as_str()
                .expect("access_token")
                .to_owned(),
        )
    }

    /// Logs in with a password; returns the access token.
    pub async fn login(&self, username: &str, password: &str) -> String {
        let resp = self
            .post_json(
                "/_matrix/client/v3/login",
                None,
                &login_body(username, password),
            )
            .await;
        resp.ok()["access_token"]
            .as_str()
            .expect("access_token")
            .to_owned()
    }

    /// Creates a room; returns its ID.
    pub async fn create_room(&self, token: &str, body: &Value) -> String {
        let resp = self
            .post_json("/_matrix/client/v3/createRoom", Some(token), body)
            .await;
        resp.ok()["room_id"].as_str().expect("room_id").to_owned()
    }
}

impl Http {
    /// Sends a request over a raw TCP connection, reading the response *while* the body is
    /// being written (like curl does), so a server that answers early (e.g. 413 before the
    /// body is complete) is observed even if it then closes the connection. Errors while
    /// writing are ignored; the response is what counts.
    pub async fn raw_streaming_request(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        content_type: &str,
        body: Vec<u8>,
    ) -> Resp {
        use tokio::io::AsyncReadExt;
        let hostport = self.base.strip_prefix("http://").expect("http:// base URL");
        let stream = tokio::net::TcpStream::connect(hostport)
            .await
            .expect("connect");
        let (mut rd, mut wr) = stream.into_split();
        let mut head = format!(
            "{method} {path} HTTP/1.1\r\nHost: {hostport}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n",
            body.len()
        );
        if let Some(t) = token {
            head.push_str(&format!("Authorization: Bearer {t}\r\n"));
        }
        head.push_str("\r\n");
        let writer = tokio::spawn(async move {
            if wr.write_all(head.as_bytes()).await.is_err() {
                return;
            }
            for chunk in body.chunks(64 * 1024) {
                if wr.write_all(chunk).await.is_err() {
                    return;
                }
            }
            let _ = wr.flush().await;
        });
        let mut buf = Vec::new();
        let mut tmp = vec![0u8; 64 * 1024];
        let what = format!("{method} {path} (raw)");
        loop {
            match tokio::time::timeout(Duration::from_secs(30), rd.read(&mut tmp)).await {
                Ok(Ok(0)) | Ok(Err(_)) => break,
                Ok(Ok(n)) => {
                    buf.extend_from_slice(&tmp[..n]);
                    if let Some(resp) = parse_http_response(&buf, &what) {
                        writer.abort();
                        return resp;
                    }
                }
                Err(_) => panic!("{what}: no complete response within 30s"),
            }
        }
        writer.abort();
        parse_http_response(&buf, &what).unwrap_or_else(|| {
            panic!(
                "{what}: connection closed without a complete HTTP response; got {} bytes: {:?}",
                buf.len(),
                String::from_utf8_lossy(&buf[..buf.len().min(500)])
            )
        })
    }
}

/// Parses a complete HTTP/1.1 response (Content-Length or chunked); `None` if incomplete.
fn parse_http_response(buf: &[u8], what: &str) -> Option<Resp> {
    let end = buf.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = std::str::from_utf8(&buf[..end]).ok()?;
    let mut lines = head.split("\r\n");
    let status: u16 = lines.next()?.split_whitespace().nth(1)?.parse().ok()?;
    let mut headers = reqwest::header::HeaderMap::new();
    for l in lines {
        if let Some((k, v)) = l.split_once(':') {
            if let (Ok(k), Ok(v)) = (
                reqwest::header::HeaderName::from_bytes(k.trim().as_bytes()),
                reqwest::header::HeaderValue::from_str(v.trim()),
            ) {
                headers.append(k, v);
            }
        }
    }
    let rest = &buf[end + 4..];
    let body = if let Some(len) = headers.get("content-length") {
        let len: usize = len.to_str().ok()?.parse().ok()?;
        if rest.len() < len {
            return None;
        }
        rest[..len].to_vec()
    } else if headers
        .get("transfer-encoding")
        .is_some_and(|v| v.to_str().unwrap_or("").contains("chunked"))
    {
        let mut out = Vec::new();
        let mut pos = 0;
        loop {
            let nl = rest[pos..].windows(2).position(|w| w == b"\r\n")?;
            let size_str = std::str::from_utf8(&rest[pos..pos + nl]).ok()?;
            let size = usize::from_str_radix(size_str.split(';').next()?.trim(), 16).ok()?;
            pos += nl + 2;
            if size == 0 {
                break;
            }
            if rest.len() < pos + size + 2 {
                return None;
            }
            out.extend_from_slice(&rest[pos..pos + size]);
            pos += size + 2;
        }
        out
    } else {
        return None; // read to EOF; caller retries after close
    };
    Some(Resp {
        status,
        headers,
        body,
        what: what.to_owned(),
    })
}

/// `m.login.password` body for `/login`.
pub fn login_body(username: &str, password: &str) -> Value {
    json!({
        "type": "m.login.password",
        "identifier": {"type": "m.id.user", "user": username},
        "password": password,
    })
}

/// Percent-encodes a path segment (room IDs contain `!` and `:`).
pub fn enc(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}
