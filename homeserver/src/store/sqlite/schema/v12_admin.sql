-- Admin API, second part (issue 15): media moderation and registration tokens.

-- Who quarantined a file through the admin API (NULL: the upload scanner flagged it).
ALTER TABLE media_quarantine ADD COLUMN quarantined_by TEXT;

-- Files an admin protected from quarantine (Synapse's `safe_from_quarantine`).
CREATE TABLE media_protected (
    media_id TEXT PRIMARY KEY REFERENCES media(media_id) ON DELETE CASCADE
) WITHOUT ROWID;

CREATE INDEX media_uploader ON media(uploader, created_ts);

-- Registration tokens made through the admin API (the config's `[registration] tokens` stay
-- valid alongside them). `pending` counts registrations that passed the token stage but have not
-- finished; `completed` those that did. NULL `uses_allowed` / `expiry_time`: no limit.
CREATE TABLE registration_tokens (
    token        TEXT PRIMARY KEY,
    uses_allowed INTEGER,
    pending      INTEGER NOT NULL DEFAULT 0,
    completed    INTEGER NOT NULL DEFAULT 0,
    expiry_time  INTEGER
) WITHOUT ROWID;
