//! `handover doctor` (issue 15, Operations): configuration findings with severities, the
//! running server's /ready and /versions with `--url`, JSON output and the exit code.

use handover_e2e::*;

fn findings(out: &std::process::Output) -> Vec<serde_json::Value> {
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "doctor --json printed no JSON ({e}):\n{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    v["findings"].as_array().unwrap().clone()
}

fn severity_of(f: &[serde_json::Value], check: &str) -> Vec<String> {
    f.iter()
        .filter(|x| x["check"] == check)
        .map(|x| x["severity"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn doctor_flags_a_lax_config_and_checks_the_running_server() {
    with_timeout(120, async {
        // The test default: open registration, no rate limit, no retention.
        let mut server = TestServer::start().await;
        let url = server.url().to_owned();
        let out = server.cli(&["doctor", "--json", "--url", &url]).await;
        assert_eq!(out.status.code(), Some(1), "critical findings exit 1");
        let f = findings(&out);
        assert_eq!(severity_of(&f, "registration"), ["critical"]);
        assert_eq!(severity_of(&f, "login_rate_limit"), ["critical"]);
        assert_eq!(severity_of(&f, "retention"), ["warning"]);
        assert_eq!(severity_of(&f, "backup"), ["warning"]);
        assert_eq!(severity_of(&f, "server_ready"), ["info"]);
        assert_eq!(severity_of(&f, "client_api"), ["info"]);

        // Human output names each finding with its severity.
        let out = server.cli(&["doctor"]).await;
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(text.contains("CRITICAL registration"), "{text}");
        assert!(text.contains("critical,"), "{text}");

        // The server gone: --url is critical.
        server.stop().await;
        let out = server.cli(&["doctor", "--json", "--url", &url]).await;
        let f = findings(&out);
        assert_eq!(severity_of(&f, "server_ready"), ["critical"]);
        assert_eq!(severity_of(&f, "client_api"), ["critical"]);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn doctor_passes_a_governed_config() {
    with_timeout(120, async {
        let dir = tempfile::tempdir().unwrap();
        let cfg = dir.path().join("handover.toml");
        let data = dir.path().join("data");
        std::fs::create_dir_all(&data).unwrap();
        let now_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis();
        std::fs::write(
            data.join("last_backup.json"),
            format!(r#"{{"completed_ms": {now_ms}}}"#),
        )
        .unwrap();
        std::fs::write(
            &cfg,
            format!(
                "server_name = \"trust.nhs.uk\"\ndata_dir = {}\n\
                 [registration]\nmode = \"closed\"\n\
                 [retention]\ndefault_lifetime = \"2920d\"\n\
                 [audit]\ncheckpoint_file = {}\n",
                toml_str(&data.to_string_lossy()),
                toml_str(&dir.path().join("cp.jsonl").to_string_lossy())
            ),
        )
        .unwrap();
        let out = tokio::process::Command::new(handover_bin())
            .args(["doctor", "--json", "--config"])
            .arg(&cfg)
            .output()
            .await
            .unwrap();
        let f = findings(&out);
        assert_eq!(out.status.code(), Some(0), "{f:#?}");
        for check in ["registration", "retention", "backup"] {
            assert_eq!(severity_of(&f, check), ["info"], "{check}: {f:#?}");
        }
        assert!(severity_of(&f, "audit_checkpoints").is_empty());
        assert!(severity_of(&f, "login_rate_limit").is_empty());
    })
    .await;
}
