//! `Layers`: several rule sets consulted together at every hook point.
//!
//! Why: rule sets used to wrap one another (`Defaults { inner: ... }`), and a wrapper that did not
//! forward a hook added later silently answered with the trait's allow-all default, which once
//! let the federation list be bypassed. `Layers` is the one place that must know every hook:
//! each layer is asked, the first denial wins, transformations and defaults combine, and the
//! `every_hook_reaches_every_layer` test below fails if a hook is not forwarded.

use std::sync::Arc;

use crate::media::{MediaDownloadRequest, MediaTransform, MediaUploadRequest, UploadDecision};
use crate::{
    AccountActionRequest, CreateRoomRequest, Decision, EventRequest, FederationPeerRequest,
    IdentityLoginRequest, InitialState, InviteRequest, KnockRequest, Policy, ProfileUpdate,
    PushFormat, PushRequest, RegistrationRequest, ThreepidRequest,
};
use crate::{Retention, RetentionRequest};

pub struct Layers {
    name: String,
    layers: Vec<Arc<dyn Policy>>,
}

impl Layers {
    pub fn new(layers: Vec<Arc<dyn Policy>>) -> Self {
        let name = layers
            .iter()
            .map(|l| l.name())
            .collect::<Vec<_>>()
            .join("+");
        Self { name, layers }
    }

    fn all(&self, f: impl Fn(&dyn Policy) -> Decision) -> Decision {
        self.layers.iter().try_for_each(|l| f(l.as_ref()))
    }
}

