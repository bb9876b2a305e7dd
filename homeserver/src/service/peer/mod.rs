//! Peer-facing federation: what other servers ask of us and what we tell them, built on rooms,
//! users, ephemeral and e2ee (the transport and trust they use is `service/federation/`, below
//! rooms). docs/FEDERATION.md describes them.
//!
//! - `transactions.rs`: inbound `/send` (PDUs to the room service, EDUs to `edu.rs`);
//! - `edu.rs`: inbound EDUs (typing, receipts, presence, device lists, to-device);
//! - `fanout.rs`: who gets each outbound EDU (handed to the federation outbox);
//! - `room_read/`: room events served to other servers (/event, /state, /backfill, ...);
//! - `query/`: profile, alias and public-room queries, inbound and outbound.

pub mod edu;
pub mod fanout;
pub mod query;
pub mod room_read;
pub mod transactions;
