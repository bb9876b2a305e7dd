-- Schema v2: federation (issue 3) and the governance follow-ups (issue 5).
-- v1 has shipped: never edit it. Each area keeps its own section below.

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
