//! Exports hold the person's data and nothing secret; non-admins are refused and audited.

use std::io::{Cursor, Read};

use ruma::api::error::ErrorKind;
use ruma::events::TimelineEventType;
use serde_json::{Value, json};

use super::{ACTION_EXPORT, Requester};
use crate::service::test_util::{self, is_kind};
use crate::service::users::test_login;
use crate::service::{Services, test_services};

fn files(zip: Vec<u8>) -> std::collections::BTreeMap<String, Vec<u8>> {
    let mut a = zip::ZipArchive::new(Cursor::new(zip)).unwrap();
    let mut out = std::collections::BTreeMap::new();
    for i in 0..a.len() {
        let mut f = a.by_index(i).unwrap();
        let mut b = Vec::new();
        f.read_to_end(&mut b).unwrap();
        out.insert(f.name().unwrap().to_string(), b);
    }
    out
}

fn json_of(files: &std::collections::BTreeMap<String, Vec<u8>>, name: &str) -> Value {
    serde_json::from_slice(&files[name]).unwrap()
}

async fn export(s: &Services, by: Requester<'_>, user: &ruma::UserId) -> Vec<u8> {
    let (_, out) = s
        .sar
        .export(by, user, Cursor::new(Vec::new()))
        .await
        .unwrap();
    out.into_inner()
}

#[tokio::test]
async fn export_holds_sent_mentions_encrypted_and_audit_but_no_secrets() {
    let (s, _d) = test_services();
    let (alice, alice_token) = test_login(&s.users, "alice", "a long password").await;
    let bob = test_util::user(&s, "bob").await;
    let room = test_util::room(&s, &bob, "ward 7", false).await;
    test_util::join(&s, &room, &bob, &alice.user_id).await;
    test_util::text(&s, &room, &alice.user_id, "handover at 8").await;
    test_util::text(&s, &room, &bob, "thanks @alice:localhost, seen").await;
    test_util::text(&s, &room, &bob, "unrelated").await;
    let cipher = json!({"algorithm": "m.megolm.v1.aes-sha2", "ciphertext": "AwgAEnB4opaque",
                        "sender_key": "k", "session_id": "s", "device_id": "D"});
    test_util::send(
        &s,
        &room,
        &alice.user_id,
        TimelineEventType::RoomEncrypted,
        cipher,
    )
    .await;

    let zip = export(&s, Requester::Cli, &alice.user_id).await;
    let f = files(zip.clone());
    for name in [
        "account.json",
        "sessions.json",
        "rooms.json",
        "events_sent.json",
        "events_mentioning.json",
        "media.json",
        "audit.json",
        "export.json",
        "index.html",
    ] {
        assert!(f.contains_key(name), "{name} missing: {:?}", f.keys());
    }
    assert_eq!(json_of(&f, "account.json")["user_id"], "@alice:localhost");
    let sent = json_of(&f, "events_sent.json");
    let bodies: Vec<_> = sent
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["content"]["body"].as_str())
        .collect();
    assert!(bodies.contains(&"handover at 8"), "{sent}");
    let enc = sent
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["type"] == "m.room.encrypted")
        .unwrap();
    assert_eq!(enc["content"]["ciphertext"], "AwgAEnB4opaque");
    assert_eq!(enc["encrypted"], true);
    assert!(enc["note"].as_str().unwrap().contains("cannot read"));
    let mentions = json_of(&f, "events_mentioning.json");
    let texts: Vec<_> = mentions
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["content"]["body"].as_str())
        .collect();
    assert!(
        texts.contains(&"thanks @alice:localhost, seen"),
        "{mentions}"
    );
    assert!(!texts.contains(&"unrelated"));
    let rooms = json_of(&f, "rooms.json");
    assert!(
        rooms
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["room_id"] == room.as_str() && r["membership"] == "join")
    );
    let audit = json_of(&f, "audit.json");
    let actions: Vec<_> = audit
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["action"].clone())
        .collect();
    assert!(
        actions.contains(&json!("register")) && actions.contains(&json!("room.invite")),
        "{audit}"
    );
    let html = String::from_utf8(f["index.html"].clone()).unwrap();
    assert!(html.contains("@alice:localhost") && !html.contains("<script"));

    // Nothing secret, in any file.
    let hash = crate::service::users::hash_token(&alice_token);
    let stored = s.users.get_user(&alice.user_id).await.unwrap().unwrap();
    let phc = stored.password_hash.unwrap();
    for (name, bytes) in &f {
        let text = String::from_utf8_lossy(bytes);
        for secret in [
            alice_token.as_str(),
            hash.as_str(),
            phc.as_str(),
            "a long password",
        ] {
            assert!(!text.contains(secret), "{name} holds a secret");
        }
    }

    // The export is audited.
    let log = s.audit.all().await.unwrap();
    let e = log
        .iter()
        .rev()
        .find(|r| r.action == ACTION_EXPORT)
        .unwrap();
    assert_eq!(e.actor, "admin-cli");
    assert_eq!(e.target.as_deref(), Some("@alice:localhost"));
    // The mention and bob's invite of alice (a member event about her).
    assert_eq!(e.details["counts"]["events_mentioning"], 2);
}

