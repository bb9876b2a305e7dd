//! Operator tools that run beside the server, not in it: `handover doctor` (configuration and
//! running-server checks), `handover admin backup` / `restore` (docs/OPERATIONS.md).

pub mod backup;
pub mod doctor;
pub mod progress;
pub mod restore;

/// Written into the data directory by every completed `handover admin backup` (JSON:
/// `completed_ms`, `destination`, `files`); `handover doctor` reads its age.
pub const BACKUP_MARKER: &str = "last_backup.json";
