//! The FHIR R4 test server (tests/tools/fhir-server: Medplum's FHIR router over its in-memory
//! repository, installed by scripts/install-fhir.sh) on a free loopback port, with a seed, for
//! the tests that read or write FHIR (the EPR bridge; the alerts bridge's rota import).

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

/// The repository's UK Core seed (`Patient` pat-1 with NHS number 9434765919, `Practitioner`
/// prac-1) as a list of resources.
pub fn uk_core_seed() -> Vec<Value> {
    let b: Value =
        serde_json::from_str(&std::fs::read_to_string(seed("seed-uk-core.json")).unwrap()).unwrap();
    b["entry"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["resource"].clone())
        .collect()
}

/// Who may call the server: a bearer token, and a client-credentials token endpoint that
/// issues it to `client_id` / `client_secret`.
pub struct FhirAuth<'a> {
    pub token: &'a str,
    pub client_id: &'a str,
    pub client_secret: &'a str,
}

pub struct FhirServer {
    /// `http://127.0.0.1:PORT/fhir/R4`
    pub base: String,
    /// `http://127.0.0.1:PORT`
    pub origin: String,
    /// The bearer token the server requires (`""`: none).
    pub token: String,
    http: reqwest::Client,
    _child: Child,
}

impl FhirServer {
    /// Open to anyone, seeded from a file (a Bundle or a list of resources).
    pub async fn start(seed: &Path) -> Self {
        Self::start_with(seed, None).await
    }

    /// Seeded with `resources` (written to `dir`), requiring `auth`.
    pub async fn start_authenticated(dir: &Path, resources: &[Value], auth: FhirAuth<'_>) -> Self {
        let seed_file = dir.join("fhir-seed.json");
        std::fs::write(&seed_file, Value::Array(resources.to_vec()).to_string()).unwrap();
        Self::start_with(&seed_file, Some(auth)).await
    }

    async fn start_with(seed: &Path, auth: Option<FhirAuth<'_>>) -> Self {
        let mut cmd = Command::new("node");
        cmd.arg(fhir_server_script())
            .args(["--port", "0", "--seed"])
            .arg(seed);
        if let Some(a) = &auth {
            cmd.args(["--token", a.token, "--client-id", a.client_id])
                .args(["--client-secret", a.client_secret]);
        }
        let mut child = cmd
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
            origin: base.trim_end_matches("/fhir/R4").to_owned(),
            base,
            token: auth.map(|a| a.token.to_owned()).unwrap_or_default(),
            http: reqwest::Client::new(),
            _child: child,
        }
    }

    fn authed(&self, req: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        if self.token.is_empty() {
            req
        } else {
            req.bearer_auth(&self.token)
        }
    }

    /// `GET <base>/<path>`: (status, JSON).
    pub async fn get(&self, path: &str) -> (u16, Value) {
        let r = self
            .authed(self.http.get(format!("{}/{path}", self.base)))
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

    /// `PUT {base}/{Type}/{id}` (create or update with that id); panics unless 200/201.
    pub async fn put(&self, resource: &Value) -> Value {
        let path = format!(
            "{}/{}/{}",
            self.base,
            resource["resourceType"].as_str().unwrap(),
            resource["id"].as_str().unwrap()
        );
        let r = self
            .authed(self.http.put(&path))
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