impl Policy for Layers {
    fn name(&self) -> &str {
        &self.name
    }
    fn check_registration(&self, req: &RegistrationRequest<'_>) -> Decision {
        self.all(|l| l.check_registration(req))
    }
    fn check_identity_login(&self, req: &IdentityLoginRequest<'_>) -> Decision {
        self.all(|l| l.check_identity_login(req))
    }
    fn check_account_action(&self, req: &AccountActionRequest<'_>) -> Decision {
        self.all(|l| l.check_account_action(req))
    }
    fn check_create_room(&self, req: &CreateRoomRequest<'_>) -> Decision {
        self.all(|l| l.check_create_room(req))
    }
    fn check_invite(&self, req: &InviteRequest<'_>) -> Decision {
        self.all(|l| l.check_invite(req))
    }
    fn check_knock(&self, req: &KnockRequest<'_>) -> Decision {
        self.all(|l| l.check_knock(req))
    }
    fn check_event(&self, req: &EventRequest<'_>) -> Decision {
        self.all(|l| l.check_event(req))
    }
    fn check_profile_update(&self, req: &ProfileUpdate<'_>) -> Decision {
        self.all(|l| l.check_profile_update(req))
    }
    fn check_threepid(&self, req: &ThreepidRequest<'_>) -> Decision {
        self.all(|l| l.check_threepid(req))
    }
    fn check_media_download(&self, req: &MediaDownloadRequest<'_>) -> Decision {
        self.all(|l| l.check_media_download(req))
    }
    fn check_federation_peer(&self, req: &FederationPeerRequest<'_>) -> Decision {
        self.all(|l| l.check_federation_peer(req))
    }
    /// Any layer may refuse; if any layer asks to strip metadata, it is stripped.
    fn check_media_upload(&self, req: &MediaUploadRequest<'_>) -> UploadDecision {
        let mut out = MediaTransform::Keep;
        for l in &self.layers {
            if let MediaTransform::StripMetadata = l.check_media_upload(req)? {
                out = MediaTransform::StripMetadata;
            }
        }
        Ok(out)
    }
    /// The most private format any layer asks for.
    fn push_format(&self, req: &PushRequest<'_>) -> PushFormat {
        if self
            .layers
            .iter()
            .any(|l| l.push_format(req) == PushFormat::EventIdOnly)
        {
            PushFormat::EventIdOnly
        } else {
            PushFormat::Full
        }
    }
    /// A lifetime every layer accepts: the shortest maximum any layer sets, and the longest
    /// minimum (which wins if the two cross: nothing is deleted before a layer allows it).
    fn retention_for_room(&self, req: &RetentionRequest<'_>) -> Retention {
        let answers: Vec<Retention> = self
            .layers
            .iter()
            .map(|l| l.retention_for_room(req))
            .collect();
        let min = answers.iter().filter_map(|r| r.min_lifetime).max();
        let max = answers
            .iter()
            .filter_map(|r| r.max_lifetime)
            .min()
            .map(|m| min.map_or(m, |n| m.max(n)));
        Retention {
            max_lifetime: max,
            min_lifetime: min,
        }
    }
    /// Every layer's defaults; the first layer to set a `(type, state key)` wins.
    fn room_defaults(&self, req: &CreateRoomRequest<'_>) -> InitialState {
        let mut out: InitialState = Vec::new();
        for l in &self.layers {
            for (t, k, c) in l.room_defaults(req) {
                if !out.iter().any(|(t2, k2, _)| *t2 == t && *k2 == k) {
                    out.push((t, k, c));
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;
    use crate::{AllowAll, Denial};

    /// Denies every hook and counts how often it is asked.
    #[derive(Default)]
    struct DenyAll(AtomicUsize);

    impl DenyAll {
        fn no(&self) -> Decision {
            self.0.fetch_add(1, Ordering::SeqCst);
            Err(Denial::new("deny_all", "test"))
        }
    }

    impl Policy for DenyAll {
        fn name(&self) -> &str {
            "deny-all"
        }
        fn check_registration(&self, _: &RegistrationRequest<'_>) -> Decision {
            self.no()
        }
        fn check_create_room(&self, _: &CreateRoomRequest<'_>) -> Decision {
            self.no()
        }
        fn check_identity_login(&self, _: &IdentityLoginRequest<'_>) -> Decision {
            self.no()
        }
        fn check_account_action(&self, _: &AccountActionRequest<'_>) -> Decision {
            self.no()
        }
        fn check_invite(&self, _: &InviteRequest<'_>) -> Decision {
            self.no()
        }
        fn check_event(&self, _: &EventRequest<'_>) -> Decision {
            self.no()
        }
        fn check_profile_update(&self, _: &ProfileUpdate<'_>) -> Decision {
            self.no()
        }
        fn check_threepid(&self, _: &ThreepidRequest<'_>) -> Decision {
            self.no()
        }
        fn check_media_upload(&self, _: &MediaUploadRequest<'_>) -> UploadDecision {
            self.no().map(|_| MediaTransform::Keep)
        }
        fn check_media_download(&self, _: &MediaDownloadRequest<'_>) -> Decision {
            self.no()
        }
        fn check_federation_peer(&self, _: &FederationPeerRequest<'_>) -> Decision {
            self.no()
        }
    }

    #[test]
    fn every_hook_reaches_every_layer() {
        let deny = Arc::new(DenyAll::default());
        let layers = Layers::new(vec![Arc::new(AllowAll), deny.clone()]);
        let raw = serde_json::value::RawValue::from_string("{}".into()).unwrap();
        let keys = vec![];
        let room = CreateRoomRequest {
            creator: "@a:x",
            room_version: "12",
            preset: None,
            is_public: false,
            initial_state: &keys,
        };
        assert!(
            layers
                .check_registration(&RegistrationRequest {
                    localpart: "a",
                    server_name: "x",
                    by_admin: false
                })
                .is_err()
        );
        assert!(layers.check_create_room(&room).is_err());
        assert!(
            layers
                .check_invite(&InviteRequest {
                    room_id: "!r:x",
                    inviter: "@a:x",
                    invitee: "@b:x"
                })
                .is_err()
        );
        let ev = EventRequest {
            room_id: "!r:x",
            sender: "@a:x",
            event_type: "m.room.message",
            state_key: None,
            content: &raw,
            prev_content: None,
        };
        assert!(layers.check_event(&ev).is_err());
        assert!(
            layers
                .check_profile_update(&ProfileUpdate {
                    user_id: "@a:x",
                    field: "displayname",
                    value: None,
                    by_admin: false
                })
                .is_err()
        );
        let up = MediaUploadRequest {
            uploader: "@a:x",
            content_type: "image/png",
            head: &[],
            size: 1,
        };
        assert!(layers.check_media_upload(&up).is_err());
        let down = MediaDownloadRequest {
            user: "@a:x",
            uploader: "@b:x",
            content_type: "image/png",
            bound_room: None,
            member_of_bound_room: false,
            shares_room_with_uploader: false,
        };
        assert!(layers.check_media_download(&down).is_err());
        let peer = FederationPeerRequest {
            server_name: "a.nhs.uk",
            direction: crate::Direction::Inbound,
            purpose: "test",
        };
        assert!(layers.check_federation_peer(&peer).is_err());
        let email = ThreepidRequest {
            medium: "email",
            address: "a@nhs.net",
            user_id: None,
        };
        assert!(layers.check_threepid(&email).is_err());
        let idp = IdentityLoginRequest {
            provider: "cis2",
            subject: "s",
            acr: None,
            claims: &serde_json::Map::new(),
        };
        assert!(layers.check_identity_login(&idp).is_err());
        let act = AccountActionRequest {
            user_id: "@a:x",
            kind: crate::AccountKind::Staff,
            action: crate::AccountAction::CreateRoom,
        };
        assert!(layers.check_account_action(&act).is_err());
        // Every check hook above reached the denying layer.
        assert_eq!(deny.0.load(Ordering::SeqCst), 11);
    }

    struct Keep(Option<u64>, Option<u64>);
    impl Policy for Keep {
        fn name(&self) -> &str {
            "keep"
        }
        fn retention_for_room(&self, _: &RetentionRequest<'_>) -> Retention {
            Retention {
                max_lifetime: self.0,
                min_lifetime: self.1,
            }
        }
    }

    #[test]
    fn retention_takes_what_every_layer_accepts() {
        let req = RetentionRequest {
            room_id: "!r:x",
            server: Default::default(),
            room: None,
        };
        let l = Layers::new(vec![
            Arc::new(Keep(Some(30), None)),
            Arc::new(Keep(Some(10), Some(5))),
        ]);
        assert_eq!(
            l.retention_for_room(&req),
            Retention {
                max_lifetime: Some(10),
                min_lifetime: Some(5)
            }
        );
        let crossing = Layers::new(vec![
            Arc::new(Keep(Some(10), None)),
            Arc::new(Keep(None, Some(20))),
        ]);
        assert_eq!(crossing.retention_for_room(&req).max_lifetime, Some(20));
        let forever = Layers::new(vec![Arc::new(Keep(None, None))]);
        assert_eq!(forever.retention_for_room(&req).max_lifetime, None);
    }
}
