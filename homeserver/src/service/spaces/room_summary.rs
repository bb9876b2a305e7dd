//! `GET /_matrix/client/v1/room_summary/{roomIdOrAlias}` (MSC3266, spec v1.15): a room's summary
//! for someone who is in it or could join or peek it. Anything else, including a room or alias
//! that does not exist, is the same 404, so the answer never reveals that a private room exists.
//!
//! A room this server does not know is asked of other servers (the `via` given, the alias's
//! servers, the room id's server) through their `/hierarchy`, for signed-in users only.

use std::collections::HashSet;

use ruma::api::error::ErrorKind;
use ruma::events::room::member::MembershipState;
use ruma::room::RoomSummary;
use ruma::{OwnedRoomId, OwnedServerName, RoomOrAliasId, UserId};

use super::summary::{open_to, open_to_all, summarize};
use super::{RemoteCache, SpaceService};
use crate::error::{Error, Result};

fn not_found() -> Error {
    Error::not_found("Room not found")
}

impl SpaceService {
    pub async fn room_summary(
        &self,
        requester: Option<&UserId>,
        target: &RoomOrAliasId,
        via: &[OwnedServerName],
    ) -> Result<(RoomSummary, Option<MembershipState>)> {
        let (room_id, mut servers): (OwnedRoomId, Vec<OwnedServerName>) =
            match <&ruma::RoomId>::try_from(target) {
                Ok(id) => (id.to_owned(), Vec::new()),
                Err(alias) => match self.query.resolve_alias(requester, alias).await {
                    Ok(t) => t,
                    Err(e) if e.kind() == Some(&ErrorKind::NotFound) => return Err(not_found()),
                    Err(e) => return Err(e),
                },
            };
        let joined: HashSet<OwnedRoomId> = match requester {
            Some(u) => self.rooms.joined_rooms(u).await?.into_iter().collect(),
            None => HashSet::new(),
        };
        if let Some(state) = self.local_state(&room_id).await? {
            let summary = summarize(&state);
            let membership = requester.and_then(|u| state.membership_of(u));
            let member = matches!(membership.as_deref(), Some("join" | "invite" | "knock"));
            let visible = member || open_to(&summary, &joined);
            return if visible {
                Ok((
                    summary,
                    membership.map(|m| MembershipState::from(m.as_str())),
                ))
            } else {
                Err(not_found())
            };
        }
        // Only signed-in users make this server ask another one.
        if requester.is_none() {
            return Err(not_found());
        }
        servers.splice(0..0, via.iter().cloned());
        if let Some(s) = room_id.server_name() {
            servers.push(s.to_owned());
        }
        let mut cache = RemoteCache::default();
        let node = self.fetch_remote(&room_id, &servers, &mut cache).await;
        match node {
            Some(n) if open_to(&n.summary, &joined) || open_to_all(&n.summary) => {
                Ok((n.summary, None))
            }
            _ => Err(not_found()),
        }
    }
}

#[cfg(test)]
mod tests {
    use ruma::{OwnedRoomOrAliasId, owned_room_alias_id};

    use super::*;
    use crate::service::test_services;
    use crate::service::test_util::{room, user};

    #[tokio::test]
    async fn summary_for_members_and_open_rooms_only() {
        let (s, _d) = test_services();
        let a = user(&s, "alice").await;
        let b = user(&s, "bob").await;
        let public = room(&s, &a, "Ward 7", true).await;
        let private = room(&s, &a, "Board", false).await;
        let target = |r: &OwnedRoomId| OwnedRoomOrAliasId::from(r.clone());

        let (sum, m) = s
            .spaces
            .room_summary(Some(&b), &target(&public), &[])
            .await
            .unwrap();
        assert_eq!(sum.name.as_deref(), Some("Ward 7"));
        assert_eq!(m, None);
        // Anonymous: open rooms only.
        s.spaces
            .room_summary(None, &target(&public), &[])
            .await
            .unwrap();
        let err = s
            .spaces
            .room_summary(None, &target(&private), &[])
            .await
            .unwrap_err();
        assert!(matches!(err.kind(), Some(ErrorKind::NotFound)));

        // Private, unknown room and unknown alias: the same 404.
        let unknown: OwnedRoomId = "!nope:localhost".parse().unwrap();
        let alias: OwnedRoomOrAliasId = owned_room_alias_id!("#nope:localhost").into();
        for t in [target(&private), target(&unknown), alias] {
            let err = s.spaces.room_summary(Some(&b), &t, &[]).await.unwrap_err();
            assert!(matches!(err.kind(), Some(ErrorKind::NotFound)), "{t}");
            assert_eq!(err.to_string(), not_found().to_string(), "{t}");
        }

        s.rooms.invite(&private, &a, &b, None, false).await.unwrap();
        let (_, m) = s
            .spaces
            .room_summary(Some(&b), &target(&private), &[])
            .await
            .unwrap();
        assert_eq!(m, Some(MembershipState::Invite));
        let (_, m) = s
            .spaces
            .room_summary(Some(&a), &target(&private), &[])
            .await
            .unwrap();
        assert_eq!(m, Some(MembershipState::Join));
    }
}
