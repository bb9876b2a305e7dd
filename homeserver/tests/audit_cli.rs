//! `handover audit verify|export` on a real database: exit codes and what they print.

use std::process::Command;

fn handover(args: &[&str], config: &std::path::Path) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_handover"))
        .args(args)
        .arg("--config")
        .arg(config)
        .env("HANDOVER_NEW_PASSWORD", "a long password")
        .env_remove("RUST_BACKTRACE")
        .output()
        .expect("run handover")
}

#[test]
fn verify_export_and_tamper() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("c.toml");
    let data = dir.path().join("data");
    std::fs::write(
        &cfg,
        format!(
            "server_name = \"localhost\"\ndata_dir = \"{}\"\n",
            data.display()
        ),
    )
    .unwrap();
    // No database yet: cannot check (2), and nothing is created.
    assert_eq!(handover(&["audit", "verify"], &cfg).status.code(), Some(2));
    assert!(!data.join("handover.db").exists());

    for user in ["alice", "bob", "carol"] {
        let out = handover(&["admin", "create-user", "--username", user], &cfg);
        assert!(out.status.success(), "{out:?}");
    }
    let out = handover(&["audit", "verify"], &cfg);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("audit chain intact: 3 entries"), "{stdout}");

    let file = dir.path().join("out.jsonl");
    let args = [
        "audit",
        "export",
        "--since",
        "2000-01-01",
        "--until",
        "2100-01-01T00:00:00Z",
        "--out",
    ];
    let out = handover(&[&args[..], &[file.to_str().unwrap()]].concat(), &cfg);
    assert!(out.status.success(), "{out:?}");
    let text = std::fs::read_to_string(&file).unwrap();
    assert_eq!(text.lines().count(), 3);
    assert!(!text.contains("a long password"));
    let first: serde_json::Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
    assert_eq!(first["action"], "admin.create_user");
    assert_eq!(first["target"], "@alice:localhost");

    let conn = rusqlite::Connection::open(data.join("handover.db")).unwrap();
    conn.execute_batch("DROP TRIGGER audit_log_no_delete; DELETE FROM audit_log WHERE seq = 2;")
        .unwrap();
    drop(conn);
    let out = handover(&["audit", "verify"], &cfg);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("broken at seq 2"), "{stderr}");
}
