//! The FHIR R4 test server (tests/tools/fhir-server: Medplum's FHIR router, installed by
//! scripts/install-fhir.sh) on a free loopback port, with a seed Bundle, for the tests that
//! read FHIR (the alerts bridge's rota import).

use std::path::{Path, PathBuf};
use std::process::Stdio;

use serde_json::Value;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

use crate::within;

/// `server.mjs` of the installed FHIR server (`$HANDOVER_FHIR_SERVER`, else what
/// scripts/install-fhir.sh prints; it installs on first use, then returns at once).
pub fn fhir_server_script() -> PathBuf {
    if let Some(p) = std::env::var_os("HANDOVER_FHIR_SERVER") {
        return PathBuf::from(p);
    }
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/install-fhir.sh");
    let out = std::process::Command::new("bash")
        .arg(&script)
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()
        .unwrap_or_else(|e| panic!("running {}: {e}", script.display()));
    assert!(out.status.success(), "{} failed", script.display());
    let stdout = String::from_utf8_lossy(&out.stdout);
    PathBuf::from(stdout.lines().last().expect("server path").trim())
}

/// A seed file under tests/tools/fhir-server/.
pub fn seed(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tools/fhir-server")
        .join(name)
}

pub struct FhirTestServer {
    _child: Child,
    /// `http://127.0.0.1:PORT/fhir/R4`
    pub base: String,
}

impl FhirTestServer {
    pub async fn start(seed: &Path) -> Self {
        let mut child = Command::new("node")
            .arg(fhir_server_script())
            .arg("--port")
            .arg("0")
            .arg("--seed")
            .arg(seed)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .expect("start the FHIR test server (node)");
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let base = within(60, "the FHIR server to listen", async {
            while let Ok(Some(line)) = lines.next_line().await {
                if let Some(url) = line.strip_prefix("listening on ") {
                    return url.trim().to_owned();
                }
            }
            panic!("the FHIR server exited before listening")
        })
        .await;
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        Self {
            _child: child,
            base,
        }
    }

    /// `PUT {base}/{Type}/{id}` (create or update with that id); panics unless 200/201.
    pub async fn put(&self, resource: &Value) -> Value {
        let path = format!(
            "{}/{}/{}",
            self.base,
            resource["resourceType"].as_str().unwrap(),
            resource["id"].as_str().unwrap()
        );
        let r = reqwest::Client::new()
            .put(&path)
            .header("content-type", "application/fhir+json")
            .json(resource)
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        let body: Value = r.json().await.unwrap_or(Value::Null);
        assert!(matches!(status, 200 | 201), "PUT {path}: {status} {body}");
        body
    }
}
