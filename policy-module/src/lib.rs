//! Handover's governance rules, consulted by the homeserver at named hook points.
//!
//! The homeserver never hard-codes a policy: it calls a [`Policy`] at each hook point and obeys
//! the [`Decision`]. Implementations decide only; they do no I/O of their own, so every rule can be
//! unit-tested here without a server. [`AllowAll`] allows everything; [`NhsPolicy`] is the NHS
//! rule set (see docs/GOVERNANCE.md for every rule id).

pub mod assurance;
pub mod claims;
pub mod email_domains;
pub mod federation;
pub mod fhir;
pub mod identity;
pub mod layers;
pub mod media;
mod nhs;
pub mod nhs_number;
pub mod patient_rooms;
pub mod patients;
#[cfg(test)]
mod property_tests;

use serde::Serialize;

pub use assurance::{
    AcrRequirement, IdentityAssurance, IdentityLoginRequest, RULE_IDENTITY_ASSURANCE_TOO_LOW,
};
pub use claims::{ClaimRequirement, RULE_IDENTITY_REQUIRED_CLAIM_MISSING, RequiredClaims};
pub use email_domains::{
    DomainPattern, EmailDomains, RULE_EMAIL_DOMAIN_NOT_ALLOWED, ThreepidRequest,
};
pub use federation::{
    Direction, FederationList, FederationPeerRequest, LiveFederationList, RULE_FEDERATION_NO_LIST,
    RULE_FEDERATION_NOT_LISTED,
};
pub use fhir::{FhirResourceEvents, RULE_FHIR_RESOURCE_INVALID};
pub use identity::{
    DisplayNameLock, INVITE_PERMISSION_TYPES, OrganisationInvites, RULE_DISPLAY_NAME_LOCKED,
    RULE_INVITE_BLOCKED_BY_INVITEE, RULE_INVITE_OUTSIDE_ORGANISATION, RULE_PATIENT_CONTEXT_ROOM,
    invite_permission,
};
pub use layers::Layers;
pub use media::{
    ClinicalMedia, MediaDownloadRequest, MediaRules, MediaTransform, MediaUploadRequest,
    UploadDecision,
};
pub use nhs::{
    NhsPolicy, PATIENT_LINK_TYPE, RULE_NHS_NUMBER_IN_MESSAGE, RULE_NHS_NUMBER_IN_METADATA,
};
pub use patient_rooms::{
    PATIENT_CONTEXT_KEY, is_patient_creation_content, patient_creation_conflict,
    patient_room_conflict, patient_room_denial,
};
pub use patients::{
    AccountAction, AccountActionRequest, AccountKind, Inviter, PatientConfinement,
    RULE_PATIENT_CANNOT_CREATE_ROOM, RULE_PATIENT_CANNOT_INVITE,
    RULE_PATIENT_JOIN_NEEDS_STAFF_INVITE, RULE_PATIENT_NO_PUBLIC_DIRECTORY,
    RULE_PATIENT_PROFILE_CONFINED,
};

/// Why a policy refused something. `rule` is a stable identifier an IG lead can look up in
/// docs/GOVERNANCE.md; `reason` is a sentence for the user.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Denial {
    pub rule: String,
    pub reason: String,
    /// The request itself is malformed for the rule (e.g. a FHIR resource event that is not
    /// one): answered as bad input (400 `M_BAD_JSON`) rather than 403, still naming the rule.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub malformed: bool,
}

impl Denial {
    pub fn new(rule: impl Into<String>, reason: impl Into<String>) -> Self {
        Self {
            rule: rule.into(),
            reason: reason.into(),
            malformed: false,
        }
    }

    /// A refusal of malformed input (see [`Denial::malformed`]).
    pub fn malformed(rule: impl Into<String>, reason: impl Into<String>) -> Self {
        Self {
            malformed: true,
            ..Self::new(rule, reason)
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

/// A knock by `user` on `room_id` (local `/knock`; later also federation `make_knock`).
#[derive(Debug, Clone)]
pub struct KnockRequest<'a> {
    pub room_id: &'a str,
    pub user: &'a str,
    /// The room is a patient-context room (its create event carries the marker).
    pub patient_context: bool,
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
    /// For a state event: the content it replaces in the room's current state, if any.
    pub prev_content: Option<&'a serde_json::value::RawValue>,
}

/// A push notification about to leave the trust for a user's push gateway (Apple/Google relay
/// infrastructure outside the NHS network).
#[derive(Debug, Clone)]
pub struct PushRequest<'a> {
    pub user_id: &'a str,
    pub room_id: &'a str,
    pub event_type: &'a str,
}

/// How much of an event a push notification may carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PushFormat {
    /// Only ids and unread counts: the device fetches the event itself over the authenticated
    /// client API. No message body, sender display name or room name leaves the trust.
    EventIdOnly,
    /// The spec's full notification (content, sender, names). Only for deployments whose
    /// gateway is inside the trust boundary.
    Full,
}
/// Default initial state for a new room: `(event type, state key, content)`.
pub type InitialState = Vec<(String, String, serde_json::Value)>;

