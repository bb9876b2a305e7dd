//! Which users' device lists a user must re-fetch: `device_lists` in /sync and /keys/changes.
//! A user is "changed" when they share a room with the requester and their devices or keys
//! changed in `(since, upto]`, or when they newly share a room (someone joined, or the
//! requester joined). A user is "left" when they no longer share any room and a membership
//! change in the range ended the sharing.

use std::collections::{BTreeSet, HashSet};

use ruma::{OwnedUserId, UserId};

use super::KeyService;
use crate::error::Result;
use crate::service::blocking;

#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct DeviceListChanges {
    pub changed: Vec<OwnedUserId>,
    pub left: Vec<OwnedUserId>,
}

impl DeviceListChanges {
    pub fn is_empty(&self) -> bool {
        self.changed.is_empty() && self.left.is_empty()
    }
}

impl KeyService {
    /// Device-list changes for `user_id` with positions in `(since, upto]`.
    pub async fn device_list_changes(
        &self,
        user_id: &UserId,
        since: i64,
        upto: i64,
    ) -> Result<DeviceListChanges> {
        let sharing: HashSet<OwnedUserId> = self.rooms.users_sharing_rooms(user_id).await?;
        let mut changed = BTreeSet::new();
        let mut left_candidates = BTreeSet::new();
        for m in self.rooms.memberships(user_id).await? {
            let mine_changed = m.pos > since && m.pos <= upto;
            let rows = if m.membership == "join" || mine_changed {
                self.rooms.member_rows(&m.room_id).await?
            } else {
                continue;
            };
            for r in rows.into_iter().filter(|r| r.user_id != user_id) {
                let theirs_changed = r.pos > since && r.pos <= upto;
                match (m.membership.as_str(), r.membership.as_str()) {
                    // I joined in the range: everyone in the room is new to me.
                    ("join", "join") if mine_changed || theirs_changed => {
                        changed.insert(r.user_id);
                    }
                    ("join", "leave" | "ban") if theirs_changed => {
                        left_candidates.insert(r.user_id);
                    }
                    // I left in the range: the members I shared this room with.
                    ("leave" | "ban", "join") if mine_changed => {
                        left_candidates.insert(r.user_id);
                    }
                    _ => {}
                }
            }
        }
        let mut users: Vec<String> = sharing.iter().map(|u| u.to_string()).collect();
        users.sort();
        let store = self.store.clone();
        let keys_changed =
            blocking(move || Ok(store.device_lists_changed(&users, since, upto)?)).await?;
        changed.extend(keys_changed.into_iter().filter_map(|u| u.try_into().ok()));
        let left: Vec<OwnedUserId> = left_candidates
            .into_iter()
            .filter(|u| !sharing.contains(u))
            .collect();
        Ok(DeviceListChanges {
            changed: changed.into_iter().filter(|u| !left.contains(u)).collect(),
            left,
        })
    }
}

impl KeyService {
    /// GET /keys/changes: the same computation between two sync tokens.
    pub async fn key_changes(
        &self,
        user_id: &UserId,
        from: &str,
        to: &str,
    ) -> Result<ruma::api::client::keys::get_key_changes::v3::Response> {
        let parse = |t: &str| {
            crate::service::filter::parse_token(t).ok_or_else(|| {
                crate::error::Error::invalid_param(format!("Invalid stream token '{t}'"))
            })
        };
        let (from, to) = (parse(from)?, parse(to)?.min(self.rooms.current_pos()));
        let c = self.device_list_changes(user_id, from, to).await?;
        Ok(ruma::api::client::keys::get_key_changes::v3::Response::new(
            c.changed, c.left,
        ))
    }
}
