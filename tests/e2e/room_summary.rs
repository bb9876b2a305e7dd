//! Room discovery (issue 14): `GET /_matrix/client/v1/room_summary/{roomIdOrAlias}` answers for
//! rooms the user is in or could join, by id or alias, with or without a token, and the same 404
//! for private and non-existent rooms; `GET /_matrix/client/v1/mutual_rooms` lists rooms both
//! users are joined to, with the spec's 400s.

use handover_e2e::account::Account;
use handover_e2e::*;

fn summary_path(target: &str) -> String {
    format!("/_matrix/client/v1/room_summary/{}", enc(target))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn room_summary_shows_open_rooms_and_hides_private_ones_alike() {
    with_timeout(120, async {
        let server = TestServer::start().await;
        let alice = Account::register(server.http(), "alice").await;
        let bob = Account::register(server.http(), "bob").await;
        let public = alice
            .create_room(&json!({
                "preset": "public_chat", "name": "Ward 7", "room_alias_name": "ward7"
            }))
            .await;
        let private = alice
            .create_room(&json!({"preset": "private_chat", "name": "Board"}))
            .await;
        let alias = format!("#ward7:{}", alice.server_name());

        for target in [&public, &alias] {
            let v = bob.get(&summary_path(target)).await.ok();
            assert_eq!(v["room_id"], public.as_str());
            assert_eq!(v["name"], "Ward 7");
            assert_eq!(v["num_joined_members"], 1);
            assert!(v.get("membership").is_none(), "{v}");
        }
        // No token needed for an open room.
        let anon = server.http().get(&summary_path(&public), None).await.ok();
        assert_eq!(anon["room_id"], public.as_str());
        let mine = alice.get(&summary_path(&private)).await.ok();
        assert_eq!(mine["membership"], "join");
        assert_eq!(mine["join_rule"], "invite");

        // Private, unknown room, unknown alias: one 404 with one message.
        let unknown_alias = format!("#nope:{}", alice.server_name());
        let mut errors = Vec::new();
        for target in [
            private.as_str(),
            "!nope:example.org",
            unknown_alias.as_str(),
        ] {
            let r = bob.get(&summary_path(target)).await;
            r.assert_error(404, &["M_NOT_FOUND"]);
            errors.push(r.json()["error"].clone());
        }
        assert!(errors.iter().all(|e| *e == errors[0]), "{errors:?}");
        server
            .http()
            .get(&summary_path(&private), None)
            .await
            .assert_error(404, &["M_NOT_FOUND"]);

        alice.invite(&private, &bob.user_id).await;
        let v = bob.get(&summary_path(&private)).await.ok();
        assert_eq!(v["membership"], "invite");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mutual_rooms_lists_rooms_both_users_joined() {
    with_timeout(120, async {
        let server = TestServer::start().await;
        let alice = Account::register(server.http(), "alice").await;
        let bob = Account::register(server.http(), "bob").await;
        let shared = alice.create_public_room("Shared").await;
        let _alone = alice.create_public_room("Alone").await;
        bob.try_join(&shared, &[]).await.ok();
        let path = |u: &str| format!("/_matrix/client/v1/mutual_rooms?user_id={}", enc(u));

        let v = alice.get(&path(&bob.user_id)).await.ok();
        assert_eq!(v["joined"], json!([shared]));
        assert_eq!(v["count"], 1);
        assert!(v.get("next_batch").is_none());
        let v = bob.get(&path(&alice.user_id)).await.ok();
        assert_eq!(v["joined"], json!([shared]));

        alice
            .get(&path(&alice.user_id))
            .await
            .assert_error(400, &["M_INVALID_PARAM"]);
        let q = format!("{}&from=bogus", path(&bob.user_id));
        alice.get(&q).await.assert_error(400, &["M_INVALID_PARAM"]);
        // Not a valid user: an empty list (spec), or a historical id: 400.
        let v = alice.get(&path("@nobody:example.org")).await.ok();
        assert_eq!(v["joined"], json!([]));
        alice
            .get("/_matrix/client/v1/mutual_rooms")
            .await
            .assert_error_any(&[
                (400, "M_MISSING_PARAM"),
                (400, "M_INVALID_PARAM"),
                (400, "M_BAD_JSON"),
            ]);
    })
    .await;
}
