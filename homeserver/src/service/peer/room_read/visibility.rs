//! History visibility for a *server*: may the requesting server see an event?
//!
//! A server sees an event if any of its users could (spec, history visibility), judged by the
//! `m.room.history_visibility` in force at the event and the memberships of the server's users
//! at the event. Both come from the stored history, by stream position:
//! - the settings in force come from `rooms::visibility::setting_spans`, the client-side rules'
//!   own: a change is judged under the settings before and after it (either may grant it), and
//!   history before the first known setting follows that first setting, not the spec default
//!   `shared` (a room joined over federation holds state from the join on, its backfilled
//!   history sits at older, negative positions: a `joined` room's past must not leak to a
//!   server whose users joined later). A room with no setting at all is `shared`;
//! - a user's membership at `p` is the "most joined" of theirs before and after it, so a user's
//!   own join and leave events count as seen by them.
//!
//! Rules, per setting: `world_readable`: visible. `shared`: visible if one of the server's users
//! was joined at the event or joined at any time after it. `invited`: one of its users was
//! invited or joined at the event. `joined`: one of its users was joined at the event. An
//! unrecognised setting counts as `joined` (fail closed).
//!
//! Outliers (events without a position: the state and auth chain fetched with a join or a
//! backfill) come from before the history we hold, so they are judged as that oldest history
//! (the first known setting) and, as we cannot place them, by the room's current setting too:
//! visible only if both are `world_readable`, or `shared` with one of the server's users ever
//! joined.

use crate::service::rooms::visibility::setting_spans;

/// Memberships from most to least joined.
fn joinedness(membership: Option<&str>) -> usize {
    match membership {
        Some("join") => 0,
        Some("knock") => 1,
        Some("invite") => 2,
        Some("ban") => 4,
        _ => 3,
    }
}

/// The last value in force at `pos` in a history sorted by position.
fn at(history: &[(i64, String)], pos: i64) -> Option<&str> {
    let n = history.partition_point(|(p, _)| *p <= pos);
    n.checked_sub(1).map(|i| history[i].1.as_str())
}

/// A user's membership at `pos`: the more joined of theirs just before and just after it.
fn most_joined(history: &[(i64, String)], pos: i64) -> Option<&str> {
    let (before, after) = (at(history, pos - 1), at(history, pos));
    if joinedness(before) < joinedness(after) {
        before
    } else {
        after
    }
}

/// What the requesting server's view of a room depends on, read once per request.
#[derive(Debug, Clone, Default)]
pub struct ServerView {
    /// `history_visibility` changes: `(pos, setting)`, oldest first.
    pub settings: Vec<(i64, String)>,
    /// Each of the server's users' membership changes, `(pos, membership)`, oldest first.
    pub members: Vec<Vec<(i64, String)>>,
    /// The room's setting now (for outliers).
    pub current: String,
}

impl ServerView {
    /// Whether the server may see an event at stream position `pos` (`None`: an outlier).
    pub fn can_see(&self, pos: Option<i64>) -> bool {
        let spans = setting_spans(&self.settings);
        let Some(p) = pos else {
            let ever_joined = self.members.iter().flatten().any(|(_, m)| m == "join");
            return [spans[0].2, self.current.as_str()]
                .iter()
                .all(|s| *s == "world_readable" || (*s == "shared" && ever_joined));
        };
        spans
            .iter()
            .filter(|(lo, hi, _)| *lo <= p && p <= *hi)
            .any(|(_, _, setting)| self.allows(setting, p))
    }

