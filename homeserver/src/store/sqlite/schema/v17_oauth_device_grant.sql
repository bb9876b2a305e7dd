-- Issue 10: the OAuth 2.0 device authorization grant (RFC 8628) and the provider sessions
-- behind each Handover session (docs/IDENTITY.md).

-- A device asked to sign in; the user approves it on another device by entering `user_code`.
-- Kept on disk: an approval acknowledged to the user survives a restart, and a device keeps
-- polling across one. `device_code` is stored hashed (SHA-256) like every token. `state`:
-- pending -> approved | denied (by the user) -> spent (tokens issued once). `upstream_*`: the
-- provider session the approving user signed in with, carried to the new device.
CREATE TABLE oauth_device_grants (
    device_code_hash  TEXT PRIMARY KEY,
    user_code         TEXT NOT NULL UNIQUE,
    client_id         TEXT NOT NULL,
    scope             TEXT NOT NULL,
    device_id         TEXT NOT NULL,
    created_ts        INTEGER NOT NULL,
    expires_ts        INTEGER NOT NULL,
    interval_ms       INTEGER NOT NULL,
    last_poll_ts      INTEGER,
    state             TEXT NOT NULL DEFAULT 'pending'
                      CHECK (state IN ('pending', 'approved', 'denied', 'spent')),
    user_id           TEXT,
    upstream_provider TEXT,
    upstream_sid      TEXT,
    decided_ts        INTEGER
) WITHOUT ROWID;
CREATE INDEX oauth_device_grants_expiry ON oauth_device_grants(expires_ts);

-- Which Handover session (device) came from which provider session (the ID token's `sid`), so
-- an OIDC back-channel logout naming a `sid` ends only those sessions. Goes with the device.
CREATE TABLE identity_upstream_sessions (
    provider_id TEXT NOT NULL,
    sid         TEXT NOT NULL,
    user_id     TEXT NOT NULL,
    device_id   TEXT NOT NULL,
    created_ts  INTEGER NOT NULL,
    PRIMARY KEY (provider_id, sid, user_id, device_id),
    FOREIGN KEY (user_id, device_id) REFERENCES devices(user_id, device_id) ON DELETE CASCADE
) WITHOUT ROWID;
CREATE INDEX identity_upstream_sessions_device ON identity_upstream_sessions(user_id, device_id);
