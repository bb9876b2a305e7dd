#![allow(clippy::field_reassign_with_default, clippy::type_complexity)]
//! Engine tests with a recording [`Poster`] and a hand-moved clock: posting, escalation timers
//! (and their durability across a restart), acknowledgement rules, role handovers, and the
//! webhook's every refusal over real HTTP.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};

use handover_bridge_core::Clock;
use handover_bridge_core::bot::NewRoom;
use handover_bridge_core::store::Db;
use serde_json::{Value, json};

use crate::alert::{Alert, Kind, Severity};
use crate::config::{Config, RoleConfig, RoomConfig, RuleConfig, SourceConfig, StepConfig};
use crate::engine::{AcceptError, Accepted, Engine, Poster};
use crate::state::{AlertStore, MIGRATIONS};

mod callbacks_durable;
mod rota_callers;
mod webhook_http;

#[derive(Clone, Default)]
pub struct FakeClock(Arc<AtomicI64>);

impl FakeClock {
    pub fn advance_secs(&self, s: i64) {
        self.0.fetch_add(s * 1000, Ordering::SeqCst);
    }
}

impl Clock for FakeClock {
    fn now_ms(&self) -> i64 {
        self.0.load(Ordering::SeqCst)
    }
}

/// Records what the engine asks of Matrix.
#[derive(Clone, Default)]
pub struct FakePoster {
    pub log: Arc<Mutex<Vec<(String, String, Value)>>>,
    next: Arc<AtomicI64>,
}

impl FakePoster {
    fn id(&self, prefix: char) -> String {
        format!("{prefix}{}", self.next.fetch_add(1, Ordering::SeqCst))
    }
    fn push(&self, what: &str, room: &str, v: Value) {
        self.log.lock().unwrap().push((what.into(), room.into(), v));
    }
    /// Sent messages (room, content) that are alerts, not edits or notices.
    pub fn alerts(&self) -> Vec<(String, Value)> {
        self.entries("send")
            .into_iter()
            .filter(|(_, c)| {
                c.get("org.handover.alert").is_some() && c.get("m.new_content").is_none()
            })
            .collect()
    }
    pub fn entries(&self, what: &str) -> Vec<(String, Value)> {
        let log = self.log.lock().unwrap();
        log.iter()
            .filter(|(w, _, _)| w == what)
            .map(|(_, r, v)| (r.clone(), v.clone()))
            .collect()
    }
}

impl Poster for FakePoster {
    async fn create_room(&self, spec: NewRoom) -> anyhow::Result<String> {
        let id = format!("!{}:localhost", self.id('r'));
        let invite: Vec<String> = spec.invite.iter().map(|u| u.to_string()).collect();
        self.push(
            "create",
            &id,
            json!({"name": spec.name, "alias": spec.alias_localpart, "invite": invite}),
        );
        Ok(id)
    }
    async fn send(&self, room_id: &str, content: Value) -> anyhow::Result<String> {
        let mut content = content;
        let id = format!("${}", self.id('e'));
        content["__event_id"] = json!(id);
        self.push("send", room_id, content);
        Ok(id)
    }
    async fn invite(&self, room_id: &str, user: &str) -> anyhow::Result<()> {
        self.push("invite", room_id, json!(user));
        Ok(())
    }
    async fn kick(&self, room_id: &str, user: &str, _reason: &str) -> anyhow::Result<()> {
        self.push("kick", room_id, json!(user));
        Ok(())
    }
}

pub fn config() -> Config {
    let mut c = Config::default();
    c.appservice.server_name = "localhost".into();
    c.appservice.sender_localpart = "alerts".into();
    c.sources = vec![SourceConfig {
        id: "news2".into(),
        secret: Some("s3cret".into()),
        ..Default::default()
    }];
    c.rooms = vec![RoomConfig {
        id: "ward7".into(),
        name: "Ward 7 alerts".into(),
        members: vec!["@nurse:localhost".into()],
    }];
    c.roles = vec![RoleConfig {
        id: "medreg-oncall".into(),
        name: "Medical registrar".into(),
        eligible: vec![],
    }];
    c.rules = vec![RuleConfig {
        name: "ward7".into(),
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
    }];
    c
}

