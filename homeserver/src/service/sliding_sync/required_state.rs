//! Which state events a `required_state` config asks for: `[type, state_key]` pairs where
//! either may be `*`, and the state key may be `$ME` (the user) or, for members, `$LAZY` (the
//! senders of the timeline events being sent).

use std::collections::HashSet;

use crate::store::rooms::StoredEvent;

const WILDCARD: &str = "*";
const ME: &str = "$ME";
const LAZY: &str = "$LAZY";

/// Whether the config asks for lazy-loaded members.
pub fn is_lazy(config: &[(String, String)]) -> bool {
    config
        .iter()
        .any(|(t, k)| k == LAZY && t == "m.room.member")
}

/// Keeps the events of `state` that `config` asks for.
pub fn select(
    state: Vec<StoredEvent>,
    config: &[(String, String)],
    user: &str,
    timeline_senders: &HashSet<&str>,
) -> Vec<StoredEvent> {
    state
        .into_iter()
        .filter(|e| wanted(e, config, user, timeline_senders))
        .collect()
}

fn wanted(
    e: &StoredEvent,
    config: &[(String, String)],
    user: &str,
    timeline_senders: &HashSet<&str>,
) -> bool {
    let Some(key) = e.state_key.as_deref() else {
        return false;
    };
    config.iter().any(|(t, k)| {
        let type_ok = t == WILDCARD || *t == e.kind;
        let key_ok = match k.as_str() {
            WILDCARD => true,
            ME => key == user,
            LAZY => e.kind == "m.room.member" && timeline_senders.contains(key),
            exact => key == exact,
        };
        type_ok && key_ok
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(kind: &str, key: &str) -> StoredEvent {
        StoredEvent {
            event_id: format!("$e{kind}{key}")
                .replace(['@', ':', '.'], "_")
                .try_into()
                .unwrap(),
            room_id: "!r:x".try_into().unwrap(),
            pos: Some(1),
            sender: "@a:x".try_into().unwrap(),
            kind: kind.into(),
            state_key: Some(key.into()),
            origin_server_ts: 0,
            json: "{}".into(),
            unsigned: None,
            redacted_because: None,
            txn: None,
        }
    }

    fn keys(v: &[StoredEvent]) -> Vec<(String, String)> {
        v.iter()
            .map(|e| (e.kind.clone(), e.state_key.clone().unwrap()))
            .collect()
    }

    fn state() -> Vec<StoredEvent> {
        vec![
            ev("m.room.name", ""),
            ev("m.room.topic", ""),
            ev("m.room.member", "@a:x"),
            ev("m.room.member", "@b:x"),
            ev("m.room.member", "@me:x"),
        ]
    }

    fn cfg(v: &[(&str, &str)]) -> Vec<(String, String)> {
        v.iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    }

    #[test]
    fn exact_me_and_lazy() {
        let senders: HashSet<&str> = ["@b:x"].into();
        let c = cfg(&[
            ("m.room.name", ""),
            ("m.room.member", "$LAZY"),
            ("m.room.member", "$ME"),
        ]);
        assert!(is_lazy(&c));
        let got = keys(&select(state(), &c, "@me:x", &senders));
        assert_eq!(
            got,
            cfg(&[
                ("m.room.name", ""),
                ("m.room.member", "@b:x"),
                ("m.room.member", "@me:x")
            ])
        );
    }

    #[test]
    fn wildcards() {
        let none = HashSet::new();
        let all = select(state(), &cfg(&[("*", "*")]), "@me:x", &none);
        assert_eq!(all.len(), 5);
        let members = select(state(), &cfg(&[("m.room.member", "*")]), "@me:x", &none);
        assert_eq!(members.len(), 3);
        let empty_keys = select(state(), &cfg(&[("*", "")]), "@me:x", &none);
        assert_eq!(
            keys(&empty_keys),
            cfg(&[("m.room.name", ""), ("m.room.topic", "")])
        );
        assert!(select(state(), &[], "@me:x", &none).is_empty());
    }
}
