//! Room aliases: `GET /_matrix/federation/v1/query/directory` (inbound, our aliases) and
//! `GET /_matrix/client/v3/directory/room/{alias}` for another server's alias (outbound, cached).

use ruma::api::federation::query::get_room_information;
use ruma::{OwnedServerName, RoomAliasId, RoomId, UserId};

use super::{AliasTarget, QueryService};
use crate::error::{Error, Result};
use crate::service::federation::client::{FederationError, Sign};
use crate::service::federation::client_error::to_client_error;

/// Most servers passed on from a remote answer (they are join candidates, tried in turn).
const MAX_SERVERS: usize = 50;

fn not_found() -> Error {
    Error::not_found("Room alias not found")
}

impl QueryService {
    /// Any alias: ours from the store, another server's by asking that server (cached) for a
    /// signed-in `requester`.
    pub async fn resolve_alias(
        &self,
        requester: Option<&UserId>,
        alias: &RoomAliasId,
    ) -> Result<AliasTarget> {
        if alias.server_name() == self.server_name {
            let room_id = match self.rooms.resolve_alias(alias).await {
                // An alias in an appservice's namespace may be created by it when asked.
                Err(e) if e.is_not_found() && self.appservices.query_alias(alias).await => {
                    self.rooms.resolve_alias(alias).await?
                }
                other => other?,
            };
            let servers = self.servers_in(&room_id).await;
            return Ok((room_id, servers));
        }
        if requester.is_none() {
            return Err(super::sign_in_required("room aliases"));
        }
        let key = alias.to_owned();
        if let Some(hit) = self.aliases.get(&key) {
            return hit.ok_or_else(not_found);
        }
        let res = self
            .client
            .send(
                alias.server_name(),
                get_room_information::v1::Request::new(key.clone()),
                "directory",
                Sign::AsRequired,
            )
            .await;
        match res {
            Ok(r) => {
                let mut servers = r.servers;
                servers.truncate(MAX_SERVERS);
                // The alias's own server knows the room even if it did not say so.
                if !servers.iter().any(|s| s == alias.server_name()) {
                    servers.push(alias.server_name().to_owned());
                }
                let target = (r.room_id, servers);
                self.aliases.put(key, Some(target.clone()));
                Ok(target)
            }
            Err(FederationError::Remote { status: 404, .. }) => {
                self.aliases.put(key, None);
                Err(not_found())
            }
            Err(e) => Err(to_client_error(e)),
        }
    }

    /// Inbound: one of our aliases, with the servers that have joined members in its room.
    pub async fn answer_directory(&self, alias: &RoomAliasId) -> Result<AliasTarget> {
        if alias.server_name() != self.server_name {
            return Err(Error::not_found("That alias is not on this server"));
        }
        let room_id = self.rooms.resolve_alias(alias).await?;
        let servers = self.servers_in(&room_id).await;
        Ok((room_id, servers))
    }

    /// Servers with joined members, ours first; just ours if the state cannot be read.
    async fn servers_in(&self, room_id: &RoomId) -> Vec<OwnedServerName> {
        let mut servers = match self.rooms.current_state(room_id).await {
            Ok(state) => state.joined_servers(),
            Err(_) => vec![],
        };
        servers.retain(|s| *s != self.server_name);
        servers.insert(0, self.server_name.clone());
        servers
    }
}
