//! Handover's compliance evidence: the append-only, hash-chained audit trail.
//!
//! Pure code only (no I/O of its own, like `handover-policy`): the record type, the chain
//! (`seal`), its verification (`verify`, `Verifier`) and JSON-lines export. The homeserver stores
//! the records and calls these functions; an auditor can re-run `verify` on an export.

pub mod chain;
pub mod checkpoint;
pub mod controls;
pub mod export;
pub mod html;
pub mod record;
pub mod report;
pub mod time;

pub use chain::{BrokenAt, GENESIS_HASH, Verifier, seal, verify};
pub use checkpoint::{Checkpoint, CheckpointBroken, CheckpointChecker, CheckpointSummary};
pub use export::{to_json_line, write_json_lines};
pub use record::{AuditRecord, NewEntry, Outcome};
