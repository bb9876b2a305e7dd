-- Sign-in through OpenID providers and Handover as an OAuth 2.0 authorization server (issue 10,
-- docs/IDENTITY.md).

-- An account is linked to a provider's subject, never to an email or a name: the subject is
-- the one claim a provider promises never to reassign. `claims` is the last login's profile
-- claims (JSON) for the IG trail and the account page.
CREATE TABLE identity_links (
    provider_id   TEXT NOT NULL,
    subject       TEXT NOT NULL,
    user_id       TEXT NOT NULL REFERENCES users(user_id),
    account_kind  TEXT NOT NULL,
    claims        TEXT NOT NULL,
    created_ts    INTEGER NOT NULL,
    last_login_ts INTEGER NOT NULL,
    PRIMARY KEY (provider_id, subject)
) WITHOUT ROWID;
CREATE INDEX identity_links_user ON identity_links(user_id);

-- Clients registered dynamically (RFC 7591); `metadata` is the validated registration (JSON).
CREATE TABLE oauth_clients (
    client_id  TEXT PRIMARY KEY,
    metadata   TEXT NOT NULL,
    created_ts INTEGER NOT NULL
) WITHOUT ROWID;

-- OAuth refresh tokens (SHA-256), rotated on every use. A spent one is kept (`spent_ts`) so
-- that its reuse is recognised as theft: the whole session (its device) is then revoked. They
-- go with their device. `access_hash` is the access token issued with it.
CREATE TABLE oauth_refresh_tokens (
    token_hash  TEXT PRIMARY KEY,
    user_id     TEXT NOT NULL,
    device_id   TEXT NOT NULL,
    client_id   TEXT NOT NULL,
    access_hash TEXT NOT NULL,
    created_ts  INTEGER NOT NULL,
    spent_ts    INTEGER,
    FOREIGN KEY (user_id, device_id) REFERENCES devices(user_id, device_id) ON DELETE CASCADE
) WITHOUT ROWID;
CREATE INDEX oauth_refresh_tokens_device ON oauth_refresh_tokens(user_id, device_id);
