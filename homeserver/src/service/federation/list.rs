//! Reading the NHS federation list from its files, and reloading it without a restart: the
//! files are polled (`federation.list_poll_secs`) and SIGHUP reloads at once. A list that does
//! not parse, is unsigned or badly signed (when a signer key is pinned) or is older (serial)
//! is refused and the last good list stays in force; each reload and refusal is audited.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use handover_compliance::Outcome;
use handover_policy::LiveFederationList;
use handover_policy::federation::parse_verifying_key;

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

/// Loads the configured list at start-up. `Ok(None)` when none is configured (no federation);
/// an error when the configured list is unreadable or refused (there is no last good list).
pub fn load(cfg: &FederationConfig) -> anyhow::Result<Option<LiveFederationList>> {
    let Some(path) = &cfg.list_file else {
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
    match result {
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
            audit.record(e).await;
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
            audit.record(e).await;
            false
        }
    }
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
