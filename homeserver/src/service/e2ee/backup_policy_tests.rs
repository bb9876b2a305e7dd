//! Key backup version lifecycle and key replacement; encryption-by-default room creation and
//! the refusal to remove a room's encryption.

use std::collections::BTreeMap;
use std::sync::Arc;

use ruma::api::client::backup::RoomKeyBackup;
use ruma::api::error::ErrorKind;
use ruma::events::StateEventType;
use ruma::serde::Raw;
use ruma::{OwnedRoomId, UInt};
use serde_json::{Value, json};

use super::backup::Scope;
use crate::config::Config;
use crate::service::Services;
use crate::service::rooms::EventSpec;
use crate::service::test_services;
use crate::service::test_util::{room, user};

fn raw<T>(v: Value) -> Raw<T> {
    Raw::new(&v).unwrap().cast_unchecked()
}

fn algorithm() -> Raw<ruma::api::client::backup::BackupAlgorithm> {
    raw(json!({
        "algorithm": "m.megolm_backup.v1.curve25519-aes-sha2",
        "auth_data": { "public_key": "cHVibGlj", "signatures": {} }
    }))
}

fn key(first_message_index: u32, verified: bool, mark: &str) -> Value {
    json!({
        "first_message_index": first_message_index, "forwarded_count": 0,
        "is_verified": verified,
        "session_data": { "ephemeral": "ZXBo", "ciphertext": mark, "mac": "bWFj" }
    })
}

fn rooms(room: &OwnedRoomId, k: Value) -> BTreeMap<OwnedRoomId, RoomKeyBackup> {
    let sessions = BTreeMap::from([("S1".to_owned(), raw(k))]);
    BTreeMap::from([(room.clone(), RoomKeyBackup::new(sessions))])
}

const ALL: Scope<'static> = Scope {
    room_id: None,
    session_id: None,
};

#[tokio::test]
async fn backup_version_lifecycle_and_wrong_version() {
    let (s, _d) = test_services();
    let alice = user(&s, "alice").await;
    let r: OwnedRoomId = "!room:localhost".try_into().unwrap();
    let err = s.backup.version(&alice, None).await.unwrap_err();
    assert!(matches!(err.kind(), Some(ErrorKind::NotFound)));

    let v1 = s.backup.create_version(&alice, &algorithm()).await.unwrap();
    assert_eq!(s.backup.version(&alice, None).await.unwrap().version, v1);
    let (etag1, count) = s
        .backup
        .put_keys(&alice, &v1, &rooms(&r, key(5, false, "b25l")))
        .await
        .unwrap();
    assert_eq!(count, UInt::new(1).unwrap());

    // A worse key (higher index) does not replace; a verified one does.
    let (etag2, _) = s
        .backup
        .put_keys(&alice, &v1, &rooms(&r, key(9, false, "dHdv")))
        .await
        .unwrap();
    assert_eq!(etag1, etag2, "nothing changed, etag kept");
    s.backup
        .put_keys(&alice, &v1, &rooms(&r, key(9, true, "dGhyZWU")))
        .await
        .unwrap();
    let got = s.backup.keys(&alice, &v1, ALL).await.unwrap();
    let k: Value = got[&r].sessions["S1"].deserialize_as_unchecked().unwrap();
    assert_eq!(k["session_data"]["ciphertext"], "dGhyZWU");

    // A new version becomes current: writing to the old one is M_WRONG_ROOM_KEYS_VERSION.
    let v2 = s.backup.create_version(&alice, &algorithm()).await.unwrap();
    let err = s
        .backup
        .put_keys(&alice, &v1, &rooms(&r, key(0, true, "eA")))
        .await
        .unwrap_err();
    match err.kind() {
        Some(ErrorKind::WrongRoomKeysVersion(d)) => assert_eq!(d.current_version, v2),
        other => panic!("expected M_WRONG_ROOM_KEYS_VERSION, got {other:?}"),
    }
    // The old version is still readable; unknown versions are 404.
    assert_eq!(
        s.backup.version(&alice, Some(&v1)).await.unwrap().count,
        UInt::new(1).unwrap()
    );
    let err = s
        .backup
        .put_keys(&alice, "99", &rooms(&r, key(0, true, "eA")))
        .await
        .unwrap_err();
    assert!(matches!(err.kind(), Some(ErrorKind::NotFound)));

    // Deleting keys then the version.
    let (_, count) = s.backup.delete_keys(&alice, &v1, ALL).await.unwrap();
    assert_eq!(count, UInt::MIN);
    s.backup.delete_version(&alice, &v2).await.unwrap();
    assert_eq!(s.backup.version(&alice, None).await.unwrap().version, v1);
    assert!(s.backup.delete_version(&alice, &v2).await.is_err());
}

fn services_with_defaults(dir: &std::path::Path, encrypt: bool) -> Services {
    let store = crate::store::sqlite::SqliteStore::open(&dir.join("p.db"), 2).unwrap();
    let config = Config {
        data_dir: dir.to_owned(),
        ..Config::default()
    };
    let policy = handover_policy::Defaults { encrypt };
    Services::build(config, store, Arc::new(policy)).unwrap()
}

async fn encryption_of(s: &Services, r: &OwnedRoomId, who: &ruma::UserId) -> Option<Value> {
    s.rooms
        .state_event(r, who, "m.room.encryption", "")
        .await
        .ok()
}

#[tokio::test]
async fn private_rooms_are_encrypted_and_encryption_cannot_be_removed() {
    let dir = tempfile::tempdir().unwrap();
    let s = services_with_defaults(dir.path(), true);
    let alice = user(&s, "alice").await;
    let private = room(&s, &alice, "Ward", false).await;
    let public = room(&s, &alice, "Lobby", true).await;
    let enc = encryption_of(&s, &private, &alice)
        .await
        .expect("private room encrypted");
    assert_eq!(enc["content"]["algorithm"], "m.megolm.v1.aes-sha2");
    assert!(encryption_of(&s, &public, &alice).await.is_none());

    for content in [json!({}), json!({ "algorithm": "m.plaintext" })] {
        let err = s
            .rooms
            .send(
                &private,
                &alice,
                EventSpec::state(StateEventType::RoomEncryption, "", content),
                None,
            )
            .await
            .unwrap_err();
        assert!(
            err.to_string()
                .contains(handover_policy::ENCRYPTION_IRREVERSIBLE),
            "{err}"
        );
    }
    // Re-sending the same algorithm is allowed (e.g. changing rotation periods).
    let same = json!({ "algorithm": "m.megolm.v1.aes-sha2", "rotation_period_ms": 604800000 });
    s.rooms
        .send(
            &private,
            &alice,
            EventSpec::state(StateEventType::RoomEncryption, "", same),
            None,
        )
        .await
        .unwrap();

    // With the config key off, rooms are created without encryption.
    let dir2 = tempfile::tempdir().unwrap();
    let off = services_with_defaults(dir2.path(), false);
    let bob = user(&off, "bob").await;
    let r = room(&off, &bob, "Plain", false).await;
    assert!(encryption_of(&off, &r, &bob).await.is_none());
}
