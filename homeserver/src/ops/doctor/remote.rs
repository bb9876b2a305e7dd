//! `handover doctor --url`: the running server's `/ready` and `/_matrix/client/versions`.

use std::time::Duration;

use super::{Finding, Severity};

pub async fn check(url: &str) -> Vec<Finding> {
    let base = url.trim_end_matches('/');
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = match reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
    {
        Ok(c) => c,
        Err(e) => {
            return vec![Finding::new(
                "server",
                Severity::Critical,
                format!("no HTTP client: {e}"),
            )];
        }
    };
    let mut out = Vec::new();
    match client.get(format!("{base}/ready")).send().await {
        Err(e) => out.push(Finding::new(
            "server_ready",
            Severity::Critical,
            format!("{base}/ready: {e}"),
        )),
        Ok(r) => {
            let status = r.status();
            let body: serde_json::Value = r.json().await.unwrap_or_default();
            if status.is_success() {
                out.push(Finding::new(
                    "server_ready",
                    Severity::Info,
                    format!("{base} is ready"),
                ));
            } else {
                let what: Vec<String> = body["not_ready"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|n| {
                        let n = n.as_str()?;
                        Some(format!("{n} ({})", body["checks"][n]["detail"].as_str()?))
                    })
                    .collect();
                out.push(Finding::new(
                    "server_ready",
                    Severity::Critical,
                    format!(
                        "{base}/ready answered {status}: not ready: {}",
                        what.join("; ")
                    ),
                ));
            }
        }
    }
    let versions = client
        .get(format!("{base}/_matrix/client/versions"))
        .send()
        .await;
    let found = match versions {
        Ok(r) if r.status().is_success() => r
            .json::<serde_json::Value>()
            .await
            .ok()
            .and_then(|v| v["versions"].as_array().map(Vec::len)),
        _ => None,
    };
    out.push(match found {
        Some(n) if n > 0 => Finding::new(
            "client_api",
            Severity::Info,
            format!("{base}/_matrix/client/versions lists {n} spec versions"),
        ),
        _ => Finding::new(
            "client_api",
            Severity::Critical,
            format!("{base}/_matrix/client/versions does not answer with spec versions"),
        ),
    });
    out
}
