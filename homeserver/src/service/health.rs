//! Readiness (`GET /ready`, docs/OPERATIONS.md): can this server do its work now? The database
//! takes a write, the media directory takes a file, and a configured federation list is in
//! force. Liveness (`/health`) needs no service: answering at all is the answer.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use handover_policy::LiveFederationList;
use serde::Serialize;

use crate::store::health::HealthStore;

/// How long one probe may take before it counts as failed (a stuck writer must not hang
/// the load balancer's check).
const PROBE_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Debug, Clone, Serialize)]
pub struct Check {
    pub ok: bool,
    pub detail: String,
}

/// Every check by name, and the names of those that failed (empty: ready).
#[derive(Debug, Clone, Serialize)]
pub struct Readiness {
    pub status: &'static str,
    pub not_ready: Vec<&'static str>,
    pub checks: BTreeMap<&'static str, Check>,
}

impl Readiness {
    pub fn is_ready(&self) -> bool {
        self.not_ready.is_empty()
    }
}

pub struct HealthService {
    store: Arc<dyn HealthStore>,
    media_dir: PathBuf,
    list_configured: bool,
}

impl HealthService {
    pub fn new(store: Arc<dyn HealthStore>, media_dir: PathBuf, list_configured: bool) -> Self {
        Self {
            store,
            media_dir,
            list_configured,
        }
    }

    /// Runs every check now. `list` is the federation list in force (None: none loaded).
    pub async fn ready(&self, list: Option<&LiveFederationList>) -> Readiness {
        let mut checks = BTreeMap::new();
        let store = self.store.clone();
        checks.insert(
            "database",
            probe(move || {
                store
                    .probe_write()
                    .map(|()| "writable".to_owned())
                    .map_err(|e| e.to_string())
            })
            .await,
        );
        let dir = self.media_dir.clone();
        checks.insert("media", probe(move || probe_dir(&dir)).await);
        checks.insert(
            "federation_list",
            match (self.list_configured, list) {
                (false, _) => ok("not configured: this server federates with no one"),
                (true, Some(l)) => {
                    let l = l.current();
                    ok(&format!(
                        "serial {} in force, {} organisations{}",
                        l.serial,
                        l.organisations.len(),
                        if l.signed { ", signed" } else { ", unsigned" }
                    ))
                }
                (true, None) => failed("configured but not loaded"),
            },
        );
        let not_ready: Vec<&'static str> = checks
            .iter()
            .filter(|(_, c)| !c.ok)
            .map(|(k, _)| *k)
            .collect();
        Readiness {
            status: if not_ready.is_empty() {
                "ready"
            } else {
                "not ready"
            },
            not_ready,
            checks,
        }
    }
}

fn ok(detail: &str) -> Check {
    Check {
        ok: true,
        detail: detail.to_owned(),
    }
}

fn failed(detail: &str) -> Check {
    Check {
        ok: false,
        detail: detail.to_owned(),
    }
}

/// Runs a blocking probe with the probe timeout.
async fn probe(f: impl FnOnce() -> Result<String, String> + Send + 'static) -> Check {
    match tokio::time::timeout(PROBE_TIMEOUT, tokio::task::spawn_blocking(f)).await {
        Ok(Ok(Ok(detail))) => ok(&detail),
        Ok(Ok(Err(e))) => failed(&e),
        Ok(Err(e)) => failed(&format!("probe failed: {e}")),
        Err(_) => failed(&format!("no answer within {}s", PROBE_TIMEOUT.as_secs())),
    }
}

/// Creates, syncs and removes a small file in `dir`.
fn probe_dir(dir: &std::path::Path) -> Result<String, String> {
    use std::io::Write;
    let path = dir.join(format!(".ready-probe-{}", std::process::id()));
    let res = std::fs::File::create(&path)
        .and_then(|mut f| f.write_all(b"ready").and_then(|()| f.sync_all()));
    let _ = std::fs::remove_file(&path);
    res.map(|()| "writable".to_owned())
        .map_err(|e| format!("{}: {e}", dir.display()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{StoreError, StoreResult};

    struct Fails;
    impl HealthStore for Fails {
        fn probe_write(&self) -> StoreResult<()> {
            Err(StoreError::ReadOnly)
        }
    }

    #[tokio::test]
    async fn ready_names_what_fails() {
        let (store, dir) = crate::store::sqlite::test_store();
        let media = dir.path().join("media");
        std::fs::create_dir_all(&media).unwrap();
        let svc = HealthService::new(Arc::new(store), media.clone(), false);
        let r = svc.ready(None).await;
        assert!(r.is_ready(), "{r:?}");
        assert_eq!(r.status, "ready");

        let svc = HealthService::new(Arc::new(Fails), dir.path().join("missing"), true);
        let r = svc.ready(None).await;
        assert_eq!(r.not_ready, vec!["database", "federation_list", "media"]);
        assert!(r.checks["database"].detail.contains("read-only"), "{r:?}");
    }
}