    /// Whether `setting` lets one of the server's users see the event at `p`.
    fn allows(&self, setting: &str, p: i64) -> bool {
        match setting {
            "world_readable" => true,
            "shared" => self.members.iter().any(|h| {
                most_joined(h, p) == Some("join")
                    || h.iter().any(|(q, m)| *q >= p && m.as_str() == "join")
            }),
            "invited" => self
                .members
                .iter()
                .any(|h| matches!(most_joined(h, p), Some("join" | "invite"))),
            _ => self
                .members
                .iter()
                .any(|h| most_joined(h, p) == Some("join")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(v: &[(i64, &str)]) -> Vec<(i64, String)> {
        v.iter().map(|(p, m)| (*p, m.to_string())).collect()
    }

    fn view(settings: &[(i64, &str)], members: &[&[(i64, &str)]], current: &str) -> ServerView {
        ServerView {
            settings: h(settings),
            members: members.iter().map(|m| h(m)).collect(),
            current: current.into(),
        }
    }

    #[test]
    fn joined_counts_only_while_a_user_is_joined() {
        let v = view(
            &[(3, "joined")],
            &[&[(10, "invite"), (12, "join"), (20, "leave")]],
            "joined",
        );
        assert!(!v.can_see(Some(5)), "before the server was in the room");
        assert!(!v.can_see(Some(10)), "its own invite under `joined`");
        assert!(v.can_see(Some(12)), "its own join event");
        assert!(v.can_see(Some(15)));
        assert!(v.can_see(Some(20)), "its own leave event");
        assert!(!v.can_see(Some(21)), "after it left");
        assert!(!v.can_see(None), "outliers follow the current setting");
    }

    #[test]
    fn invited_counts_from_the_invite() {
        let v = view(
            &[(3, "invited")],
            &[&[(10, "invite"), (12, "join")]],
            "invited",
        );
        assert!(!v.can_see(Some(9)));
        assert!(v.can_see(Some(10)) && v.can_see(Some(11)) && v.can_see(Some(30)));
    }

    #[test]
    fn shared_counts_history_before_a_later_join() {
        let v = view(
            &[(3, "shared")],
            &[&[(10, "join"), (20, "leave")]],
            "shared",
        );
        assert!(v.can_see(Some(1)) && v.can_see(Some(10)) && v.can_see(Some(20)));
        assert!(
            !v.can_see(Some(25)),
            "after the last user left, nothing new"
        );
        // A server that never had a user in the room sees nothing under `shared`.
        let none = view(&[(3, "shared")], &[], "world_readable");
        assert!(!none.can_see(Some(5)));
        assert!(
            !none.can_see(None),
            "nor the outliers from before its history"
        );
    }

    #[test]
    fn the_setting_in_force_at_each_event_applies() {
        // world_readable until 10, joined from then on; the server never joined.
        let v = view(&[(3, "world_readable"), (10, "joined")], &[], "joined");
        assert!(v.can_see(Some(5)));
        assert!(
            v.can_see(Some(10)),
            "the change itself: the looser of before and after"
        );
        assert!(!v.can_see(Some(11)));
        // Loosening later does not open earlier history.
        let v = view(
            &[(3, "joined"), (10, "world_readable")],
            &[],
            "world_readable",
        );
        assert!(!v.can_see(Some(5)));
        assert!(v.can_see(Some(10)) && v.can_see(Some(11)));
    }

    #[test]
    fn any_user_of_the_server_is_enough_and_unknown_settings_fail_closed() {
        let v = view(
            &[(3, "joined")],
            &[&[(10, "join"), (12, "leave")], &[(11, "join")]],
            "joined",
        );
        assert!(v.can_see(Some(15)), "the second user is still joined");
        let odd = view(&[(3, "org.example.custom")], &[&[(1, "invite")]], "shared");
        assert!(!odd.can_see(Some(5)));
        assert!(
            !odd.can_see(None),
            "outliers are judged by the first setting too"
        );
    }

    #[test]
    fn history_before_the_first_known_setting_follows_it() {
        // Joined over federation: state imported at 5, the server's user joined at 6, history
        // backfilled below 0. Under `joined`, that history is not the server's to see.
        let v = view(&[(5, "joined")], &[&[(6, "join")]], "joined");
        assert!(!v.can_see(Some(-3)) && !v.can_see(Some(5)));
        assert!(v.can_see(Some(6)));
        let v = view(&[(5, "shared")], &[&[(6, "join")]], "shared");
        assert!(v.can_see(Some(-3)));
        let v = view(&[(5, "world_readable"), (8, "joined")], &[], "joined");
        assert!(v.can_see(Some(-3)) && !v.can_see(Some(9)));
        // No setting at all: the spec's default, `shared`.
        let v = view(&[], &[&[(6, "join")]], "shared");
        assert!(v.can_see(Some(-3)));
    }

    #[test]
    fn outliers_follow_both_the_first_known_and_the_current_setting() {
        let joined_then_shared = view(&[(5, "joined"), (9, "shared")], &[&[(6, "join")]], "shared");
        assert!(!joined_then_shared.can_see(None), "from the `joined` past");
        let shared_then_joined = view(&[(5, "shared"), (9, "joined")], &[&[(6, "join")]], "joined");
        assert!(!shared_then_joined.can_see(None), "closed since");
        let shared = view(&[(5, "shared")], &[&[(6, "join"), (8, "leave")]], "shared");
        assert!(shared.can_see(None));
        let open = view(&[(5, "world_readable")], &[], "world_readable");
        assert!(open.can_see(None));
    }

    #[test]
    fn a_server_sees_what_its_user_would_see_as_a_client() {
        use crate::service::rooms::visibility::visible_ranges;
        let settings: [&[(i64, &str)]; 7] = [
            &[],
            &[(5, "joined")],
            &[(5, "invited")],
            &[(5, "joined"), (12, "shared")],
            &[(5, "shared"), (12, "invited"), (20, "joined")],
            &[
                (5, "world_readable"),
                (12, "joined"),
                (20, "org.example.custom"),
            ],
            &[(5, "joined"), (12, "world_readable")],
        ];
        let members: [&[(i64, &str)]; 5] = [
            &[(6, "join")],
            &[(10, "invite"), (12, "join"), (20, "leave")],
            &[(12, "invite"), (14, "leave")],
            &[(6, "join"), (14, "ban")],
            &[(6, "join"), (8, "leave"), (18, "invite"), (20, "join")],
        ];
        for s in settings {
            for m in members {
                let client = visible_ranges(&h(m), &h(s));
                let server = view(s, &[m], "joined");
                for p in -5..=30 {
                    assert_eq!(
                        server.can_see(Some(p)),
                        client.contains(p),
                        "settings {s:?}, member {m:?}, at {p}"
                    );
                }
            }
        }
    }
}
