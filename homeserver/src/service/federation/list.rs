//! Reading the NHS federation list from its files, and reloading it without a restart: the
//! files are polled (`federation.list_poll_secs`) and SIGHUP reloads at once. A list that does
//! not parse, is unsigned or badly signed (when a signer key is pinned) or is older (serial)
//! is refused and the last good list stays in force; each reload and refusal is audited.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use handover_compliance::Outcome;
use handover_policy::LiveFederationList;
use handover_policy::federation::{FederationList, parse_verifying_key};

use crate::config::FederationConfig;
use crate::service::audit::{self, AuditService};

/// The audit action of a list reload (outcome: success = new list in force, failure = refused).
pub const ACTION_LIST_RELOAD: &str = "federation.list_reload";

fn read_sig(cfg: &FederationConfig) -> anyhow::Result<Option<Vec<u8>>> {
    let Some(path) = cfg.signature_path() else {
        return Ok(None);
    };
    match std::fs::read(&path) {
        Ok(b) => Ok(Some(b)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(anyhow::anyhow!("{}: {e}", path.display())),
    }
}

/// Which insecure setting: `handover doctor` grades them differently.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Insecure {
    TlsNotVerified,
    ListUnsigned,
}

/// Settings that quietly weaken federation: each is legal (local experiments, a list handed
/// over by other means) but must never go unnoticed in production. `handover federation-list
/// check` and `handover doctor` report them too.
pub fn insecure_findings(
    cfg: &FederationConfig,
    list: Option<&FederationList>,
) -> Vec<(Insecure, String)> {
    let mut out = Vec::new();
    if !cfg.verify_tls {
        out.push((
            Insecure::TlsNotVerified,
            "federation.verify_tls = false: peers' TLS certificates are not verified; \
             anyone on the network path can impersonate a listed server"
                .to_owned(),
        ));
    }
    if list.is_some_and(|l| !l.signed) {
        out.push((
            Insecure::ListUnsigned,
            "the federation list is unsigned (no federation.list_signing_key pinned): whoever \
             can write the list file decides who this server federates with"
                .to_owned(),
        ));
    }
    out
}

/// [`insecure_findings`] as sentences.
pub fn insecure_settings(cfg: &FederationConfig, list: Option<&FederationList>) -> Vec<String> {
    insecure_findings(cfg, list)
        .into_iter()
        .map(|(_, m)| m)
        .collect()
}

/// Logs [`insecure_settings`] as warnings; returns them (for tests and `check`).
fn warn_insecure(cfg: &FederationConfig, list: Option<&FederationList>) -> Vec<String> {
    let warnings = insecure_settings(cfg, list);
    for w in &warnings {
        tracing::warn!(target: "handover::federation", "insecure federation setting: {w}");
    }
    warnings
}

/// Loads the configured list at start-up. `Ok(None)` when none is configured (no federation);
/// an error when the configured list is unreadable or refused (there is no last good list).
pub fn load(cfg: &FederationConfig) -> anyhow::Result<Option<LiveFederationList>> {
    let Some(path) = &cfg.list_file else {
        warn_insecure(cfg, None);
        return Ok(None);
    };
    let signer = cfg
        .list_signing_key
        .as_deref()
        .map(parse_verifying_key)
        .transpose()
        .map_err(|e| anyhow::anyhow!("federation.list_signing_key: {e}"))?;
    let bytes = std::fs::read(path).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    let sig = read_sig(cfg)?;
    let live = LiveFederationList::load(&bytes, sig.as_deref(), signer)
        .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    let cur = live.current();
    tracing::info!(
        target: "handover::federation",
        serial = cur.serial,
        organisations = cur.organisations.len(),
        signed = cur.signed,
        "federation list loaded"
    );
    warn_insecure(cfg, Some(&*cur));
    Ok(Some(live))
}

/// Modification times of the list and its signature, to notice a change.
fn stamp(cfg: &FederationConfig) -> (Option<SystemTime>, Option<SystemTime>) {
    let m = |p: Option<&Path>| p.and_then(|p| std::fs::metadata(p).ok()?.modified().ok());
    (
        m(cfg.list_file.as_deref()),
        m(cfg.signature_path().as_deref()),
    )
}

