//! A real OpenID Provider for the identity tests (npm `oidc-provider`, installed by
//! scripts/install-oidc-provider.sh, run by tests/tools/oidc-op.mjs), and a minimal browser:
//! a cookie jar and hand-followed redirects, so tests walk Handover's pages and the provider's
//! login form as a user would.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_owned()
}

/// `node_modules` holding oidc-provider ($HANDOVER_OIDC_NODE_PATH, else the install script's).
fn node_path() -> PathBuf {
    if let Ok(p) = std::env::var("HANDOVER_OIDC_NODE_PATH") {
        return p.into();
    }
    let out = std::process::Command::new(repo_root().join("scripts/install-oidc-provider.sh"))
        .output()
        .expect("running scripts/install-oidc-provider.sh");
    assert!(
        out.status.success(),
        "install-oidc-provider failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let s = String::from_utf8(out.stdout).unwrap();
    s.lines().last().expect("node_modules path").trim().into()
}

/// How the test provider behaves.
#[derive(Debug, Clone, Default)]
pub struct OpOptions {
    /// Back-channel logout tokens (and ID tokens) carry the provider session's `sid`.
    pub logout_with_sid: bool,
    /// The ID token holds only `sub` and the protocol claims; the rest is at userinfo.
    pub claims_only_at_userinfo: bool,
}

pub struct OpenIdProvider {
    pub issuer: String,
    users_file: PathBuf,
    _child: Child,
    _dir: tempfile::TempDir,
}

impl OpenIdProvider {
    /// Starts the provider with one client (`handover`, secret `s3cret`) redirecting to
    /// `redirect_uri`, and `users` (`{login: {password, sub, acr, claims}}`).
    pub async fn start(redirect_uri: &str, users: Value) -> Self {
        Self::start_with_logout(redirect_uri, None, users).await
    }

    /// As [`Self::start`], the client also registered for back-channel logout at `logout_uri`.
    pub async fn start_with_logout(
        redirect_uri: &str,
        logout_uri: Option<&str>,
        users: Value,
    ) -> Self {
        Self::start_with_options(redirect_uri, logout_uri, users, &OpOptions::default()).await
    }

    /// As [`Self::start_with_logout`], with the provider's options.
    pub async fn start_with_options(
        redirect_uri: &str,
        logout_uri: Option<&str>,
        users: Value,
        o: &OpOptions,
    ) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let users_file = dir.path().join("users.json");
        std::fs::write(&users_file, users.to_string()).unwrap();
        let mut client = json!({"client_id": "handover", "client_secret": "s3cret",
                                "redirect_uris": [redirect_uri]});
        if let Some(l) = logout_uri {
            client["backchannel_logout_uri"] = json!(l);
            client["backchannel_logout_session_required"] = json!(o.logout_with_sid);
        }
        let config = json!({"port": 0, "users_file": users_file, "clients": [client],
                            "conform_id_token_claims": o.claims_only_at_userinfo});
        let config_file = dir.path().join("op.json");
        std::fs::write(&config_file, config.to_string()).unwrap();
        let mut child = Command::new("node")
            .arg(repo_root().join("tests/tools/oidc-op.mjs"))
            .arg(&config_file)
            .env("NODE_PATH", node_path())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("starting node");
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let issuer = loop {
            let line = lines
                .next_line()
                .await
                .unwrap()
                .expect("the provider exited");
            if let Some(i) = line.strip_prefix("listening ") {
                break i.to_owned();
            }
        };
        // Keep reading: a closed pipe would kill the provider at its next log line.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        Self {
            issuer,
            users_file,
            _child: child,
            _dir: dir,
        }
    }

    /// Replaces the provider's users (read again at every login).
    pub fn set_users(&self, users: Value) {
        std::fs::write(&self.users_file, users.to_string()).unwrap();
    }
}

/// A browser: cookies per host:port, no automatic redirects.
pub struct Browser {
    http: reqwest::Client,
    cookies: HashMap<String, HashMap<String, String>>,
}

pub struct Page {
    pub status: u16,
    pub url: String,
    pub location: Option<String>,
    pub body: String,
}

fn origin(u: &url::Url) -> String {
    format!(
        "{}:{}",
        u.host_str().unwrap_or(""),
        u.port_or_known_default().unwrap_or(0)
    )
}