pub fn alert(id: &str) -> Alert {
    Alert {
        source: "news2".into(),
        alert_id: id.into(),
        kind: Kind::Generic,
        severity: Severity::High,
        title: "NEWS2 7".into(),
        text: "Bed 4".into(),
        patient: Some("Patient/p1".into()),
        ward: None,
        specialty: None,
    }
}

pub fn engine_on(db: Db, clock: &FakeClock, poster: &FakePoster) -> Engine<FakePoster> {
    Engine::new(
        Arc::new(config()),
        AlertStore::new(db),
        poster.clone(),
        Arc::new(clock.clone()),
        None,
    )
    .unwrap()
}

fn ev(kind: &str, sender: &str, id: &str, content: Value) -> Value {
    json!({"type": kind, "sender": sender, "event_id": id, "content": content})
}

fn reaction(sender: &str, id: &str, target: &str, key: &str) -> Value {
    ev(
        "m.reaction",
        sender,
        id,
        json!({"m.relates_to": {"rel_type": "m.annotation", "event_id": target, "key": key}}),
    )
}

#[tokio::test]
async fn escalation_follows_the_steps_at_the_right_time_then_stops_on_ack() {
    let (clock, poster) = (FakeClock::default(), FakePoster::default());
    let db = Db::memory(MIGRATIONS).unwrap();
    let e = engine_on(db.clone(), &clock, &poster);
    clock.advance_secs(1_750_000_000);
    // A holder for the role, from the rota.
    let slot = crate::roles::Slot {
        role: "medreg-oncall".into(),
        user_id: "@reg:localhost".into(),
        start_ms: 0,
        end_ms: i64::MAX,
    };
    e.store
        .import_rota(vec![slot], "test".into())
        .await
        .unwrap();

    assert!(matches!(
        e.accept(alert("a1"), "h".into()).await,
        Ok(Accepted::New { .. })
    ));
    e.tick().await.unwrap();
    let posts = poster.alerts();
    assert_eq!(posts.len(), 1, "posted once to the ward room");
    let created = poster.entries("create");
    assert!(
        created
            .iter()
            .any(|(_, c)| c["name"] == "Ward 7 alerts" && c["invite"][0] == "@nurse:localhost")
    );
    let s = e.status("news2", "a1").await.unwrap().unwrap();
    assert_eq!(s["state"], "open");
    assert_eq!(s["next_escalation_at"], clock.now_ms() + 300_000);

    clock.advance_secs(299);
    e.tick().await.unwrap();
    assert_eq!(poster.alerts().len(), 1, "not yet due");
    clock.advance_secs(1);
    e.tick().await.unwrap();
    let posts = poster.alerts();
    assert_eq!(posts.len(), 2, "escalated to the role");
    assert_eq!(posts[1].1["m.mentions"]["user_ids"][0], "@reg:localhost");
    assert!(
        posts[1].1["body"]
            .as_str()
            .unwrap()
            .contains("Escalated (step 1)")
    );
    e.tick().await.unwrap();
    assert_eq!(poster.alerts().len(), 2, "a step fires once");

    // A read receipt is not an acknowledgement.
    let first_event = posts[0].1["__event_id"].as_str().unwrap().to_owned();
    let receipt = json!({"type": "m.receipt", "content": {first_event.clone(): {"m.read": {"@nurse:localhost": {"ts": 5}}}}});
    e.on_event("!r", &receipt).await.unwrap();
    let s = e.status("news2", "a1").await.unwrap().unwrap();
    assert_eq!(s["read_by"][0]["user_id"], "@nurse:localhost");
    assert_eq!(s["state"], "open");

    clock.advance_secs(600);
    e.tick().await.unwrap();
    let posts = poster.alerts();
    assert_eq!(posts.len(), 3, "escalated to the consultant");
    assert_eq!(
        posts[2].1["m.mentions"]["user_ids"][0],
        "@consultant:localhost"
    );
    let s = e.status("news2", "a1").await.unwrap().unwrap();
    assert_eq!(s["escalated"].as_array().unwrap().len(), 2);
    assert_eq!(s["escalated"][0]["recipient"], "@reg:localhost");
    assert!(s["next_escalation_at"].is_null(), "no step left");

    // Reactions that do not count: the bot's own, another key. Then ✅ on the role post.
    let role_event = posts[1].1["__event_id"].as_str().unwrap().to_owned();
    e.on_event(
        "!r",
        &reaction("@alerts:localhost", "$x1", &role_event, "✅"),
    )
    .await
    .unwrap();
    e.on_event("!r", &reaction("@reg:localhost", "$x2", &role_event, "👀"))
        .await
        .unwrap();
    assert_eq!(
        e.status("news2", "a1").await.unwrap().unwrap()["state"],
        "open"
    );
    clock.advance_secs(10);
    e.on_event("!r", &reaction("@reg:localhost", "$x3", &role_event, "✅"))
        .await
        .unwrap();
    let s = e.status("news2", "a1").await.unwrap().unwrap();
    assert_eq!(s["state"], "acknowledged");
    assert_eq!(s["acknowledged"]["by"], "@reg:localhost");
    assert_eq!(s["acknowledged"]["via"], "reaction");
    // Every post was edited to show it.
    let edits: Vec<_> = poster
        .entries("send")
        .into_iter()
        .filter(|(_, c)| c.get("m.new_content").is_some())
        .collect();
    assert_eq!(edits.len(), 3);
    assert!(edits.iter().all(|(_, c)| {
        c["m.new_content"]["body"]
            .as_str()
            .unwrap()
            .contains("Acknowledged by @reg:localhost")
    }));
    // A second acknowledgement changes nothing.
    e.on_event(
        "!r",
        &reaction("@nurse:localhost", "$x4", &first_event, "✅"),
    )
    .await
    .unwrap();
    assert_eq!(
        e.status("news2", "a1").await.unwrap().unwrap()["acknowledged"]["by"],
        "@reg:localhost"
    );
    assert_eq!(db.audit_rows(Some("alert.escalated")).unwrap().len(), 2);
    assert_eq!(db.audit_rows(Some("alert.acknowledged")).unwrap().len(), 1);
}

