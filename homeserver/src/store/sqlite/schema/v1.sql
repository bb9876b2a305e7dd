-- Handover schema v1. Times are milliseconds since the Unix epoch. `pos` columns are positions in
-- the one global stream that /sync tokens count (see docs/ARCHITECTURE.md).

-- The writer persists the last allocated stream position so a restart never reuses one.
CREATE TABLE stream_position (id INTEGER PRIMARY KEY CHECK (id = 0), pos INTEGER NOT NULL);
INSERT INTO stream_position (id, pos) VALUES (0, 0);

CREATE TABLE users (
    user_id       TEXT PRIMARY KEY,
    password_hash TEXT,
    is_admin      INTEGER NOT NULL DEFAULT 0,
    deactivated   INTEGER NOT NULL DEFAULT 0,
    displayname   TEXT,
    avatar_url    TEXT,
    created_ts    INTEGER NOT NULL
) WITHOUT ROWID;

CREATE TABLE devices (
    user_id      TEXT NOT NULL REFERENCES users(user_id) ON DELETE CASCADE,
    device_id    TEXT NOT NULL,
    display_name TEXT,
    last_seen_ts INTEGER,
    last_seen_ip TEXT,
    created_ts   INTEGER NOT NULL,
    PRIMARY KEY (user_id, device_id)
) WITHOUT ROWID;

-- Only a SHA-256 of each access token is stored: a copied database file yields no usable token.
CREATE TABLE access_tokens (
    token_hash TEXT PRIMARY KEY,
    user_id    TEXT NOT NULL,
    device_id  TEXT NOT NULL,
    created_ts INTEGER NOT NULL,
    FOREIGN KEY (user_id, device_id) REFERENCES devices(user_id, device_id) ON DELETE CASCADE
) WITHOUT ROWID;
CREATE INDEX access_tokens_device ON access_tokens(user_id, device_id);

CREATE TABLE rooms (
    room_id      TEXT PRIMARY KEY,
    room_version TEXT NOT NULL,
    creator      TEXT NOT NULL,
    is_public    INTEGER NOT NULL DEFAULT 0,
    created_ts   INTEGER NOT NULL
) WITHOUT ROWID;

-- Every PDU we hold. `pos` orders the local timeline (NULL for outliers we hold only for auth).
CREATE TABLE events (
    event_id         TEXT PRIMARY KEY,
    pos              INTEGER UNIQUE,
    room_id          TEXT NOT NULL REFERENCES rooms(room_id),
    sender           TEXT NOT NULL,
    type             TEXT NOT NULL,
    state_key        TEXT,
    depth            INTEGER NOT NULL,
    origin_server_ts INTEGER NOT NULL,
    json             TEXT NOT NULL,
    -- Server-computed unsigned data (prev_content, replaces_state), fixed at append time.
    unsigned         TEXT,
    redacted_by      TEXT,
    -- The sending device and txn id, for unsigned.transaction_id and idempotent sends.
    txn_device       TEXT,
    txn_id           TEXT
);
CREATE INDEX events_room_pos ON events(room_id, pos);

CREATE TABLE txn_ids (
    user_id   TEXT NOT NULL,
    device_id TEXT NOT NULL,
    txn_id    TEXT NOT NULL,
    event_id  TEXT NOT NULL,
    PRIMARY KEY (user_id, device_id, txn_id)
) WITHOUT ROWID;

-- Relations (edits, replies in threads, annotations) for aggregation and filtering.
CREATE TABLE event_relations (
    event_id   TEXT PRIMARY KEY REFERENCES events(event_id) ON DELETE CASCADE,
    relates_to TEXT NOT NULL,
    rel_type   TEXT NOT NULL
) WITHOUT ROWID;
CREATE INDEX event_relations_target ON event_relations(relates_to, rel_type);

-- Room state over time as deltas: the state at position P is, for each (type, state_key), the row
-- with the greatest pos <= P. Current state is the latest row.
CREATE TABLE state_deltas (
    room_id   TEXT NOT NULL,
    type      TEXT NOT NULL,
    state_key TEXT NOT NULL,
    pos       INTEGER NOT NULL,
    event_id  TEXT NOT NULL,
    PRIMARY KEY (room_id, type, state_key, pos)
) WITHOUT ROWID;
CREATE INDEX state_deltas_room_pos ON state_deltas(room_id, pos);

-- Current membership, denormalised from state for fast "rooms of user" / "members of room".
CREATE TABLE memberships (
    room_id    TEXT NOT NULL,
    user_id    TEXT NOT NULL,
    membership TEXT NOT NULL,
    event_id   TEXT NOT NULL,
    pos        INTEGER NOT NULL,
    forgotten  INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (room_id, user_id)
) WITHOUT ROWID;
CREATE INDEX memberships_user ON memberships(user_id, membership);

