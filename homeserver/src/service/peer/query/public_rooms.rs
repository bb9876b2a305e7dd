//! Public room directories over federation: `GET/POST /_matrix/federation/v1/publicRooms`
//! (inbound) and `/publicRooms?server=` (outbound). Both follow one switch,
//! `federation.serve_public_rooms` (default off): a trust either exchanges directories with
//! the servers on its federation list or does not, and a refusal names the rule and is audited.

use handover_policy::AccountAction;
use handover_policy::Denial;
use ruma::api::federation::directory::{get_public_rooms, get_public_rooms_filtered};
use ruma::directory::{Filter, PublicRoomsChunk};
use ruma::{ServerName, UInt};

use super::QueryService;
use crate::error::Result;
use crate::service::federation::client::Sign;
use crate::service::federation::client_error::to_client_error;
use crate::service::rooms::PublicRoomsFilter;

/// The refusal when `federation.serve_public_rooms` is off.
pub const RULE_PUBLIC_ROOMS_NOT_FEDERATED: &str = "public_rooms_not_federated";
const HOOK: &str = "federation_public_rooms";

/// One page of a directory, ours or another server's.
#[derive(Debug, Clone, Default)]
pub struct DirectoryPage {
    pub chunk: Vec<PublicRoomsChunk>,
    pub next_batch: Option<String>,
    pub prev_batch: Option<String>,
    pub total_room_count_estimate: Option<UInt>,
}

fn is_empty(f: &PublicRoomsFilter) -> bool {
    f.search.as_deref().is_none_or(|s| s.trim().is_empty()) && f.room_types.is_empty()
}

impl QueryService {
    /// A client's `/publicRooms`: our directory, or with `server` another server's, asked over
    /// federation when directories are exchanged. Only a signed-in `requester` may make us
    /// contact another server.
    pub async fn public_rooms(
        &self,
        requester: Option<&ruma::UserId>,
        server: Option<&ServerName>,
        limit: Option<UInt>,
        since: Option<&str>,
        filter: &PublicRoomsFilter,
    ) -> Result<DirectoryPage> {
        if let Some(r) = requester {
            self.users
                .check_account_action(r, AccountAction::PublicDirectory, None)
                .await?;
        }
        let Some(server) = server.filter(|s| *s != self.server_name) else {
            return self.local_directory(limit, since, filter).await;
        };
        let Some(requester) = requester else {
            return Err(super::sign_in_required("room directories"));
        };
        self.require_exchange(requester.as_str(), Some(server.as_str()))
            .await?;
        let res = if is_empty(filter) {
            let mut req = get_public_rooms::v1::Request::new();
            req.limit = limit;
            req.since = since.map(str::to_owned);
            self.client
                .send(server, req, "public_rooms", Sign::AsRequired)
                .await
                .map(|r| DirectoryPage {
                    chunk: r.chunk,
                    next_batch: r.next_batch,
                    prev_batch: r.prev_batch,
                    total_room_count_estimate: r.total_room_count_estimate,
                })
        } else {
            let mut req = get_public_rooms_filtered::v1::Request::new();
            req.limit = limit;
            req.since = since.map(str::to_owned);
            let mut f = Filter::new();
            f.generic_search_term = filter.search.clone();
            f.room_types = filter.room_types.clone();
            req.filter = f;
            self.client
                .send(server, req, "public_rooms", Sign::AsRequired)
                .await
                .map(|r| DirectoryPage {
                    chunk: r.chunk,
                    next_batch: r.next_batch,
                    prev_batch: r.prev_batch,
                    total_room_count_estimate: r.total_room_count_estimate,
                })
        };
        res.map_err(to_client_error)
    }

    /// Inbound: our directory for a listed server, when directories are exchanged.
    pub async fn answer_public_rooms(
        &self,
        origin: &ServerName,
        limit: Option<UInt>,
        since: Option<&str>,
        filter: &PublicRoomsFilter,
    ) -> Result<DirectoryPage> {
        self.require_exchange(origin.as_str(), None).await?;
        self.local_directory(limit, since, filter).await
    }

    async fn local_directory(
        &self,
        limit: Option<UInt>,
        since: Option<&str>,
        filter: &PublicRoomsFilter,
    ) -> Result<DirectoryPage> {
        let limit = limit.map(|l| usize::try_from(u64::from(l)).unwrap_or(usize::MAX));
        let page = self.rooms.public_rooms_chunk(limit, since, filter).await?;
        Ok(DirectoryPage {
            chunk: page.chunk,
            next_batch: page.next_batch,
            prev_batch: None,
            total_room_count_estimate: Some(UInt::new_saturating(page.total as u64)),
        })
    }

    /// Refuses (audited, naming the rule) unless `federation.serve_public_rooms` is on.
    async fn require_exchange(&self, actor: &str, target: Option<&str>) -> Result<()> {
        let decision = if self.serve_public_rooms {
            Ok(())
        } else {
            Err(Denial::new(
                RULE_PUBLIC_ROOMS_NOT_FEDERATED,
                "this server does not exchange public room directories with other servers \
                 (federation.serve_public_rooms is off)",
            ))
        };
        self.audit.enforce(decision, HOOK, actor, target).await
    }
}
