-- Full-text search (POST /search, docs/ARCHITECTURE.md "Search"): unencrypted message bodies,
-- room names and topics. Contentless FTS5: only tokens are stored, the text stays in `events`
-- alone. A row is deleted with FTS5's 'delete' command given the text it was indexed with (the
-- event JSON, unchanged until then), and `secure-delete` makes its tokens leave the index pages
-- at once (not merely tombstoned until a later merge, as `contentless_delete` tables do), so a
-- purge or redaction leaves no term on disk.
CREATE VIRTUAL TABLE event_search USING fts5(
    value, content = '', tokenize = 'unicode61 remove_diacritics 2'
);
INSERT INTO event_search (event_search, rank) VALUES ('secure-delete', 1);

-- Which event each index row (FTS rowid) holds, and under which search key.
CREATE TABLE event_search_rows (
    rowid    INTEGER PRIMARY KEY,
    event_id TEXT NOT NULL UNIQUE,
    room_id  TEXT NOT NULL,
    key      TEXT NOT NULL
);
CREATE INDEX event_search_rows_room ON event_search_rows (room_id);

-- The index follows `events` by triggers, so an index row is written, dropped on redaction or
-- retention minimisation, and deleted with its event in the very same transaction, whichever
-- path (local send, federation, backfill, retention) writes the event.
CREATE TRIGGER event_search_insert AFTER INSERT ON events
WHEN NEW.redacted_by IS NULL AND CASE
    WHEN NOT json_valid(NEW.json) THEN 0
    WHEN NEW.type = 'm.room.message' AND NEW.state_key IS NULL
        THEN json_type(NEW.json, '$.content.body') = 'text'
    WHEN NEW.type = 'm.room.name' AND NEW.state_key = ''
        THEN json_type(NEW.json, '$.content.name') = 'text'
    WHEN NEW.type = 'm.room.topic' AND NEW.state_key = ''
        THEN json_type(NEW.json, '$.content.topic') = 'text'
    ELSE 0 END
BEGIN
    INSERT INTO event_search_rows (event_id, room_id, key) VALUES (
        NEW.event_id, NEW.room_id,
        CASE NEW.type WHEN 'm.room.message' THEN 'content.body'
                      WHEN 'm.room.name' THEN 'content.name' ELSE 'content.topic' END);
    INSERT INTO event_search (rowid, value) VALUES (
        last_insert_rowid(),
        json_extract(NEW.json, CASE NEW.type WHEN 'm.room.message' THEN '$.content.body'
                                             WHEN 'm.room.name' THEN '$.content.name'
                                             ELSE '$.content.topic' END));
END;

CREATE TRIGGER event_search_redact AFTER UPDATE OF json, redacted_by ON events
WHEN NEW.redacted_by IS NOT NULL OR NEW.json IS NOT OLD.json
BEGIN
    INSERT INTO event_search (event_search, rowid, value)
    SELECT 'delete', x.rowid, json_extract(OLD.json, '$.' || x.key)
      FROM event_search_rows x WHERE x.event_id = OLD.event_id;
    DELETE FROM event_search_rows WHERE event_id = OLD.event_id;
END;

CREATE TRIGGER event_search_delete AFTER DELETE ON events
BEGIN
    INSERT INTO event_search (event_search, rowid, value)
    SELECT 'delete', x.rowid, json_extract(OLD.json, '$.' || x.key)
      FROM event_search_rows x WHERE x.event_id = OLD.event_id;
    DELETE FROM event_search_rows WHERE event_id = OLD.event_id;
END;

-- Events stored before this migration.
INSERT INTO event_search_rows (event_id, room_id, key)
SELECT event_id, room_id,
       CASE type WHEN 'm.room.message' THEN 'content.body'
                 WHEN 'm.room.name' THEN 'content.name' ELSE 'content.topic' END
  FROM events
 WHERE redacted_by IS NULL AND CASE
    WHEN NOT json_valid(json) THEN 0
    WHEN type = 'm.room.message' AND state_key IS NULL
        THEN json_type(json, '$.content.body') = 'text'
    WHEN type = 'm.room.name' AND state_key = '' THEN json_type(json, '$.content.name') = 'text'
    WHEN type = 'm.room.topic' AND state_key = '' THEN json_type(json, '$.content.topic') = 'text'
    ELSE 0 END;
INSERT INTO event_search (rowid, value)
SELECT r.rowid, json_extract(e.json, '$.' || r.key)
  FROM event_search_rows r JOIN events e ON e.event_id = r.event_id;

-- Extended profile fields (spec v1.16): `m.tz` and custom keys, each value any JSON. Display
-- name and avatar stay in `users`. A deactivated account keeps no profile (as for the name).
CREATE TABLE profile_fields (
    user_id TEXT NOT NULL,
    key     TEXT NOT NULL,
    value   TEXT NOT NULL,
    PRIMARY KEY (user_id, key)
) WITHOUT ROWID;
CREATE TRIGGER profile_fields_deactivated AFTER UPDATE OF deactivated ON users
WHEN NEW.deactivated = 1
BEGIN
    DELETE FROM profile_fields WHERE user_id = NEW.user_id;
END;
