//! The v2 migration backfills `media_refs` from events stored before it existed.

use rusqlite::Connection;

use super::migrations;

#[test]
fn v2_backfills_media_references_of_existing_events() {
    let mut conn = Connection::open_in_memory().unwrap();
    // A database as v1 left it.
    conn.execute_batch(include_str!("schema/v1.sql")).unwrap();
    conn.execute_batch(
        "CREATE TABLE schema_version (version INTEGER NOT NULL);
         INSERT INTO schema_version (version) VALUES (1);
         INSERT INTO rooms (room_id, room_version, creator, created_ts) VALUES ('!r:x', '12', '@a:x', 0);",
    )
    .unwrap();
    let event = |id: &str, pos: i64, json: &str| {
        conn.execute(
            "INSERT INTO events (event_id, pos, room_id, sender, type, depth, origin_server_ts, json)
             VALUES (?1, ?2, '!r:x', '@a:x', 'm.room.message', 1, 0, ?3)",
            rusqlite::params![id, pos, json],
        )
        .unwrap();
    };
    event(
        "$img",
        1,
        r#"{"content":{"url":"mxc://x/one","info":{"thumbnail_url":"mxc://x/thumb"}}}"#,
    );
    event(
        "$edit",
        2,
        r#"{"content":{"body":"* e","m.new_content":{"file":{"url":"mxc://x/two"}}}}"#,
    );
    event("$text", 3, r#"{"content":{"body":"see mxc://x/nope"}}"#);
    event("$bad", 4, "not json mxc://x/three");
    migrations::run(&mut conn).unwrap();
    let mut st = conn
        .prepare("SELECT mxc, event_id FROM media_refs ORDER BY mxc")
        .unwrap();
    let rows: Vec<(String, String)> = st
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(
        rows,
        vec![
            ("mxc://x/one".into(), "$img".into()),
            ("mxc://x/thumb".into(), "$img".into()),
            ("mxc://x/two".into(), "$edit".into()),
        ]
    );
}
