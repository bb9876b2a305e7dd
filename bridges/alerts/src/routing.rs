//! Routing rules: the first rule (in config order) whose lists all match the alert's source,
//! severity, ward and specialty (an empty list matches anything) decides where the alert is
//! posted and how it escalates. No match is a 422 for the sender: an alert nobody receives
//! must not be accepted silently.

use std::time::Duration;

use crate::alert::{Alert, Severity};
use crate::config::Config;

/// Where an alert (or an escalation step) goes.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Target {
    /// A bridge-managed room (`[[rooms]]`).
    Room(String),
    /// The current holder of an on-call role, in the role's room.
    Role(String),
    /// A DM between the bot and this user.
    User(String),
}

impl Target {
    pub fn parse(s: &str) -> Result<Self, String> {
        let (kind, id) = s.split_once(':').ok_or_else(|| {
            format!("target {s:?} must be room:<id>, role:<id> or user:@user:server")
        })?;
        match kind {
            "room" if !id.is_empty() => Ok(Self::Room(id.to_owned())),
            "role" if !id.is_empty() => Ok(Self::Role(id.to_owned())),
            "user" if id.starts_with('@') && id.contains(':') => Ok(Self::User(id.to_owned())),
            _ => Err(format!(
                "target {s:?} must be room:<id>, role:<id> or user:@user:server"
            )),
        }
    }

    /// The stored form (`room:icu`), also the managed-room key.
    pub fn key(&self) -> String {
        match self {
            Self::Room(id) => format!("room:{id}"),
            Self::Role(id) => format!("role:{id}"),
            Self::User(id) => format!("user:{id}"),
        }
    }
}

#[derive(Debug, Clone)]
pub struct Step {
    pub after: Duration,
    pub to: Target,
}

#[derive(Debug, Clone)]
pub struct Rule {
    pub name: String,
    sources: Vec<String>,
    severities: Vec<Severity>,
    wards: Vec<String>,
    specialties: Vec<String>,
    pub target: Target,
    pub escalation: Vec<Step>,
}

fn matches(list: &[String], v: Option<&str>) -> bool {
    list.is_empty() || v.is_some_and(|v| list.iter().any(|x| x == v))
}

impl Rule {
    pub fn matches(&self, a: &Alert) -> bool {
        matches(&self.sources, Some(&a.source))
            && (self.severities.is_empty() || self.severities.contains(&a.severity))
            && matches(&self.wards, a.ward.as_deref())
            && matches(&self.specialties, a.specialty.as_deref())
    }

    /// The escalation step after `done` steps, if any.
    pub fn step(&self, done: usize) -> Option<&Step> {
        self.escalation.get(done)
    }
}

#[derive(Debug, Clone, Default)]
pub struct Rules(Vec<Rule>);

impl Rules {
    pub fn from_config(cfg: &Config) -> Result<Self, String> {
        let mut out = Vec::new();
        for (i, r) in cfg.rules.iter().enumerate() {
            let at = |e: String| format!("configuration error: rules[{i}] ({:?}): {e}", r.name);
            if r.name.is_empty() || out.iter().any(|o: &Rule| o.name == r.name) {
                return Err(at("name must be set and unique".into()));
            }
            let target = Target::parse(&r.target).map_err(at)?;
            cfg.check_target(&target).map_err(at)?;
            let severities = r
                .severities
                .iter()
                .map(|s| Severity::parse(s).ok_or_else(|| at(format!("unknown severity {s:?}"))))
                .collect::<Result<_, _>>()?;
            for s in &r.sources {
                if cfg.source(s).is_none() {
                    return Err(at(format!("no [[sources]] with id {s:?}")));
                }
            }
            let mut escalation = Vec::new();
            for st in &r.escalation {
                let to = Target::parse(&st.to).map_err(at)?;
                cfg.check_target(&to).map_err(at)?;
                escalation.push(Step {
                    after: Duration::from_secs(st.after_secs),
                    to,
                });
            }
            out.push(Rule {
                name: r.name.clone(),
                sources: r.sources.clone(),
                severities,
                wards: r.wards.clone(),
                specialties: r.specialties.clone(),
                target,
                escalation,
            });
        }
        Ok(Self(out))
    }