impl Default for Browser {
    fn default() -> Self {
        Self::new()
    }
}

impl Browser {
    pub fn new() -> Self {
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        Self {
            http,
            cookies: HashMap::new(),
        }
    }

    async fn send(&mut self, method: &str, url: &str, form: Option<&[(&str, &str)]>) -> Page {
        let u = url::Url::parse(url).unwrap_or_else(|e| panic!("bad url {url}: {e}"));
        let jar = self.cookies.entry(origin(&u)).or_default();
        let cookie = jar
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ");
        let mut req = match method {
            "POST" => self.http.post(url),
            _ => self.http.get(url),
        };
        if !cookie.is_empty() {
            req = req.header("cookie", cookie);
        }
        if let Some(f) = form {
            let mut s = url::form_urlencoded::Serializer::new(String::new());
            for (k, v) in f {
                s.append_pair(k, v);
            }
            req = req
                .header("content-type", "application/x-www-form-urlencoded")
                .body(s.finish());
        }
        let res = req
            .send()
            .await
            .unwrap_or_else(|e| panic!("{method} {url}: {e}"));
        for v in res.headers().get_all("set-cookie") {
            let first = v.to_str().unwrap().split(';').next().unwrap();
            if let Some((k, v)) = first.split_once('=') {
                jar.insert(k.trim().to_owned(), v.to_owned());
            }
        }
        let status = res.status().as_u16();
        let location = res
            .headers()
            .get("location")
            .map(|l| u.join(l.to_str().unwrap()).unwrap().to_string());
        Page {
            status,
            url: url.to_owned(),
            location,
            body: res.text().await.unwrap(),
        }
    }

    pub async fn get(&mut self, url: &str) -> Page {
        self.send("GET", url, None).await
    }

    pub async fn post(&mut self, url: &str, form: &[(&str, &str)]) -> Page {
        self.send("POST", url, Some(form)).await
    }

    /// Follows redirects from `page` until one leaves for `stop_prefix` (returned as the
    /// `location`) or a page is shown.
    pub async fn follow(&mut self, mut page: Page, stop_prefix: &str) -> Page {
        for _ in 0..20 {
            match page.location.clone() {
                Some(l) if (300..400).contains(&page.status) && !l.starts_with(stop_prefix) => {
                    page = self.get(&l).await;
                }
                _ => return page,
            }
        }
        panic!("too many redirects");
    }
}

/// The value of `<input ... name="NAME" value="...">` in a page.
pub fn input_value(body: &str, name: &str) -> Option<String> {
    let at = body.find(&format!("name=\"{name}\" value=\""))?;
    let rest = &body[at + name.len() + 15..];
    Some(rest[..rest.find('"')?].to_owned())
}

/// The first `href` starting with `prefix`.
pub fn link(body: &str, prefix: &str) -> Option<String> {
    let at = body.find(&format!("href=\"{prefix}"))?;
    let rest = &body[at + 6..];
    Some(rest[..rest.find('"')?].replace("&amp;", "&"))
}

/// A form's `action`.
pub fn form_action(body: &str) -> Option<String> {
    let at = body.find("action=\"")?;
    let rest = &body[at + 8..];
    Some(rest[..rest.find('"')?].to_owned())
}

/// A provider with `users`, and a Handover on a port known in advance (the provider must know
/// the callback URL) whose config gets `toml` with `{issuer}` replaced by the provider's.
pub async fn start_with_provider(users: Value, toml: &str) -> (OpenIdProvider, crate::TestServer) {
    start_with_provider_logout(users, toml, None).await
}

/// As [`start_with_provider`]; with `logout_provider` the provider's client is registered for
/// back-channel logout at Handover's endpoint for that provider id.
pub async fn start_with_provider_logout(
    users: Value,
    toml: &str,
    logout_provider: Option<&str>,
) -> (OpenIdProvider, crate::TestServer) {
    start_with_provider_options(users, toml, logout_provider, &OpOptions::default()).await
}

