//! Binds media to the room it is first sent in (rule `media_not_in_your_rooms`). A commit
//! pipeline subscriber (`service/commit/`): rooms never depend on the media service.

use std::sync::Arc;

use handover_policy::media::PROFILE_BINDING;
use ruma::{EventId, MxcUri, OwnedServerName, RoomId, UserId};
use serde_json::Value;

use super::files::is_valid_media_id;
use crate::service::blocking;
use crate::service::commit::{BoxFuture, CommitSubscriber, CommittedEvent};
use crate::store::media::MediaStore;
use crate::store::now_ms;

pub struct MediaBinder {
    server_name: OwnedServerName,
    store: Arc<dyn MediaStore>,
}

impl MediaBinder {
    pub fn new(server_name: OwnedServerName, store: Arc<dyn MediaStore>) -> Self {
        Self { server_name, store }
    }

    /// Binds this server's media referenced by a committed event's content. Never fails the
    /// send (the event is already durable); a failure is logged, and the media then stays
    /// visible to its uploader only.
    pub async fn bind_event(
        &self,
        room_id: &RoomId,
        sender: &UserId,
        event_id: &EventId,
        content: &serde_json::value::RawValue,
    ) {
        // Cheap pre-check: almost every event carries no mxc URI at all.
        if !content.get().contains("mxc://") {
            return;
        }
        let Ok(content) = serde_json::from_str::<Value>(content.get()) else {
            return;
        };
        let ids = referenced_media(&content, self.server_name.as_str());
        if ids.is_empty() {
            return;
        }
        let store = self.store.clone();
        let (s, r, e) = (
            sender.to_string(),
            room_id.to_string(),
            event_id.to_string(),
        );
        // Every reference is recorded, whoever sent it: retention keeps a file while any
        // stored event still refers to it. Only the uploader's own events bind it.
        let mxcs: Vec<String> = ids
            .iter()
            .map(|id| format!("mxc://{}/{id}", self.server_name))
            .collect();
        let res = blocking(move || {
            store.add_media_refs(&mxcs, &e, &r, &s)?;
            Ok(store.bind_media(&ids, &s, &r, &e, now_ms())?)
        })
        .await;
        if let Err(err) = res {
            tracing::error!(%room_id, %event_id, error = ?err, "media room binding failed");
        }
    }
}

/// Every committed event, local or received: a remote user's reference to one of our files
/// keeps it bound (and alive) like ours. Runs before the notifier's wake-ups.
impl CommitSubscriber for MediaBinder {
    fn name(&self) -> &'static str {
        "media_binder"
    }

    fn committed(&self, ev: Arc<CommittedEvent>) -> BoxFuture<'_> {
        Box::pin(async move {
            let pdu = &ev.pdu;
            self.bind_event(&pdu.room_id, &pdu.sender, &pdu.event_id, &pdu.content)
                .await;
        })
    }
}

impl MediaBinder {
    /// A new profile avatar: readable by every signed-in user, unless the file was already
    /// bound to a room (first binding wins, so a clinical photo cannot be widened this way).
    pub async fn bind_profile(&self, user: &UserId, avatar: &MxcUri) {
        let prefix = format!("mxc://{}/", self.server_name);
        let Some(id) = avatar.as_str().strip_prefix(&prefix) else {
            return;
        };
        if !is_valid_media_id(id) {
            return;
        }
        let (store, ids, u) = (self.store.clone(), vec![id.to_owned()], user.to_string());
        let res =
            blocking(move || Ok(store.bind_media(&ids, &u, PROFILE_BINDING, "", now_ms())?)).await;
        if let Err(err) = res {
            tracing::error!(%user, error = ?err, "profile media binding failed");
        }
    }
}

/// Media ids of `server_name` named where the spec puts attachments: `url`, `file.url`,
/// `info.thumbnail_url`, `info.thumbnail_file.url` — in the content itself and in an edit's
/// `m.new_content` (an `m.replace` can swap the attachment: the new file is what clients show).
pub fn referenced_media(content: &Value, server_name: &str) -> Vec<String> {
    let prefix = format!("mxc://{server_name}/");
    let mut out: Vec<String> = Vec::new();
    for c in [content, &content["m.new_content"]] {
        let candidates = [
            &c["url"],
            &c["file"]["url"],
            &c["info"]["thumbnail_url"],
            &c["info"]["thumbnail_file"]["url"],
        ];
        for id in candidates
            .iter()
            .filter_map(|v| v.as_str()?.strip_prefix(&prefix))
            .filter(|id| is_valid_media_id(id))
        {
            if !out.iter().any(|o| o == id) {
                out.push(id.to_owned());
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_local_references_only() {
        let c = serde_json::json!({
            "msgtype": "m.image",
            "url": "mxc://localhost/abcDEF123",
            "info": {
                "thumbnail_url": "mxc://elsewhere.org/xyz",
                "thumbnail_file": { "url": "mxc://localhost/thumb_1" }
            },
            "file": { "url": "mxc://localhost/../../etc" }
        });
        assert_eq!(
            referenced_media(&c, "localhost"),
            vec!["abcDEF123", "thumb_1"]
        );
        assert!(referenced_media(&serde_json::json!({"body": "hi"}), "localhost").is_empty());
    }

    #[test]
    fn edits_are_seen_too() {
        let c = serde_json::json!({
            "msgtype": "m.image",
            "body": "* photo",
            "url": "mxc://localhost/old1",
            "m.new_content": {
                "msgtype": "m.image",
                "url": "mxc://localhost/new1",
                "file": { "url": "mxc://localhost/old1" },
                "info": { "thumbnail_url": "mxc://localhost/newthumb" }
            },
            "m.relates_to": { "rel_type": "m.replace", "event_id": "$orig" }
        });
        assert_eq!(
            referenced_media(&c, "localhost"),
            vec!["old1", "new1", "newthumb"]
        );
    }
}
