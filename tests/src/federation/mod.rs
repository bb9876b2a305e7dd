//! Federation harness: several Handover servers (and Synapse peers, see [`crate::synapse`]) on
//! loopback, each on its own address so that server names are IP literals (`127.100.4.2`, port
//! 8448 implied) that resolve without DNS, exactly as a peer would address them.
//!
//! A [`FedNet`] holds what the servers of one test share: a test CA (every server's TLS
//! certificate is issued by it and every server trusts it, so federation TLS is verified for
//! real) and the federation-list signer (an ed25519 key; lists are signed with the documented
//! `handover federation-list canonical` + `openssl pkeyutl` procedure). [`HandoverPeer`] is one
//! Handover with a federation listener, its own signed list and TLS on both listeners.

use std::net::{Ipv4Addr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::Duration;

use serde_json::{Value, json};

mod peer;

pub use self::peer::HandoverPeer;

use crate::{Http, handover_bin};

/// Client-server API port on each server's own address (plain for Synapse, TLS for Handover).
pub const CLIENT_PORT: u16 = 8008;
/// Federation port: the default for an IP-literal server name without a port.
pub const FED_PORT: u16 = 8448;
/// User agent of the harness's own HTTP requests, so peers' logs can tell them apart.
pub const HARNESS_UA: &str = "handover-e2e-harness";

// ---------------------------------------------------------------------------------------------
// Loopback addresses
// ---------------------------------------------------------------------------------------------

/// Addresses handed out by this process (a stopped server keeps its address for a restart).
static TAKEN: Mutex<Vec<Ipv4Addr>> = Mutex::new(Vec::new());

/// A loopback address of its own for one server, with [`CLIENT_PORT`] and [`FED_PORT`] free.
///
/// Addresses are `127.1xx.y.z` with `xx` from the process id, so two test runs on one machine
/// (or other tools using 127.0.0.x) rarely meet; a bind probe skips any address in use.
pub fn loopback_ip() -> Ipv4Addr {
    let mut taken = TAKEN.lock().unwrap();
    let second = 100 + (std::process::id() % 100) as u8;
    for n in 0u32..60_000 {
        let ip = Ipv4Addr::new(127, second, (n / 250) as u8, 2 + (n % 250) as u8);
        if taken.contains(&ip) {
            continue;
        }
        let free = [CLIENT_PORT, FED_PORT]
            .iter()
            .all(|p| TcpListener::bind((ip, *p)).is_ok());
        if free {
            taken.push(ip);
            return ip;
        }
    }
    panic!("no free loopback address in 127.{second}.0.0/16");
}

// ---------------------------------------------------------------------------------------------
// openssl: the test CA and the list signer
// ---------------------------------------------------------------------------------------------

/// Runs `openssl` in `dir`; panics with its stderr on failure. Returns stdout.
pub fn openssl(dir: &Path, args: &[&str]) -> Vec<u8> {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .output()
        .expect("the `openssl` command is needed (scripts/test.sh installs it)");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// Standard base64 with padding (what the list's `.sig` file and signing key use).
pub fn base64(bytes: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for c in bytes.chunks(3) {
        let n = (c[0] as u32) << 16
            | (*c.get(1).unwrap_or(&0) as u32) << 8
            | *c.get(2).unwrap_or(&0) as u32;
        for i in 0..4 {
            if i <= c.len() {
                out.push(T[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Everything the servers of one test share: a temp dir, the test CA, the list signer.
pub struct FedNet {
    dir: tempfile::TempDir,
    /// PEM of the test CA that issued every server's certificate.
    pub ca: PathBuf,
    signer_key: PathBuf,
    /// The list signer's public key (base64), configured as `federation.list_signing_key`.
    pub signing_key_b64: String,
}

impl FedNet {
    pub fn new() -> Self {
        let dir = tempfile::Builder::new()
            .prefix("handover-fed-")
            .tempdir()
            .expect("tempdir");
        let d = dir.path();
        openssl(
            d,
            &[
                "req",
                "-x509",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:prime256v1",
                "-nodes",
                "-keyout",
                "ca.key",
                "-out",
                "ca.pem",
                "-days",
                "2",
                "-subj",
                "/CN=handover-e2e-ca",
            ],
        );
        openssl(
            d,
            &["genpkey", "-algorithm", "ed25519", "-out", "signer.pem"],
        );
        let der = openssl(
            d,
            &["pkey", "-in", "signer.pem", "-pubout", "-outform", "DER"],
        );
        let signing_key_b64 = base64(&der[der.len() - 32..]);
        FedNet {
            ca: d.join("ca.pem"),
            signer_key: d.join("signer.pem"),
            signing_key_b64,
            dir,
        }
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// A certificate and key for `ip` (subjectAltName IP), issued by the test CA.
    pub fn issue_cert(&self, ip: Ipv4Addr, out_dir: &Path) -> (PathBuf, PathBuf) {
        let d = self.dir.path();
        let (key, csr, crt, ext) = (
            out_dir.join("tls.key"),
            out_dir.join("tls.csr"),
            out_dir.join("tls.crt"),
            out_dir.join("tls.ext"),
        );
        let s = |p: &Path| p.to_string_lossy().into_owned();
        openssl(
            d,
            &[
                "req",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:prime256v1",
                "-nodes",
                "-keyout",
                &s(&key),
                "-out",
                &s(&csr),
                "-subj",
                &format!("/CN={ip}"),
            ],
        );
        std::fs::write(
            &ext,
            format!("subjectAltName=IP:{ip}\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth,clientAuth\n"),
        )
        .unwrap();
        openssl(
            d,
            &[
                "x509",
                "-req",
                "-in",
                &s(&csr),
                "-CA",
                "ca.pem",
                "-CAkey",
                "ca.key",
                "-CAcreateserial",
                "-out",
                &s(&crt),
                "-days",
                "2",
                "-extfile",
                &s(&ext),
            ],
        );
        (crt, key)
    }

    /// Writes `list` to `list_file` and its detached signature to `<list_file>.sig`, signed as
    /// docs/FEDERATION.md says (canonical JSON from the handover binary, ed25519 via openssl).
    pub fn write_signed_list(&self, list_file: &Path, list: &Value) {
        std::fs::write(list_file, serde_json::to_vec_pretty(list).unwrap()).unwrap();
        let out = Command::new(handover_bin())
            .args(["federation-list", "canonical"])
            .arg(list_file)
            .output()
            .expect("handover federation-list canonical");
        assert!(
            out.status.success(),
            "handover federation-list canonical: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let canonical = self.dir.path().join("list.canonical");
        std::fs::write(&canonical, &out.stdout).unwrap();
        let sig = openssl(
            self.dir.path(),
            &[
                "pkeyutl",
                "-sign",
                "-rawin",
                "-inkey",
                &self.signer_key.to_string_lossy(),
                "-in",
                &canonical.to_string_lossy(),
            ],
        );
        std::fs::write(sig_path(list_file), base64(&sig)).unwrap();
    }

    /// A reqwest client that trusts the test CA (and no other), for https URLs of our servers.
    pub fn reqwest(&self) -> reqwest::Client {
        let pem = std::fs::read(&self.ca).unwrap();
        let ca = reqwest::Certificate::from_pem(&pem).expect("test CA");
        reqwest::Client::builder()
            .tls_certs_only([ca])
            .user_agent(HARNESS_UA)
            .timeout(Duration::from_secs(60))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("reqwest client")
    }

    /// Raw HTTP to `base` (https URLs verified against the test CA).
    pub fn http(&self, base: &str) -> Http {
        Http::with_client(base, self.reqwest())
    }

    /// Starts a Handover that may federate with `listed` (server names) and lets its users
    /// invite users of `invitable` (`[invites] allowed_servers`).
    pub async fn handover(&self, listed: &[&str], invitable: &[&str]) -> HandoverPeer {
        HandoverPeer::start(self, loopback_ip(), listed, invitable, "").await
    }

    /// As [`Self::handover`], on an address from [`loopback_ip`] (to name it in a peer's list
    /// before it starts).
    pub async fn handover_at(
        &self,
        ip: Ipv4Addr,
        listed: &[&str],
        invitable: &[&str],
    ) -> HandoverPeer {
        HandoverPeer::start(self, ip, listed, invitable, "").await
    }

    /// As [`Self::handover_at`], with `extra_toml` appended to its configuration (whole
    /// sections, e.g. `[retention]`).
    pub async fn handover_with(
        &self,
        ip: Ipv4Addr,
        listed: &[&str],
        invitable: &[&str],
        extra_toml: &str,
    ) -> HandoverPeer {
        HandoverPeer::start(self, ip, listed, invitable, extra_toml).await
    }
}

impl Default for FedNet {
    fn default() -> Self {
        Self::new()
    }
}

fn sig_path(list_file: &Path) -> PathBuf {
    let mut s = list_file.as_os_str().to_owned();
    s.push(".sig");
    PathBuf::from(s)
}

/// A federation list document naming `servers` (one organisation each).
pub fn list_doc(serial: u64, servers: &[&str]) -> Value {
    let orgs: Vec<Value> = servers
        .iter()
        .enumerate()
        .map(|(i, s)| json!({"ods_code": format!("T{i:02}"), "name": format!("Test trust {i}"), "servers": [s]}))
        .collect();
    json!({"serial": serial, "organisations": orgs})
}

pub(crate) fn toml_str(s: &str) -> String {
    serde_json::to_string(s).unwrap()
}

pub(crate) fn toml_list(items: &[&str]) -> String {
    let v: Vec<String> = items.iter().map(|s| toml_str(s)).collect();
    format!("[{}]", v.join(", "))
}
