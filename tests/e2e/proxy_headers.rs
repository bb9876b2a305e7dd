//! `X-Forwarded-Proto` behind a reverse proxy (docs/OPERATIONS.md, "Listeners and reverse
//! proxies"): believed only from `[listen] trusted_proxies`, where the scheme matters: the
//! well-known base URL when `public_baseurl` is unset, and the console cookie's `Secure` flag.

use handover_e2e::*;

async fn probe(server: &TestServer, proto: Option<&str>) -> (String, bool) {
    let http = server.http();
    let with = |b: reqwest::RequestBuilder| match proto {
        Some(p) => b.header("x-forwarded-proto", p),
        None => b,
    };
    let wk: serde_json::Value = with(http.client().get(http.url("/.well-known/matrix/client")))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let page = with(http.client().get(http.url("/_handover/console/login")))
        .send()
        .await
        .unwrap();
    let secure = page
        .headers()
        .get_all("set-cookie")
        .iter()
        .any(|c| c.to_str().unwrap_or_default().contains("; Secure"));
    let base = wk["m.homeserver"]["base_url"].as_str().unwrap().to_owned();
    (base, secure)
}

/// A server whose `[listen] trusted_proxies` lists `proxies`.
async fn server(proxies: &str) -> TestServer {
    let dir = tempfile::Builder::new()
        .prefix("handover-e2e-")
        .tempdir()
        .unwrap();
    let toml = ServerOptions::default()
        .to_toml(&dir.path().join("data"))
        .replace(
            "[listen]\nclient = \"127.0.0.1:0\"\n",
            &format!("[listen]\nclient = \"127.0.0.1:0\"\ntrusted_proxies = [{proxies}]\n"),
        );
    assert!(toml.contains("trusted_proxies"), "the [listen] section moved");
    let config = dir.path().join("handover.toml");
    std::fs::write(&config, toml).unwrap();
    TestServer::start_in(dir, config).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forwarded_proto_is_believed_from_trusted_proxies_only() {
    with_timeout(120, async {
        // The test client connects from 127.0.0.1: here it is the trusted proxy.
        let behind = server("\"127.0.0.1\"").await;
        assert_eq!(probe(&behind, Some("https")).await, ("https://localhost".into(), true));
        assert_eq!(probe(&behind, Some("http")).await, ("http://localhost".into(), false));
        // No header: a proxy is assumed to terminate TLS.
        assert_eq!(probe(&behind, None).await, ("https://localhost".into(), true));

        // Anyone else's header is ignored: a client cannot claim https.
        let direct = server("\"10.9.9.9\"").await;
        let plain = probe(&direct, None).await;
        assert!(plain.0.starts_with("https://localhost") && plain.1, "{plain:?}");
        assert_eq!(probe(&direct, Some("http")).await, plain);
        let none = server("").await;
        let plain = probe(&none, None).await;
        assert!(plain.0.starts_with("http://localhost") && !plain.1, "{plain:?}");
        assert_eq!(probe(&none, Some("https")).await, plain);
    })
    .await;
}
