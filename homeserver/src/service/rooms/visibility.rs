//! History visibility: which stream positions of a room a user may read, from the room's
//! `m.room.history_visibility` over time and the user's membership over time (spec, "History
//! visibility"; docs/ARCHITECTURE.md).
//!
//! Each event is judged by the setting in force at it, so loosening a room later (say to
//! `world_readable`) does not open what was sent before. The result stays a short list of
//! position ranges, computed per request from two indexed histories: every read path filters
//! with `Visible::contains` and pages within `Visible::upper`, set-based, with no lookup per event.
//!
//! - The setting at an event is the one after the latest change at or before it; a change
//!   itself is judged by the looser of the settings before and after it. Events before the
//!   first change we hold follow that first setting (a room joined over federation has its
//!   state from the join on, its backfilled history is older); a room with none is `shared`
//!   (the spec's default). An unknown setting counts as `joined` (fail closed). These spans
//!   (`setting_spans`) are shared with the server-side rules, so both judge alike.
//! - `world_readable`: visible to anyone, but a user who was never in the room reads only while
//!   the room is world readable *now* (no peeking into a room that has since closed).
//! - `shared`: visible if the user was joined at the event or joined at any time after it.
//! - `invited`: visible if the user was invited or joined at the event.
//! - `joined`: visible if the user was joined at the event.
//!
//! A user's own join and leave (or kick, ban) events count as seen by them.

pub use crate::service::room_state::creators;
use ruma::{RoomId, UserId};

use super::RoomService;
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

/// The spans during which `admits(membership)` held, each from the event that started it to
/// the one that ended it (inclusive: that event is about the user).
fn spans(history: &[(i64, String)], admits: impl Fn(&str) -> bool) -> Vec<(i64, i64)> {
    let mut out = Vec::new();
    let mut start: Option<i64> = None;
    for (pos, m) in history {
        match (start, admits(m)) {
            (None, true) => start = Some(*pos),
            (Some(s), false) => {
                out.push((s, *pos));
                start = None;
            }
            _ => {}
        }
    }
    if let Some(s) = start {
        out.push((s, i64::MAX));
    }
    out
}

/// The settings in force over the stream: `(from, to, setting)`, both ends included, oldest
/// first, from the room's `(pos, history_visibility)` changes (oldest first). Each runs from its
/// change to the next one, so a change is judged under the settings before and after it (either
/// may grant it). The first known setting also covers what came before it: history older than
/// the state we hold (backfill of a room joined over federation) gets no benefit of the doubt.
/// A room with none is `shared` throughout. Shared with the server-side rules
/// (`peer/room_read/visibility.rs`), so clients and servers are judged alike.
pub fn setting_spans(settings: &[(i64, String)]) -> Vec<(i64, i64, &str)> {
    if settings.is_empty() {
        return vec![(i64::MIN, i64::MAX, "shared")];
    }
    settings
        .iter()
        .enumerate()
        .map(|(i, (pos, setting))| {
            let start = if i == 0 { i64::MIN } else { *pos };
            let end = settings.get(i + 1).map_or(i64::MAX, |(p, _)| *p);
            (start, end, setting.as_str())
        })
        .collect()
}

