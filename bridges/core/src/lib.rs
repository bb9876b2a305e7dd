//! Shared code of Handover's bridges (the alerts bridge and the EPR bridge): both are
//! Matrix application services with a bot that reads and posts in encrypted rooms.
//!
//! - [`config`]: TOML file + `PREFIX_*` environment overrides (figment), as the server does.
//! - [`appservice`]: the appservice side: the registration values, an axum receiver for the
//!   homeserver's pushes (`/_matrix/app/v1/transactions`, ping, user and alias queries).
//! - [`bot`]: the bot's matrix-sdk client, logged in with `m.login.application_service` so it
//!   has a device and can decrypt (its stores in memory, or on disk so the device survives a
//!   restart) and helpers to post.
//! - [`store`]: the bridge's durable SQLite state (migrations by name) and its audit table.
//! - [`signature`]: HMAC-SHA256 signed webhooks with a replay window.
//! - [`cli`]: the command line every bridge binary takes, the `[log]` section.
//! - [`render`]: notices and replies the bots post, HTML escaping.

pub mod appservice;
pub mod bot;
pub mod cli;
pub mod config;
pub mod render;
pub mod signature;
pub mod store;

/// Milliseconds since the Unix epoch (wall clock). Code that schedules takes a [`Clock`].
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// A source of "now", injected so timers can be tested without waiting.
pub trait Clock: Send + Sync + 'static {
    fn now_ms(&self) -> i64;
}

/// The wall clock.
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> i64 {
        now_ms()
    }
}
