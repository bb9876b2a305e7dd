//! Other servers' media when the other server cannot or must not be asked. (Fetching from a
//! real second server, caching and the clinical rules on the copy: tests/federation_queries_http/.)

use std::sync::Arc;

use handover_policy::{FederationGate, LiveFederationList};
use ruma::api::error::ErrorKind;
use ruma::{ServerName, uint};

use super::*;
use crate::service::test_util::user;

const WAIT: Duration = Duration::from_millis(50);

/// Listed: 127.0.0.1:9 (the discard port: a connection is refused at once).
fn services() -> (crate::service::Services, tempfile::TempDir) {
    let doc = br#"{"serial":1,"organisations":[{"ods_code":"RRK","servers":["127.0.0.1:9"]}]}"#;
    let gate = FederationGate {
        list: Some(LiveFederationList::load(doc, None, None).unwrap()),
    };
    let (store, dir) = crate::store::sqlite::test_store();
    let config = Config {
        data_dir: dir.path().to_owned(),
        ..Config::default()
    };
    let s = crate::service::Services::build(config, store, Arc::new(gate)).unwrap();
    (s, dir)
}

fn message(e: &Error) -> String {
    match e {
        Error::Matrix { message, .. } => message.clone(),
        Error::Uiaa(_) => String::new(),
    }
}

#[tokio::test]
async fn unlisted_server_is_refused_naming_the_rule_and_never_asked() {
    let (s, _d) = services();
    let alice = user(&s, "alice").await;
    let unlisted = ServerName::parse("unlisted.example:8448").unwrap();
    let e = s
        .media
        .download(&alice, &unlisted, "abc", None, WAIT)
        .await
        .unwrap_err();
    assert_eq!(e.kind(), Some(&ErrorKind::Forbidden));
    assert!(
        message(&e).contains("federation_not_listed"),
        "{}",
        message(&e)
    );
    let e = s
        .media
        .thumbnail(&alice, &unlisted, "abc", (uint!(32), uint!(32)), None, WAIT)
        .await
        .unwrap_err();
    assert!(
        message(&e).contains("federation_not_listed"),
        "{}",
        message(&e)
    );
    let audit = s.audit.all().await.unwrap();
    let d = audit
        .iter()
        .find(|e| e.action == "federation.denial")
        .expect("audited by the gate");
    assert_eq!(d.details["purpose"], "media");
    assert_eq!(d.details["direction"], "outbound");
}

#[tokio::test]
async fn bad_ids_and_unreachable_servers() {
    let (s, _d) = services();
    let alice = user(&s, "alice").await;
    let listed = ServerName::parse("127.0.0.1:9").unwrap();
    // A malformed id is not even asked about.
    let e = s
        .media
        .download(&alice, &listed, "../../etc", None, WAIT)
        .await
        .unwrap_err();
    assert_eq!(e.kind(), Some(&ErrorKind::NotFound));
    // A listed server that does not answer: 502, nothing cached.
    let e = s
        .media
        .download(&alice, &listed, "abc", None, WAIT)
        .await
        .unwrap_err();
    match &e {
        Error::Matrix { status, .. } => assert_eq!(*status, StatusCode::BAD_GATEWAY),
        Error::Uiaa(_) => unreachable!(),
    }
    assert!(
        s.media
            .remote_store
            .get_remote_media("127.0.0.1:9", "abc", "")
            .unwrap()
            .is_none()
    );
}
