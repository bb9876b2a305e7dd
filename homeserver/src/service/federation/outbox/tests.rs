//! The outbound queue against a fake receiver over real TLS: retries deliver everything once
//! and in order under stable transaction ids, a restart resumes what was queued, an unlisted
//! destination is never contacted, the cap holds, and a malformed-transaction refusal does not
//! block the queue.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use ruma::api::federation::transactions::edu::Edu;
use ruma::serde::Raw;
use ruma::{OwnedServerName, ServerName};
use serde_json::json;
use serde_json::value::RawValue;

use super::{Outbox, OutboxSettings};
use crate::service::federation::gate::ACTION_FEDERATION_DENIAL;
use crate::service::federation::test_support::{
    Receiver, TestCa, serve_tls, services_on, wait_for,
};
use crate::store::outbox::{OutboxKind, OutboxStore};

fn name(s: impl AsRef<str>) -> OwnedServerName {
    OwnedServerName::try_from(s.as_ref()).unwrap()
}

fn pdu(n: usize) -> Box<RawValue> {
    RawValue::from_string(json!({"n": n, "type": "m.room.message"}).to_string()).unwrap()
}

fn edu(n: usize) -> Raw<Edu> {
    Raw::from_json(
        RawValue::from_string(json!({"edu_type": "m.typing", "content": {"n": n}}).to_string())
            .unwrap(),
    )
}

fn fast() -> OutboxSettings {
    OutboxSettings {
        retry_initial: Duration::from_millis(20),
        retry_max: Duration::from_millis(200),
        ..OutboxSettings::default()
    }
}

/// The `n` values of the PDUs (or EDU contents) in accepted transactions, in arrival order.
fn delivered(r: &Receiver, field: &str) -> Vec<u64> {
    r.accepted()
        .iter()
        .flat_map(|a| a.body[field].as_array().cloned().unwrap_or_default())
        .map(|v| {
            let n = if field == "pdus" {
                &v["n"]
            } else {
                &v["content"]["n"]
            };
            n.as_u64().unwrap()
        })
        .collect()
}

