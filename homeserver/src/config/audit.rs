//! `[audit]`: signed checkpoints of the IG audit trail (docs/GOVERNANCE.md, "Audit trail").

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditConfig {
    /// Sign a checkpoint once this many entries were added since the last one (0: only on the
    /// timer).
    #[serde(default = "default_every")]
    pub checkpoint_every: u64,
    /// Also sign one this often when entries were added (a duration: "10m", "1h"; "0s": never).
    #[serde(default = "default_interval")]
    pub checkpoint_interval: String,
    /// Append each checkpoint, as a JSON line (fsync'd), to this file: put it on another mount
    /// or an append-only (`chattr +a`) file so the database's owner cannot rewrite it.
    #[serde(default)]
    pub checkpoint_file: Option<PathBuf>,
    /// Also send each checkpoint to syslog (facility authpriv, tag `handover-audit`) through
    /// this Unix datagram socket, usually "/dev/log" (journald, rsyslog). Unset: no syslog.
    #[serde(default)]
    pub checkpoint_syslog: Option<PathBuf>,
}

fn default_every() -> u64 {
    100
}
fn default_interval() -> String {
    "10m".into()
}

impl Default for AuditConfig {
    fn default() -> Self {
        Self {
            checkpoint_every: default_every(),
            checkpoint_interval: default_interval(),
            checkpoint_file: None,
            checkpoint_syslog: None,
        }
    }
}

impl AuditConfig {
    pub fn checkpoint_interval_ms(&self) -> Result<u64, String> {
        super::parse_duration_ms(&self.checkpoint_interval)
            .map_err(|e| format!("configuration error: key `audit.checkpoint_interval`: {e}"))
    }
}
