//! createRoom: the initial events (create, creator join, power levels, alias, preset rules,
//! initial_state, name, topic, local invites), each built and authorised in turn on an in-memory
//! state and staged with the commit pipeline, then stored in one transaction so a crash never
//! leaves half a room, then handed to the pipeline's subscribers in order. Users on other
//! servers are invited once the room exists, through the same path as `/invite`.
//!
//! Room ids of v12 rooms are the create event's hash, so two identical create events (same
//! creator, same content, same millisecond) would name the same room. The create events we build
//! take their `origin_server_ts` from [`CreateStamps`] (never the same twice in this process), and
//! a room id that exists anyway (another process, a clock stepped back) is refused by the store
//! and the room rebuilt with the next stamp: docs/ARCHITECTURE.md, "Room ids".

mod initial;
mod patient;

use std::sync::atomic::{AtomicU64, Ordering};

use handover_compliance::Outcome;
use handover_policy::{CreateRoomRequest, Direction, FederationPeerRequest, InviteRequest};
use http::StatusCode;
use ruma::api::error::ErrorKind;
use ruma::room_version_rules::RoomIdFormatVersion;
use ruma::{
    MilliSecondsSinceUnixEpoch, OwnedRoomAliasId, OwnedRoomId, OwnedServerName, OwnedUserId,
    RoomId, RoomVersionId, UInt, UserId,
};
use serde_json::Value;

pub use self::patient::is_patient_context;
pub(in crate::service::rooms) use self::patient::is_patient_room;
use super::state::RoomState;
use super::timeline::append::new_event;
use super::timeline::build::{EventSpec, build_event};
use super::{RoomService, SUPPORTED_ROOM_VERSIONS};
use crate::error::{Error, Result};
use crate::service::audit::{action, entry};
use crate::service::blocking;
use crate::service::commit::{CommitOrigin, Staged, StagedEvent};
use crate::store::StoreError;
use crate::store::rooms::{NewEvent, NewRoom};

/// How many times a room whose id exists already is rebuilt with a new timestamp.
const CREATE_ATTEMPTS: usize = 5;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Preset {
    PrivateChat,
    TrustedPrivateChat,
    PublicChat,
}

#[derive(Debug, Clone)]
pub struct CreateRoomParams {
    pub version: Option<RoomVersionId>,
    pub preset: Option<Preset>,
    pub is_public: bool,
    pub name: Option<String>,
    pub topic: Option<String>,
    pub alias_localpart: Option<String>,
    pub invite: Vec<OwnedUserId>,
    pub is_direct: bool,
    /// `(type, state_key, content)` from the request's initial_state.
    pub initial_state: Vec<(String, String, Value)>,
    pub creation_content: Option<serde_json::Map<String, Value>>,
    pub power_level_override: Option<serde_json::Map<String, Value>>,
}

impl Preset {
    fn as_str(self) -> &'static str {
        match self {
            Preset::PrivateChat => "private_chat",
            Preset::TrustedPrivateChat => "trusted_private_chat",
            Preset::PublicChat => "public_chat",
        }
    }
}

/// Timestamps for the create events this process builds: the clock, but strictly increasing, so
/// no two of our create events are identical (and no two v12 rooms get one id).
#[derive(Debug, Default)]
pub struct CreateStamps(AtomicU64);

impl CreateStamps {
    pub fn next(&self) -> MilliSecondsSinceUnixEpoch {
        let now = u64::from(MilliSecondsSinceUnixEpoch::now().get());
        let prev = self
            .0
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |last| {
                Some(now.max(last + 1))
            })
            .unwrap_or_else(|v| v);
        let ts = now.max(prev + 1);
        MilliSecondsSinceUnixEpoch(UInt::new_saturating(ts))
    }
}

/// A room built in memory, ready to store.
struct BuiltRoom {
    room_id: OwnedRoomId,
    state: RoomState,
    events: Vec<NewEvent>,
    /// Per event, staged with the commit pipeline: the room's state after it and the servers
    /// before it.
    commits: Vec<InitialCommit>,
}

struct InitialCommit {
    staged: Staged,
    state: RoomState,
    servers_before: Vec<OwnedServerName>,
}

