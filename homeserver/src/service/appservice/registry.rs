//! The registered appservices, looked up by token, id and namespace. Built once at start-up
//! (before the services that consult it: users, registration, rate limits, rooms).

use std::collections::HashMap;
use std::sync::Arc;

use ruma::{RoomAliasId, UserId};

use super::registration::{Appservice, Claim};
use crate::service::users::constant_time_eq;
use crate::store::deliveries::DeliveryQueue;

#[derive(Default)]
pub struct Registry {
    list: Vec<Arc<Appservice>>,
    by_id: HashMap<String, usize>,
    /// One per appservice: its sender worker waits on it for newly queued events.
    wakers: Vec<Arc<tokio::sync::Notify>>,
}

impl Registry {
    pub fn new(list: Vec<Appservice>) -> Self {
        let list: Vec<Arc<Appservice>> = list.into_iter().map(Arc::new).collect();
        let by_id = list
            .iter()
            .enumerate()
            .map(|(i, a)| (a.id().to_owned(), i))
            .collect();
        let wakers = list.iter().map(|_| Arc::default()).collect();
        Self {
            list,
            by_id,
            wakers,
        }
    }

    /// Tells the workers of these queues' appservices that events were queued (call after
    /// the commit; other queues are ignored).
    pub fn wake(&self, queues: &[DeliveryQueue]) {
        for q in queues {
            if let DeliveryQueue::Appservice(id) = q {
                self.wake_id(id);
            }
        }
    }

    /// Wakes the worker of appservice `id` (ephemeral events to send).
    pub fn wake_id(&self, id: &str) {
        if let Some(&i) = self.by_id.get(id) {
            self.wakers[i].notify_one();
        }
    }

    /// What the worker of `id` waits on.
    pub fn waker(&self, id: &str) -> Option<Arc<tokio::sync::Notify>> {
        self.by_id.get(id).map(|&i| self.wakers[i].clone())
    }

    pub fn all(&self) -> &[Arc<Appservice>] {
        &self.list
    }

    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    pub fn by_id(&self, id: &str) -> Option<&Arc<Appservice>> {
        self.by_id.get(id).map(|&i| &self.list[i])
    }

    /// The appservice whose `as_token` this is. Compared in constant time: the list is short
    /// and a timing difference must not reveal a token's prefix.
    pub fn by_as_token(&self, token: &str) -> Option<&Arc<Appservice>> {
        let mut found = None;
        for a in &self.list {
            if constant_time_eq(a.registration.as_token.as_bytes(), token.as_bytes()) {
                found = Some(a);
            }
        }
        found
    }

    /// The appservice holding `user` in an exclusive namespace, other than `except`.
    pub fn exclusive_user_owner(
        &self,
        user: &UserId,
        except: Option<&str>,
    ) -> Option<&Arc<Appservice>> {
        self.list
            .iter()
            .filter(|a| Some(a.id()) != except)
            .find(|a| a.user_claim(user) == Claim::Exclusive || a.sender == user)
    }

    /// The appservice holding `alias` in an exclusive namespace, other than `except`.
    pub fn exclusive_alias_owner(
        &self,
        alias: &RoomAliasId,
        except: Option<&str>,
    ) -> Option<&Arc<Appservice>> {
        self.list
            .iter()
            .filter(|a| Some(a.id()) != except)
            .find(|a| a.alias_claim(alias) == Claim::Exclusive)
    }

    /// Users of an appservice registered with `rate_limited: false` skip the per-user limits.
    pub fn rate_limit_exempt(&self, user: &str) -> bool {
        let Ok(user) = <&UserId>::try_from(user) else {
            return false;
        };
        self.list
            .iter()
            .any(|a| !a.rate_limited() && a.controls_user(user))
    }
}

/// What an appservice's interest in a room event is judged on.
pub struct EventFacts<'a> {
    pub room_id: &'a ruma::RoomId,
    pub sender: &'a UserId,
    /// The target of a membership event.
    pub member_target: Option<&'a UserId>,
    /// Joined members of the room (before the event).
    pub members: Vec<&'a UserId>,
    /// The room's published aliases (`m.room.canonical_alias`: alias and alt_aliases).
    pub aliases: Vec<&'a RoomAliasId>,
}

impl Registry {
    /// The appservices interested in an event (spec: the sender, a member or a membership
    /// target in its user namespaces, the room id in its room namespaces or one of the room's
    /// aliases in its alias namespaces), in registration order. Appservices without a URL
    /// receive nothing and are left out.
    pub fn interested(&self, facts: &EventFacts<'_>) -> Vec<String> {
        self.list
            .iter()
            .filter(|a| a.url().is_some())
            .filter(|a| {
                a.interested_in_user(facts.sender)
                    || facts.member_target.is_some_and(|t| a.interested_in_user(t))
                    || a.room_claim(facts.room_id) != Claim::None
                    || facts
                        .aliases
                        .iter()
                        .any(|al| a.alias_claim(al) != Claim::None)
                    || facts.members.iter().any(|m| a.interested_in_user(m))
            })
            .map(|a| a.id().to_owned())
            .collect()
    }
}

/// The facts about `pdu` in a room with `state`: its joined members and published aliases
/// (`m.room.canonical_alias`: alias and alt_aliases), and a member event's target.
pub fn facts_of<'a>(
    state: &'a crate::service::room_state::RoomState,
    pdu: &'a crate::service::room_state::pdu::Pdu,
) -> EventFacts<'a> {
    use ruma::events::{StateEventType, TimelineEventType};
    let member_target = pdu
        .state_key
        .as_deref()
        .filter(|_| pdu.kind == TimelineEventType::RoomMember)
        .and_then(|k| <&UserId>::try_from(k).ok());
    let members = state
        .state
        .iter()
        .filter(|((kind, _), _)| *kind == StateEventType::RoomMember)
        .filter(|(_, p)| {
            p.content_as::<serde_json::Value>()
                .is_some_and(|c| c["membership"] == "join")
        })
        .filter_map(|((_, key), _)| <&UserId>::try_from(key.as_str()).ok())
        .collect();
    let aliases = state
        .get(&StateEventType::RoomCanonicalAlias, "")
        .map(|p| aliases_in(p.content.get()))
        .unwrap_or_default();
    EventFacts {
        room_id: &pdu.room_id,
        sender: &pdu.sender,
        member_target,
        members,
        aliases,
    }
}

/// The aliases named in an `m.room.canonical_alias` content, borrowed from its JSON.
fn aliases_in(content: &str) -> Vec<&RoomAliasId> {
    #[derive(serde::Deserialize)]
    struct Content<'a> {
        #[serde(borrow, default)]
        alias: Option<&'a str>,
        #[serde(borrow, default)]
        alt_aliases: Vec<&'a str>,
    }
    let Ok(c) = serde_json::from_str::<Content<'_>>(content) else {
        return vec![];
    };
    c.alias
        .into_iter()
        .chain(c.alt_aliases)
        .filter_map(|a| <&RoomAliasId>::try_from(a).ok())
        .collect()
}

/// 400 `M_EXCLUSIVE`: an id reserved by an appservice (asked by rooms and registration).
pub fn exclusive(message: String) -> crate::error::Error {
    use ruma::api::error::ErrorKind;
    crate::error::Error::new(http::StatusCode::BAD_REQUEST, ErrorKind::Exclusive, message)
}
