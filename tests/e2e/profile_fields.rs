//! Extended profiles (issue 14, spec v1.16): `GET/PUT/DELETE /profile/{userId}/{keyName}` for
//! `m.tz` and custom keys through the real binary, the whole profile carrying them, DELETE on
//! the display name, the spec's 400s and the NHS number rule on any key.

use handover_e2e::*;

fn field(user: &str, key: &str) -> String {
    format!("/_matrix/client/v3/profile/{}/{}", enc(user), enc(key))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn extended_profile_fields_round_trip_with_the_specs_errors() {
    with_timeout(120, async {
        let server = TestServer::start().await;
        let http = server.http();
        let (alice, token) = http.register("alice", PASSWORD).await;
        let (_bob, bob_token) = http.register("bob", PASSWORD).await;
        let t = Some(token.as_str());

        http.put_json(
            &field(&alice, "m.tz"),
            t,
            &json!({ "m.tz": "Europe/London" }),
        )
        .await
        .ok();
        let job = json!({ "title": "Registrar", "bleep": 4417 });
        http.put_json(
            &field(&alice, "org.example.job"),
            t,
            &json!({ "org.example.job": job }),
        )
        .await
        .ok();
        // Anyone signed in (or not) reads them, one by one or in the whole profile.
        let v = http.get(&field(&alice, "org.example.job"), None).await.ok();
        assert_eq!(v, json!({ "org.example.job": job }));
        let all = http
            .get(
                &format!("/_matrix/client/v3/profile/{}", enc(&alice)),
                Some(&bob_token),
            )
            .await
            .ok();
        assert_eq!(all["m.tz"], "Europe/London");
        assert_eq!(all["org.example.job"], job);
        assert_eq!(all["displayname"], "alice");

        // Deleting: the field goes; the display name too, through the same endpoint.
        http.request("DELETE", &field(&alice, "org.example.job"), t, None)
            .await
            .ok();
        http.get(&field(&alice, "org.example.job"), None)
            .await
            .assert_error(404, &["M_NOT_FOUND"]);
        http.request("DELETE", &field(&alice, "displayname"), t, None)
            .await
            .ok();
        http.get(&field(&alice, "displayname"), None)
            .await
            .assert_error(404, &["M_NOT_FOUND"]);

        // Errors: another user's profile, a bad key, a long key, a body without the key,
        // a profile over 64 KiB, an NHS number in any field.
        http.put_json(
            &field(&alice, "m.tz"),
            Some(&bob_token),
            &json!({ "m.tz": "UTC" }),
        )
        .await
        .assert_error(403, &["M_FORBIDDEN"]);
        http.put_json(&field(&alice, "m.custom"), t, &json!({ "m.custom": 1 }))
            .await
            .assert_error(400, &["M_INVALID_PARAM"]);
        let long = format!("org.{}", "a".repeat(260));
        http.put_json(&field(&alice, &long), t, &json!({ long.clone(): 1 }))
            .await
            .assert_error(400, &["M_KEY_TOO_LARGE"]);
        http.put_json(&field(&alice, "org.example.x"), t, &json!({ "other": 1 }))
            .await
            .assert_error(400, &["M_BAD_JSON", "M_MISSING_PARAM", "M_NOT_JSON"]);
        let big = "x".repeat(40 * 1024);
        http.put_json(
            &field(&alice, "org.example.a"),
            t,
            &json!({ "org.example.a": big }),
        )
        .await
        .ok();
        http.put_json(
            &field(&alice, "org.example.b"),
            t,
            &json!({ "org.example.b": big }),
        )
        .await
        .assert_error(400, &["M_PROFILE_TOO_LARGE"]);
        http.put_json(
            &field(&alice, "org.example.note"),
            t,
            &json!({ "org.example.note": { "patient": "943 476 5919" } }),
        )
        .await
        .assert_rule(403, "M_FORBIDDEN", "nhs_number_in_metadata");
    })
    .await;
}
