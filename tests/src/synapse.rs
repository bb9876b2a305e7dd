//! Synapse (PyPI `matrix-synapse`, installed by scripts/install-synapse.sh into a venv) as a
//! federation peer on its own loopback address: server name = the IP literal (port 8448
//! implied), client API over plain HTTP on 8008, federation over HTTPS on 8448 with a
//! certificate from the test CA. Synapse verifies its peers' certificates against that CA
//! (`federation_custom_ca_list`), fetches keys from the origin only (`trusted_key_servers: []`)
//! and has loopback taken out of its IP blocklist. Registration is open. Stopped on drop.

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Mutex;
use std::time::Duration;

use tokio::process::{Child, Command};

use crate::account::Account;
use crate::federation::{CLIENT_PORT, FED_PORT, FedNet, loopback_ip};
use crate::{Http, within};

/// How long Synapse may take to answer `/versions` (first start creates its database).
const STARTUP_SECS: u64 = 180;

/// The venv's python with Synapse: `$HANDOVER_SYNAPSE_PYTHON`, else whatever
/// scripts/install-synapse.sh prints (it installs on first use, then returns at once).
pub fn synapse_python() -> PathBuf {
    static CACHED: Mutex<Option<PathBuf>> = Mutex::new(None);
    if let Some(p) = std::env::var_os("HANDOVER_SYNAPSE_PYTHON") {
        return PathBuf::from(p);
    }
    let mut cached = CACHED.lock().unwrap();
    if let Some(p) = cached.as_ref() {
        return p.clone();
    }
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/install-synapse.sh");
    let out = std::process::Command::new("bash")
        .arg(&script)
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()
        .unwrap_or_else(|e| panic!("running {}: {e}", script.display()));
    assert!(
        out.status.success(),
        "{} failed (Synapse is needed for the interop tests)",
        script.display()
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let python = PathBuf::from(stdout.lines().last().expect("python path").trim());
    *cached = Some(python.clone());
    python
}

/// A running Synapse.
pub struct Synapse {
    pub ip: Ipv4Addr,
    /// The server name (IP literal).
    pub name: String,
    dir: tempfile::TempDir,
    child: Option<Child>,
    http: Http,
}

impl Synapse {
    /// Starts a Synapse. `whitelist`: its `federation_domain_whitelist` (None: federates with
    /// any server it can reach, i.e. only loopback).
    pub async fn start(net: &FedNet, whitelist: Option<&[&str]>) -> Self {
        let ip = loopback_ip();
        let dir = tempfile::Builder::new()
            .prefix("handover-fed-synapse-")
            .tempdir()
            .expect("tempdir");
        let python = synapse_python();
        let d = dir.path();
        let (cert, key) = net.issue_cert(ip, d);
        let key_out = std::process::Command::new(&python)
            .arg("-c")
            .arg(
                "import sys\nfrom signedjson.key import generate_signing_key, write_signing_keys\n\
                 with open(sys.argv[1], 'w') as f: write_signing_keys(f, [generate_signing_key('e2e')])",
            )
            .arg(d.join("signing.key"))
            .output()
            .expect("python: generate signing key");
        assert!(
            key_out.status.success(),
            "signing key: {}",
            String::from_utf8_lossy(&key_out.stderr)
        );
        let name = ip.to_string();
        std::fs::write(d.join("log.yaml"), log_yaml(d)).unwrap();
        std::fs::write(
            d.join("homeserver.yaml"),
            homeserver_yaml(d, ip, &cert, &key, &net.ca, whitelist),
        )
        .unwrap();
        let mut s = Synapse {
            ip,
            name,
            http: Http::new(&format!("http://{ip}:{CLIENT_PORT}")),
            dir,
            child: None,
        };
        s.spawn(&python).await;
        s
    }

    async fn spawn(&mut self, python: &Path) {
        let d = self.dir.path();
        let out = std::fs::File::create(d.join("stdout.log")).unwrap();
        let err = out.try_clone().unwrap();
        let child = Command::new(python)
            .args(["-m", "synapse.app.homeserver", "-c"])
            .arg(d.join("homeserver.yaml"))
            .current_dir(d)
            .stdin(Stdio::null())
            .stdout(Stdio::from(out))
            .stderr(Stdio::from(err))
            .kill_on_drop(true)
            .spawn()
            .expect("spawn synapse");
        self.child = Some(child);
        let http = self.http.clone();
        let ready = tokio::time::timeout(Duration::from_secs(STARTUP_SECS), async {
            loop {
                if let Ok(r) = http
                    .try_request("GET", "/_matrix/client/versions", None, None)
                    .await
                    && r.status == 200
                {
                    return true;
                }
                if !self.is_running() {
                    return false;
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        })
        .await;
        if ready != Ok(true) {
            panic!(
                "synapse {} did not start within {STARTUP_SECS}s\nstdout:\n{}\nlog:\n{}",
                self.name,
                tail(&self.read("stdout.log"), 40),
                tail(&self.log(), 60)
            );
        }
    }

    fn is_running(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|c| matches!(c.try_wait(), Ok(None)))
    }

    fn read(&self, file: &str) -> String {
        std::fs::read_to_string(self.dir.path().join(file)).unwrap_or_default()
    }

    /// Synapse's log (`homeserver.log`: warnings, and every request it served).
    pub fn log(&self) -> String {
        self.read("homeserver.log")
    }

    /// Client-server API (plain HTTP).
    pub fn http(&self) -> Http {
        self.http.clone()
    }

    /// The federation listener's base URL.
    pub fn fed_url(&self) -> String {
        format!("https://{}:{FED_PORT}", self.ip)
    }

    /// `@local:name`.
    pub fn user_id(&self, local: &str) -> String {
        format!("@{local}:{}", self.name)
    }

    /// Registers `local` (open registration, `m.login.dummy`).
    pub async fn register(&self, local: &str) -> Account {
        Account::register(self.http(), local).await
    }

    /// Registers `local` with matrix-sdk (plain HTTP client API); the logged-in client.
    pub async fn register_sdk(&self, local: &str) -> matrix_sdk::Client {
        let client = matrix_sdk::Client::builder()
            .homeserver_url(format!("http://{}:{CLIENT_PORT}", self.ip))
            .build()
            .await
            .expect("matrix-sdk client for Synapse");
        crate::register_with(&client, local, crate::PASSWORD, None)
            .await
            .unwrap_or_else(|e| panic!("registering {local} on Synapse failed: {e:?}"));
        client
    }

    /// Requests Synapse served on its federation listener, except the harness's own (marked
    /// by its user agent): what other servers sent it.
    pub fn federation_requests_from_peers(&self) -> Vec<String> {
        self.log()
            .lines()
            .filter(|l| l.contains(&format!("synapse.access.https.{FED_PORT}")))
            .filter(|l| !l.contains(crate::federation::HARNESS_UA))
            .map(str::to_owned)
            .collect()
    }

    /// Stops Synapse (SIGTERM, then SIGKILL after 10 s).
    pub async fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        if let Some(pid) = child.id() {
            // SAFETY: plain kill(2) on our own child's pid.
            unsafe {
                libc::kill(pid as libc::pid_t, libc::SIGTERM);
            }
        }
        if within(15, "synapse to stop", async {
            tokio::time::timeout(Duration::from_secs(10), child.wait()).await
        })
        .await
        .is_err()
        {
            let _ = child.kill().await;
        }
    }
}

impl Drop for Synapse {
    fn drop(&mut self) {
        if let Some(c) = self.child.as_mut() {
            let _ = c.start_kill();
        }
        if std::thread::panicking() || std::env::var_os("HANDOVER_E2E_SHOW_LOGS").is_some() {
            eprintln!(
                "---- synapse {} log (dir {}) ----\n{}\n---- end of synapse log ----",
                self.name,
                self.dir.path().display(),
                tail(&self.log(), 120)
            );
        }
        if std::env::var_os("HANDOVER_E2E_KEEP").is_some() {
            let path = std::mem::replace(&mut self.dir, tempfile::tempdir().unwrap()).keep();
            eprintln!("kept synapse dir {}", path.display());
        }
    }
}

fn tail(s: &str, n: usize) -> String {
    let lines: Vec<&str> = s.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

fn log_yaml(d: &Path) -> String {
    format!(
        r#"version: 1
formatters:
  precise: {{format: '%(asctime)s - %(name)s - %(levelname)s - %(request)s - %(message)s'}}
filters:
  context: {{(): synapse.logging.context.LoggingContextFilter}}
handlers:
  file: {{class: logging.FileHandler, formatter: precise, filters: [context], filename: {log}}}
loggers:
  synapse.access: {{level: INFO}}
root: {{level: WARNING, handlers: [file]}}
disable_existing_loggers: false
"#,
        log = d.join("homeserver.log").display()
    )
}

fn homeserver_yaml(
    d: &Path,
    ip: Ipv4Addr,
    cert: &Path,
    key: &Path,
    ca: &Path,
    whitelist: Option<&[&str]>,
) -> String {
    let rl = "{per_second: 100000, burst_count: 1000000}";
    let wl = match whitelist {
        None => String::new(),
        Some(names) => {
            let v: Vec<String> = names.iter().map(|n| format!("\"{n}\"")).collect();
            format!("federation_domain_whitelist: [{}]\n", v.join(", "))
        }
    };
    let d = d.display();
    format!(
        r#"server_name: "{ip}"
public_baseurl: "http://{ip}:{CLIENT_PORT}/"
pid_file: {d}/homeserver.pid
listeners:
  - {{port: {CLIENT_PORT}, bind_addresses: ['{ip}'], type: http, tls: false, x_forwarded: false,
     resources: [{{names: [client], compress: false}}]}}
  - {{port: {FED_PORT}, bind_addresses: ['{ip}'], type: http, tls: true,
     resources: [{{names: [federation], compress: false}}]}}
tls_certificate_path: {cert}
tls_private_key_path: {key}
federation_verify_certificates: true
federation_custom_ca_list: ["{ca}"]
# Synapse blocks outbound requests to 127.0.0.0/8 by default and, for IP-literal server names,
# consults only the blocklist: this one blocks every address except 127.0.0.0/8.
ip_range_blacklist: ['0.0.0.0/2', '64.0.0.0/3', '96.0.0.0/4', '112.0.0.0/5', '120.0.0.0/6',
                     '124.0.0.0/7', '126.0.0.0/8', '128.0.0.0/1', '::/0']
ip_range_whitelist: ['127.0.0.0/8']
trusted_key_servers: []
suppress_key_server_warning: true
allow_public_rooms_over_federation: true
database: {{name: sqlite3, args: {{database: {d}/homeserver.db}}}}
log_config: {d}/log.yaml
media_store_path: {d}/media_store
signing_key_path: {d}/signing.key
enable_registration: true
enable_registration_without_verification: true
registration_shared_secret: "e2e-secret"
macaroon_secret_key: "e2e-macaroon-{ip}"
form_secret: "e2e-form-{ip}"
report_stats: false
presence: {{enabled: false}}
{wl}rc_message: {rl}
rc_registration: {rl}
rc_login: {{address: {rl}, account: {rl}, failed_attempts: {rl}}}
rc_joins: {{local: {rl}, remote: {rl}}}
rc_joins_per_room: {rl}
rc_invites: {{per_room: {rl}, per_user: {rl}, per_issuer: {rl}}}
rc_room_creation: {rl}
rc_federation: {{window_size: 1000, sleep_limit: 100000, sleep_delay: 0, reject_limit: 100000, concurrent: 1000}}
"#,
        cert = cert.display(),
        key = key.display(),
        ca = ca.display(),
    )
}