/// Reads the files again and offers them to `live`. Returns whether the list changed.
pub async fn reload_once(
    cfg: &FederationConfig,
    live: &LiveFederationList,
    audit: &AuditService,
) -> bool {
    let Some(path) = &cfg.list_file else {
        return false;
    };
    let before = live.current().serial;
    let result = match (std::fs::read(path), read_sig(cfg)) {
        (Ok(bytes), Ok(sig)) => live
            .reload(&bytes, sig.as_deref())
            .map_err(|e| e.to_string()),
        (Err(e), _) => Err(format!("{}: {e}", path.display())),
        (_, Err(e)) => Err(e.to_string()),
    };
    let actor = "server";
    let changed = match result {
        Ok(list) => {
            tracing::info!(
                target: "handover::federation",
                serial = list.serial,
                organisations = list.organisations.len(),
                signed = list.signed,
                "federation list reloaded"
            );
            let e = audit::entry(actor, ACTION_LIST_RELOAD, Outcome::Success)
                .detail("serial", list.serial)
                .detail("previous_serial", before)
                .detail("organisations", list.organisations.len() as u64)
                .detail("signed", list.signed);
            // A failed write is logged inside; what it records already happened.
            let _ = audit.record(e).await;
            true
        }
        Err(reason) => {
            tracing::error!(
                target: "handover::federation",
                error = %reason,
                serial_in_force = before,
                "federation list refused; keeping the list in force"
            );
            let e = audit::entry(actor, ACTION_LIST_RELOAD, Outcome::Failure)
                .detail("error", reason)
                .detail("serial_in_force", before);
            // A failed write is logged inside; what it records already happened.
            let _ = audit.record(e).await;
            false
        }
    };
    // Every reload, refused or not, repeats the warnings for what is now in force.
    warn_insecure(cfg, Some(&*live.current()));
    changed
}