impl RoomService {
    pub async fn create_room(
        &self,
        creator: &UserId,
        mut p: CreateRoomParams,
    ) -> Result<OwnedRoomId> {
        self.users.ensure_not_suspended(creator)?;
        self.users
            .check_account_action(creator, handover_policy::AccountAction::CreateRoom, None)
            .await?;
        if is_patient_context(&p) {
            self.patient_context(creator, &mut p).await?;
        }
        let version = p.version.clone().unwrap_or(super::DEFAULT_ROOM_VERSION);
        if !SUPPORTED_ROOM_VERSIONS.contains(&version) {
            return Err(Error::new(
                StatusCode::BAD_REQUEST,
                ErrorKind::UnsupportedRoomVersion,
                format!("Room version {version} is not supported"),
            ));
        }
        let preset = p.preset.unwrap_or(if p.is_public {
            Preset::PublicChat
        } else {
            Preset::PrivateChat
        });
        let alias = match &p.alias_localpart {
            Some(local) => {
                let alias = self.check_new_alias(local).await?;
                self.check_alias_exclusive(&alias, creator)?;
                Some(alias)
            }
            None => None,
        };
        // Every invitee passes the invite rules before anything is created, so a refusal the
        // server can know of (policy, federation list, the invitee's own config) creates no room.
        for invitee in &p.invite {
            self.check_create_invitee(creator, invitee).await?;
        }
        let mut specs = self
            .initial_events(creator, &version, preset, &p, alias.as_ref())
            .await?;

        let state_keys = |specs: &[EventSpec]| -> Vec<(String, String)> {
            specs
                .iter()
                .filter_map(|s| s.state_key.clone().map(|k| (s.kind.to_string(), k)))
                .collect()
        };
        let keys = state_keys(&specs);
        let request = |keys| CreateRoomRequest {
            creator: creator.as_str(),
            room_version: version.as_str(),
            preset: Some(preset.as_str()),
            is_public: p.is_public,
            initial_state: keys,
        };
        // Policy defaults (e.g. encryption for private rooms) go before the invites, so
        // invitees see them in the invite's stripped state.
        let defaults = self.policy.room_defaults(&request(&keys));
        let at = specs
            .iter()
            .position(|s| {
                s.kind.to_string() == "m.room.member"
                    && s.state_key.as_deref() != Some(creator.as_str())
            })
            .unwrap_or(specs.len());
        for (i, (kind, key, content)) in defaults.into_iter().enumerate() {
            if !keys.iter().any(|(t, k)| *t == kind && *k == key) {
                specs.insert(at + i, EventSpec::state(kind.as_str().into(), key, content));
            }
        }
        let keys = state_keys(&specs);
        let decision = self.policy.check_create_room(&request(&keys));
        (self.audit)
            .enforce(decision, "check_create_room", creator.as_str(), None)
            .await?;
        // Initial state (name, topic, aliases, members...) is as visible as any later event, so
        // every one passes `check_event` too, before anything is built or stored.
        for spec in &specs {
            self.check_event_policy("", creator, spec, None).await?;
        }

        let (room_id, state, commits) = self
            .store_new_room(creator, &version, &mut specs, p.is_public)
            .await?;
        if let Some(alias) = alias {
            let store = self.store.clone();
            let (a, r, c) = (alias.to_string(), room_id.to_string(), creator.to_string());
            blocking(move || Ok(store.set_alias(&a, &r, &c)?)).await?;
        }
        self.versions
            .lock()
            .expect("versions lock")
            .insert(room_id.clone(), version.clone());
        let slot = self.slot(&room_id);
        let mut guard = slot.lock().await;
        *guard = Some(state);
        // Every initial event through the commit pipeline, in order, like any later event.
        let tails: Vec<_> = commits
            .into_iter()
            .map(|(c, pos)| {
                self.pipeline
                    .committed(c.staged, pos, &c.state, c.servers_before)
            })
            .collect();
        drop(guard);
        for tail in tails {
            tail.finish().await;
        }
        tracing::info!(room_id = %room_id, creator = %creator, "room created");
        let e = entry(creator.as_str(), action::ROOM_CREATE, Outcome::Success)
            .target(room_id.as_str())
            .detail("room_version", version.as_str())
            .detail("preset", preset.as_str())
            .detail("is_public", p.is_public);
        self.audit.record(e).await?;
        for invitee in &p.invite {
            if invitee.server_name() == self.server_name {
                let e = entry(creator.as_str(), action::ROOM_INVITE, Outcome::Success);
                self.audit
                    .record(
                        e.target(invitee.as_str())
                            .detail("room_id", room_id.as_str()),
                    )
                    .await?;
            } else {
                self.invite_after_create(&room_id, creator, invitee, p.is_direct)
                    .await;
            }
        }
        Ok(room_id)
    }

    /// The invite rules for one of createRoom's invitees, before the room exists: the policy's
    /// `check_invite` (e.g. `invite_outside_organisation`), the federation list for a remote
    /// invitee's server, the invitee's own invite permission config for a local one. Each
    /// refusal is audited and names its rule.
    async fn check_create_invitee(&self, creator: &UserId, invitee: &UserId) -> Result<()> {
        let decision = self.policy.check_invite(&InviteRequest {
            // The room does not exist yet.
            room_id: "",
            inviter: creator.as_str(),
            invitee: invitee.as_str(),
        });
        (self.audit)
            .enforce(
                decision,
                "check_invite",
                creator.as_str(),
                Some(invitee.as_str()),
            )
            .await?;
        if invitee.server_name() == self.server_name {
            return self.check_invite_permission(creator, invitee).await;
        }
        let decision = self.policy.check_federation_peer(&FederationPeerRequest {
            server_name: invitee.server_name().as_str(),
            direction: Direction::Outbound,
            purpose: "invite",
        });
        (self.audit)
            .enforce(
                decision,
                "check_federation_peer",
                creator.as_str(),
                Some(invitee.as_str()),
            )
            .await
    }