    /// The first matching rule.
    pub fn route(&self, a: &Alert) -> Option<&Rule> {
        self.0.iter().find(|r| r.matches(a))
    }

    pub fn by_name(&self, name: &str) -> Option<&Rule> {
        self.0.iter().find(|r| r.name == name)
    }
}

#[cfg(test)]
#[allow(clippy::field_reassign_with_default)] // configs built field by field read best
mod tests {
    use super::*;
    use crate::alert::Kind;
    use crate::config::{RoleConfig, RoomConfig, RuleConfig, SourceConfig, StepConfig};

    fn cfg() -> Config {
        let mut c = Config::default();
        c.sources = ["news2", "lab"]
            .map(|id| SourceConfig {
                id: id.into(),
                secret: Some("s".into()),
                ..Default::default()
            })
            .to_vec();
        c.rooms = vec![RoomConfig {
            id: "ward7".into(),
            name: "Ward 7".into(),
            members: vec![],
        }];
        c.roles = vec![RoleConfig {
            id: "medreg-oncall".into(),
            ..Default::default()
        }];
        c.rules = vec![
            RuleConfig {
                name: "critical-lab".into(),
                sources: vec!["lab".into()],
                severities: vec!["critical".into()],
                target: "role:medreg-oncall".into(),
                ..Default::default()
            },
            RuleConfig {
                name: "ward7".into(),
                wards: vec!["ward-7".into()],
                target: "room:ward7".into(),
                escalation: vec![
                    StepConfig {
                        after_secs: 300,
                        to: "role:medreg-oncall".into(),
                    },
                    StepConfig {
                        after_secs: 600,
                        to: "user:@consultant:localhost".into(),
                    },
                ],
                ..Default::default()
            },
        ];
        c
    }

    fn alert(source: &str, sev: Severity, ward: Option<&str>) -> Alert {
        Alert {
            source: source.into(),
            alert_id: "1".into(),
            kind: Kind::Generic,
            severity: sev,
            title: "t".into(),
            text: "x".into(),
            patient: None,
            ward: ward.map(Into::into),
            specialty: None,
        }
    }

    #[test]
    fn first_matching_rule_wins() {
        let rules = cfg().rules().unwrap();
        let r = rules
            .route(&alert("lab", Severity::Critical, Some("ward-7")))
            .unwrap();
        assert_eq!(r.name, "critical-lab");
        assert_eq!(r.target, Target::Role("medreg-oncall".into()));
        let r = rules
            .route(&alert("lab", Severity::High, Some("ward-7")))
            .unwrap();
        assert_eq!(r.name, "ward7");
        assert_eq!(r.step(0).unwrap().after, Duration::from_secs(300));
        assert_eq!(
            r.step(1).unwrap().to,
            Target::User("@consultant:localhost".into())
        );
        assert!(r.step(2).is_none());
        // No ward given: the ward rule (non-empty list) does not match; nothing else does.
        assert!(rules.route(&alert("news2", Severity::High, None)).is_none());
    }

    #[test]
    fn bad_rules_are_refused_with_their_name() {
        for (field, value) in [
            ("target", "room:nope"),
            ("target", "pager:1"),
            ("target", "role:x"),
        ] {
            let mut c = cfg();
            if field == "target" {
                c.rules[1].target = value.into();
            }
            let err = c.rules().unwrap_err();
            assert!(err.contains("ward7"), "{err}");
        }
        let mut c = cfg();
        c.rules[0].severities = vec!["urgent".into()];
        assert!(c.rules().unwrap_err().contains("urgent"));
        let mut c = cfg();
        c.rules[0].sources = vec!["pharmacy".into()];
        assert!(c.rules().unwrap_err().contains("pharmacy"));
        let mut c = cfg();
        c.rules[1].escalation[0].to = "user:bob".into();
        assert!(c.rules().is_err());
    }
}