/// A change to a user's global profile (display names show in every room and the directory;
/// extended profile fields, spec v1.16, are served to anyone who asks).
#[derive(Debug, Clone)]
pub struct ProfileUpdate<'a> {
    pub user_id: &'a str,
    /// The field: `displayname`, `m.tz` or a custom key.
    pub field: &'a str,
    /// The new value as text: the display name, or an extended field's JSON (`None` when the
    /// field is being removed).
    pub value: Option<&'a str>,
    /// Set by an admin command rather than the user themself.
    pub by_admin: bool,
}

/// A room's retention (MSC1763), lifetimes in milliseconds. `None` max: kept forever.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Retention {
    pub max_lifetime: Option<u64>,
    pub min_lifetime: Option<u64>,
}

/// Reads a room's MSC1763 `m.room.retention` content: `max_lifetime` / `min_lifetime` in
/// milliseconds (non-integers ignored; content that is not JSON sets neither).
pub fn parse_room_retention(content: &str) -> Retention {
    let v: serde_json::Value = serde_json::from_str(content).unwrap_or_default();
    Retention {
        max_lifetime: v.get("max_lifetime").and_then(serde_json::Value::as_u64),
        min_lifetime: v.get("min_lifetime").and_then(serde_json::Value::as_u64),
    }
}

/// The server's retention bounds (`[retention]`), milliseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RetentionBounds {
    /// Applied when the room sets no `max_lifetime`; `None` keeps forever.
    pub default_lifetime: Option<u64>,
    pub min_lifetime: Option<u64>,
    pub max_lifetime: Option<u64>,
}

/// The retention question for one room.
#[derive(Debug, Clone)]
pub struct RetentionRequest<'a> {
    pub room_id: &'a str,
    pub server: RetentionBounds,
    /// The room's `m.room.retention` content, if it has one (already parsed).
    pub room: Option<Retention>,
}

/// The default decision (MSC1763 as Handover applies it):
/// - the maximum is the room's `max_lifetime` (or the server default) clamped into the server's
///   `[min_lifetime, max_lifetime]`; a server maximum applies even to rooms that keep forever;
/// - the minimum is the longer of the room's `min_lifetime` and the server's, never above the
///   server maximum (the organisation's schedule is the outer bound);
/// - MSC1763's invariant `max_lifetime >= min_lifetime` is kept by raising the maximum to the
///   minimum, never by lowering the minimum: nothing is purged before its minimum lifetime.
pub fn clamp_retention(req: &RetentionRequest<'_>) -> Retention {
    let b = req.server;
    let clamp = |v: u64| {
        let v = b.min_lifetime.map_or(v, |m| v.max(m));
        b.max_lifetime.map_or(v, |m| v.min(m))
    };
    let room = req.room.unwrap_or_default();
    let max = match room.max_lifetime.or(b.default_lifetime) {
        Some(v) => Some(clamp(v)),
        None => b.max_lifetime,
    };
    let min = match (room.min_lifetime, b.min_lifetime) {
        (Some(r), Some(s)) => Some(r.max(s)),
        (r, s) => r.or(s),
    }
    .map(|m| b.max_lifetime.map_or(m, |x| m.min(x)));
    Retention {
        max_lifetime: max.map(|x| min.map_or(x, |m| x.max(m))),
        min_lifetime: min,
    }
}

