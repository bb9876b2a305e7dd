//! The audit record: who did what to what, with what outcome. Metadata only.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// How the audited action ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    Success,
    Failure,
    /// Refused by a governance policy rule (the record's `rule` names it).
    Denied,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Success => "success",
            Outcome::Failure => "failure",
            Outcome::Denied => "denied",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "success" => Some(Outcome::Success),
            "failure" => Some(Outcome::Failure),
            "denied" => Some(Outcome::Denied),
            _ => None,
        }
    }
}

/// Keys that must never reach the trail: it is evidence kept for years and read by many, so a
/// caller's slip must not turn it into a store of secrets or clinical content.
const FORBIDDEN_KEY_PARTS: &[&str] = &["password", "token", "secret", "body", "content"];

/// Longest string value kept in `details`; metadata is short, anything longer is suspect.
const MAX_DETAIL_CHARS: usize = 256;

/// An entry before it joins the chain.
#[derive(Debug, Clone, PartialEq)]
pub struct NewEntry {
    /// Unix milliseconds.
    pub ts: i64,
    /// Who acted: a user id, the login name tried, or `admin-cli`.
    pub actor: String,
    /// A stable dotted name, e.g. `login`, `room.create`, `policy.denial`.
    pub action: String,
    /// What was acted on (user id, room id, ...), if anything.
    pub target: Option<String>,
    pub outcome: Outcome,
    /// The policy rule id, for denials.
    pub rule: Option<String>,
    /// A small object of metadata (ids, counts, flags, addresses).
    pub details: Map<String, Value>,
}

impl NewEntry {
    pub fn new(ts: i64, actor: &str, action: &str, outcome: Outcome) -> Self {
        Self {
            ts,
            actor: actor.to_owned(),
            action: action.to_owned(),
            target: None,
            outcome,
            rule: None,
            details: Map::new(),
        }
    }

    pub fn target(mut self, target: &str) -> Self {
        self.target = Some(target.to_owned());
        self
    }

    pub fn rule(mut self, rule: &str) -> Self {
        self.rule = Some(rule.to_owned());
        self
    }

    /// Adds one metadata field. Keys that look like secrets or content are dropped and long
    /// strings cut, so a mistake at a call site cannot leak into the permanent record.
    pub fn detail(mut self, key: &str, value: impl Into<Value>) -> Self {
        let lower = key.to_ascii_lowercase();
        if FORBIDDEN_KEY_PARTS.iter().any(|p| lower.contains(p)) {
            return self;
        }
        let value = match value.into() {
            Value::String(s) if s.chars().count() > MAX_DETAIL_CHARS => {
                Value::String(s.chars().take(MAX_DETAIL_CHARS).collect())
            }
            v => v,
        };
        self.details.insert(key.to_owned(), value);
        self
    }
}

/// An entry in the chain.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditRecord {
    /// 1, 2, 3, ... without gaps.
    pub seq: i64,
    pub ts: i64,
    pub actor: String,
    pub action: String,
    pub target: Option<String>,
    pub outcome: Outcome,
    pub rule: Option<String>,
    pub details: Map<String, Value>,
    /// `hash` of the previous entry (`GENESIS_HASH` for seq 1), lowercase hex.
    pub prev_hash: String,
    /// SHA-256 of `chain::canonical_bytes(self)`, lowercase hex.
    pub hash: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_and_content_never_enter_details() {
        let e = NewEntry::new(1, "@a:x", "login", Outcome::Failure)
            .detail("password", "hunter2")
            .detail("access_token", "syt_x")
            .detail("body", "patient notes")
            .detail("ip", "10.0.0.1")
            .detail("device_id", "ABC")
            .detail("note", "x".repeat(1000));
        let keys: Vec<&str> = e.details.keys().map(String::as_str).collect();
        assert_eq!(keys, ["device_id", "ip", "note"]);
        assert_eq!(e.details["note"].as_str().unwrap().len(), MAX_DETAIL_CHARS);
    }

    #[test]
    fn outcome_round_trips() {
        for o in [Outcome::Success, Outcome::Failure, Outcome::Denied] {
            assert_eq!(Outcome::parse(o.as_str()), Some(o));
        }
        assert_eq!(Outcome::parse("ok"), None);
    }
}
