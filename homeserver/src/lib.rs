//! Handover: a Matrix homeserver hardened for NHS information governance.
//! See docs/ARCHITECTURE.md for the map: `api` (HTTP) -> `service` (rules) -> `store` (SQL).

pub mod api;
pub mod config;
pub mod error;
pub mod listener;
pub mod metrics;
pub mod ops;
pub mod server;
pub mod service;
pub mod store;
