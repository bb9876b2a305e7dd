//! Handover's governance rules, consulted by the homeserver at named hook points.
//!
//! The homeserver never hard-codes a policy: it calls a [`Policy`] at each hook point and obeys
//! the [`Decision`]. Implementations decide only; they do no I/O of their own, so every rule can be
//! unit-tested here without a server. [`AllowAll`] allows everything; [`NhsPolicy`] is the NHS
//! rule set (see docs/GOVERNANCE.md for every rule id).

mod nhs;
pub mod nhs_number;

use serde::Serialize;

pub use nhs::{NhsPolicy, RULE_NHS_NUMBER_IN_MESSAGE, RULE_NHS_NUMBER_IN_METADATA};

/// Why a policy refused something. `rule` is a stable identifier an IG lead can look up in
/// docs/GOVERNANCE.md; `reason` is a sentence for the user.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Denial {
    pub rule: String,
    pub reason: String,
}

impl Denial {
    pub fn new(rule: impl Into<String>, reason: impl Into<String>) -> Self {
        Self {
            rule: rule.into(),
            reason: reason.into(),
        }
    }
}

pub type Decision = Result<(), Denial>;

/// A registration attempt.
#[derive(Debug, Clone)]
pub struct RegistrationRequest<'a> {
    pub localpart: &'a str,
    pub server_name: &'a str,
    /// Registered by an admin command rather than the open API.
    pub by_admin: bool,
}

/// A room about to be created.
#[derive(Debug, Clone)]
pub struct CreateRoomRequest<'a> {
    pub creator: &'a str,
    pub room_version: &'a str,
    pub preset: Option<&'a str>,
    pub is_public: bool,
    /// `(event type, state key)` of each initial state event, including those from the preset.
    pub initial_state: &'a [(String, String)],
}

/// An invite from `inviter` to `invitee` into `room_id`.
#[derive(Debug, Clone)]
pub struct InviteRequest<'a> {
    pub room_id: &'a str,
    pub inviter: &'a str,
    pub invitee: &'a str,
}

/// An event about to be sent into a room (local sends; later also federation PDUs).
#[derive(Debug, Clone)]
pub struct EventRequest<'a> {
    pub room_id: &'a str,
    pub sender: &'a str,
    pub event_type: &'a str,
    pub state_key: Option<&'a str>,
    /// The event content as JSON (the policy may inspect unencrypted metadata).
    pub content: &'a serde_json::value::RawValue,
}

/// A change to a user's global profile (display names show in every room and the directory).
#[derive(Debug, Clone)]
pub struct ProfileUpdate<'a> {
    pub user_id: &'a str,
    /// The new display name (`None` when it is being removed).
    pub displayname: Option<&'a str>,
}

/// The hook points. Every method has an allow-all default so a rule set overrides only what it
/// governs.
pub trait Policy: Send + Sync + 'static {
    /// A short name for logs and the audit trail.
    fn name(&self) -> &str;

    fn check_registration(&self, _req: &RegistrationRequest<'_>) -> Decision {
        Ok(())
    }
    fn check_create_room(&self, _req: &CreateRoomRequest<'_>) -> Decision {
        Ok(())
    }
    fn check_invite(&self, _req: &InviteRequest<'_>) -> Decision {
        Ok(())
    }
    fn check_event(&self, _req: &EventRequest<'_>) -> Decision {
        Ok(())
    }
    fn check_profile_update(&self, _req: &ProfileUpdate<'_>) -> Decision {
        Ok(())
    }
}

/// The default policy: allows everything. Deployments choose a rule set in config.
#[derive(Debug, Default, Clone, Copy)]
pub struct AllowAll;

impl Policy for AllowAll {
    fn name(&self) -> &str {
        "allow-all"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct NoTopics;
    impl Policy for NoTopics {
        fn name(&self) -> &str {
            "no-topics"
        }
        fn check_event(&self, req: &EventRequest<'_>) -> Decision {
            if req.event_type == "m.room.topic" {
                return Err(Denial::new("no_topics", "topics are not allowed"));
            }
            Ok(())
        }
    }

    #[test]
    fn defaults_allow_and_overrides_deny() {
        let content = serde_json::value::RawValue::from_string("{}".into()).unwrap();
        let mut ev = EventRequest {
            room_id: "!r:x",
            sender: "@a:x",
            event_type: "m.room.message",
            state_key: None,
            content: &content,
        };
        assert!(AllowAll.check_event(&ev).is_ok());
        assert!(NoTopics.check_event(&ev).is_ok());
        ev.event_type = "m.room.topic";
        assert_eq!(NoTopics.check_event(&ev).unwrap_err().rule, "no_topics");
        let inv = InviteRequest {
            room_id: "!r:x",
            inviter: "@a:x",
            invitee: "@b:y",
        };
        assert!(NoTopics.check_invite(&inv).is_ok());
        let profile = ProfileUpdate {
            user_id: "@a:x",
            displayname: Some("A"),
        };
        assert!(NoTopics.check_profile_update(&profile).is_ok());
    }
}