/// A receiver on 127.0.0.1 with a certificate for that IP.
fn receiver(ca: &TestCa) -> (Arc<Receiver>, OwnedServerName) {
    let r = Arc::new(Receiver::default());
    let addr = serve_tls(r.router(), &ca.leaf("recv", "IP:127.0.0.1"));
    (r, name(addr.to_string()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retries_deliver_everything_once_in_order_with_stable_txn_ids() {
    let ca = TestCa::new();
    let (recv, dest) = receiver(&ca);
    recv.script.lock().unwrap().extend([500, 503, 500]);
    let dir = tempfile::tempdir().unwrap();
    let (s, store) = services_on(dir.path(), &ca.ca, &[dest.as_str()]);
    let outbox = Outbox::new(
        name("localhost"),
        s.federation.client().clone(),
        Arc::new(store.clone()),
        fast(),
    );
    let mut edus = 0;
    for i in 0..120 {
        // Repeats and our own name are ignored.
        outbox
            .send_pdu(vec![dest.clone(), name("localhost"), dest.clone()], pdu(i))
            .await;
        if i % 10 == 0 {
            outbox.send_edu(dest.clone(), edu(i)).await;
            edus += 1;
        }
    }
    wait_for(30, "everything delivered", || {
        outbox.stats().sent == 120 + edus
    })
    .await;

    assert_eq!(delivered(&recv, "pdus"), (0..120).collect::<Vec<_>>());
    assert_eq!(
        delivered(&recv, "edus"),
        (0..120).step_by(10).collect::<Vec<_>>()
    );
    let attempts = recv.attempts();
    // Each failed attempt was retried under the same transaction id.
    for w in attempts.windows(2) {
        if w[0].status != 200 {
            assert_eq!(w[0].txn, w[1].txn, "retry under the same txn id");
        }
    }
    let accepted = recv.accepted();
    let mut ids: Vec<_> = accepted.iter().map(|a| a.txn.clone()).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), accepted.len(), "each transaction accepted once");
    for a in &accepted {
        assert!(a.body["pdus"].as_array().unwrap().len() <= 50);
        assert_eq!(a.body["origin"], "localhost");
        assert_eq!(a.host.as_deref(), Some(dest.as_str()));
    }
    let st = outbox.stats();
    assert_eq!(
        (st.queued, st.failed, st.dropped, st.pending),
        (120 + edus, 3, 0, 0)
    );
    assert!(store.queue_counts().unwrap().is_empty(), "rows deleted");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_sends_what_was_queued_under_the_same_txn_id() {
    let ca = TestCa::new();
    let (recv, dest) = receiver(&ca);
    recv.fail_all.store(true, Ordering::SeqCst);
    let dir = tempfile::tempdir().unwrap();

    let (a, _store) = services_on(dir.path(), &ca.ca, &[dest.as_str()]);
    for i in 0..3 {
        a.outbox.send_pdu(vec![dest.clone()], pdu(i)).await;
    }
    a.outbox.send_edu(dest.clone(), edu(7)).await;
    wait_for(10, "a first attempt", || !recv.attempts().is_empty()).await;
    a.outbox.shutdown().await;
    drop(a);
    let tried = recv.attempts();
    assert!(tried.iter().all(|t| t.status == 500));

    // The receiver is back; a new process on the same data directory.
    recv.fail_all.store(false, Ordering::SeqCst);
    let (b, store) = services_on(dir.path(), &ca.ca, &[dest.as_str()]);
    assert_eq!(b.outbox.stats().pending, 0, "nothing known before resume");
    assert_eq!(b.outbox.resume().await.unwrap(), 1);
    wait_for(10, "delivery after restart", || !recv.accepted().is_empty()).await;
    wait_for(10, "rows deleted", || {
        store.queue_counts().unwrap().is_empty()
    })
    .await;
    let accepted = recv.accepted();
    // The batch claimed before the restart goes first, under the id it was tried with; items
    // queued after that claim follow in a later transaction.
    assert_eq!(
        accepted[0].txn, tried[0].txn,
        "same transaction id as before"
    );
    assert!(accepted.iter().skip(1).all(|a| a.txn != tried[0].txn));
    assert_eq!(delivered(&recv, "pdus"), vec![0, 1, 2]);
    assert_eq!(delivered(&recv, "edus"), vec![7]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unlisted_destination_is_never_contacted_and_its_queue_dropped() {
    let ca = TestCa::new();
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let unlisted = name(l.local_addr().unwrap().to_string());
    let connections = Arc::new(AtomicUsize::new(0));
    let c = connections.clone();
    tokio::spawn(async move {
        while let Ok(_conn) = l.accept().await {
            c.fetch_add(1, Ordering::SeqCst);
        }
    });
    let dir = tempfile::tempdir().unwrap();
    let (s, store) = services_on(dir.path(), &ca.ca, &["listed.nhs.uk:8448"]);
    s.outbox.send_pdu(vec![unlisted.clone()], pdu(1)).await;
    s.outbox.send_edu(unlisted.clone(), edu(2)).await;
    wait_for(10, "queue dropped", || {
        let st = s.outbox.stats();
        st.dropped == 2 && st.pending == 0
    })
    .await;
    assert!(store.queue_counts().unwrap().is_empty());
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(connections.load(Ordering::SeqCst), 0, "never contacted");
    let audit = s.audit.all().await.unwrap();
    let denial = audit
        .iter()
        .find(|r| r.action == ACTION_FEDERATION_DENIAL)
        .expect("denial audited");
    assert_eq!(denial.target.as_deref(), Some(unlisted.as_str()));
    assert_eq!(denial.details["purpose"], "transaction");
    assert_eq!(denial.details["direction"], "outbound");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_queue_is_capped_per_destination() {
    let ca = TestCa::new();
    let dir = tempfile::tempdir().unwrap();
    // Listed, but nothing listens on the discard port: every attempt fails.
    let (s, store) = services_on(dir.path(), &ca.ca, &["127.0.0.1:9"]);
    let outbox = Outbox::new(
        name("localhost"),
        s.federation.client().clone(),
        Arc::new(store.clone()),
        OutboxSettings {
            max_queued_pdus: 3,
            max_queued_edus: 1,
            ..fast()
        },
    );
    let dest = <&ServerName>::try_from("127.0.0.1:9").unwrap().to_owned();
    for i in 0..5 {
        outbox.send_pdu(vec![dest.clone()], pdu(i)).await;
        outbox.send_edu(dest.clone(), edu(i)).await;
    }
    let st = outbox.stats();
    assert_eq!((st.queued, st.dropped, st.pending), (4, 6, 4));
    let counts = store.queue_counts().unwrap();
    assert_eq!((counts[0].pdus, counts[0].edus), (3, 1));
    wait_for(10, "failures counted", || outbox.stats().failed >= 2).await;
    outbox.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transaction_refused_as_malformed_is_dropped_and_the_rest_flows() {
    let ca = TestCa::new();
    let (recv, dest) = receiver(&ca);
    recv.script.lock().unwrap().extend([400]);
    let dir = tempfile::tempdir().unwrap();
    let (s, store) = services_on(dir.path(), &ca.ca, &[dest.as_str()]);
    let outbox = Outbox::new(
        name("localhost"),
        s.federation.client().clone(),
        Arc::new(store.clone()),
        OutboxSettings {
            max_pdus_per_txn: 1,
            ..fast()
        },
    );
    outbox.send_pdu(vec![dest.clone()], pdu(0)).await;
    wait_for(10, "first refused", || !recv.attempts().is_empty()).await;
    outbox.send_pdu(vec![dest.clone()], pdu(1)).await;
    wait_for(10, "second delivered", || outbox.stats().sent == 1).await;
    assert_eq!(delivered(&recv, "pdus"), vec![1]);
    let st = outbox.stats();
    assert_eq!((st.dropped, st.failed, st.pending), (1, 0, 0));
}

fn to_device(n: usize) -> Raw<Edu> {
    Raw::from_json(
        RawValue::from_string(
            json!({"edu_type": "m.direct_to_device", "content": {"n": n, "message_id": format!("m{n}"),
                "sender": "@a:localhost", "type": "m.room_key", "messages": {}}})
            .to_string(),
        )
        .unwrap(),
    )
}

/// A PDU of about `size` bytes.
fn big_pdu(n: usize, size: usize) -> Box<RawValue> {
    let pad = "x".repeat(size);
    RawValue::from_string(json!({"n": n, "type": "m.room.message", "pad": pad}).to_string())
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transactions_are_sized_by_bytes() {
    let ca = TestCa::new();
    let (recv, dest) = receiver(&ca);
    let dir = tempfile::tempdir().unwrap();
    let (s, store) = services_on(dir.path(), &ca.ca, &[dest.as_str()]);
    let outbox = Outbox::new(
        name("localhost"),
        s.federation.client().clone(),
        Arc::new(store.clone()),
        OutboxSettings {
            max_txn_bytes: 2_500,
            ..fast()
        },
    );
    let d = [dest.to_string()];
    for n in 0..6 {
        store
            .enqueue(&d, OutboxKind::Pdu, big_pdu(n, 1_000).get(), 1)
            .unwrap();
    }
    outbox.resume().await.unwrap();
    wait_for(10, "all delivered", || outbox.stats().sent == 6).await;
    assert_eq!(delivered(&recv, "pdus"), (0..6).collect::<Vec<_>>());
    assert_eq!(recv.accepted().len(), 3, "two PDUs a transaction");
    for a in recv.accepted() {
        let bytes: usize = a.body["pdus"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p.to_string().len())
            .sum();
        assert!(bytes <= 2_500, "a transaction of {bytes} bytes");
    }
    outbox.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_413_splits_the_batch_and_to_device_messages_survive() {
    let ca = TestCa::new();
    let (recv, dest) = receiver(&ca);
    // A receiver with a smaller limit than ours.
    recv.max_body.store(3_000, Ordering::SeqCst);
    let dir = tempfile::tempdir().unwrap();
    let (s, store) = services_on(dir.path(), &ca.ca, &[dest.as_str()]);
    let outbox = Outbox::new(
        name("localhost"),
        s.federation.client().clone(),
        Arc::new(store.clone()),
        fast(),
    );
    let d = [dest.to_string()];
    for n in 0..5 {
        store
            .enqueue(&d, OutboxKind::Pdu, big_pdu(n, 1_000).get(), 1)
            .unwrap();
        store
            .enqueue(&d, OutboxKind::Edu, to_device(n).json().get(), 1)
            .unwrap();
    }
    // Queued before the worker runs: the first batch of ~5.5 KB is refused.
    outbox.resume().await.unwrap();
    wait_for(10, "all delivered", || outbox.stats().sent == 10).await;
    assert!(recv.attempts().iter().any(|a| a.status == 413));
    assert_eq!(delivered(&recv, "pdus"), (0..5).collect::<Vec<_>>());
    assert_eq!(delivered(&recv, "edus"), (0..5).collect::<Vec<_>>());
    let st = outbox.stats();
    assert_eq!((st.dropped, st.pending), (0, 0));
    outbox.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_400_is_narrowed_down_instead_of_dropping_the_batch() {
    let ca = TestCa::new();
    let (recv, dest) = receiver(&ca);
    // The first batch (all four items) is refused, then its first half.
    recv.script.lock().unwrap().extend([400, 400]);
    let dir = tempfile::tempdir().unwrap();
    let (s, store) = services_on(dir.path(), &ca.ca, &[dest.as_str()]);
    let outbox = Outbox::new(
        name("localhost"),
        s.federation.client().clone(),
        Arc::new(store.clone()),
        fast(),
    );
    let d = [dest.to_string()];
    store.enqueue(&d, OutboxKind::Pdu, pdu(0).get(), 1).unwrap();
    for n in 1..4 {
        store
            .enqueue(&d, OutboxKind::Edu, to_device(n).json().get(), 1)
            .unwrap();
    }
    outbox.resume().await.unwrap();
    wait_for(10, "all delivered", || outbox.stats().sent == 4).await;
    assert_eq!(
        recv.attempts().iter().filter(|a| a.status == 400).count(),
        2
    );
    assert_eq!(delivered(&recv, "pdus"), vec![0]);
    assert_eq!(delivered(&recv, "edus"), vec![1, 2, 3]);
    assert_eq!(outbox.stats().dropped, 0);
    outbox.shutdown().await;
}
