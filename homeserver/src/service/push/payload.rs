//! The push gateway request (`POST /_matrix/push/v1/notify`) for one pusher.
//!
//! With `event_id_only` (the policy default, or the pusher's own `format`) the notification
//! carries only `event_id`, `room_id`, `counts` and `devices`: no body, sender, sender display
//! name or room name leaves the trust; the device fetches the event over the client API.

use handover_policy::PushFormat;
use ruma::api::client::push::{Pusher, PusherKind};
use ruma::api::push_gateway::send_event_notification::v1::{
    Device, Notification, NotificationCounts, PusherData,
};
use ruma::events::TimelineEventType;
use ruma::push::{Action, PushFormat as PusherFormat};
use ruma::{OwnedEventId, OwnedRoomId, OwnedUserId, UInt};
use serde_json::value::RawValue;

use super::evaluate::{display_name, room_name};
use crate::error::{Error, Result};
use crate::service::commit::CommittedEvent;

/// One POST for one pusher.
pub struct GatewayRequest {
    pub url: String,
    pub app_id: String,
    pub pushkey: String,
    pub body: Vec<u8>,
}

/// A user whose rules said "notify", and the actions (tweaks go to the device).
pub struct PushTarget {
    pub user: OwnedUserId,
    pub actions: Vec<Action>,
}

/// What a full-format notification may say about the event, taken once per event.
pub struct EventSummary {
    pub room_id: OwnedRoomId,
    pub event_id: OwnedEventId,
    pub event_type: TimelineEventType,
    sender: OwnedUserId,
    state_key: Option<String>,
    content: Box<RawValue>,
    sender_display_name: Option<String>,
    room_name: Option<String>,
}

impl EventSummary {
    pub fn new(ev: &CommittedEvent) -> Self {
        let pdu = &ev.pdu;
        Self {
            room_id: pdu.room_id.clone(),
            event_id: pdu.event_id.clone(),
            event_type: pdu.kind.clone(),
            sender: pdu.sender.clone(),
            state_key: pdu.state_key.clone(),
            content: pdu.content.clone(),
            sender_display_name: display_name(&ev.state, &pdu.sender),
            room_name: room_name(&ev.state),
        }
    }

    /// The gateway URL and JSON body for one stored pusher; `None` for non-http pushers.
    pub fn notification(
        &self,
        pusher_json: &str,
        target: &PushTarget,
        unread: u64,
        policy_format: PushFormat,
    ) -> Result<Option<GatewayRequest>> {
        let pusher: Pusher = serde_json::from_str(pusher_json).map_err(Error::internal)?;
        let PusherKind::Http(http) = pusher.kind else {
            return Ok(None);
        };
        let url = http.url.clone();
        let pusher_wants_ids_only = matches!(http.format, Some(PusherFormat::EventIdOnly));
        let (app_id, pushkey) = (pusher.ids.app_id.clone(), pusher.ids.pushkey.clone());
        let mut device = Device::new(pusher.ids.app_id, pusher.ids.pushkey);
        // The pusher's data minus `url`, forwarded as the spec requires (format, custom keys).
        device.data = PusherData::from(http);
        device.tweaks = target
            .actions
            .iter()
            .filter_map(|a| match a {
                Action::SetTweak(t) => Some(t.clone()),
                _ => None,
            })
            .collect();
        let mut n = Notification::new(vec![device]);
        n.event_id = Some(self.event_id.clone());
        n.room_id = Some(self.room_id.clone());
        n.counts = NotificationCounts::new(UInt::new_saturating(unread), UInt::MIN);
        if policy_format == PushFormat::Full && !pusher_wants_ids_only {
            n.event_type = Some(self.event_type.clone());
            n.sender = Some(self.sender.clone());
            n.sender_display_name = self.sender_display_name.clone();
            n.room_name = self.room_name.clone();
            n.content = Some(self.content.clone());
            n.user_is_target = self.state_key.as_deref() == Some(target.user.as_str());
        }
        let body = serde_json::to_vec(&serde_json::json!({ "notification": n }))
            .map_err(Error::internal)?;
        Ok(Some(GatewayRequest {
            url,
            app_id,
            pushkey,
            body,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn summary() -> EventSummary {
        EventSummary {
            room_id: "!r:x".try_into().unwrap(),
            event_id: "$e".try_into().unwrap(),
            event_type: TimelineEventType::RoomMessage,
            sender: "@a:x".try_into().unwrap(),
            state_key: None,
            content: RawValue::from_string(r#"{"body":"bed 4 obs"}"#.into()).unwrap(),
            sender_display_name: Some("Dr A".into()),
            room_name: Some("Ward 7".into()),
        }
    }

    fn pusher(format: Option<&str>) -> String {
        let mut data = serde_json::json!({ "url": "https://gw/_matrix/push/v1/notify", "k": 1 });
        if let Some(f) = format {
            data["format"] = f.into();
        }
        serde_json::json!({
            "kind": "http", "app_id": "app", "pushkey": "key", "app_display_name": "A",
            "device_display_name": "D", "lang": "en", "data": data,
        })
        .to_string()
    }

    fn body(format: Option<&str>, policy: PushFormat) -> serde_json::Value {
        let target = PushTarget {
            user: "@b:x".try_into().unwrap(),
            actions: vec![Action::Notify],
        };
        let req = summary()
            .notification(&pusher(format), &target, 3, policy)
            .unwrap()
            .unwrap();
        assert_eq!(req.url, "https://gw/_matrix/push/v1/notify");
        serde_json::from_slice(&req.body).unwrap()
    }

    #[test]
    fn event_id_only_carries_ids_counts_and_devices() {
        let n = &body(None, PushFormat::EventIdOnly)["notification"];
        let keys: Vec<&str> = n.as_object().unwrap().keys().map(|k| k.as_str()).collect();
        assert_eq!(keys.len(), 4, "{n}");
        assert_eq!(n["event_id"], "$e");
        assert_eq!(n["room_id"], "!r:x");
        assert_eq!(n["counts"]["unread"], 3);
        assert_eq!(n["devices"][0]["pushkey"], "key");
        assert_eq!(n["devices"][0]["data"]["k"], 1);
        assert!(n["devices"][0]["data"].get("url").is_none());
    }

    #[test]
    fn pusher_format_overrides_a_permissive_policy() {
        let n = &body(Some("event_id_only"), PushFormat::Full)["notification"];
        assert!(n.get("content").is_none() && n.get("sender_display_name").is_none());
        let full = &body(None, PushFormat::Full)["notification"];
        assert_eq!(full["content"]["body"], "bed 4 obs");
        assert_eq!(full["room_name"], "Ward 7");
    }
}
