//! History visibility as a client sees it: forgotten rooms, edits after a leave, lazy-loaded
//! members at the events, and the `history_visibility` in force at each event.

use handover_e2e::account::Account;
use handover_e2e::*;

fn messages_path(room: &str) -> String {
    format!(
        "/_matrix/client/v3/rooms/{}/messages?dir=b&limit=50",
        enc(room)
    )
}

/// Alice's unencrypted room (`public_chat`: shared history) with Bob joined.
async fn alice_and_bob(server: &TestServer) -> (Account, Account, String) {
    let alice = Account::register(server.http(), "alice").await;
    let bob = Account::register(server.http(), "bob").await;
    let room = alice
        .create_room(&json!({"preset": "public_chat", "name": "Ward 7"}))
        .await;
    alice.invite(&room, &bob.user_id).await;
    bob.join(&room, &[]).await;
    (alice, bob, room)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forgotten_room_history_is_refused() {
    with_timeout(120, async {
        let server = TestServer::start().await;
        let (alice, bob, room) = alice_and_bob(&server).await;
        let id = alice.send_text(&room, "obs at 14:00").await;
        bob.leave(&room).await;
        let event = format!("/_matrix/client/v3/rooms/{}/event/{}", enc(&room), enc(&id));
        bob.get(&event).await.ok();
        bob.post(
            &format!("/_matrix/client/v3/rooms/{}/forget", enc(&room)),
            &json!({}),
        )
        .await
        .ok();
        bob.get(&messages_path(&room))
            .await
            .assert_error(403, &["M_FORBIDDEN"]);
        bob.get(&event)
            .await
            .assert_error_any(&[(404, "M_NOT_FOUND"), (403, "M_FORBIDDEN")]);
        bob.get(&format!("/_matrix/client/v3/rooms/{}/state", enc(&room)))
            .await
            .assert_error(403, &["M_FORBIDDEN"]);
    })
    .await;
}