#[tokio::test]
async fn reply_acknowledges_and_ack_before_due_stops_escalation() {
    let (clock, poster) = (FakeClock::default(), FakePoster::default());
    let e = engine_on(Db::memory(MIGRATIONS).unwrap(), &clock, &poster);
    e.accept(alert("a2"), "h".into()).await.unwrap();
    e.tick().await.unwrap();
    let ev_id = poster.alerts()[0].1["__event_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let reply = ev(
        "m.room.message",
        "@nurse:localhost",
        "$r1",
        json!({"msgtype": "m.text", "body": "on it", "m.relates_to": {"m.in_reply_to": {"event_id": ev_id}}}),
    );
    e.on_event("!r", &reply).await.unwrap();
    let s = e.status("news2", "a2").await.unwrap().unwrap();
    assert_eq!(
        (s["state"].as_str(), s["acknowledged"]["via"].as_str()),
        (Some("acknowledged"), Some("reply"))
    );
    clock.advance_secs(10_000);
    e.tick().await.unwrap();
    assert_eq!(
        poster.alerts().len(),
        1,
        "no escalation after acknowledgement"
    );
}

#[tokio::test]
async fn idempotent_by_source_and_alert_id() {
    let (clock, poster) = (FakeClock::default(), FakePoster::default());
    let e = engine_on(Db::memory(MIGRATIONS).unwrap(), &clock, &poster);
    assert!(matches!(
        e.accept(alert("a3"), "h1".into()).await,
        Ok(Accepted::New { .. })
    ));
    assert!(matches!(
        e.accept(alert("a3"), "h1".into()).await,
        Ok(Accepted::Duplicate)
    ));
    assert!(matches!(
        e.accept(alert("a3"), "h2".into()).await,
        Err(AcceptError::Conflict)
    ));
    e.tick().await.unwrap();
    e.tick().await.unwrap();
    assert_eq!(poster.alerts().len(), 1);
    let mut other = alert("a4");
    other.source = "lab".into();
    let mut cfg = config();
    cfg.rules[0].sources = vec!["news2".into()];
    let e2 = Engine::new(
        Arc::new(cfg),
        e.store.clone(),
        poster.clone(),
        Arc::new(clock.clone()),
        None,
    )
    .unwrap();
    assert!(matches!(
        e2.accept(other, "h".into()).await,
        Err(AcceptError::NoRoute)
    ));
}

