use super::*;
use crate::config::Config;

const NOW: u64 = 1_800_000_000_000;

fn find<'a>(f: &'a [Finding], check: &str) -> Vec<&'a Finding> {
    f.iter().filter(|x| x.check == check).collect()
}

fn severity(f: &[Finding], check: &str) -> Severity {
    find(f, check)
        .iter()
        .map(|x| x.severity)
        .max()
        .unwrap_or_else(|| panic!("no {check} finding in {f:?}"))
}

fn cfg(dir: &Path) -> Config {
    Config {
        data_dir: dir.to_owned(),
        ..Config::default()
    }
}

#[test]
fn federation_findings_reuse_the_insecure_settings() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = cfg(dir.path());
    let mut out = vec![];
    federation(&c, &mut out);
    assert_eq!(severity(&out, "federation_list"), Severity::Info);
    assert!(find(&out, "federation_tls").is_empty());

    c.federation.verify_tls = false;
    let list = dir.path().join("list.json");
    std::fs::write(
        &list,
        r#"{"serial": 3, "organisations": [{"ods_code": "RRK", "servers": ["a.nhs.uk"]}]}"#,
    )
    .unwrap();
    c.federation.list_file = Some(list.clone());
    let mut out = vec![];
    federation(&c, &mut out);
    assert_eq!(severity(&out, "federation_tls"), Severity::Critical);
    assert_eq!(
        severity(&out, "federation_list"),
        Severity::Warning,
        "{out:?}"
    );

    std::fs::write(&list, "{").unwrap();
    let mut out = vec![];
    federation(&c, &mut out);
    assert_eq!(severity(&out, "federation_list"), Severity::Critical);
}

#[test]
fn registration_retention_rate_limit_policy() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = cfg(dir.path());
    let mut out = vec![];
    registration(&c, &mut out);
    retention(&c, &mut out);
    login_rate_limit(&c, &mut out);
    policy(&c, &mut out);
    assert_eq!(severity(&out, "registration"), Severity::Info);
    assert_eq!(severity(&out, "retention"), Severity::Warning);
    assert!(find(&out, "login_rate_limit").is_empty());
    assert!(find(&out, "policy").is_empty());

    c.registration.mode = RegistrationMode::Open;
    c.retention.default_lifetime = Some("2920d".into());
    c.rate_limit.enabled = false;
    c.policy.rules = PolicyRules::AllowAll;
    let mut out = vec![];
    registration(&c, &mut out);
    retention(&c, &mut out);
    login_rate_limit(&c, &mut out);
    policy(&c, &mut out);
    assert_eq!(severity(&out, "registration"), Severity::Critical);
    assert_eq!(severity(&out, "retention"), Severity::Info);
    assert_eq!(severity(&out, "login_rate_limit"), Severity::Critical);
    assert_eq!(severity(&out, "policy"), Severity::Critical);

    c.registration.allowed_email_domains = vec!["nhs.net".into()];
    let mut out = vec![];
    registration(&c, &mut out);
    assert_eq!(severity(&out, "registration"), Severity::Warning);
}

#[test]
fn audit_checkpoints_off_or_kept_only_in_the_database() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = cfg(dir.path());
    let mut out = vec![];
    audit_checkpoints(&c, &mut out);
    assert_eq!(severity(&out, "audit_checkpoints"), Severity::Warning);
    c.audit.checkpoint_file = Some(dir.path().join("cp.jsonl"));
    let mut out = vec![];
    audit_checkpoints(&c, &mut out);
    assert!(out.is_empty(), "{out:?}");
    c.audit.checkpoint_every = 0;
    c.audit.checkpoint_interval = "0s".into();
    let mut out = vec![];
    audit_checkpoints(&c, &mut out);
    assert_eq!(severity(&out, "audit_checkpoints"), Severity::Critical);
}

#[test]
fn backup_age_from_the_marker() {
    let dir = tempfile::tempdir().unwrap();
    let mut out = vec![];
    backup_age(dir.path(), NOW, &mut out);
    assert_eq!(severity(&out, "backup"), Severity::Warning);
    let marker = dir.path().join(crate::ops::BACKUP_MARKER);
    for (age_days, want) in [
        (0, Severity::Info),
        (3, Severity::Warning),
        (8, Severity::Critical),
    ] {
        let done = NOW - age_days * DAY_MS;
        std::fs::write(&marker, format!(r#"{{"completed_ms": {done}}}"#)).unwrap();
        let mut out = vec![];
        backup_age(dir.path(), NOW, &mut out);
        assert_eq!(severity(&out, "backup"), want, "{age_days} days: {out:?}");
    }
}

#[test]
fn disk_space_is_read() {
    let dir = tempfile::tempdir().unwrap();
    let mut out = vec![];
    // A data dir that does not exist yet: its parent's file system is measured.
    disk_space(&dir.path().join("data/not/yet"), &mut out);
    let f = find(&out, "disk_space");
    assert_eq!(f.len(), 1);
    assert!(f[0].message.contains("GiB free"), "{f:?}");
}

#[test]
fn certificate_expiry_grades() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = cfg(dir.path());
    let (key, cert) = (dir.path().join("k.pem"), dir.path().join("c.pem"));
    let ok = std::process::Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
        ])
        .args(["-nodes", "-subj", "/CN=doctor.test", "-days", "30"])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .unwrap();
    assert!(ok.status.success());
    c.tls.cert = Some(cert.clone());
    c.tls.key = Some(key);
    let expiry = super::super::not_after(&cert).unwrap() as u64 * 1000;
    for (before_expiry_days, want) in [
        (29, Severity::Info),
        (10, Severity::Warning),
        (3, Severity::Critical),
    ] {
        let mut out = vec![];
        certificate(&c, expiry - before_expiry_days * DAY_MS, &mut out);
        assert_eq!(severity(&out, "tls_certificate"), want, "{out:?}");
    }
    let mut out = vec![];
    certificate(&c, expiry + 1000, &mut out);
    assert!(out[0].message.contains("expired"), "{out:?}");
    c.tls.cert = Some(dir.path().join("missing.pem"));
    let mut out = vec![];
    certificate(&c, NOW, &mut out);
    assert_eq!(severity(&out, "tls_certificate"), Severity::Critical);
}

#[test]
fn exit_code_follows_critical() {
    let info = Finding::new("x", Severity::Info, "fine");
    let crit = Finding::new("y", Severity::Critical, "bad");
    assert_eq!(super::super::exit_code(std::slice::from_ref(&info)), 0);
    assert_eq!(super::super::exit_code(&[info.clone(), crit.clone()]), 1);
    let text = super::super::render_human(&[info, crit]);
    assert!(text.starts_with("CRITICAL"), "{text}");
    assert!(text.contains("1 critical, 0 warning(s), 1 info"));
}
