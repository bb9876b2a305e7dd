-- Alerts bridge state, second step (applied once by name).

-- Status callbacks waiting for delivery, in order per source (callback.rs).
CREATE TABLE callbacks (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    source TEXT NOT NULL,
    alert_id TEXT NOT NULL,
    -- The status document at the change (JSON), signed at each attempt.
    body TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_at INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    last_error TEXT
);
CREATE INDEX callbacks_source ON callbacks (source, id);

-- Where each rota slot came from: `csv` or `fhir` (a FHIR import replaces only FHIR slots of
-- the roles it covers, a CSV import only CSV ones).
ALTER TABLE rota ADD COLUMN origin TEXT NOT NULL DEFAULT 'csv';

-- Staff messaging a role (callers.rs): one private room per (role, caller) with the caller,
-- the current holder and the bot.
CREATE TABLE role_callers (
    role TEXT NOT NULL,
    caller TEXT NOT NULL,
    room_id TEXT NOT NULL UNIQUE,
    -- The holder last brought into this room (NULL: nobody yet).
    holder TEXT,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (role, caller)
);
