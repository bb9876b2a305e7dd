//! The timeline: building (build.rs), appending (append.rs) and redacting (redact.rs) events.

pub mod append;
pub mod build;
pub mod redact;
