//! The timeline: building (build.rs), appending (append.rs) and redacting (redact.rs) events.

pub mod append;
pub mod build;
pub mod commit;
pub mod redact;
