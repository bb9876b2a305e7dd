//! The user's rooms as sliding-sync lists: candidates (joined and invited rooms, plus rooms
//! left since the client was last told), list filters, recency order, ranges, and the merged
//! per-room config (required_state, timeline_limit) of every list and subscription naming a room.

use std::collections::{BTreeMap, BTreeSet, HashSet};

use ruma::api::client::sync::sync_events::v5::request::{self, ExtensionRoomConfig};
use ruma::events::StateEventType;
use ruma::{OwnedRoomId, UserId};

use super::SlidingSyncService;
use super::connection::Snapshot;
use crate::error::Result;

/// Longest timeline a room gets, whatever the client asks.
const MAX_TIMELINE: usize = 200;

/// A room the user may be sent, with what filters and ordering need.
#[derive(Debug, Clone)]
pub struct Candidate {
    pub room_id: OwnedRoomId,
    /// "join", "invite", or "leave"/"ban" (only for rooms the client still thinks it is in).
    pub membership: String,
    /// Position of the user's membership event.
    pub membership_pos: i64,
    /// Recency: the latest event position the user may see (invites: the invite).
    pub bump: i64,
    pub is_dm: bool,
    pub room_type: Option<String>,
    pub encrypted: bool,
}

impl Candidate {
    pub fn in_lists(&self) -> bool {
        matches!(self.membership.as_str(), "join" | "invite")
    }
}

/// What to send for one room: the union of every list and subscription that names it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RoomConfig {
    /// `(type, state_key)` pairs, sorted and deduplicated; `*`, `$LAZY`, `$ME` kept verbatim.
    pub required_state: Vec<(String, String)>,
    pub timeline_limit: usize,
}

impl RoomConfig {
    #[cfg(test)]
    fn new(required_state: &[(StateEventType, String)], timeline_limit: ruma::UInt) -> Self {
        let mut c = Self::default();
        c.merge(required_state, timeline_limit);
        c
    }

    fn merge(&mut self, required_state: &[(StateEventType, String)], timeline_limit: ruma::UInt) {
        let limit = u64::from(timeline_limit).min(MAX_TIMELINE as u64) as usize;
        self.timeline_limit = self.timeline_limit.max(limit);
        let set: BTreeSet<(String, String)> = self
            .required_state
            .drain(..)
            .chain(
                required_state
                    .iter()
                    .map(|(t, k)| (t.to_string(), k.clone())),
            )
            .collect();
        self.required_state = set.into_iter().collect();
    }
}

/// The rooms this request covers: each list's rooms in range, the subscriptions, and the
/// merged config per room.
#[derive(Debug, Default)]
pub struct Selection {
    pub counts: BTreeMap<String, u64>,
    pub by_list: BTreeMap<String, Vec<OwnedRoomId>>,
    pub subscribed: Vec<OwnedRoomId>,
    pub configs: BTreeMap<OwnedRoomId, RoomConfig>,
}

impl Selection {
    /// Rooms an extension applies to: its `lists` (default all) and `rooms` (default all
    /// subscriptions; `*` = all subscriptions, or named rooms among `known`).
    pub fn rooms_for(
        &self,
        lists: Option<&[String]>,
        rooms: Option<&[ExtensionRoomConfig]>,
        known: &HashSet<&OwnedRoomId>,
    ) -> BTreeSet<OwnedRoomId> {
        let mut out = BTreeSet::new();
        for (name, ids) in &self.by_list {
            if lists.is_none_or(|l| l.contains(name)) {
                out.extend(ids.iter().cloned());
            }
        }
        match rooms {
            None => out.extend(self.subscribed.iter().cloned()),
            Some(cfgs) => {
                for c in cfgs {
                    match c {
                        ExtensionRoomConfig::AllSubscribed => {
                            out.extend(self.subscribed.iter().cloned())
                        }
                        ExtensionRoomConfig::Room(r) if known.contains(r) => {
                            out.insert(r.clone());
                        }
                        _ => {}
                    }
                }
            }
        }
        out
    }
}

/// Applies the lists' filters, sorts and ranges, and the subscriptions.
pub fn select(
    candidates: &[Candidate],
    lists: &BTreeMap<String, request::List>,
    subscriptions: &BTreeMap<OwnedRoomId, request::RoomSubscription>,
) -> Selection {
    let mut sel = Selection::default();
    let mut ordered: Vec<&Candidate> = candidates.iter().filter(|c| c.in_lists()).collect();
    // Most recent first; room id keeps the order stable for equal stamps.
    ordered.sort_by(|a, b| b.bump.cmp(&a.bump).then_with(|| a.room_id.cmp(&b.room_id)));
    for (name, list) in lists {
        let matching: Vec<&Candidate> = ordered
            .iter()
            .copied()
            .filter(|c| list.filters.as_ref().is_none_or(|f| matches(f, c)))
            .collect();
        sel.counts.insert(name.clone(), matching.len() as u64);
        let mut in_range = Vec::new();
        for (i, c) in matching.iter().enumerate() {
            let i = i as u64;
            let hit = list
                .ranges
                .iter()
                .any(|(a, b)| u64::from(*a) <= i && i <= u64::from(*b));
            if hit {
                in_range.push(c.room_id.clone());
                sel.configs.entry(c.room_id.clone()).or_default().merge(
                    &list.room_details.required_state,
                    list.room_details.timeline_limit,
                );
            }
        }
        sel.by_list.insert(name.clone(), in_range);
    }
    for (room_id, sub) in subscriptions {
        // Only rooms the user is in or invited to; never a preview of someone else's room.
        if ordered.iter().any(|c| &c.room_id == room_id) {
            sel.subscribed.push(room_id.clone());
            sel.configs
                .entry(room_id.clone())
                .or_default()
                .merge(&sub.required_state, sub.timeline_limit);
        }
    }
    sel
}

