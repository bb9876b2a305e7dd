//! Rooms shared with other servers: PDUs received over federation (`receive.rs` checks and
//! fetches what is missing, `ingest.rs` authorises and appends), joins (`join.rs` for remote
//! servers joining our rooms, `join_remote.rs` for our users joining theirs), invites
//! (`invite.rs`) and leaves (`leave.rs`).
//!
//! Every remote server named along the way (origin, sender, invitee, residents of a room we
//! join) is put to the federation list through `PeerGate` before anything is stored or sent.

mod backfill;
mod expiry;
mod ingest;
mod invite;
mod join;
mod join_remote;
mod leave;
mod receive;
mod resolve;

pub use self::join::Membership;
pub use self::receive::MAX_MISSING_EVENTS;

#[cfg(test)]
mod tests;

#[cfg(test)]
mod hardening_tests;
#[cfg(test)]
mod pipeline_tests;
