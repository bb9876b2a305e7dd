//! Ephemeral room data delivered through /sync: read receipts (stored) and typing (in memory).

pub mod read_markers;
pub mod receipts;
pub mod typing;
