//! The EPR bridge's peers under test: the real FHIR server (Medplum's FHIR router over its
//! in-memory repository, `tests/tools/fhir-server/server.mjs`, installed by
//! scripts/install-fhir.sh; `$HANDOVER_FHIR_SERVER` names the script) and the `handover-epr`
//! process (`$HANDOVER_EPR_BIN`, else `<repo>/bridges/target/debug/handover-epr`).

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use serde_json::Value;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_owned()
}

pub fn epr_bin() -> PathBuf {
    let path = std::env::var_os("HANDOVER_EPR_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join("bridges/target/debug/handover-epr"));
    assert!(
        path.is_file(),
        "handover-epr not found at {}: `cd bridges && cargo build -p handover-epr` (or run scripts/test-e2e.sh), or set HANDOVER_EPR_BIN",
        path.display()
    );
    path
}

/// The FHIR server script, installed by scripts/install-fhir.sh when not given.
fn fhir_script() -> PathBuf {
    if let Ok(p) = std::env::var("HANDOVER_FHIR_SERVER") {
        return p.into();
    }
    let out = std::process::Command::new(repo_root().join("scripts/install-fhir.sh"))
        .output()
        .expect("running scripts/install-fhir.sh");
    assert!(
        out.status.success(),
        "install-fhir failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .last()
        .expect("server.mjs path")
        .trim()
        .into()
}

/// The repository's UK Core seed (`Patient` pat-1 with NHS number 9434765919, `Practitioner`
/// prac-1) as a list of resources.
pub fn uk_core_seed() -> Vec<Value> {
    let text =
        std::fs::read_to_string(repo_root().join("tests/tools/fhir-server/seed-uk-core.json"))
            .unwrap();
    let b: Value = serde_json::from_str(&text).unwrap();
    b["entry"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["resource"].clone())
        .collect()
}

pub struct FhirServer {
    /// `http://127.0.0.1:PORT/fhir/R4`
    pub base: String,
    /// `http://127.0.0.1:PORT`
    pub origin: String,
    pub token: String,
    http: reqwest::Client,
    _child: Child,
}

impl FhirServer {
    /// Starts the server with `seed` (resources), requiring `token`, with a client-credentials
    /// token endpoint for `client_id` / `client_secret`.
    pub async fn start(
        dir: &Path,
        seed: &[Value],
        token: &str,
        client_id: &str,
        client_secret: &str,
    ) -> Self {
        let seed_file = dir.join("fhir-seed.json");
        std::fs::write(&seed_file, Value::Array(seed.to_vec()).to_string()).unwrap();
        let mut child = Command::new("node")
            .arg(fhir_script())
            .args(["--port", "0", "--token", token, "--client-id", client_id])
            .args(["--client-secret", client_secret, "--seed"])
            .arg(&seed_file)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("starting node");
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let base = tokio::time::timeout(Duration::from_secs(60), async {
            loop {
                let line = lines
                    .next_line()
                    .await
                    .unwrap()
                    .expect("the FHIR server exited");
                if let Some(u) = line.strip_prefix("listening on ") {
                    return u.trim().to_owned();
                }
            }
        })
        .await
        .expect("the FHIR server did not start");
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        let origin = base.trim_end_matches("/fhir/R4").to_owned();
        Self {
            base,
            origin,
            token: token.to_owned(),
            http: reqwest::Client::new(),
            _child: child,
        }
    }

    /// `GET <base>/<path>` with the token: (status, JSON).
    pub async fn get(&self, path: &str) -> (u16, Value) {
        let r = self
            .http
            .get(format!("{}/{path}", self.base))
            .bearer_auth(&self.token)
            .send()
            .await
            .unwrap();
        (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
    }

    /// The resources of a search.
    pub async fn search(&self, query: &str) -> Vec<Value> {
        let (status, b) = self.get(query).await;
        assert_eq!(status, 200, "search {query}: {b}");
        b["entry"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .into_iter()
            .map(|e| e["resource"].clone())
            .collect()
    }

    /// An outage (`true`) or its end.
    pub async fn set_down(&self, down: bool) {
        let path = if down { "/_test/down" } else { "/_test/up" };
        let r = self
            .http
            .post(format!("{}{path}", self.origin))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
    }
}

pub struct EprBridge {
    pub launch: String,
    log: PathBuf,
    _child: Child,
}

impl EprBridge {
    /// Writes `config_toml` into `dir` and the registration the bridge prints; returns both
    /// paths (the registration for `[appservices] registration_files`).
    pub async fn write_config(dir: &Path, config_toml: &str) -> (PathBuf, PathBuf) {
        let config = dir.join("handover-epr.toml");
        std::fs::write(&config, config_toml).unwrap();
        let out = Command::new(epr_bin())
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
        let reg = dir.join("epr-registration.yaml");
        std::fs::write(&reg, &out.stdout).unwrap();
        (config, reg)
    }

    /// Starts the bridge against `homeserver_url` (an environment override, as an operator may
    /// set it) and waits for its listening line.
    pub async fn start(config: &Path, homeserver_url: &str, dir: &Path) -> Self {
        let log = dir.join("epr-stderr.log");
        let mut child = Command::new(epr_bin())
            .arg("--config")
            .arg(config)
            .env("HANDOVER_EPR_APPSERVICE__HOMESERVER_URL", homeserver_url)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(std::fs::File::create(&log).unwrap()))
            .kill_on_drop(true)
            .spawn()
            .expect("spawn handover-epr");
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let found = tokio::time::timeout(Duration::from_secs(60), async {
            while let Ok(Some(line)) = lines.next_line().await {
                if let Some(rest) = line.strip_prefix("HANDOVER_EPR_LISTENING ") {
                    return rest
                        .split_whitespace()
                        .find_map(|kv| kv.strip_prefix("launch="))
                        .map(str::to_owned);
                }
            }
            None
        })
        .await;
        let Ok(Some(launch)) = found else {
            panic!(
                "handover-epr did not start: {found:?}\n{}",
                std::fs::read_to_string(&log).unwrap_or_default()
            );
        };
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        Self {
            launch,
            log,
            _child: child,
        }
    }

    pub fn stderr(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for EprBridge {
    fn drop(&mut self) {
        if std::thread::panicking() || std::env::var_os("HANDOVER_E2E_SHOW_LOGS").is_some() {
            eprintln!(
                "---- handover-epr stderr ----\n{}",
                crate::server_tail(&self.stderr(), 80)
            );
        }
    }
}