    /// Invites a remote user to a room just created, through `/invite`'s path (the federation
    /// invite to their server, its countersigned event stored). A failure here (the server is
    /// unreachable or refuses) leaves the room as it is: the creator is answered with the room,
    /// whose member list shows the invitee was not invited; the failure is logged and audited.
    async fn invite_after_create(
        &self,
        room_id: &RoomId,
        creator: &UserId,
        invitee: &UserId,
        is_direct: bool,
    ) {
        let Err(e) = self
            .invite(room_id, creator, invitee, None, is_direct)
            .await
        else {
            return;
        };
        tracing::warn!(
            room_id = %room_id,
            invitee = %invitee,
            error = %e,
            "createRoom: the invite of a remote user failed; the room was created without it"
        );
        let e = entry(creator.as_str(), action::ROOM_INVITE, Outcome::Failure)
            .target(invitee.as_str())
            .detail("room_id", room_id.as_str())
            .detail("error", e.to_string());
        // A failed write is logged inside; what it records already happened.
        let _ = self.audit.record(e).await;
    }

    /// Builds the room's events on an in-memory state and stores them in one transaction. A room
    /// id that exists already is never overwritten: the room is rebuilt with a new create
    /// timestamp (v12: a new id; v10/v11: a new random id).
    async fn store_new_room(
        &self,
        creator: &UserId,
        version: &RoomVersionId,
        specs: &mut [EventSpec],
        is_public: bool,
    ) -> Result<(OwnedRoomId, RoomState, Vec<(InitialCommit, i64)>)> {
        for attempt in 1..=CREATE_ATTEMPTS {
            specs[0].origin_server_ts = Some(self.create_stamps.next());
            let BuiltRoom {
                room_id,
                state,
                events,
                commits,
            } = self.build_room(creator, version, specs)?;
            let store = self.store.clone();
            let room = NewRoom {
                room_id: room_id.clone(),
                version: version.to_string(),
                creator: creator.to_owned(),
                is_public,
            };
            match blocking(move || Ok(store.create_room(room, events))).await? {
                Ok(positions) => {
                    return Ok((room_id, state, commits.into_iter().zip(positions).collect()));
                }
                Err(StoreError::Conflict(what)) => {
                    tracing::warn!(
                        room_id = %room_id,
                        attempt,
                        what,
                        "createRoom: the new room's id or event id exists already; rebuilding"
                    );
                }
                Err(e) => return Err(e.into()),
            }
        }
        Err(Error::new(
            StatusCode::SERVICE_UNAVAILABLE,
            ErrorKind::Unknown,
            "Could not allocate a unique room id; try again",
        ))
    }

    /// Every initial event built and authorised in turn; the room id comes from the create
    /// event (v12) or is random with our server name (v10, v11).
    fn build_room(
        &self,
        creator: &UserId,
        version: &RoomVersionId,
        specs: &[EventSpec],
    ) -> Result<BuiltRoom> {
        let rules = super::state::rules_for(version)?;
        let mut room_id: Option<OwnedRoomId> = match rules.room_id_format {
            RoomIdFormatVersion::V1 => Some(RoomId::new_v1(&self.server_name)),
            _ => None,
        };
        let placeholder: OwnedRoomId = RoomId::new_v1(&self.server_name);
        let mut state = RoomState::new(room_id.clone().unwrap_or(placeholder), version.clone())?;
        let mut events = Vec::with_capacity(specs.len());
        let mut commits = Vec::with_capacity(specs.len());
        for spec in specs {
            let built = build_event(
                &state,
                room_id.as_deref(),
                creator,
                spec,
                &self.keys,
                self.server_name.as_str(),
            )?;
            if room_id.is_none() {
                room_id = Some(built.pdu.room_id.clone());
                state.room_id = built.pdu.room_id.clone();
            }
            let staged = self.pipeline.stage(StagedEvent {
                pdu: built.pdu.clone(),
                json: built.json.clone(),
                origin: CommitOrigin::Local,
            });
            let mut new = new_event(&state, &built, creator, None)?;
            new.deliveries = self.with_appservices(staged.deliveries(), &state, &built.pdu);
            events.push(new);
            let servers_before = state.joined_servers();
            state.advance(built.pdu.clone());
            commits.push(InitialCommit {
                staged,
                state: state.clone(),
                servers_before,
            });
        }
        Ok(BuiltRoom {
            room_id: room_id.expect("set by the create event"),
            state,
            events,
            commits,
        })
    }

    async fn check_new_alias(&self, localpart: &str) -> Result<OwnedRoomAliasId> {
        let alias = ruma::RoomAliasId::parse(format!("#{localpart}:{}", self.server_name))
            .map_err(|e| {
                Error::new(
                    StatusCode::BAD_REQUEST,
                    ErrorKind::InvalidParam,
                    format!("Invalid alias: {e}"),
                )
            })?;
        let store = self.store.clone();
        let a = alias.to_string();
        if blocking(move || Ok(store.get_alias(&a)?)).await?.is_some() {
            return Err(Error::new(
                StatusCode::BAD_REQUEST,
                ErrorKind::RoomInUse,
                "Room alias already taken",
            ));
        }
        Ok(alias)
    }
}

#[cfg(test)]
mod tests;
