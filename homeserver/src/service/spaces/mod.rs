//! Spaces: `GET /rooms/{roomId}/hierarchy` for local users and `GET /federation/v1/hierarchy`
//! for other servers.
//!
//! The client walk is depth-first over valid `m.space.child` events in the spec's order. A room
//! is shown to a user who is joined or invited, or when it is open to them (public, knock,
//! world-readable, or restricted to a room they are joined to); rooms not shown are not
//! descended into. A child unknown here is asked of the servers in its `via` over federation
//! (the gated client: only listed servers are contacted), and that answer is filtered for the
//! user the same way. Pages are stateless: `next_batch` counts the rooms already returned and
//! pins `max_depth` and `suggested_only`.
//!
//! Other servers get our rooms' summaries when their users could see them: a server with a
//! joined member, or a room open to all, or restricted to a room the server is in. The room's
//! server ACL applies to the asking server.

mod room_summary;
mod summary;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use ruma::api::client::space::SpaceHierarchyRoomsChunk;
use ruma::api::federation::space::{SpaceHierarchyParentSummary, get_hierarchy as fed};
use ruma::events::StateEventType;
use ruma::events::room::server_acl::RoomServerAclEventContent;
use ruma::room::RoomSummary;
use ruma::{OwnedRoomId, OwnedServerName, RoomId, ServerName, UserId};

pub use self::summary::summarize;
use self::summary::{Child, children_of, is_space, open_to, open_to_all, sort_children};
use crate::error::{Error, Result};
use crate::service::federation::client::{FederationClient, Sign};
use crate::service::peer::query::QueryService;
use crate::service::rooms::RoomService;
use crate::service::rooms::state::RoomState;

/// Rooms per page when the client names no `limit`, and the most it may ask for.
const DEFAULT_LIMIT: usize = 50;
const MAX_LIMIT: usize = 100;
/// How deep the walk goes when the client names no `max_depth`, and at most.
const MAX_DEPTH: usize = 10;
/// Rooms looked at in one request (every page re-walks the tree up to its end).
const MAX_VISITED: usize = 1000;
/// Servers of one child's `via` asked before giving up on it.
const MAX_VIA: usize = 3;
/// Remote rooms asked about in one request.
const MAX_REMOTE_FETCHES: usize = 50;

#[derive(Debug, Clone, Default)]
pub struct HierarchyParams {
    pub from: Option<String>,
    pub limit: Option<u64>,
    pub max_depth: Option<u64>,
    pub suggested_only: bool,
}

#[derive(Debug, Default)]
pub struct HierarchyPage {
    pub rooms: Vec<SpaceHierarchyRoomsChunk>,
    pub next_batch: Option<String>,
}

pub struct SpaceService {
    rooms: Arc<RoomService>,
    client: Arc<FederationClient>,
    /// Resolves aliases (ours and other servers') for `/room_summary`.
    query: Arc<QueryService>,
}

/// A room of the walk: its summary and (for a space) its children.
struct Node {
    summary: RoomSummary,
    children: Vec<Child>,
}

/// What one client request has learnt from other servers.
#[derive(Default)]
struct RemoteCache {
    /// Children summaries from a parent's answer (no children state: enough for non-spaces).
    summaries: HashMap<OwnedRoomId, RoomSummary>,
    /// Rooms another server said our server cannot see.
    inaccessible: HashSet<OwnedRoomId>,
    fetches: usize,
}

/// `s{skip}_{max_depth}_{suggested}`: the walk is deterministic, so a page is the rooms after
/// the first `skip`.
fn token(skip: usize, max_depth: usize, suggested_only: bool) -> String {
    format!("s{skip}_{max_depth}_{}", u8::from(suggested_only))
}

fn parse_token(t: &str, max_depth: usize, suggested_only: bool) -> Result<usize> {
    let bad = || Error::invalid_param("Unknown pagination token");
    let mut parts = t.strip_prefix('s').ok_or_else(bad)?.split('_');
    let skip: usize = parts.next().and_then(|p| p.parse().ok()).ok_or_else(bad)?;
    let rest: Vec<&str> = parts.collect();
    if rest
        != [
            max_depth.to_string().as_str(),
            if suggested_only { "1" } else { "0" },
        ]
    {
        return Err(Error::invalid_param(
            "suggested_only and max_depth cannot change on paginated requests",
        ));
    }
    Ok(skip)
}

