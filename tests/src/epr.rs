//! The `handover-epr` process under test (`$HANDOVER_EPR_BIN`, else
//! `<repo>/bridges/target/debug/handover-epr`); its FHIR server is `fhir_test_server`.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

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