/// List filters, all ANDed; an absent filter does not filter.
fn matches(f: &request::ListFilters, c: &Candidate) -> bool {
    let room_type = |t: &ruma::directory::RoomTypeFilter| t.as_str() == c.room_type.as_deref();
    f.is_dm.is_none_or(|v| v == c.is_dm)
        && f.is_invite.is_none_or(|v| v == (c.membership == "invite"))
        && f.is_encrypted.is_none_or(|v| v == c.encrypted)
        && (f.room_types.is_empty() || f.room_types.iter().any(room_type))
        && !f.not_room_types.iter().any(room_type)
}

impl SlidingSyncService {
    /// Every room the user is joined to or invited to, plus rooms they left that this
    /// connection had been sent (so the client learns of the leave once).
    pub(super) async fn candidates(
        &self,
        user: &UserId,
        snapshot: &Snapshot,
        upto: i64,
    ) -> Result<Vec<Candidate>> {
        let dms = self.dm_rooms(user).await?;
        let memberships = self.rooms.memberships(user).await?;
        let joined: Vec<OwnedRoomId> = memberships
            .iter()
            .filter(|m| m.membership == "join")
            .map(|m| m.room_id.clone())
            .collect();
        let latest = self.rooms.latest_positions(joined).await?;
        let mut out = Vec::new();
        for m in memberships {
            let listed = matches!(m.membership.as_str(), "join" | "invite");
            let newly_left = !listed
                && snapshot
                    .rooms
                    .get(&m.room_id)
                    .is_some_and(|s| s.membership != m.membership);
            if m.forgotten || !(listed || newly_left) || m.pos > upto {
                continue;
            }
            let state = self.rooms.current_state(&m.room_id).await?;
            let create = state.content_json(&StateEventType::RoomCreate, "");
            let invited_as_dm = m.membership == "invite"
                && state
                    .content_json(&StateEventType::RoomMember, user.as_str())
                    .is_some_and(|c| c["is_direct"] == true);
            let bump = match m.membership.as_str() {
                "join" => latest.get(&m.room_id).copied().unwrap_or(m.pos).min(upto),
                _ => m.pos,
            };
            out.push(Candidate {
                is_dm: invited_as_dm || dms.contains(&m.room_id),
                room_type: create.and_then(|c| c["type"].as_str().map(str::to_owned)),
                encrypted: state.get(&StateEventType::RoomEncryption, "").is_some(),
                room_id: m.room_id,
                membership: m.membership,
                membership_pos: m.pos,
                bump,
            });
        }
        Ok(out)
    }

    /// Rooms named in the user's `m.direct` account data.
    async fn dm_rooms(&self, user: &UserId) -> Result<HashSet<OwnedRoomId>> {
        let Ok(raw) = self.account_data.get_global(user, user, "m.direct").await else {
            return Ok(HashSet::new());
        };
        let content: BTreeMap<String, Vec<String>> =
            serde_json::from_str(raw.json().get()).unwrap_or_default();
        Ok(content
            .into_values()
            .flatten()
            .filter_map(|r| r.parse().ok())
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ruma::uint;

    fn cand(id: &str, bump: i64, membership: &str, dm: bool) -> Candidate {
        Candidate {
            room_id: id.try_into().unwrap(),
            membership: membership.into(),
            membership_pos: 1,
            bump,
            is_dm: dm,
            room_type: None,
            encrypted: false,
        }
    }

    #[test]
    fn lists_sort_by_recency_filter_and_range() {
        let cs = vec![
            cand("!a:x", 5, "join", false),
            cand("!b:x", 9, "join", true),
            cand("!c:x", 7, "invite", false),
            cand("!d:x", 8, "leave", false),
        ];
        let mut all = request::List::default();
        all.ranges = vec![(uint!(0), uint!(1))];
        let mut dms = request::List::default();
        dms.ranges = vec![(uint!(0), uint!(9))];
        let mut f = request::ListFilters::default();
        f.is_dm = Some(true);
        dms.filters = Some(f);
        let lists = BTreeMap::from([("all".to_owned(), all), ("dms".to_owned(), dms)]);
        let sel = select(&cs, &lists, &BTreeMap::new());
        assert_eq!(sel.counts["all"], 3, "left rooms are not listed");
        let ids: Vec<&str> = sel.by_list["all"].iter().map(|r| r.as_str()).collect();
        assert_eq!(ids, ["!b:x", "!c:x"]);
        assert_eq!(sel.counts["dms"], 1);
    }

    #[test]
    fn configs_merge_required_state_and_take_the_longest_timeline() {
        let mut c = RoomConfig::new(&[(StateEventType::RoomName, String::new())], uint!(1));
        c.merge(
            &[
                (StateEventType::RoomMember, "$LAZY".into()),
                (StateEventType::RoomName, String::new()),
            ],
            uint!(20),
        );
        assert_eq!(c.timeline_limit, 20);
        assert_eq!(c.required_state.len(), 2);
    }
}
