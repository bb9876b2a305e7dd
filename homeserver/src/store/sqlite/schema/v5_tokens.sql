-- Access token expiry and refresh tokens (issue 9, item 19; docs/ARCHITECTURE.md "Sessions").
-- NULL: the access token never expires (clients that did not ask for a refresh token).
ALTER TABLE access_tokens ADD COLUMN expires_ts INTEGER;

-- Single-use refresh tokens, stored as SHA-256 like access tokens. `access_hash` is the access
-- token issued with it: using the refresh token revokes that access token. They go with their
-- device (logout, device deletion, deactivation).
CREATE TABLE refresh_tokens (
    token_hash  TEXT PRIMARY KEY,
    user_id     TEXT NOT NULL,
    device_id   TEXT NOT NULL,
    access_hash TEXT NOT NULL,
    created_ts  INTEGER NOT NULL,
    FOREIGN KEY (user_id, device_id) REFERENCES devices(user_id, device_id) ON DELETE CASCADE
) WITHOUT ROWID;
CREATE INDEX refresh_tokens_device ON refresh_tokens(user_id, device_id);