/// As [`start_with_provider_logout`], with the provider's options.
pub async fn start_with_provider_options(
    users: Value,
    toml: &str,
    logout_provider: Option<&str>,
    o: &OpOptions,
) -> (OpenIdProvider, crate::TestServer) {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let base = format!("http://127.0.0.1:{port}");
    let logout =
        logout_provider.map(|p| format!("{base}/_handover/identity/backchannel_logout/{p}"));
    let op = OpenIdProvider::start_with_options(
        &format!("{base}/_handover/identity/callback"),
        logout.as_deref(),
        users,
        o,
    )
    .await;
    let opts = crate::ServerOptions {
        extra_toml: toml.replace("{issuer}", &op.issuer),
        ..crate::ServerOptions::default()
    };
    let dir = tempfile::Builder::new()
        .prefix("handover-e2e-")
        .tempdir()
        .unwrap();
    let toml = opts.to_toml(&dir.path().join("data")).replace(
        "client = \"127.0.0.1:0\"",
        &format!("client = \"127.0.0.1:{port}\""),
    );
    let config = dir.path().join("handover.toml");
    std::fs::write(&config, format!("public_baseurl = \"{base}\"\n{toml}")).unwrap();
    let server = crate::TestServer::start_in(dir, config).await;
    (op, server)
}

/// Signs in at the provider from its login form page (`form`), following redirects until one
/// leaves for `stop_prefix`.
pub async fn provider_login(b: &mut Browser, form: Page, login: &str, stop_prefix: &str) -> Page {
    assert!(
        form.body.contains("name=\"login\""),
        "provider login form: {}",
        form.body
    );
    let action = url::Url::parse(&form.url)
        .unwrap()
        .join(&form_action(&form.body).unwrap())
        .unwrap();
    let p = b
        .post(action.as_str(), &[("login", login), ("password", "pw")])
        .await;
    b.follow(p, stop_prefix).await
}

/// Legacy SSO (`/login/sso/redirect/{idp}`) as a browser: the client's `redirectUrl` with its
/// `loginToken`, or the page the sign-in stopped at.
pub async fn legacy_sso(
    server: &crate::TestServer,
    idp: &str,
    login: &str,
    redirect_url: &str,
) -> Result<String, Page> {
    legacy_sso_in(&mut Browser::new(), server, idp, login, redirect_url).await
}

/// [`legacy_sso`] in a given browser (which keeps the provider's session cookie).
pub async fn legacy_sso_in(
    b: &mut Browser,
    server: &crate::TestServer,
    idp: &str,
    login: &str,
    redirect_url: &str,
) -> Result<String, Page> {
    let start = format!(
        "{}/_matrix/client/v3/login/sso/redirect/{idp}?redirectUrl={}",
        server.url(),
        crate::enc(redirect_url)
    );
    let p = b.get(&start).await;
    assert_eq!(p.status / 100, 3, "{}", p.body);
    let form = b.follow(p, redirect_url).await;
    let back = provider_login(b, form, login, redirect_url).await;
    match back.location.clone() {
        Some(l) if l.starts_with(redirect_url) => Ok(l),
        _ => Err(back),
    }
}

/// The `loginToken` query parameter of a legacy SSO redirect.
pub fn login_token_of(url: &str) -> String {
    url::Url::parse(url)
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == "loginToken")
        .expect("loginToken")
        .1
        .to_string()
}

/// The audit trail as JSON records (`handover audit export`).
pub async fn audit_records(server: &crate::TestServer) -> Vec<Value> {
    let file = server.dir().join("audit-export.jsonl");
    let out = server
        .cli(&[
            "audit",
            "export",
            "--since",
            "2000-01-01",
            "--until",
            "2100-01-01",
            "--out",
            file.to_str().unwrap(),
        ])
        .await;
    assert!(out.status.success(), "{out:?}");
    std::fs::read_to_string(&file)
        .unwrap()
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

/// Signs out at the provider (RP-initiated logout, confirmed), in the browser that signed in:
/// the provider then sends its back-channel logout tokens.
pub async fn provider_logout(b: &mut Browser, op: &OpenIdProvider) -> Page {
    let page = b.get(&format!("{}/session/end", op.issuer)).await;
    assert_eq!(page.status, 200, "{}", page.body);
    let xsrf = input_value(&page.body, "xsrf").expect("logout form");
    let action = url::Url::parse(&page.url)
        .unwrap()
        .join(&form_action(&page.body).unwrap())
        .unwrap();
    let p = b
        .post(action.as_str(), &[("xsrf", &xsrf), ("logout", "yes")])
        .await;
    b.follow(p, "never").await
}
