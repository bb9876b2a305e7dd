//! History visibility: which stream positions of a room a user may read, from the room's
//! `m.room.history_visibility` and the user's membership over time.
//!
//! Design choice (docs/ARCHITECTURE.md): the *current* visibility setting is applied to all of
//! history, as a range over stream positions. Per-event visibility (the setting in force when each
//! event was sent) matters when a room loosens its setting later; the ranges are computed per
//! request from indexed membership history, so a later refinement stays inside this module.

use ruma::events::StateEventType;
use ruma::{OwnedUserId, RoomId, UserId};

use super::RoomService;
use super::state::RoomState;
use crate::error::{Error, Result};
use crate::service::blocking;

/// Inclusive ranges of stream positions the user may see.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Visible(pub Vec<(i64, i64)>);

impl Visible {
    pub fn contains(&self, pos: i64) -> bool {
        self.0.iter().any(|(a, b)| *a <= pos && pos <= *b)
    }
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
    /// The last visible position (for a user who left: their leave event).
    pub fn upper(&self) -> Option<i64> {
        self.0.iter().map(|(_, b)| *b).max()
    }
}

/// Computes visible ranges from `(pos, membership)` history and the visibility setting.
pub fn visible_ranges(history: &[(i64, String)], setting: &str) -> Visible {
    if setting == "world_readable" {
        return Visible(vec![(i64::MIN, i64::MAX)]);
    }
    let admits = |m: &str| match setting {
        "joined" => m == "join",
        "invited" => m == "join" || m == "invite",
        // "shared" (the default): everything up to when the user stops being joined.
        _ => m == "join",
    };
    let mut ranges = Vec::new();
    let mut start: Option<i64> = None;
    for (pos, m) in history {
        match (start, admits(m)) {
            (None, true) => start = Some(*pos),
            (Some(s), false) => {
                // The event that ended membership is still visible to its subject.
                ranges.push((s, *pos));
                start = None;
            }
            _ => {}
        }
    }
    if let Some(s) = start {
        ranges.push((s, i64::MAX));
    }
    if setting == "shared" || !matches!(setting, "joined" | "invited") {
        // Shared: newly joined members see history from the room's start.
        // (Backfilled history sits at negative positions, before everything else.)
        if let Some(first) = ranges.first_mut() {
            first.0 = i64::MIN;
        }
    }
    Visible(ranges)
}

/// The creators of the room: the create event's sender plus `additional_creators` (v12).
pub fn creators(state: &RoomState) -> Vec<OwnedUserId> {
    let Some(create) = state.get(&StateEventType::RoomCreate, "") else {
        return vec![];
    };
    let mut out = vec![create.sender.clone()];
    if let Ok(v) = serde_json::from_str::<serde_json::Value>(create.content.get())
        && let Some(extra) = v["additional_creators"].as_array()
    {
        out.extend(extra.iter().filter_map(|u| u.as_str()?.parse().ok()));
    }
    out
}

impl RoomService {
    /// The positions `user` may read in `room_id`; `M_FORBIDDEN` if none.
    pub async fn visible_to(&self, room_id: &RoomId, user: &UserId) -> Result<Visible> {
        self.room_version(room_id)
            .await
            .map_err(|_| Error::forbidden("You are not in this room"))?;
        let store = self.store.clone();
        let (r, u) = (room_id.to_owned(), user.to_owned());
        let h = blocking(move || Ok(store.visibility_history(r.as_str(), u.as_str())?)).await?;
        // Forgetting a room gives up its history for good (spec: /forget), whatever the setting.
        if h.forgotten {
            return Err(Error::forbidden(format!(
                "{user} has forgotten room {room_id}"
            )));
        }
        let history = h.memberships;
        let setting = self.history_visibility(room_id).await?;
        let v = visible_ranges(&history, &setting);
        if v.is_empty() {
            return Err(Error::forbidden(format!("{user} is not in room {room_id}")));
        }
        Ok(v)
    }

    pub async fn require_visible(&self, room_id: &RoomId, user: &UserId) -> Result<Visible> {
        self.visible_to(room_id, user).await
    }

    async fn history_visibility(&self, room_id: &RoomId) -> Result<String> {
        let state = self.current_state(room_id).await?;
        Ok(state
            .content_json(&StateEventType::RoomHistoryVisibility, "")
            .and_then(|c| c["history_visibility"].as_str().map(str::to_owned))
            .unwrap_or_else(|| "shared".into()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(v: &[(i64, &str)]) -> Vec<(i64, String)> {
        v.iter().map(|(p, m)| (*p, m.to_string())).collect()
    }

    #[test]
    fn shared_sees_from_start_until_leave() {
        let v = visible_ranges(&h(&[(10, "invite"), (12, "join"), (20, "leave")]), "shared");
        assert_eq!(v, Visible(vec![(i64::MIN, 20)]));
        assert!(v.contains(5) && v.contains(20) && !v.contains(21));
    }

    #[test]
    fn joined_sees_only_while_joined() {
        let v = visible_ranges(
            &h(&[(10, "invite"), (12, "join"), (20, "leave"), (30, "join")]),
            "joined",
        );
        assert_eq!(v, Visible(vec![(12, 20), (30, i64::MAX)]));
        assert!(!v.contains(11) && !v.contains(25));
    }

    #[test]
    fn invited_counts_from_the_invite() {
        let v = visible_ranges(&h(&[(10, "invite"), (12, "join")]), "invited");
        assert_eq!(v, Visible(vec![(10, i64::MAX)]));
    }

    #[test]
    fn never_joined_sees_nothing() {
        assert!(visible_ranges(&h(&[(10, "invite")]), "shared").is_empty());
        assert!(visible_ranges(&[], "joined").is_empty());
        assert!(!visible_ranges(&[], "world_readable").is_empty());
    }
}
