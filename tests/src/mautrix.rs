//! A real mautrix-python `AppService` (tests/appservice/mautrix_as.py) for the appservice
//! interop test: its registration file for Handover, the process, the events and pings it
//! saw, and commands it runs (ping, masquerade, send as a namespace user).

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStdin, Command};
use tokio::sync::mpsc;

use crate::within;

/// The venv's python with mautrix: `$HANDOVER_MAUTRIX_PYTHON`, else whatever
/// scripts/install-mautrix.sh prints (it installs on first use, then returns at once).
pub fn mautrix_python() -> PathBuf {
    static CACHED: Mutex<Option<PathBuf>> = Mutex::new(None);
    if let Some(p) = std::env::var_os("HANDOVER_MAUTRIX_PYTHON") {
        return PathBuf::from(p);
    }
    let mut cached = CACHED.lock().unwrap();
    if let Some(p) = cached.as_ref() {
        return p.clone();
    }
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/install-mautrix.sh");
    let out = std::process::Command::new("bash")
        .arg(&script)
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()
        .unwrap_or_else(|e| panic!("running {}: {e}", script.display()));
    assert!(out.status.success(), "{} failed", script.display());
    let stdout = String::from_utf8_lossy(&out.stdout);
    let python = PathBuf::from(stdout.lines().last().expect("python path").trim());
    *cached = Some(python.clone());
    python
}

/// An appservice's identity, as written into its registration file.
#[derive(Clone, Debug)]
pub struct AsRegistration {
    pub id: String,
    pub port: u16,
    pub as_token: String,
    pub hs_token: String,
    pub sender_localpart: String,
    /// Exclusive user namespace prefix: users `@<prefix>.*:localhost`.
    pub user_prefix: String,
    /// `org.matrix.msc3202: true`: to-device, device lists and key counts in transactions
    /// (and mautrix started with `encryption_events`).
    pub msc3202: bool,
}

impl AsRegistration {
    /// A registration on a free local port.
    pub fn new(id: &str) -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("free port")
            .port();
        Self {
            id: id.into(),
            port,
            as_token: format!("as_token_{id}_0123456789"),
            hs_token: format!("hs_token_{id}_0123456789"),
            sender_localpart: format!("{id}bot"),
            user_prefix: format!("{id}_"),
            msc3202: false,
        }
    }

    /// The YAML registration file, as Synapse reads it.
    pub fn yaml(&self) -> String {
        format!(
            r##"id: {id}
url: "http://127.0.0.1:{port}"
as_token: "{as_token}"
hs_token: "{hs_token}"
sender_localpart: "{sender}"
rate_limited: false
de.sorunome.msc2409.push_ephemeral: true
org.matrix.msc3202: {msc3202}
namespaces:
  users:
    - exclusive: true
      regex: "@{prefix}.*:localhost"
  aliases:
    - exclusive: true
      regex: "#{prefix}.*:localhost"
  rooms: []
"##,
            id = self.id,
            port = self.port,
            as_token = self.as_token,
            hs_token = self.hs_token,
            sender = self.sender_localpart,
            prefix = self.user_prefix,
            msc3202 = self.msc3202,
        )
    }

    /// Writes the file into `dir` and returns the `[appservices]` section naming it.
    pub fn write_config(&self, dir: &Path) -> String {
        let path = dir.join(format!("{}.yaml", self.id));
        std::fs::write(&path, self.yaml()).expect("write registration");
        format!(
            "\n[appservices]\nregistration_files = [{}]\n",
            crate::toml_str(&path.to_string_lossy())
        )
    }
}

/// A running mautrix appservice process.
pub struct MautrixAs {
    child: Child,
    stdin: ChildStdin,
    results: mpsc::UnboundedReceiver<Value>,
    seen: Arc<Mutex<Seen>>,
}