CREATE TABLE forward_extremities (
    room_id  TEXT NOT NULL,
    event_id TEXT NOT NULL,
    PRIMARY KEY (room_id, event_id)
) WITHOUT ROWID;

CREATE TABLE room_aliases (
    alias      TEXT PRIMARY KEY,
    room_id    TEXT NOT NULL,
    creator    TEXT NOT NULL,
    created_ts INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX room_aliases_room ON room_aliases(room_id);

-- Global (room_id = '') and per-room account data, including m.tag and m.fully_read.
CREATE TABLE account_data (
    user_id TEXT NOT NULL,
    room_id TEXT NOT NULL,
    type    TEXT NOT NULL,
    content TEXT NOT NULL,
    pos     INTEGER NOT NULL,
    PRIMARY KEY (user_id, room_id, type)
) WITHOUT ROWID;
CREATE INDEX account_data_pos ON account_data(user_id, pos);

CREATE TABLE receipts (
    room_id      TEXT NOT NULL,
    receipt_type TEXT NOT NULL,
    user_id      TEXT NOT NULL,
    thread_id    TEXT NOT NULL,
    event_id     TEXT NOT NULL,
    ts           INTEGER NOT NULL,
    pos          INTEGER NOT NULL,
    PRIMARY KEY (room_id, receipt_type, user_id, thread_id)
) WITHOUT ROWID;
CREATE INDEX receipts_room_pos ON receipts(room_id, pos);

CREATE TABLE filters (
    user_id   TEXT NOT NULL,
    filter_id INTEGER NOT NULL,
    json      TEXT NOT NULL,
    PRIMARY KEY (user_id, filter_id)
) WITHOUT ROWID;

CREATE TABLE media (
    media_id     TEXT PRIMARY KEY,
    uploader     TEXT NOT NULL,
    content_type TEXT,
    filename     TEXT,
    size         INTEGER NOT NULL,
    sha256       TEXT NOT NULL,
    created_ts   INTEGER NOT NULL
) WITHOUT ROWID;

CREATE TABLE media_thumbnails (
    media_id     TEXT NOT NULL REFERENCES media(media_id) ON DELETE CASCADE,
    width        INTEGER NOT NULL,
    height       INTEGER NOT NULL,
    method       TEXT NOT NULL,
    content_type TEXT NOT NULL,
    size         INTEGER NOT NULL,
    PRIMARY KEY (media_id, width, height, method)
) WITHOUT ROWID;

-- /timestamp_to_event: the nearest event to a time, per room.
CREATE INDEX events_room_ts ON events(room_id, origin_server_ts);

-- Content reports (events, rooms, users) from /report endpoints; later read by the IG audit trail.
-- `score` is kept for clients still sending it (removed from the spec in v1.18).
CREATE TABLE reports (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    reporter    TEXT NOT NULL,
    room_id     TEXT,
    event_id    TEXT,
    target_user TEXT,
    reason      TEXT,
    score       INTEGER,
    ts          INTEGER NOT NULL
);
CREATE INDEX reports_ts ON reports(ts);

-- Push: what each local member's push rules said about each event, written once per event by
-- the push evaluator (only events whose actions notify). Unread and highlight counts are the rows
-- after the user's read boundary (read receipt or own latest event).
CREATE TABLE event_push_actions (
    user_id   TEXT NOT NULL,
    room_id   TEXT NOT NULL,
    pos       INTEGER NOT NULL,
    event_id  TEXT NOT NULL,
    highlight INTEGER NOT NULL,
    -- The matched rule's actions as JSON, for GET /notifications.
    actions   TEXT NOT NULL,
    ts        INTEGER NOT NULL,
    PRIMARY KEY (user_id, room_id, pos)
) WITHOUT ROWID;
CREATE INDEX event_push_actions_user_pos ON event_push_actions(user_id, pos);

-- The read boundary's "own latest event": a user's own message marks earlier ones read.
CREATE INDEX events_room_sender ON events(room_id, sender, pos);

-- Pushers (POST /pushers/set). `json` is the pusher as the client API returns it.
CREATE TABLE pushers (
    user_id    TEXT NOT NULL,
    app_id     TEXT NOT NULL,
    pushkey    TEXT NOT NULL,
    json       TEXT NOT NULL,
    created_ts INTEGER NOT NULL,
    PRIMARY KEY (user_id, app_id, pushkey)
) WITHOUT ROWID;
CREATE INDEX pushers_key ON pushers(app_id, pushkey);

-- End-to-end encryption. Device-scoped rows go with their device (logout, deletion).
-- Device identity keys as uploaded (the device's own signature included).
CREATE TABLE device_keys (
    user_id   TEXT NOT NULL,
    device_id TEXT NOT NULL,
    key_json  TEXT NOT NULL,
    PRIMARY KEY (user_id, device_id),
    FOREIGN KEY (user_id, device_id) REFERENCES devices(user_id, device_id) ON DELETE CASCADE
) WITHOUT ROWID;

-- Unclaimed one-time keys; a claim deletes its row.
CREATE TABLE one_time_keys (
    user_id   TEXT NOT NULL,
    device_id TEXT NOT NULL,
    algorithm TEXT NOT NULL,
    key_id    TEXT NOT NULL,
    key_json  TEXT NOT NULL,
    PRIMARY KEY (user_id, device_id, algorithm, key_id),
    FOREIGN KEY (user_id, device_id) REFERENCES devices(user_id, device_id) ON DELETE CASCADE
) WITHOUT ROWID;

-- One fallback key per algorithm; handed out when one-time keys run out, then marked used.
CREATE TABLE fallback_keys (
    user_id   TEXT NOT NULL,
    device_id TEXT NOT NULL,
    algorithm TEXT NOT NULL,
    key_id    TEXT NOT NULL,
    key_json  TEXT NOT NULL,
    used      INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (user_id, device_id, algorithm),
    FOREIGN KEY (user_id, device_id) REFERENCES devices(user_id, device_id) ON DELETE CASCADE
) WITHOUT ROWID;

-- Cross-signing keys; `public_key` (unpadded base64) is how signatures/upload names them.
CREATE TABLE cross_signing_keys (
    user_id    TEXT NOT NULL REFERENCES users(user_id) ON DELETE CASCADE,
    key_type   TEXT NOT NULL CHECK (key_type IN ('master', 'self_signing', 'user_signing')),
    public_key TEXT NOT NULL,
    key_json   TEXT NOT NULL,
    PRIMARY KEY (user_id, key_type)
) WITHOUT ROWID;

-- Signatures uploaded later (signatures/upload), merged into /keys/query answers. `target_key`
-- is a device id or a cross-signing public key of `target_user`.
CREATE TABLE key_signatures (
    target_user   TEXT NOT NULL,
    target_key    TEXT NOT NULL,
    signer_user   TEXT NOT NULL,
    signer_key_id TEXT NOT NULL,
    signature     TEXT NOT NULL,
    PRIMARY KEY (target_user, target_key, signer_user, signer_key_id)
) WITHOUT ROWID;

-- The latest stream position at which a user's devices or keys changed (device_lists.changed).
CREATE TABLE device_list_changes (
    user_id TEXT PRIMARY KEY,
    pos     INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX device_list_changes_pos ON device_list_changes(pos);

-- Undelivered to-device messages; deleted once the device syncs past their position.
CREATE TABLE to_device_messages (
    user_id    TEXT NOT NULL,
    device_id  TEXT NOT NULL,
    pos        INTEGER NOT NULL,
    sender     TEXT NOT NULL,
    type       TEXT NOT NULL,
    content    TEXT NOT NULL,
    PRIMARY KEY (user_id, device_id, pos),
    FOREIGN KEY (user_id, device_id) REFERENCES devices(user_id, device_id) ON DELETE CASCADE
) WITHOUT ROWID;

-- sendToDevice transaction ids already handled, per sending device (idempotent retries).
CREATE TABLE to_device_txns (
    user_id   TEXT NOT NULL,
    device_id TEXT NOT NULL,
    txn_id    TEXT NOT NULL,
    PRIMARY KEY (user_id, device_id, txn_id),
    FOREIGN KEY (user_id, device_id) REFERENCES devices(user_id, device_id) ON DELETE CASCADE
) WITHOUT ROWID;

-- Server-side key backup. Deleted versions stay as tombstones so a number is never reused.
CREATE TABLE backup_versions (
    user_id   TEXT NOT NULL REFERENCES users(user_id) ON DELETE CASCADE,
    version   INTEGER NOT NULL,
    algorithm TEXT NOT NULL,
    etag      INTEGER NOT NULL DEFAULT 0,
    deleted   INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (user_id, version)
) WITHOUT ROWID;

CREATE TABLE backup_keys (
    user_id             TEXT NOT NULL,
    version             INTEGER NOT NULL,
    room_id             TEXT NOT NULL,
    session_id          TEXT NOT NULL,
    first_message_index INTEGER NOT NULL,
    forwarded_count     INTEGER NOT NULL,
    is_verified         INTEGER NOT NULL,
    key_json            TEXT NOT NULL,
    PRIMARY KEY (user_id, version, room_id, session_id),
    FOREIGN KEY (user_id, version) REFERENCES backup_versions(user_id, version) ON DELETE CASCADE
) WITHOUT ROWID;

-- The IG audit trail: append-only and hash-chained (handover-compliance defines the chain).
-- `seq` is allocated as last + 1 inside the single writer, so the chain never forks. Metadata
-- only: `details` is a small JSON object, never message content, passwords or tokens.
CREATE TABLE audit_log (
    seq       INTEGER PRIMARY KEY,
    ts        INTEGER NOT NULL,
    actor     TEXT NOT NULL,
    action    TEXT NOT NULL,
    target    TEXT,
    outcome   TEXT NOT NULL,
    rule      TEXT,
    details   TEXT NOT NULL,
    prev_hash TEXT NOT NULL,
    hash      TEXT NOT NULL
);
CREATE INDEX audit_log_ts ON audit_log(ts);
-- The server never changes an entry; these stop accidents (the hash chain catches the rest).
CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END;
CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END;

-- Clinical media: the room each file was first sent in (first binding wins). Only members of
-- that room may fetch it (docs/GOVERNANCE.md, rule media_not_in_your_rooms).
-- No foreign key: an async upload (`/create`) may be sent in a room before its content arrives.
CREATE TABLE media_room_bindings (
    media_id  TEXT PRIMARY KEY,
    room_id   TEXT NOT NULL,
    event_id  TEXT NOT NULL,
    bound_ts  INTEGER NOT NULL
) WITHOUT ROWID;

-- Clinical media the scanner flagged: the file is kept for the IG lead, never served.
CREATE TABLE media_quarantine (
    media_id  TEXT PRIMARY KEY REFERENCES media(media_id) ON DELETE CASCADE,
    reason    TEXT NOT NULL,
    ts        INTEGER NOT NULL
) WITHOUT ROWID;

-- Federation: remote servers' signing keys, as fetched from `/_matrix/key/v2/server` (or a
-- notary) and verified against their self-signature. A key is used to verify requests until
-- its `valid_until_ts`; `expired_ts` is set for keys the server listed as old.
CREATE TABLE federation_server_keys (
    server_name    TEXT NOT NULL,
    key_id         TEXT NOT NULL,
    public_key     TEXT NOT NULL,
    valid_until_ts INTEGER NOT NULL,
    expired_ts     INTEGER,
    fetched_ts     INTEGER NOT NULL,
    PRIMARY KEY (server_name, key_id)
) WITHOUT ROWID;
-- The latest signed key response per server, served again (counter-signed) by the notary.
CREATE TABLE federation_key_responses (
    server_name    TEXT PRIMARY KEY,
    response_json  TEXT NOT NULL,
    valid_until_ts INTEGER NOT NULL,
    fetched_ts     INTEGER NOT NULL
) WITHOUT ROWID;

-- Legal holds: a held room, and every event a held user sent, is never purged by retention.
-- Placing and releasing a hold is audited (`retention.hold`, `retention.release`).
CREATE TABLE legal_holds (
    kind      TEXT NOT NULL CHECK (kind IN ('room', 'user')),
    target    TEXT NOT NULL,
    reason    TEXT,
    placed_by TEXT NOT NULL,
    placed_ts INTEGER NOT NULL,
    PRIMARY KEY (kind, target)
) WITHOUT ROWID;

-- Events whose stored JSON retention has already reduced to the redacted form (expired state
-- events kept for auth, redacted originals past their grace), so a purge never redoes them.
CREATE TABLE retention_minimised (
    event_id TEXT PRIMARY KEY,
    ts       INTEGER NOT NULL
) WITHOUT ROWID;

-- When each to-device send was queued (one row per position), so retention can drop messages
-- a device never collected (`retention.to_device_lifetime`).
CREATE TABLE to_device_sent (
    pos INTEGER PRIMARY KEY,
    ts  INTEGER NOT NULL
);

-- MSC3814 dehydrated devices: at most one per user. The device is a real `devices` row (with no
-- access token), so its keys and queued to-device messages live in the usual tables; this row
-- holds only the client's opaque, encrypted `device_data`.
CREATE TABLE dehydrated_devices (
    user_id     TEXT PRIMARY KEY,
    device_id   TEXT NOT NULL,
    device_data TEXT NOT NULL,
    created_ts  INTEGER NOT NULL,
    FOREIGN KEY (user_id, device_id) REFERENCES devices(user_id, device_id) ON DELETE CASCADE
) WITHOUT ROWID;