/// Computes what a user may see from their `(pos, membership)` history and the room's
/// `(pos, history_visibility)` changes (module docs), both oldest first.
pub fn visible_ranges(memberships: &[(i64, String)], settings: &[(i64, String)]) -> Visible {
    let joined = spans(memberships, |m| m == "join");
    let invited = spans(memberships, |m| m == "join" || m == "invite");
    // Joined at the event or at any time after it: everything up to the end of the last join.
    let shared: Vec<(i64, i64)> = joined
        .last()
        .map(|(_, end)| (i64::MIN, *end))
        .into_iter()
        .collect();
    let current = settings.last().map_or("shared", |(_, s)| s.as_str());
    let world: Vec<(i64, i64)> = if memberships.is_empty() && current != "world_readable" {
        vec![]
    } else {
        vec![(i64::MIN, i64::MAX)]
    };
    let mut out: Vec<(i64, i64)> = Vec::new();
    for (lo, hi, setting) in setting_spans(settings) {
        let allowed = match setting {
            "world_readable" => &world,
            "shared" => &shared,
            "invited" => &invited,
            _ => &joined,
        };
        out.extend(
            allowed
                .iter()
                .map(|(a, b)| ((*a).max(lo), (*b).min(hi)))
                .filter(|(a, b)| a <= b),
        );
    }
    out.sort_unstable();
    let mut merged: Vec<(i64, i64)> = Vec::with_capacity(out.len());
    for (a, b) in out {
        match merged.last_mut() {
            Some(last) if a <= last.1.saturating_add(1) => last.1 = last.1.max(b),
            _ => merged.push((a, b)),
        }
    }
    Visible(merged)
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
        let v = visible_ranges(&h.memberships, &h.settings);
        if v.is_empty() {
            return Err(Error::forbidden(format!("{user} is not in room {room_id}")));
        }
        Ok(v)
    }

    pub async fn require_visible(&self, room_id: &RoomId, user: &UserId) -> Result<Visible> {
        self.visible_to(room_id, user).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(v: &[(i64, &str)]) -> Vec<(i64, String)> {
        v.iter().map(|(p, m)| (*p, m.to_string())).collect()
    }

    const MIN: i64 = i64::MIN;
    const MAX: i64 = i64::MAX;

    #[test]
    fn shared_sees_from_start_until_leave() {
        let v = visible_ranges(
            &h(&[(10, "invite"), (12, "join"), (20, "leave")]),
            &h(&[(1, "shared")]),
        );
        assert_eq!(v, Visible(vec![(MIN, 20)]));
        assert!(v.contains(5) && v.contains(20) && !v.contains(21));
    }

    #[test]
    fn shared_includes_what_was_sent_before_a_rejoin() {
        let v = visible_ranges(
            &h(&[(10, "join"), (20, "leave"), (30, "join")]),
            &h(&[(1, "shared")]),
        );
        assert_eq!(v, Visible(vec![(MIN, MAX)]));
    }

    #[test]
    fn joined_sees_only_while_joined() {
        let v = visible_ranges(
            &h(&[(10, "invite"), (12, "join"), (20, "leave"), (30, "join")]),
            &h(&[(3, "joined")]),
        );
        assert_eq!(v, Visible(vec![(12, 20), (30, MAX)]));
        assert!(!v.contains(11) && !v.contains(25));
    }

    #[test]
    fn invited_counts_from_the_invite() {
        let v = visible_ranges(&h(&[(10, "invite"), (12, "join")]), &h(&[(3, "invited")]));
        assert_eq!(v, Visible(vec![(10, MAX)]));
    }

    #[test]
    fn never_joined_sees_nothing_unless_world_readable_now() {
        assert!(visible_ranges(&h(&[(10, "invite")]), &h(&[(3, "shared")])).is_empty());
        assert!(visible_ranges(&[], &h(&[(3, "joined")])).is_empty());
        assert!(visible_ranges(&[], &[]).is_empty());
        let v = visible_ranges(&[], &h(&[(3, "world_readable")]));
        assert_eq!(v, Visible(vec![(MIN, MAX)]));
        // World readable once, closed since: no peeking in from outside.
        let closed = h(&[(3, "world_readable"), (50, "joined")]);
        assert!(visible_ranges(&[], &closed).is_empty());
        // A member joining later still sees what was world readable, not what was `joined`.
        let v = visible_ranges(&h(&[(60, "join")]), &closed);
        assert_eq!(v, Visible(vec![(MIN, 50), (60, MAX)]));
    }

    #[test]
    fn loosening_to_world_readable_does_not_open_older_history() {
        let settings = h(&[(3, "joined"), (50, "world_readable")]);
        let v = visible_ranges(&[], &settings);
        assert_eq!(v, Visible(vec![(50, MAX)]));
        assert!(!v.contains(10) && v.contains(50) && v.contains(51));
        // A member who joined at 30 sees from their join, not the `joined` history before it.
        let v = visible_ranges(&h(&[(30, "join")]), &settings);
        assert_eq!(v, Visible(vec![(30, MAX)]));
    }

    #[test]
    fn a_change_is_judged_by_the_looser_setting_and_unknown_ones_fail_closed() {
        let v = visible_ranges(&h(&[(60, "join")]), &h(&[(3, "shared"), (50, "joined")]));
        assert_eq!(v, Visible(vec![(MIN, 50), (60, MAX)]));
        let v = visible_ranges(&h(&[(10, "join")]), &h(&[(3, "org.example.custom")]));
        assert_eq!(v, Visible(vec![(10, MAX)]));
        assert!(!v.contains(5));
    }

    #[test]
    fn history_older_than_the_first_known_setting_follows_it() {
        // Joined over federation: state imported at 5, join at 6, history backfilled below 0.
        let v = visible_ranges(&h(&[(6, "join")]), &h(&[(5, "joined")]));
        assert!(!v.contains(-3) && !v.contains(5) && v.contains(6));
        let v = visible_ranges(&h(&[(6, "join")]), &h(&[(5, "shared")]));
        assert!(v.contains(-3));
        // No setting at all: the spec's default, `shared`.
        let v = visible_ranges(&h(&[(6, "join")]), &[]);
        assert_eq!(v, Visible(vec![(MIN, MAX)]));
    }
}
