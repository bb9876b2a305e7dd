//! One Handover with a federation listener on its own loopback address (see the module docs).

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use serde_json::Value;

use super::{CLIENT_PORT, FED_PORT, FedNet, list_doc, toml_list, toml_str};
use crate::account::Account;
use crate::{Http, TestServer, handover_bin, within};

/// A Handover named after its own loopback address, with TLS (test CA) on both listeners, a
/// signed federation list (`list.json` + `list.json.sig`, pinned signer) and open registration.
pub struct HandoverPeer {
    pub server: TestServer,
    pub ip: Ipv4Addr,
    /// The server name: the IP literal (port 8448 implied).
    pub name: String,
    list_file: PathBuf,
    serial: u64,
    http: Http,
}

impl HandoverPeer {
    pub(super) async fn start(
        net: &FedNet,
        ip: Ipv4Addr,
        listed: &[&str],
        invitable: &[&str],
        extra_toml: &str,
    ) -> Self {
        let dir = tempfile::Builder::new()
            .prefix("handover-fed-hs-")
            .tempdir()
            .expect("tempdir");
        let name = ip.to_string();
        let (cert, key) = net.issue_cert(ip, dir.path());
        let list_file = dir.path().join("list.json");
        net.write_signed_list(&list_file, &list_doc(1, listed));
        let p = |p: &Path| toml_str(&p.to_string_lossy());
        let level = std::env::var("HANDOVER_E2E_LOG").unwrap_or_else(|_| "info".into());
        let config = format!(
            r#"server_name = {name_s}
data_dir = {data}

[listen]
client = "{ip}:{CLIENT_PORT}"
federation = "{ip}:{FED_PORT}"

[tls]
cert = {cert}
key = {key}

[registration]
mode = "open"

[log]
format = "text"
level = {level}

[rate_limit]
enabled = false

[invites]
allowed_servers = {invitable}

[federation]
list_file = {list}
list_signing_key = {signer}
ca_file = {ca}
verify_tls = true
request_timeout_secs = 15
{extra_toml}
"#,
            name_s = toml_str(&name),
            data = p(&dir.path().join("data")),
            cert = p(&cert),
            key = p(&key),
            level = toml_str(&level),
            invitable = toml_list(invitable),
            list = p(&list_file),
            signer = toml_str(&net.signing_key_b64),
            ca = p(&net.ca),
        );
        let config_path = dir.path().join("handover.toml");
        std::fs::write(&config_path, config).unwrap();
        let server = TestServer::start_in(dir, config_path).await;
        assert_eq!(
            server.federation_url(),
            Some(format!("https://{ip}:{FED_PORT}").as_str()),
            "federation listener"
        );
        let http = net.http(server.url());
        HandoverPeer {
            server,
            ip,
            name,
            list_file,
            serial: 1,
            http,
        }
    }

    /// `@local:name`.
    pub fn user_id(&self, local: &str) -> String {
        format!("@{local}:{}", self.name)
    }

    /// Client-server API (https, test CA).
    pub fn http(&self) -> Http {
        self.http.clone()
    }

    /// The federation listener's base URL.
    pub fn fed_url(&self) -> String {
        format!("https://{}:{FED_PORT}", self.ip)
    }

    /// Registers `local` (open registration) and returns the account.
    pub async fn register(&self, local: &str) -> Account {
        Account::register(self.http(), local).await
    }

    /// Registers `local` with matrix-sdk over TLS (trusting the test CA); the logged-in client.
    pub async fn register_sdk(&self, net: &FedNet, local: &str) -> matrix_sdk::Client {
        let pem = std::fs::read(&net.ca).unwrap();
        let ca = reqwest::Certificate::from_pem(&pem).expect("test CA");
        let client = matrix_sdk::Client::builder()
            .homeserver_url(self.server.url())
            .add_root_certificates(vec![ca])
            .request_config(
                matrix_sdk::config::RequestConfig::new()
                    .disable_retry()
                    .timeout(Duration::from_secs(30)),
            )
            .build()
            .await
            .expect("matrix-sdk client");
        crate::register_with(&client, local, crate::PASSWORD, None)
            .await
            .unwrap_or_else(|e| panic!("registering {local} failed: {e:?}"));
        client
    }

    /// The list file in force (for tests that tamper with it).
    pub fn list_file(&self) -> &Path {
        &self.list_file
    }

    /// Writes a new signed list (next serial) naming `servers`; call [`Self::reload`] after.
    pub fn write_list(&mut self, net: &FedNet, servers: &[&str]) -> u64 {
        self.serial += 1;
        net.write_signed_list(&self.list_file, &list_doc(self.serial, servers));
        self.serial
    }

    /// SIGHUP: reload the federation list now.
    pub fn reload(&self) {
        let pid = self.server.pid().expect("server running");
        // SAFETY: plain kill(2) on our own child's pid.
        unsafe {
            libc::kill(pid as libc::pid_t, libc::SIGHUP);
        }
    }

    /// Stops and starts the server on the same data, address and ports.
    pub async fn restart(&mut self) {
        self.server.restart().await;
    }

    /// The audit trail (`handover audit export`), as JSON records.
    pub async fn audit(&self) -> Vec<Value> {
        let mut cmd = tokio::process::Command::new(handover_bin());
        cmd.args(["audit", "export", "--config"])
            .arg(self.server.config_path())
            .args(["--since", "0", "--until", "99999999999999"])
            .stdin(Stdio::null())
            .kill_on_drop(true);
        let out = within(60, "handover audit export", cmd.output())
            .await
            .expect("handover audit export");
        assert!(
            out.status.success(),
            "handover audit export: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| serde_json::from_str(l).expect("audit JSON line"))
            .collect()
    }

    /// Audited federation refusals concerning `peer` (`direction`: "inbound"/"outbound").
    pub async fn denials(&self, peer: &str, direction: &str) -> Vec<Value> {
        self.audit()
            .await
            .into_iter()
            .filter(|e| {
                e["action"] == "federation.denial"
                    && e["target"] == peer
                    && e["details"]["direction"] == direction
            })
            .collect()
    }

    /// Requests served on the federation listener or key paths, from the request log (for
    /// "this server received nothing from X" checks, made where only X could have sent them).
    pub fn federation_requests_logged(&self) -> Vec<String> {
        crate::strip_ansi(&self.server.stderr())
            .lines()
            .filter(|l| l.contains("handover::request"))
            .filter(|l| {
                // Unrouted paths log as <unmatched>: the tests make none on their own.
                l.contains("/_matrix/federation")
                    || l.contains("/_matrix/key")
                    || l.contains("<unmatched>")
            })
            .map(str::to_owned)
            .collect()
    }
}