/// What the appservice received from the homeserver.
#[derive(Default, Debug, Clone)]
pub struct Seen {
    /// `{"txn_id", "event"}` per timeline event, in arrival order.
    pub events: Vec<Value>,
    /// `{"txn_id", "event"}` per ephemeral event (typing, receipts).
    pub ephemeral: Vec<Value>,
    /// `{"txn_id", "event"}` per to-device message (MSC4203).
    pub to_device: Vec<Value>,
    /// `{"txn_id", "lists": {"changed", "left"}}` (MSC3202).
    pub device_lists: Vec<Value>,
    /// `{"txn_id", "counts": {user: {device: {algorithm: n}}}}` (MSC3202).
    pub otk_counts: Vec<Value>,
    /// `{"txn_id", "types": {user: {device: [algorithm]}}}` (MSC3202).
    pub fallback: Vec<Value>,
    pub pings: Vec<Value>,
    pub stderr: Vec<String>,
}

impl MautrixAs {
    /// Starts the appservice against the homeserver at `hs_url`; returns once it listens.
    pub async fn start(reg: &AsRegistration, hs_url: &str, seen: Arc<Mutex<Seen>>) -> Self {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("appservice/mautrix_as.py");
        let mut child = Command::new(mautrix_python())
            .arg(&script)
            .args([
                hs_url,
                &reg.port.to_string(),
                &reg.id,
                &reg.as_token,
                &reg.hs_token,
                &reg.sender_localpart,
            ])
            .args(reg.msc3202.then_some("crypto"))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("start the mautrix appservice");
        let stdin = child.stdin.take().unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let mut errs = BufReader::new(child.stderr.take().unwrap()).lines();
        let (ready_tx, mut ready_rx) = mpsc::unbounded_channel::<()>();
        let (res_tx, results) = mpsc::unbounded_channel::<Value>();
        let s = seen.clone();
        tokio::spawn(async move {
            while let Ok(Some(line)) = lines.next_line().await {
                let (kind, rest) = line.split_once(' ').unwrap_or((&line, "{}"));
                let v: Value = serde_json::from_str(rest).unwrap_or(Value::Null);
                match kind {
                    "READY" => {
                        let _ = ready_tx.send(());
                    }
                    "EVENT" => s.lock().unwrap().events.push(v),
                    "PING" => s.lock().unwrap().pings.push(v),
                    "EPHEMERAL" => s.lock().unwrap().ephemeral.push(v),
                    "TODEVICE" => s.lock().unwrap().to_device.push(v),
                    "DEVICELISTS" => s.lock().unwrap().device_lists.push(v),
                    "OTK" => s.lock().unwrap().otk_counts.push(v),
                    "FALLBACK" => s.lock().unwrap().fallback.push(v),
                    "RESULT" => {
                        let _ = res_tx.send(v);
                    }
                    _ => {}
                }
            }
        });
        let s = seen.clone();
        tokio::spawn(async move {
            while let Ok(Some(line)) = errs.next_line().await {
                if std::env::var_os("HANDOVER_E2E_SHOW_LOGS").is_some() {
                    eprintln!("[mautrix] {line}");
                }
                s.lock().unwrap().stderr.push(line);
            }
        });
        if within(60, "the mautrix appservice to listen", ready_rx.recv())
            .await
            .is_none()
        {
            panic!(
                "mautrix appservice exited before listening:\n{}",
                seen.lock().unwrap().stderr.join("\n")
            );
        }
        Self {
            child,
            stdin,
            results,
            seen,
        }
    }

    /// Runs one command (see mautrix_as.py) and returns its result.
    pub async fn command(&mut self, cmd: Value) -> Value {
        let line = format!("{cmd}\n");
        self.stdin
            .write_all(line.as_bytes())
            .await
            .expect("command");
        self.stdin.flush().await.unwrap();
        match within(
            60,
            &format!("appservice command {cmd}"),
            self.results.recv(),
        )
        .await
        {
            Some(v) => v,
            None => panic!(
                "appservice exited during {cmd}:\n{}",
                self.seen.lock().unwrap().stderr.join("\n")
            ),
        }
    }

    /// Stops it at once (SIGKILL): it answers nothing from now on.
    pub async fn kill(mut self) {
        let _ = self.child.kill().await;
    }
}

/// Waits until `check` holds for what the appservice saw, or panics after `secs` with `what`.
pub async fn wait_seen(
    seen: &Arc<Mutex<Seen>>,
    secs: u64,
    what: &str,
    check: impl Fn(&Seen) -> bool,
) {
    within(secs, what, async {
        loop {
            if check(&seen.lock().unwrap()) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await
}
