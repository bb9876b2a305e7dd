-- Schema v2: federation (issue 3) and the governance follow-ups (issue 5).
-- v1 has shipped: never edit it. Each area keeps its own section below.

-- Rooms over federation (issue 3): invites from other servers to rooms we are not yet in.
-- The invite event itself is in `events`; this keeps the stripped state shown with it.
CREATE TABLE remote_invites (
    room_id     TEXT NOT NULL,
    user_id     TEXT NOT NULL,
    event_id    TEXT NOT NULL,
    invite_state TEXT NOT NULL,
    PRIMARY KEY (room_id, user_id)
) WITHOUT ROWID;

-- Federation outbound queue
-- PDUs and EDUs waiting for other servers (service/federation/outbox). The JSON is stored once
-- (a PDU for a room on ten servers is queued ten times, not copied ten times) and deleted with
-- the last queue row that uses it. `txn_id` is set when a batch is claimed for a /send
-- transaction and kept until the receiver confirms it, so a retry after a failure or a restart
-- resends the same rows under the same transaction id. Row ids give the order per destination.
CREATE TABLE federation_outbox_payloads (
    id   INTEGER PRIMARY KEY,
    json TEXT NOT NULL
);

CREATE TABLE federation_outbox (
    id          INTEGER PRIMARY KEY,
    destination TEXT NOT NULL,
    kind        TEXT NOT NULL CHECK (kind IN ('pdu', 'edu')),
    payload_id  INTEGER NOT NULL REFERENCES federation_outbox_payloads(id),
    txn_id      TEXT,
    queued_ts   INTEGER NOT NULL
);
CREATE INDEX federation_outbox_by_destination ON federation_outbox (destination, id);
CREATE INDEX federation_outbox_by_payload ON federation_outbox (payload_id);
CREATE INDEX federation_outbox_by_txn ON federation_outbox (destination, txn_id)
    WHERE txn_id IS NOT NULL;
-- Federation media (fedquery): copies of other servers' media fetched over federation for a
-- local user's download, kept so the next request is served locally. `variant` is '' for the
-- file itself or 'WxH-method' for a thumbnail the other server made. The bytes live under
-- `data_dir/media/remote/ab/cd/<local_id>`. Only ever served to local users: federation media
-- endpoints serve this server's own uploads only.
CREATE TABLE remote_media_cache (
    origin        TEXT NOT NULL,
    media_id      TEXT NOT NULL,
    variant       TEXT NOT NULL,
    local_id      TEXT NOT NULL UNIQUE,
    content_type  TEXT,
    filename      TEXT,
    size          INTEGER NOT NULL,
    sha256        TEXT NOT NULL,
    fetched_ts    INTEGER NOT NULL,
    -- The local user whose download fetched it (for the IG lead: who brought it in).
    requested_by  TEXT NOT NULL,
    PRIMARY KEY (origin, media_id, variant)
) WITHOUT ROWID;
-- Remote device lists (E2EE over federation: service/e2ee/remote.rs, service/federation/edu.rs).
-- The /user/keys/query answer for a remote user we share a room with, as JSON
-- {"device_keys":{...},"master_key":...,"self_signing_key":...}. `fetched_pos` is the stream
-- position taken before the request: the row is used only while the user's device list has not
-- changed since (an m.device_list_update / m.signing_key_update marks device_list_changes) and
-- the user has shared a room with a local user since then.
CREATE TABLE remote_device_lists (
    user_id     TEXT PRIMARY KEY,
    fetched_pos INTEGER NOT NULL,
    keys_json   TEXT NOT NULL
) WITHOUT ROWID;

-- m.direct_to_device message ids already delivered, per origin server: a retried transaction
-- delivers its to-device messages once. Forgotten after a week.
CREATE TABLE federation_to_device_seen (
    origin      TEXT NOT NULL,
    message_id  TEXT NOT NULL,
    received_ts INTEGER NOT NULL,
    PRIMARY KEY (origin, message_id)
) WITHOUT ROWID;
CREATE INDEX federation_to_device_seen_ts ON federation_to_device_seen(received_ts);
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
