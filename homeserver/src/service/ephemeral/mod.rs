//! Ephemeral data delivered through /sync: read receipts (stored), typing and presence (in memory).

pub mod presence;
pub mod read_markers;
pub mod receipts;
pub mod typing;
