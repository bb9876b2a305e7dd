//! Pushers (`GET /pushers`, `POST /pushers/set`). Only http pushers are accepted: an email
//! pusher would send message text out of the trust by mail.

use ruma::UserId;
use ruma::api::client::push::set_pusher::v3::PusherAction;
use ruma::api::client::push::{Pusher, PusherKind};

use super::PushService;
use crate::error::{Error, Result};
use crate::service::blocking;

/// The path the spec requires of a push gateway URL.
const NOTIFY_PATH: &str = "/_matrix/push/v1/notify";

impl PushService {
    pub async fn pushers(&self, user: &UserId) -> Result<Vec<Pusher>> {
        let store = self.store.clone();
        let uid = user.to_string();
        let rows = blocking(move || Ok(store.pushers(&uid)?)).await?;
        rows.iter()
            .map(|r| serde_json::from_str(&r.json).map_err(Error::internal))
            .collect()
    }

    /// Creates, replaces (same app_id + pushkey) or, for `kind: null`, deletes a pusher.
    pub async fn set_pusher(&self, user: &UserId, action: PusherAction) -> Result<()> {
        let store = self.store.clone();
        let uid = user.to_string();
        match action {
            PusherAction::Post(data) => {
                validate(&data.pusher)?;
                let json = serde_json::to_string(&data.pusher).map_err(Error::internal)?;
                let (app, key, append) = (
                    data.pusher.ids.app_id.clone(),
                    data.pusher.ids.pushkey.clone(),
                    data.append,
                );
                blocking(move || Ok(store.set_pusher(&uid, &app, &key, &json, append)?)).await
            }
            PusherAction::Delete(ids) => {
                // Deleting a pusher that does not exist is not an error (the spec lists none).
                blocking(move || Ok(store.delete_pusher(&uid, &ids.app_id, &ids.pushkey)?))
                    .await
                    .map(drop)
            }
            _ => Err(Error::invalid_param("Unsupported pusher action")),
        }
    }
}

fn validate(p: &Pusher) -> Result<()> {
    if p.ids.app_id.is_empty() || p.ids.app_id.chars().count() > 64 {
        return Err(Error::invalid_param("app_id must be 1 to 64 characters"));
    }
    if p.ids.pushkey.is_empty() || p.ids.pushkey.len() > 512 {
        return Err(Error::invalid_param("pushkey must be 1 to 512 bytes"));
    }
    let PusherKind::Http(http) = &p.kind else {
        return Err(Error::invalid_param("Only http pushers are supported"));
    };
    if http.url.is_empty() {
        return Err(Error::missing_param(
            "data.url is required for http pushers",
        ));
    }
    let url = reqwest::Url::parse(&http.url)
        .map_err(|_| Error::invalid_param("data.url is not a valid URL"))?;
    // HTTPS as the spec requires; plain http only to a gateway on this host.
    let loopback = matches!(url.host_str(), Some("localhost" | "127.0.0.1" | "[::1]"));
    if url.scheme() != "https" && !(url.scheme() == "http" && loopback) {
        return Err(Error::invalid_param("data.url must be an https URL"));
    }
    if url.path() != NOTIFY_PATH {
        return Err(Error::invalid_param(format!(
            "data.url must have the path {NOTIFY_PATH}"
        )));
    }
    Ok(())
}