/// The hook points. Every method has an allow-all default so a rule set overrides only what it
/// governs.
pub trait Policy: Send + Sync + 'static {
    /// A short name for logs and the audit trail.
    fn name(&self) -> &str;

    fn check_registration(&self, _req: &RegistrationRequest<'_>) -> Decision {
        Ok(())
    }
    /// A sign-in at an upstream OpenID provider (assurance level, required claims).
    fn check_identity_login(&self, _req: &IdentityLoginRequest<'_>) -> Decision {
        Ok(())
    }
    /// Something only some kinds of account may do (patient confinement).
    fn check_account_action(&self, _req: &AccountActionRequest<'_>) -> Decision {
        Ok(())
    }
    fn check_create_room(&self, _req: &CreateRoomRequest<'_>) -> Decision {
        Ok(())
    }
    fn check_invite(&self, _req: &InviteRequest<'_>) -> Decision {
        Ok(())
    }
    fn check_knock(&self, _req: &KnockRequest<'_>) -> Decision {
        Ok(())
    }
    fn check_event(&self, _req: &EventRequest<'_>) -> Decision {
        Ok(())
    }
    /// The payload format of a push notification. Not a permission, so no `Decision`; the safe
    /// default keeps patient-identifiable text off third-party push infrastructure.
    fn push_format(&self, _req: &PushRequest<'_>) -> PushFormat {
        PushFormat::EventIdOnly
    }
    /// State the homeserver adds to a new room unless the request already sets that
    /// `(type, state key)` (e.g. `m.room.encryption`).
    fn room_defaults(&self, _req: &CreateRoomRequest<'_>) -> InitialState {
        Vec::new()
    }
    fn check_profile_update(&self, _req: &ProfileUpdate<'_>) -> Decision {
        Ok(())
    }
    /// An email address a user wants to prove (registration restricted to NHS domains).
    fn check_threepid(&self, _req: &ThreepidRequest<'_>) -> Decision {
        Ok(())
    }
    /// An upload about to be stored; an allowed upload may have to be transformed first
    /// (metadata stripped).
    fn check_media_upload(&self, _req: &MediaUploadRequest<'_>) -> UploadDecision {
        Ok(MediaTransform::Keep)
    }
    /// A download or thumbnail of local media by `req.user`.
    fn check_media_download(&self, _req: &MediaDownloadRequest<'_>) -> Decision {
        Ok(())
    }
    /// Whether this server may exchange anything with `req.server_name`. Asked before any work
    /// on an inbound request and before any connection for an outbound one.
    fn check_federation_peer(&self, _req: &FederationPeerRequest<'_>) -> Decision {
        Ok(())
    }
    /// How long a room's events are kept (the purge job asks once per room and run). The
    /// default clamps the room's `m.room.retention` into the server's bounds.
    fn retention_for_room(&self, req: &RetentionRequest<'_>) -> Retention {
        clamp_retention(req)
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

/// Handover's built-in defaults (`rooms.encrypt_by_default`), one layer of `Layers`: private
/// rooms start end-to-end encrypted, and no room's encryption can be removed or weakened once
/// set (rule `encryption_irreversible`); patient-context rooms cannot be knocked on (rule
/// `patient_room_not_knockable`). Every other hook keeps the trait's default.
#[derive(Debug, Default, Clone, Copy)]
pub struct Defaults {
    /// Add `m.room.encryption` (megolm) to private rooms created without one.
    pub encrypt: bool,
}

/// The rule id named when a client tries to remove or change a room's encryption.
pub const ENCRYPTION_IRREVERSIBLE: &str = "encryption_irreversible";

/// The rule id named when someone knocks on a patient-context room: who sees a patient's
/// conversation is decided by invitation alone, so not even a request to join is offered.
pub const RULE_PATIENT_ROOM_NOT_KNOCKABLE: &str = "patient_room_not_knockable";

impl Policy for Defaults {
    fn name(&self) -> &str {
        "handover-defaults"
    }
    fn check_knock(&self, req: &KnockRequest<'_>) -> Decision {
        if req.patient_context {
            return Err(Denial::new(
                RULE_PATIENT_ROOM_NOT_KNOCKABLE,
                "a patient-context room is joined by invitation only; it cannot be knocked on",
            ));
        }
        Ok(())
    }
    fn check_event(&self, req: &EventRequest<'_>) -> Decision {
        if req.event_type == "m.room.encryption"
            && let Some(prev) = req.prev_content
        {
            let algorithm = |raw: &serde_json::value::RawValue| {
                serde_json::from_str::<serde_json::Value>(raw.get())
                    .ok()
                    .and_then(|v| v["algorithm"].as_str().map(str::to_owned))
            };
            let before = algorithm(prev);
            if before.is_some() && algorithm(req.content) != before {
                return Err(Denial::new(
                    ENCRYPTION_IRREVERSIBLE,
                    "a room's encryption cannot be removed or changed once enabled",
                ));
            }
        }
        Ok(())
    }
    /// Megolm for a private room whose request sets no encryption (`Layers` lets an earlier
    /// layer's `m.room.encryption` win over this one).
    fn room_defaults(&self, req: &CreateRoomRequest<'_>) -> InitialState {
        let private = !req.is_public && req.preset != Some("public_chat");
        let already = req
            .initial_state
            .iter()
            .any(|(t, k)| t == "m.room.encryption" && k.is_empty());
        if self.encrypt && private && !already {
            vec![(
                "m.room.encryption".to_owned(),
                String::new(),
                serde_json::json!({ "algorithm": "m.megolm.v1.aes-sha2" }),
            )]
        } else {
            Vec::new()
        }
    }
}

/// The federation list, one layer of `Layers`: a peer must be on the list (rule
/// `federation_not_listed`). Without a list no server may federate (rule `federation_no_list`):
/// federating with anyone is not a mode Handover offers. Every other hook keeps the trait's
/// default.
#[derive(Debug, Clone)]
pub struct FederationGate {
    pub list: Option<LiveFederationList>,
}

impl Policy for FederationGate {
    fn name(&self) -> &str {
        "federation-gate"
    }
    fn check_federation_peer(&self, req: &FederationPeerRequest<'_>) -> Decision {
        match &self.list {
            None => Err(Denial::new(
                RULE_FEDERATION_NO_LIST,
                "no federation list is configured, so this server federates with no one",
            )),
            Some(list) => list.check(req),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patient_context_rooms_are_never_knockable() {
        let layers = Layers::new(vec![
            std::sync::Arc::new(AllowAll),
            std::sync::Arc::new(Defaults { encrypt: true }),
        ]);
        let req = |patient_context| KnockRequest {
            room_id: "!r:hs",
            user: "@u:hs",
            patient_context,
        };
        assert!(layers.check_knock(&req(false)).is_ok());
        let denial = layers.check_knock(&req(true)).unwrap_err();
        assert_eq!(denial.rule, RULE_PATIENT_ROOM_NOT_KNOCKABLE);
    }

    #[test]
    fn federation_gate_needs_a_list() {
        let req = FederationPeerRequest {
            server_name: "a.nhs.uk",
            direction: Direction::Outbound,
            purpose: "key_fetch",
        };
        let none = FederationGate { list: None };
        assert_eq!(
            none.check_federation_peer(&req).unwrap_err().rule,
            RULE_FEDERATION_NO_LIST
        );
        let doc = br#"{"serial":1,"organisations":[{"ods_code":"RRK","servers":["a.nhs.uk"]}]}"#;
        let gate = FederationGate {
            list: Some(LiveFederationList::load(doc, None, None).unwrap()),
        };
        assert!(gate.check_federation_peer(&req).is_ok());
        let other = FederationPeerRequest {
            server_name: "b.nhs.uk",
            ..req
        };
        assert_eq!(
            gate.check_federation_peer(&other).unwrap_err().rule,
            RULE_FEDERATION_NOT_LISTED
        );
    }

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

    /// What forwarding to an `inner` policy used to do by hand: beside the built-in layers,
    /// another layer's rules still apply, and each built-in layer answers only its own hooks.
    #[test]
    fn built_in_layers_answer_only_their_own_hooks() {
        use std::sync::Arc;
        let content = serde_json::value::RawValue::from_string("{}".into()).unwrap();
        let topic = EventRequest {
            room_id: "!r:x",
            sender: "@a:x",
            event_type: "m.room.topic",
            state_key: Some(""),
            content: &content,
            prev_content: None,
        };
        let peer = FederationPeerRequest {
            server_name: "a.nhs.uk",
            direction: Direction::Inbound,
            purpose: "test",
        };
        let defaults = Defaults { encrypt: true };
        let gate = FederationGate { list: None };
        assert!(defaults.check_event(&topic).is_ok());
        assert!(gate.check_event(&topic).is_ok());
        assert!(defaults.check_federation_peer(&peer).is_ok());
        let layers = Layers::new(vec![Arc::new(NoTopics), Arc::new(defaults), Arc::new(gate)]);
        assert_eq!(layers.name(), "no-topics+handover-defaults+federation-gate");
        assert_eq!(layers.check_event(&topic).unwrap_err().rule, "no_topics");
        assert_eq!(
            layers.check_federation_peer(&peer).unwrap_err().rule,
            RULE_FEDERATION_NO_LIST
        );
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
            prev_content: None,
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
            field: "displayname",
            value: Some("A"),
            by_admin: false,
        };
        assert!(NoTopics.check_profile_update(&profile).is_ok());
    }

    #[test]
    fn push_format_defaults_to_event_id_only() {
        let req = PushRequest {
            user_id: "@a:x",
            room_id: "!r:x",
            event_type: "m.room.message",
        };
        assert_eq!(AllowAll.push_format(&req), PushFormat::EventIdOnly);
    }

    #[test]
    fn defaults_encrypt_private_rooms_and_keep_encryption() {
        let keys = vec![];
        let mut req = CreateRoomRequest {
            creator: "@a:x",
            room_version: "12",
            preset: Some("private_chat"),
            is_public: false,
            initial_state: &keys,
        };
        let on = Defaults { encrypt: true };
        assert_eq!(on.room_defaults(&req)[0].0, "m.room.encryption");
        assert!(AllowAll.room_defaults(&req).is_empty());
        req.preset = Some("public_chat");
        assert!(on.room_defaults(&req).is_empty());

        let prev = serde_json::value::RawValue::from_string(
            r#"{"algorithm":"m.megolm.v1.aes-sha2"}"#.into(),
        )
        .unwrap();
        let empty = serde_json::value::RawValue::from_string("{}".into()).unwrap();
        let ev = EventRequest {
            room_id: "!r:x",
            sender: "@a:x",
            event_type: "m.room.encryption",
            state_key: Some(""),
            content: &empty,
            prev_content: Some(&prev),
        };
        assert_eq!(
            on.check_event(&ev).unwrap_err().rule,
            ENCRYPTION_IRREVERSIBLE
        );
        assert!(AllowAll.check_event(&ev).is_ok());
    }

    #[test]
    fn room_retention_content_is_read_leniently() {
        let r = parse_room_retention(r#"{"max_lifetime": 86400000, "min_lifetime": 1000}"#);
        assert_eq!(r.max_lifetime, Some(86_400_000));
        assert_eq!(r.min_lifetime, Some(1000));
        let odd = parse_room_retention(r#"{"max_lifetime": "1 day", "min_lifetime": -5}"#);
        assert_eq!((odd.max_lifetime, odd.min_lifetime), (None, None));
        assert_eq!(parse_room_retention("not json").max_lifetime, None);
    }

    #[test]
    fn retention_is_clamped_into_server_bounds() {
        const DAY: u64 = 86_400_000;
        let server = RetentionBounds {
            default_lifetime: Some(30 * DAY),
            min_lifetime: Some(DAY),
            max_lifetime: Some(365 * DAY),
        };
        let ask = |max: Option<u64>, min: Option<u64>| {
            AllowAll.retention_for_room(&RetentionRequest {
                room_id: "!r:x",
                server,
                room: Some(Retention {
                    max_lifetime: max,
                    min_lifetime: min,
                }),
            })
        };
        assert_eq!(ask(Some(1000), None).max_lifetime, Some(DAY));
        assert_eq!(ask(Some(10_000 * DAY), None).max_lifetime, Some(365 * DAY));
        assert_eq!(ask(Some(7 * DAY), None).max_lifetime, Some(7 * DAY));
        assert_eq!(ask(None, None).max_lifetime, Some(30 * DAY));
        assert_eq!(ask(Some(7 * DAY), Some(1)).min_lifetime, Some(DAY));
        // MSC1763: a minimum above the maximum raises the maximum (nothing goes early)...
        let crossed = ask(Some(7 * DAY), Some(30 * DAY));
        assert_eq!(crossed.min_lifetime, Some(30 * DAY));
        assert_eq!(crossed.max_lifetime, Some(30 * DAY));
        // ...but never past the server's maximum, which bounds the minimum too.
        let too_long = ask(Some(7 * DAY), Some(1000 * DAY));
        assert_eq!(too_long.min_lifetime, Some(365 * DAY));
        assert_eq!(too_long.max_lifetime, Some(365 * DAY));
        // A room without a minimum gets the server's.
        assert_eq!(ask(Some(7 * DAY), None).min_lifetime, Some(DAY));
        // A minimum alone keeps forever when nothing sets a maximum.
        let only_min = AllowAll.retention_for_room(&RetentionRequest {
            room_id: "!r:x",
            server: RetentionBounds::default(),
            room: Some(Retention {
                max_lifetime: None,
                min_lifetime: Some(DAY),
            }),
        });
        assert_eq!(only_min.max_lifetime, None);
        assert_eq!(only_min.min_lifetime, Some(DAY));
        let none = AllowAll.retention_for_room(&RetentionRequest {
            room_id: "!r:x",
            server: RetentionBounds::default(),
            room: None,
        });
        assert_eq!(none.max_lifetime, None);
    }
}