#[tokio::test]
async fn non_admins_are_refused_and_audited() {
    let (s, _d) = test_services();
    let (alice, _) = test_login(&s.users, "alice", "a long password").await;
    let (bob, _) = test_login(&s.users, "bob", "a long password").await;
    let err = s
        .sar
        .export(
            Requester::Admin(&alice),
            &bob.user_id,
            Cursor::new(Vec::new()),
        )
        .await
        .unwrap_err();
    assert!(is_kind(&err, ErrorKind::Forbidden));
    let log = s.audit.all().await.unwrap();
    let denied = log
        .iter()
        .rev()
        .find(|r| r.action == "admin.denied")
        .unwrap();
    assert_eq!(denied.details["attempted"], ACTION_EXPORT);
    assert!(!log.iter().any(|r| r.action == ACTION_EXPORT));
}

#[tokio::test]
async fn events_are_read_in_pages_that_cover_each_event_once_in_order() {
    use crate::store::sar::{SarCursor, SarStore};
    let (s, store, _d) = crate::service::test_services_and_store();
    let bob = test_util::user(&s, "bob").await;
    let room = test_util::room(&s, &bob, "ward", false).await;
    for i in 0..7 {
        test_util::text(&s, &room, &bob, &format!("page {i}")).await;
    }
    let all = store
        .sar_events_sent(bob.as_str(), room.as_str(), &SarCursor::Start, 1000)
        .unwrap();
    let mut paged = Vec::new();
    let mut after = SarCursor::Start;
    loop {
        let page = store
            .sar_events_sent(bob.as_str(), room.as_str(), &after, 2)
            .unwrap();
        let Some(last) = page.last() else { break };
        after = SarCursor::after(last);
        paged.extend(page.into_iter().map(|e| e.event_id));
    }
    let ids: Vec<_> = all.into_iter().map(|e| e.event_id).collect();
    assert!(ids.len() > 7, "{ids:?}");
    assert_eq!(paged, ids);
}

#[test]
fn a_streamed_array_is_byte_for_byte_what_serde_would_write() {
    let items = [
        json!({ "a": 1, "b": { "c": [1, 2], "d": "x\ny" } }),
        json!({ "e": [] }),
        json!("plain"),
    ];
    for n in [0, 1, 3] {
        let mut z = super::archive::SarZip::new(Cursor::new(Vec::new()), 0);
        z.begin_array("a.json").unwrap();
        for v in &items[..n] {
            z.array_item(v).unwrap();
        }
        z.end_array().unwrap();
        let f = files(z.finish().unwrap().into_inner());
        let want = serde_json::to_vec_pretty(&json!(items[..n])).unwrap();
        assert_eq!(
            String::from_utf8_lossy(&f["a.json"]),
            String::from_utf8_lossy(&want)
        );
    }
}