/// Watches the list files (polling their modification times) and SIGHUP; runs until the
/// runtime stops.
pub fn spawn_reloader(cfg: FederationConfig, live: LiveFederationList, audit: Arc<AuditService>) {
    tokio::spawn(async move {
        let mut seen = stamp(&cfg);
        let mut tick = tokio::time::interval(Duration::from_secs(cfg.list_poll_secs));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        #[cfg(unix)]
        let mut hup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).ok();
        loop {
            #[cfg(unix)]
            let forced = match hup.as_mut() {
                Some(h) => tokio::select! { _ = tick.tick() => false, _ = h.recv() => true },
                None => {
                    tick.tick().await;
                    false
                }
            };
            #[cfg(not(unix))]
            let forced = {
                tick.tick().await;
                false
            };
            let now = stamp(&cfg);
            if forced || now != seen {
                seen = now;
                reload_once(&cfg, &live, &audit).await;
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use base64::Engine;
    use ed25519_dalek::{Signer, SigningKey};
    use handover_policy::federation::canonical_json;

    use super::*;

    fn write_signed(dir: &Path, key: &SigningKey, serial: u64, server: &str) {
        let doc = serde_json::json!({
            "serial": serial,
            "organisations": [{ "ods_code": "RRK", "servers": [server] }]
        });
        std::fs::write(dir.join("list.json"), doc.to_string()).unwrap();
        let sig = key.sign(canonical_json(&doc).unwrap().as_bytes());
        let b64 = base64::engine::general_purpose::STANDARD.encode(sig.to_bytes());
        std::fs::write(dir.join("list.json.sig"), b64).unwrap();
    }

    #[tokio::test]
    async fn file_reload_keeps_last_good_and_is_audited() {
        let (s, _d) = crate::service::test_services();
        let dir = tempfile::tempdir().unwrap();
        let key = SigningKey::from_bytes(&[3; 32]);
        let pinned =
            base64::engine::general_purpose::STANDARD.encode(key.verifying_key().to_bytes());
        let cfg = FederationConfig {
            list_file: Some(dir.path().join("list.json")),
            list_signing_key: Some(pinned),
            ..FederationConfig::default()
        };
        assert!(load(&cfg).is_err(), "no file yet: refuse to start");
        write_signed(dir.path(), &key, 1, "a.nhs.uk");
        let live = load(&cfg).unwrap().unwrap();
        assert!(live.current().signed);

        // Tampered after signing: refused, serial 1 stays.
        let tampered =
            r#"{"serial":2,"organisations":[{"ods_code":"RRK","servers":["*.evil.example"]}]}"#;
        std::fs::write(dir.path().join("list.json"), tampered).unwrap();
        assert!(!reload_once(&cfg, &live, &s.audit).await);
        assert_eq!(live.current().serial, 1);
        assert!(live.current().find("a.nhs.uk").is_some());
        // Signature file removed: refused too.
        write_signed(dir.path(), &key, 2, "b.nhs.uk");
        std::fs::remove_file(dir.path().join("list.json.sig")).unwrap();
        assert!(!reload_once(&cfg, &live, &s.audit).await);
        assert_eq!(live.current().serial, 1);
        // Properly signed: in force.
        write_signed(dir.path(), &key, 2, "b.nhs.uk");
        assert!(reload_once(&cfg, &live, &s.audit).await);
        assert_eq!(live.current().serial, 2);
        assert!(live.current().find("b.nhs.uk").is_some());

        let audit = s.audit.all().await.unwrap();
        let outcomes: Vec<&str> = audit
            .iter()
            .filter(|r| r.action == ACTION_LIST_RELOAD)
            .map(|r| r.outcome.as_str())
            .collect();
        assert_eq!(outcomes, ["failure", "failure", "success"]);
    }

    /// A log sink for one test thread, to see what an operator would see.
    #[derive(Clone, Default)]
    struct Captured(Arc<std::sync::Mutex<Vec<u8>>>);
    impl std::io::Write for Captured {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Captured {
        type Writer = Captured;
        fn make_writer(&'a self) -> Captured {
            self.clone()
        }
    }
    impl Captured {
        fn count(&self, needle: &str) -> usize {
            String::from_utf8_lossy(&self.0.lock().unwrap())
                .matches(needle)
                .count()
        }
    }

    #[tokio::test]
    async fn insecure_settings_warned_at_start_and_every_reload() {
        let logs = Captured::default();
        let sub = tracing_subscriber::fmt()
            .with_writer(logs.clone())
            .with_ansi(false)
            .finish();
        let _guard = tracing::subscriber::set_default(sub);
        let (s, _d) = crate::service::test_services();
        let dir = tempfile::tempdir().unwrap();
        let key = SigningKey::from_bytes(&[3; 32]);
        write_signed(dir.path(), &key, 1, "a.nhs.uk");
        // No signer pinned: the list is taken unsigned; TLS verification off.
        let cfg = FederationConfig {
            list_file: Some(dir.path().join("list.json")),
            verify_tls: false,
            ..FederationConfig::default()
        };
        let live = load(&cfg).unwrap().unwrap();
        assert_eq!(logs.count("federation.verify_tls = false"), 1);
        assert_eq!(logs.count("federation list is unsigned"), 1);
        assert!(logs.count("WARN") >= 2);
        // A successful reload and a refused one both repeat them.
        write_signed(dir.path(), &key, 2, "b.nhs.uk");
        assert!(reload_once(&cfg, &live, &s.audit).await);
        std::fs::write(dir.path().join("list.json"), "not json").unwrap();
        assert!(!reload_once(&cfg, &live, &s.audit).await);
        assert_eq!(logs.count("federation.verify_tls = false"), 3);
        assert_eq!(logs.count("federation list is unsigned"), 3);

        // Signed, pinned and verified TLS: nothing to warn about.
        let pinned =
            base64::engine::general_purpose::STANDARD.encode(key.verifying_key().to_bytes());
        let good = FederationConfig {
            list_signing_key: Some(pinned),
            verify_tls: true,
            ..cfg.clone()
        };
        write_signed(dir.path(), &key, 3, "c.nhs.uk");
        let live = load(&good).unwrap().unwrap();
        assert!(insecure_settings(&good, Some(&*live.current())).is_empty());
        reload_once(&good, &live, &s.audit).await;
        assert_eq!(logs.count("insecure federation setting"), 6);
    }
}