fn acl_denies(state: &RoomState, server: &ServerName) -> bool {
    state
        .get(&StateEventType::RoomServerAcl, "")
        .and_then(|p| p.content_as::<RoomServerAclEventContent>())
        .is_some_and(|acl| !acl.is_allowed(server))
}

impl SpaceService {
    pub fn new(
        rooms: Arc<RoomService>,
        client: Arc<FederationClient>,
        query: Arc<QueryService>,
    ) -> Self {
        Self {
            rooms,
            client,
            query,
        }
    }

    /// The room's current state, or `None` if this server does not know the room.
    async fn local_state(&self, room_id: &RoomId) -> Result<Option<RoomState>> {
        // Version first: asking about an unknown room id must not create room state.
        match self.rooms.room_version(room_id).await {
            Ok(_) => Ok(Some(self.rooms.current_state(room_id).await?)),
            Err(e) if e.kind() == Some(&ruma::api::error::ErrorKind::NotFound) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// A client's `/hierarchy`.
    pub async fn hierarchy(
        &self,
        user: &UserId,
        root: &RoomId,
        p: &HierarchyParams,
    ) -> Result<HierarchyPage> {
        let limit = match p.limit {
            Some(0) => return Err(Error::invalid_param("limit must be greater than zero")),
            Some(l) => (l as usize).min(MAX_LIMIT),
            None => DEFAULT_LIMIT,
        };
        let max_depth = p
            .max_depth
            .map_or(MAX_DEPTH, |d| (d as usize).min(MAX_DEPTH));
        let skip = match &p.from {
            Some(t) => parse_token(t, max_depth, p.suggested_only)?,
            None => 0,
        };
        let joined: HashSet<OwnedRoomId> =
            self.rooms.joined_rooms(user).await?.into_iter().collect();
        let forbidden = || Error::forbidden(format!("You cannot see room {root}"));
        let Some(root_state) = self.local_state(root).await? else {
            return Err(forbidden());
        };
        let Some(root_node) = self.local_node(&root_state, user, &joined) else {
            return Err(forbidden());
        };

        let mut page = HierarchyPage::default();
        let mut cache = RemoteCache::default();
        let mut seen: HashSet<OwnedRoomId> = HashSet::new();
        // Depth-first: the root, then a stack of children pushed in reverse order.
        let mut first = Some((root_node, 0));
        let mut pending: Vec<(Child, usize)> = Vec::new();
        let mut index = 0;
        loop {
            let (node, depth) = match first.take() {
                Some(n) => n,
                None => {
                    let Some((child, depth)) = pending.pop() else {
                        break;
                    };
                    if seen.contains(&child.room_id) {
                        continue;
                    }
                    match self.child_node(&child, user, &joined, &mut cache).await? {
                        Some(n) => (n, depth),
                        None => continue,
                    }
                }
            };
            if !seen.insert(node.summary.room_id.clone()) {
                continue;
            }
            if seen.len() > MAX_VISITED {
                break;
            }
            if index >= skip {
                if page.rooms.len() == limit {
                    page.next_batch = Some(token(index, max_depth, p.suggested_only));
                    break;
                }
                let states = node.children.iter().map(|c| c.event.clone()).collect();
                page.rooms
                    .push(SpaceHierarchyRoomsChunk::new(node.summary.clone(), states));
            }
            index += 1;
            if depth < max_depth {
                let kids = node
                    .children
                    .into_iter()
                    .filter(|c| !p.suggested_only || c.suggested);
                let kids: Vec<Child> = kids.collect();
                pending.extend(kids.into_iter().rev().map(|c| (c, depth + 1)));
            }
        }
        Ok(page)
    }

    /// A local room as the user sees it, or `None` if they may not.
    fn local_node(
        &self,
        state: &RoomState,
        user: &UserId,
        joined: &HashSet<OwnedRoomId>,
    ) -> Option<Node> {
        let summary = summarize(state);
        let member = matches!(
            state.membership_of(user).as_deref(),
            Some("join" | "invite")
        );
        if !member && !open_to(&summary, joined) {
            return None;
        }
        let children = children_of(state, &summary);
        Some(Node { summary, children })
    }

    /// A child room: from our state if we know it, else from the servers in its `via`.
    async fn child_node(
        &self,
        child: &Child,
        user: &UserId,
        joined: &HashSet<OwnedRoomId>,
        cache: &mut RemoteCache,
    ) -> Result<Option<Node>> {
        if let Some(state) = self.local_state(&child.room_id).await? {
            return Ok(self.local_node(&state, user, joined));
        }
        if cache.inaccessible.contains(&child.room_id) {
            return Ok(None);
        }
        // A room that is not a space needs only the summary its parent's answer carried.
        if let Some(s) = cache.summaries.get(&child.room_id)
            && !is_space(s)
        {
            return Ok(open_to(s, joined).then(|| Node {
                summary: s.clone(),
                children: Vec::new(),
            }));
        }
        let Some(node) = self.fetch_remote(&child.room_id, &child.via, cache).await else {
            return Ok(None);
        };
        Ok(open_to(&node.summary, joined).then_some(node))
    }

    /// Asks the room's `via` servers for its summary; the first good answer wins.
    async fn fetch_remote(
        &self,
        room_id: &RoomId,
        via: &[OwnedServerName],
        cache: &mut RemoteCache,
    ) -> Option<Node> {
        let own = self.rooms.server_name().to_owned();
        for server in via.iter().filter(|s| **s != own).take(MAX_VIA) {
            if cache.fetches >= MAX_REMOTE_FETCHES {
                return None;
            }
            cache.fetches += 1;
            let req = fed::v1::Request::new(room_id.to_owned());
            let Ok(res) = self
                .client
                .send(server, req, "space_hierarchy", Sign::Always)
                .await
            else {
                continue;
            };
            if res.room.summary.room_id != room_id {
                continue;
            }
            for c in res.children {
                cache.summaries.insert(c.room_id.clone(), c);
            }
            cache.inaccessible.extend(res.inaccessible_children);
            let summary = res.room.summary;
            let mut children: Vec<Child> = if is_space(&summary) {
                res.room
                    .children_state
                    .iter()
                    .filter_map(Child::from_stripped)
                    .collect()
            } else {
                Vec::new()
            };
            sort_children(&mut children);
            return Some(Node { summary, children });
        }
        None
    }

    /// Whether `origin` may see our room (module docs); the ACL is checked by the caller.
    async fn server_may_see(
        &self,
        state: &RoomState,
        sum: &RoomSummary,
        origin: &ServerName,
    ) -> Result<bool> {
        if open_to_all(sum) || state.joined_servers().iter().any(|s| s == origin) {
            return Ok(true);
        }
        for room in summary::allowed_rooms(sum) {
            if let Some(s) = self.local_state(room).await?
                && s.joined_servers().iter().any(|s| s == origin)
            {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// Another server's `/hierarchy/{roomId}`: the room and its children it could see. Children
    /// we do not know are left out; ones it may not see are listed as inaccessible.
    pub async fn answer_hierarchy(
        &self,
        origin: &ServerName,
        room_id: &RoomId,
        suggested_only: bool,
    ) -> Result<fed::v1::Response> {
        let not_found = || Error::not_found("Room not found or not accessible");
        let state = self.local_state(room_id).await?.ok_or_else(not_found)?;
        if acl_denies(&state, origin) {
            return Err(Error::forbidden(format!(
                "Server {origin} is denied by the room's server ACL"
            )));
        }
        let summary = summarize(&state);
        if !self.server_may_see(&state, &summary, origin).await? {
            return Err(not_found());
        }
        let children = children_of(&state, &summary);
        let children_state = children.iter().map(|c| c.event.clone()).collect();
        let mut res =
            fed::v1::Response::new(SpaceHierarchyParentSummary::new(summary, children_state));
        for child in children.iter().filter(|c| !suggested_only || c.suggested) {
            let Some(cs) = self.local_state(&child.room_id).await? else {
                continue;
            };
            let sum = summarize(&cs);
            if !acl_denies(&cs, origin) && self.server_may_see(&cs, &sum, origin).await? {
                res.children.push(sum);
            } else {
                res.inaccessible_children.push(child.room_id.clone());
            }
        }
        Ok(res)
    }
}

#[cfg(test)]
mod tests;
