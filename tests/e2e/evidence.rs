//! The evidence report through the real binary (docs/GOVERNANCE.md, "Evidence report"):
//! `handover compliance report --format pdf --results FILE` maps every rule id of
//! docs/GOVERNANCE.md to its configuration and test, shows the given CI results, the audit
//! chain and the hazard log; the PDF (headless Chromium) has pages (`pdftoppm`, Debian
//! poppler-utils, installed by scripts/test-e2e.sh).

use std::path::PathBuf;

use handover_e2e::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn evidence_report_maps_every_control_and_prints_to_pdf() {
    with_timeout(240, async {
        let server = TestServer::start().await;
        server.http().register("alice", PASSWORD).await;
        let results = server.dir().join("ci-results.txt");
        std::fs::write(
            &results,
            "running 2 tests\ntest audit::deleting_an_entry_is_named_by_verify ... ok\n\
             test governance::patient_context_rooms_stay_private ... FAILED\n",
        )
        .unwrap();
        let out = server.dir().join("report");
        let run = server
            .cli(&[
                "compliance",
                "report",
                "--out",
                out.to_str().unwrap(),
                "--format",
                "pdf",
                "--results",
                results.to_str().unwrap(),
            ])
            .await;
        assert!(run.status.success(), "{run:?}");
        let html = std::fs::read_to_string(out.join("report.html")).unwrap();

        // Every rule id of the governance document, and every hazard of the log.
        let repo = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
        let doc = std::fs::read_to_string(repo.join("docs/GOVERNANCE.md")).unwrap();
        let ids = handover_compliance::controls::rule_ids_in(&doc);
        assert!(ids.len() >= 15);
        for id in &ids {
            assert!(
                html.contains(&format!("<code>{id}</code>")),
                "rule {id} missing from the report"
            );
        }
        for h in [
            "H01",
            "H08",
            "H10",
            "H13",
            "Account of a leaver still active",
            "Unauthorised federation",
        ] {
            assert!(html.contains(h), "{h} missing");
        }
        // Config in force with defaults, test results from the file, chain status.
        assert!(
            html.contains("<code>policy.rules</code> = nhs (nhs)"),
            "policy.rules value"
        );
        assert!(html.contains("<span class=\"ok\">passed</span>"));
        assert!(html.contains("<span class=\"bad\">FAILED</span>"));
        assert!(html.contains("not in results"));
        assert!(html.contains("Audit chain intact"));
        assert!(html.contains("legal holds in place"));
        assert!(!html.contains("<script") && !html.contains("src=\"http"));

        // The PDF has pages.
        let pdf = out.join("report.pdf");
        assert!(std::fs::read(&pdf).unwrap().starts_with(b"%PDF"));
        let prefix = out.join("page");
        let ppm = std::process::Command::new("pdftoppm")
            .args(["-r", "30", "-png"])
            .arg(&pdf)
            .arg(&prefix)
            .output()
            .expect("pdftoppm (poppler-utils; scripts/test-e2e.sh installs it)");
        assert!(ppm.status.success(), "{ppm:?}");
        let pages = std::fs::read_dir(&out)
            .unwrap()
            .filter(|e| {
                e.as_ref()
                    .unwrap()
                    .file_name()
                    .to_string_lossy()
                    .starts_with("page")
            })
            .count();
        assert!(pages >= 2, "the report PDF has {pages} pages");
    })
    .await;
}
