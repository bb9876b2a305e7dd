//! The service layer: the rules of the protocol. Handlers call exactly one service function;
//! services check authorisation (membership, power levels, policy) and reach storage through their
//! narrow store traits. Dependencies are explicit: each service is built with what it needs.

pub mod account_data;
pub mod account_rooms;
pub mod admin;
pub mod appservice;
pub mod audit;
pub mod audit_checkpoint;
#[cfg(unix)]
pub mod audit_syslog;
mod blocking;
pub mod commit;
pub mod console;
pub mod e2ee;
pub mod ephemeral;
pub mod federation;
pub mod filter;
pub mod health;
pub mod identity;
pub mod media;
pub mod notifier;
pub mod oauth;
pub mod openid;
pub mod peer;
pub mod progress;
pub mod push;
pub mod rate_limit;
pub mod registration;
pub mod reports;
pub mod retention;
pub mod room_state;
pub mod rooms;
pub mod sar;
pub mod search;
pub mod signing_key;
pub mod sliding_sync;
pub mod spaces;
pub mod support;
pub mod sync;
pub mod uiaa;
pub mod users;
pub mod voip;
pub mod wiring;

/// A leaf helper, not wiring: kept importable as `service::blocking`.
pub use self::blocking::blocking;
pub use self::wiring::{Limits, Services, is_upload};

#[cfg(test)]
pub(crate) mod test_util;

#[cfg(test)]
pub(crate) use self::wiring::{
    test_services, test_services_and_store, test_services_with_policy,
    test_services_with_subscribers,
};

#[cfg(test)]
mod governance_tests;

#[cfg(test)]
mod identity_tests;