#[tokio::test]
async fn restart_mid_escalation_neither_loses_nor_repeats() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("alerts.db");
    let (clock, poster) = (FakeClock::default(), FakePoster::default());
    {
        let e = engine_on(Db::open(&path, MIGRATIONS).unwrap(), &clock, &poster);
        e.accept(alert("a5"), "h".into()).await.unwrap();
        e.tick().await.unwrap();
    } // "crash": the engine and its connection are gone
    clock.advance_secs(400); // the step fell due while the bridge was down
    let e = engine_on(Db::open(&path, MIGRATIONS).unwrap(), &clock, &poster);
    e.tick().await.unwrap();
    assert_eq!(
        poster.alerts().len(),
        2,
        "the missed step fires after restart"
    );
    let e = engine_on(Db::open(&path, MIGRATIONS).unwrap(), &clock, &poster);
    e.tick().await.unwrap();
    assert_eq!(
        poster.alerts().len(),
        2,
        "and is not repeated by another restart"
    );
}

#[tokio::test]
async fn role_handover_brings_the_new_holder_into_open_alerts() {
    let (clock, poster) = (FakeClock::default(), FakePoster::default());
    let mut cfg = config();
    cfg.rules[0].target = "role:medreg-oncall".into();
    let e = Engine::new(
        Arc::new(cfg),
        AlertStore::new(Db::memory(MIGRATIONS).unwrap()),
        poster.clone(),
        Arc::new(clock.clone()),
        None,
    )
    .unwrap();
    let slot = crate::roles::Slot {
        role: "medreg-oncall".into(),
        user_id: "@day:localhost".into(),
        start_ms: 0,
        end_ms: i64::MAX,
    };
    e.store
        .import_rota(vec![slot], "test".into())
        .await
        .unwrap();
    e.accept(alert("a6"), "h".into()).await.unwrap();
    e.tick().await.unwrap();
    let create = poster.entries("create");
    assert_eq!(
        create[0].1["alias"], "medreg-oncall",
        "role room published as #medreg-oncall"
    );
    assert_eq!(poster.entries("invite")[0].1, "@day:localhost");
    // !oncall take by another registrar.
    let cmd = ev(
        "m.room.message",
        "@locum:localhost",
        "$c1",
        json!({"msgtype": "m.text", "body": "!oncall take medreg-oncall"}),
    );
    e.on_event("!dm", &cmd).await.unwrap();
    assert!(
        poster
            .entries("invite")
            .iter()
            .any(|(_, u)| u == "@locum:localhost")
    );
    assert!(
        poster
            .entries("kick")
            .iter()
            .any(|(_, u)| u == "@day:localhost")
    );
    let reposts: Vec<_> = poster
        .alerts()
        .into_iter()
        .filter(|(_, c)| c["m.mentions"]["user_ids"][0] == "@locum:localhost")
        .collect();
    assert_eq!(
        reposts.len(),
        1,
        "the open alert was posted again for the new holder"
    );
    // The repost acknowledges too.
    let id = reposts[0].1["__event_id"].as_str().unwrap().to_owned();
    e.on_event("!r", &reaction("@locum:localhost", "$x", &id, "✅"))
        .await
        .unwrap();
    assert_eq!(
        e.status("news2", "a6").await.unwrap().unwrap()["acknowledged"]["by"],
        "@locum:localhost"
    );
    // Someone from another server may not take the role; the refusal is audited.
    let cmd = ev(
        "m.room.message",
        "@x:evil.example",
        "$c2",
        json!({"msgtype": "m.text", "body": "!oncall take medreg-oncall"}),
    );
    e.on_event("!dm", &cmd).await.unwrap();
    assert_eq!(
        e.store
            .holder("medreg-oncall".into(), clock.now_ms())
            .await
            .unwrap()
            .as_deref(),
        Some("@locum:localhost")
    );
    assert_eq!(
        e.store.db.audit_rows(Some("role.command")).unwrap()[0].outcome,
        "denied"
    );
}
