-- Schema v2: federation (issue 3) and the governance follow-ups (issue 5).
-- v1 has shipped: never edit it. Each area keeps its own section below.

-- Governance (issue 5) ------------------------------------------------------------------------
-- Self-contained: tables below are read and written only by the governance code (media
-- references for retention, email addresses for registration restricted to NHS domains).

-- Every reference from an event's content to a file (`url`, `file.url`, `info.thumbnail_url`,
-- `info.thumbnail_file.url`, and the same inside an edit's `m.new_content`), whoever sent it.
-- `mxc` is the full `mxc://server/id`. Retention deletes a file only once no stored,
-- unminimised event refers to it.
CREATE TABLE media_refs (
    mxc      TEXT NOT NULL,
    event_id TEXT NOT NULL,
    room_id  TEXT NOT NULL,
    sender   TEXT NOT NULL,
    PRIMARY KEY (mxc, event_id)
) WITHOUT ROWID;
CREATE INDEX media_refs_event ON media_refs(event_id);
CREATE INDEX media_refs_room ON media_refs(room_id);

-- Events stored before this table existed. CASE keeps a malformed row from failing the
-- migration (json_extract raises on invalid JSON).
INSERT OR IGNORE INTO media_refs (mxc, event_id, room_id, sender)
SELECT j.value, e.event_id, e.room_id, e.sender
FROM events e, json_each(json_array(
    json_extract(CASE WHEN json_valid(e.json) THEN e.json ELSE '{}' END, '$.content.url'),
    json_extract(CASE WHEN json_valid(e.json) THEN e.json ELSE '{}' END, '$.content.file.url'),
    json_extract(CASE WHEN json_valid(e.json) THEN e.json ELSE '{}' END, '$.content.info.thumbnail_url'),
    json_extract(CASE WHEN json_valid(e.json) THEN e.json ELSE '{}' END, '$.content.info.thumbnail_file.url'),
    json_extract(CASE WHEN json_valid(e.json) THEN e.json ELSE '{}' END, '$.content."m.new_content".url'),
    json_extract(CASE WHEN json_valid(e.json) THEN e.json ELSE '{}' END, '$.content."m.new_content".file.url'),
    json_extract(CASE WHEN json_valid(e.json) THEN e.json ELSE '{}' END, '$.content."m.new_content".info.thumbnail_url'),
    json_extract(CASE WHEN json_valid(e.json) THEN e.json ELSE '{}' END, '$.content."m.new_content".info.thumbnail_file.url')
)) j
WHERE e.json LIKE '%mxc://%' AND j.type = 'text' AND j.value LIKE 'mxc://%'
  AND e.event_id NOT IN (SELECT event_id FROM retention_minimised);

-- Email addresses proven by a validation link and bound to an account (`GET /account/3pid`).
-- One account per address.
CREATE TABLE user_threepids (
    medium       TEXT NOT NULL,
    address      TEXT NOT NULL,
    user_id      TEXT NOT NULL REFERENCES users(user_id) ON DELETE CASCADE,
    validated_ts INTEGER NOT NULL,
    added_ts     INTEGER NOT NULL,
    PRIMARY KEY (medium, address)
) WITHOUT ROWID;
CREATE INDEX user_threepids_user ON user_threepids(user_id);

-- Email validation sessions (`/register/email/requestToken`). Only SHA-256 hashes of the
-- emailed token and the client secret are stored: a copied database proves no address.
CREATE TABLE threepid_validations (
    sid                TEXT PRIMARY KEY,
    client_secret_hash TEXT NOT NULL,
    medium             TEXT NOT NULL,
    address            TEXT NOT NULL,
    token_hash         TEXT NOT NULL,
    send_attempt       INTEGER NOT NULL,
    failed_attempts    INTEGER NOT NULL DEFAULT 0,
    created_ts         INTEGER NOT NULL,
    expires_ts         INTEGER NOT NULL,
    validated_ts       INTEGER
) WITHOUT ROWID;
CREATE INDEX threepid_validations_address ON threepid_validations(address, client_secret_hash);
