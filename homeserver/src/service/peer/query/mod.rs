//! Federation queries in both directions: profiles, room aliases and public room directories.
//!
//! Inbound (`answer_*`): what we tell a listed server that asked (the `Ruma<T>` extractor has
//! already verified its X-Matrix signature and applied the federation list). Outbound: local
//! clients' requests about another server's users, aliases or directory go to that server
//! through the gated `FederationClient` (nothing outside the federation list is contacted), and
//! answers are cached briefly in memory.

mod cache;
mod directory;
mod profile;
mod public_rooms;

use std::sync::Arc;
use std::time::Duration;

use http::StatusCode;
use ruma::api::error::ErrorKind;
use ruma::{OwnedRoomAliasId, OwnedRoomId, OwnedServerName, OwnedUserId};

use self::cache::TtlCache;
pub use self::public_rooms::{DirectoryPage, RULE_PUBLIC_ROOMS_NOT_FEDERATED};
use crate::error::Error;
use crate::service::appservice::AppserviceService;
use crate::service::audit::AuditService;
use crate::service::federation::client::FederationClient;
use crate::service::rooms::RoomService;
use crate::service::users::{Profile, UserService};

/// How long another server's answer is reused. Short: a renamed user or a moved alias shows
/// within a minute, and a failure is never cached.
const CACHE_TTL: Duration = Duration::from_secs(60);
/// Entries per cache (bounds memory whatever clients ask about).
const CACHE_ENTRIES: usize = 10_000;

/// A resolved alias: the room and servers likely to be in it.
pub type AliasTarget = (OwnedRoomId, Vec<OwnedServerName>);

pub struct QueryService {
    server_name: OwnedServerName,
    client: Arc<FederationClient>,
    users: Arc<UserService>,
    rooms: Arc<RoomService>,
    audit: Arc<AuditService>,
    /// `federation.serve_public_rooms`: directories are exchanged in both directions or not at all.
    serve_public_rooms: bool,
    /// Remote profiles; `None` caches the remote's 404.
    profiles: TtlCache<OwnedUserId, Option<Profile>>,
    /// Remote aliases; `None` caches the remote's 404.
    aliases: TtlCache<OwnedRoomAliasId, Option<AliasTarget>>,
    /// Asked about local users and aliases in their namespaces that do not exist yet.
    appservices: Arc<AppserviceService>,
}

/// What the query service is built with.
pub struct QueryDeps {
    pub server_name: OwnedServerName,
    pub client: Arc<FederationClient>,
    pub users: Arc<UserService>,
    pub rooms: Arc<RoomService>,
    pub audit: Arc<AuditService>,
    pub serve_public_rooms: bool,
    pub appservices: Arc<AppserviceService>,
}

impl QueryService {
    pub fn new(deps: QueryDeps) -> Self {
        let QueryDeps {
            server_name,
            client,
            users,
            rooms,
            audit,
            serve_public_rooms,
            appservices,
        } = deps;
        Self {
            server_name,
            client,
            users,
            rooms,
            audit,
            serve_public_rooms,
            profiles: TtlCache::new(CACHE_TTL, CACHE_ENTRIES),
            aliases: TtlCache::new(CACHE_TTL, CACHE_ENTRIES),
            appservices,
        }
    }
}

/// An anonymous client asked for something only another server knows: this server contacts
/// other servers only for signed-in users (so no outsider can use it to look into other trusts).
fn sign_in_required(what: &str) -> Error {
    Error::new(
        StatusCode::UNAUTHORIZED,
        ErrorKind::MissingToken,
        format!("Sign in to look up {what} on other servers"),
    )
}

#[cfg(test)]
mod tests;
