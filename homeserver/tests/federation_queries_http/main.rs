//! Federation queries and media between two in-process servers over real TLS on 127.0.0.1
//! (a test CA made with `openssl`, as in federation_http.rs). A's local user asks, through A's
//! client API, about B's users, aliases, directory and media; B answers over federation.
//! Membership of A's user in B's room is set on B directly, standing in for a federation join.

#[path = "../common/mod.rs"]
mod common;
mod nodes;
mod synapse;

use serde_json::json;

use self::nodes::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_asks_b_about_profiles_aliases_directory_and_media() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let certs_dir = tempfile::tempdir().unwrap();
    let certs = make_certs(certs_dir.path());
    let (la, name_a) = bind();
    let (lb, name_b) = bind();
    let list = listing(&[&name_a, &name_b]);
    // A's clinical rules cap plain text at 64 bytes; B's do not.
    let a = start(la, name_a.clone(), &certs, &list, |c| {
        c.federation.serve_public_rooms = true;
        c.clinical_media
            .max_bytes_by_type
            .insert("text/plain".into(), 64);
    })
    .await;
    let b = start(lb, name_b.clone(), &certs, &list, |c| {
        c.federation.serve_public_rooms = true;
    })
    .await;
    let (alice, token) = login(&a, "alice").await;
    let (bob, _) = login(&b, "bob").await;
    b.services
        .users
        .admin_set_displayname(&bob, Some("Dr Bob".into()))
        .await
        .unwrap();

    // Profiles: asked of B, then served from A's cache for a while.
    let path = format!("/_matrix/client/v3/profile/{}", enc(bob.as_str()));
    let r = call(&a, &token, "GET", &path, None).await;
    assert_eq!(r.status, 200, "{:?}", r.json());
    assert_eq!(r.json(), json!({ "displayname": "Dr Bob" }));
    b.services
        .users
        .admin_set_displayname(&bob, Some("Dr Robert".into()))
        .await
        .unwrap();
    let r = call(&a, &token, "GET", &format!("{path}/displayname"), None).await;
    assert_eq!(r.json(), json!({ "displayname": "Dr Bob" }), "cached");
    let nobody = format!(
        "/_matrix/client/v3/profile/{}",
        enc(&format!("@nobody:{name_b}"))
    );
    let r = call(&a, &token, "GET", &nobody, None).await;
    assert_eq!(
        (r.status, r.json()["errcode"].clone()),
        (404, json!("M_NOT_FOUND"))
    );
    // Anonymous callers never make A ask B; a bad token counts as none (the endpoint needs
    // no token), and A's own users stay readable.
    for t in ["", "not-a-token"] {
        let r = call(&a, t, "GET", &path, None).await;
        assert_eq!(
            (r.status, r.json()["errcode"].clone()),
            (401, json!("M_MISSING_TOKEN"))
        );
        let own = format!("/_matrix/client/v3/profile/{}", enc(alice.as_str()));
        assert_eq!(call(&a, t, "GET", &own, None).await.status, 200);
    }

    // An alias on B.
    let ward = public_room(&b, &bob, "Ward 7", "ward7").await;
    let alias = format!("#ward7:{name_b}");
    let r = call(
        &a,
        &token,
        "GET",
        &format!("/_matrix/client/v3/directory/room/{}", enc(&alias)),
        None,
    )
    .await;
    assert_eq!(r.status, 200, "{:?}", r.json());
    assert_eq!(
        r.json(),
        json!({ "room_id": ward, "servers": [name_b.as_str()] })
    );

    // B's public directory, searched from A.
    let r = call(
        &a,
        &token,
        "POST",
        &format!(
            "/_matrix/client/v3/publicRooms?server={}",
            enc(name_b.as_str())
        ),
        Some(json!({ "filter": { "generic_search_term": "ward" } })),
    )
    .await;
    assert_eq!(r.status, 200, "{:?}", r.json());
    assert_eq!(r.json()["chunk"][0]["room_id"], ward.as_str());
    assert_eq!(r.json()["chunk"][0]["name"], "Ward 7");

    // Media: alice (on A) is in bob's room on B; bob shares files there.
    b.services.rooms.join(&ward, &alice, None).await.unwrap();
    let letter = share(
        &b,
        &bob,
        Some(&ward),
        b"discharge letter".to_vec(),
        "text/plain",
    )
    .await;
    let download = |id: &str| format!("/_matrix/client/v1/media/download/{name_b}/{id}");
    let r = call(&a, &token, "GET", &download(&letter), None).await;
    assert_eq!(r.status, 200, "{:?}", r.json());
    assert_eq!(r.body, b"discharge letter");
    assert_eq!(r.content_type, "text/plain");
    assert_eq!(
        files_under(&a.dir.path().join("media/remote")),
        1,
        "cached at A"
    );

    // A file bob never sent into a room with A's user stays on B.
    let private = share(&b, &bob, None, b"private note".to_vec(), "text/plain").await;
    let r = call(&a, &token, "GET", &download(&private), None).await;
    assert_eq!(
        (r.status, r.json()["errcode"].clone()),
        (404, json!("M_NOT_FOUND"))
    );

    // A's clinical rules apply to B's files: over A's cap for plain text.
    let long = share(&b, &bob, Some(&ward), vec![b'x'; 100], "text/plain").await;
    let r = call(&a, &token, "GET", &download(&long), None).await;
    assert_eq!(r.status, 413, "{:?}", r.json());
    assert!(
        r.json()["error"]
            .as_str()
            .unwrap()
            .contains("media_too_large")
    );
    let audit = a.services.audit.all().await.unwrap();
    assert!(
        audit
            .iter()
            .any(|e| e.rule.as_deref() == Some("media_too_large")
                && e.target.as_deref() == Some(format!("mxc://{name_b}/{long}").as_str()))
    );

    // A thumbnail made by B.
    let photo = share(&b, &bob, Some(&ward), png(64, 48), "image/png").await;
    let r = call(
        &a,
        &token,
        "GET",
        &format!(
            "/_matrix/client/v1/media/thumbnail/{name_b}/{photo}?width=32&height=32&method=scale"
        ),
        None,
    )
    .await;
    assert_eq!(r.status, 200, "{:?}", r.json());
    let thumb = image::load_from_memory(&r.body).unwrap();
    assert!(thumb.width() <= 32 && thumb.height() <= 32);

    // Once alice leaves, B refuses new fetches, but A's copy was already made.
    b.services.rooms.leave(&ward, &alice, None).await.unwrap();
    let r = call(&a, &token, "GET", &download(&letter), None).await;
    assert_eq!(r.body, b"discharge letter", "served from A's cache");
    let r = call(&a, &token, "GET", &download(&photo), None).await;
    assert_eq!(r.status, 404, "not fetched before she left: B refuses now");
}
