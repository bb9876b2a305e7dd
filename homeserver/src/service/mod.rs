//! The service layer: the rules of the protocol. Handlers call exactly one service function;
//! services check authorisation (membership, power levels, policy) and reach storage through their
//! narrow store traits. Dependencies are explicit: each service is built with what it needs.

pub mod media;
pub mod rate_limit;
pub mod rooms;
pub mod uiaa;
pub mod users;

use std::sync::Arc;

use handover_policy::Policy;

use crate::config::Config;
use crate::error::{Error, Result};
use crate::store::sqlite::SqliteStore;

/// Per-request body limits, by kind of endpoint.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    pub max_request_bytes: usize,
    pub max_upload_bytes: usize,
}

impl Limits {
    pub fn body_limit_for(&self, path: &str) -> usize {
        if path.contains("/media/") {
            self.max_upload_bytes
        } else {
            self.max_request_bytes
        }
    }
}

/// Every service, cheap to clone (the axum state).
#[derive(Clone)]
pub struct Services {
    pub config: Arc<Config>,
    pub limits: Limits,
    pub policy: Arc<dyn Policy>,
    pub users: Arc<users::UserService>,
    pub uiaa: Arc<uiaa::UiaaService>,
    pub rate_limits: Arc<rate_limit::RateLimits>,
    pub media: Arc<media::MediaService>,
}

impl Services {
    pub fn build(config: Config, store: SqliteStore, policy: Arc<dyn Policy>) -> Result<Self> {
        let config = Arc::new(config);
        let limits = Limits {
            max_request_bytes: config.limits.max_request_bytes,
            max_upload_bytes: config.media.max_upload_bytes as usize,
        };
        let store = Arc::new(store);
        let users = Arc::new(users::UserService::new(
            config.clone(),
            store.clone(),
            policy.clone(),
        ));
        let uiaa = Arc::new(uiaa::UiaaService::default());
        let rate_limits = Arc::new(rate_limit::RateLimits::new(&config.rate_limit));
        let media = Arc::new(media::MediaService::new(&config, store.clone())?);
        Ok(Self {
            config,
            limits,
            policy,
            users,
            uiaa,
            rate_limits,
            media,
        })
    }
}

/// Runs blocking work (SQLite, hashing) off the async executor.
pub async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T> + Send + 'static,
) -> Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| Error::internal(format!("blocking task failed: {e}")))?
}
