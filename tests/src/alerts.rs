//! The `handover-alerts` bridge process under test (`$HANDOVER_ALERTS_BIN`, else
//! `<repo>/bridges/target/debug/handover-alerts`; scripts/test-e2e.sh builds it): its config,
//! appservice registration, start/stop on the same state file, and signed webhook calls
//! (signed with the `openssl` command, exactly as docs/BRIDGES.md tells integrators to).

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use serde_json::Value;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

pub fn alerts_bin() -> PathBuf {
    let path = std::env::var_os("HANDOVER_ALERTS_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../bridges/target/debug/handover-alerts")
        });
    assert!(
        path.is_file(),
        "handover-alerts not found at {}: `cd bridges && cargo build -p handover-alerts` (or run scripts/test-e2e.sh), or set HANDOVER_ALERTS_BIN",
        path.display()
    );
    path
}

/// A free loopback port (the registration must name the bridge's URL before the server starts).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

pub struct AlertsBridge {
    pub config: PathBuf,
    pub homeserver_url: String,
    child: Option<Child>,
    pub webhook: String,
    log_dir: PathBuf,
    generation: u32,
}

impl AlertsBridge {
    /// Writes `config_toml` into `dir` and prints the registration file with the bridge's own
    /// `registration` command; returns its path (for `[appservices] registration_files`).
    pub async fn write_config(dir: &Path, config_toml: &str) -> (PathBuf, PathBuf) {
        let config = dir.join("alerts.toml");
        std::fs::write(&config, config_toml).unwrap();
        let out = Command::new(alerts_bin())
            .arg("--config")
            .arg(&config)
            .arg("registration")
            .output()
            .await
            .unwrap();
        assert!(
            out.status.success(),
            "registration: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let reg = dir.join("alerts-registration.yaml");
        std::fs::write(&reg, &out.stdout).unwrap();
        (config, reg)
    }

    /// Starts the bridge against `homeserver_url` (given by environment override, as an
    /// operator may) and waits for its listening line.
    pub async fn start(config: PathBuf, homeserver_url: &str, log_dir: &Path) -> Self {
        let mut b = Self {
            config,
            homeserver_url: homeserver_url.to_owned(),
            child: None,
            webhook: String::new(),
            log_dir: log_dir.to_owned(),
            generation: 0,
        };
        b.spawn().await;
        b
    }

    fn log_path(&self) -> PathBuf {
        self.log_dir
            .join(format!("alerts-stderr.{}.log", self.generation))
    }

    pub fn stderr(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    async fn spawn(&mut self) {
        self.generation += 1;
        let log = std::fs::File::create(self.log_path()).unwrap();
        let mut child = Command::new(alerts_bin())
            .arg("--config")
            .arg(&self.config)
            .env(
                "HANDOVER_ALERTS_APPSERVICE__HOMESERVER_URL",
                &self.homeserver_url,
            )
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log))
            .kill_on_drop(true)
            .spawn()
            .expect("spawn handover-alerts");
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let found = tokio::time::timeout(Duration::from_secs(60), async {
            while let Ok(Some(line)) = lines.next_line().await {
                if let Some(rest) = line.strip_prefix("HANDOVER_ALERTS_LISTENING ") {
                    return rest
                        .split_whitespace()
                        .find_map(|kv| kv.strip_prefix("webhook="))
                        .map(str::to_owned);
                }
            }
            None
        })
        .await;
        let Ok(Some(url)) = found else {
            let _ = child.start_kill();
            panic!(
                "handover-alerts did not start: {found:?}\n{}",
                self.stderr()
            );
        };
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        self.webhook = url;
        self.child = Some(child);
    }

    /// Kills the bridge (SIGKILL: no chance to tidy up, like a crash).
    pub async fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill().await;
        }
    }

    pub async fn restart(&mut self) {
        self.kill().await;
        self.spawn().await;
    }

    /// POSTs `body` to `/alerts` as `source`, signed with `secret` at `timestamp`.
    pub async fn send(
        &self,
        source: &str,
        secret: &str,
        timestamp: i64,
        body: &str,
    ) -> (u16, Value) {
        let sig = openssl_sign(secret, &format!("{timestamp}.{body}")).await;
        self.send_raw(Some(source), Some(timestamp), Some(&sig), body)
            .await
    }

    pub async fn send_raw(
        &self,
        source: Option<&str>,
        ts: Option<i64>,
        sig: Option<&str>,
        body: &str,
    ) -> (u16, Value) {
        let mut rb = reqwest::Client::new()
            .post(format!("{}/alerts", self.webhook))
            .header("content-type", "application/json")
            .body(body.to_owned());
        if let Some(s) = source {
            rb = rb.header("X-Handover-Source", s);
        }
        if let Some(t) = ts {
            rb = rb.header("X-Handover-Timestamp", t.to_string());
        }
        if let Some(s) = sig {
            rb = rb.header("X-Handover-Signature", s);
        }
        let r = rb.send().await.expect("webhook reachable");
        (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
    }

    /// `GET /alerts/{source}/{id}`, signed over the path.
    pub async fn status(&self, source: &str, secret: &str, id: &str) -> (u16, Value) {
        let path = format!("/alerts/{source}/{id}");
        let ts = now_secs();
        let sig = openssl_sign(secret, &format!("{ts}.{path}")).await;
        let r = reqwest::Client::new()
            .get(format!("{}{path}", self.webhook))
            .header("X-Handover-Timestamp", ts.to_string())
            .header("X-Handover-Signature", sig)
            .send()
            .await
            .unwrap();
        (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
    }

    pub async fn get_text(&self, path: &str) -> String {
        reqwest::get(format!("{}{path}", self.webhook))
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }
}

impl Drop for AlertsBridge {
    fn drop(&mut self) {
        if std::thread::panicking() || std::env::var_os("HANDOVER_E2E_SHOW_LOGS").is_some() {
            eprintln!(
                "---- handover-alerts stderr ----\n{}",
                crate::server_tail(&self.stderr(), 60)
            );
        }
    }
}

pub fn now_secs() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// `sha256=<hex>` of HMAC-SHA256(secret, message), computed by the openssl command line.
pub async fn openssl_sign(secret: &str, message: &str) -> String {
    use tokio::io::AsyncWriteExt;
    let mut child = Command::new("openssl")
        .args(["dgst", "-sha256", "-hmac", secret])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("openssl (scripts/test.sh installs it)");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(message.as_bytes())
        .await
        .unwrap();
    let out = child.wait_with_output().await.unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    format!("sha256={}", text.trim().rsplit(' ').next().unwrap())
}
