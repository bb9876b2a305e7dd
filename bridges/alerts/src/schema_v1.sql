-- Alerts bridge state (applied once by name, see handover_bridge_core::store).
CREATE TABLE alerts (
    source TEXT NOT NULL,
    alert_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    severity TEXT NOT NULL,
    title TEXT NOT NULL,
    text TEXT NOT NULL,
    patient TEXT,
    ward TEXT,
    specialty TEXT,
    rule TEXT NOT NULL,
    received_at INTEGER NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('pending', 'open', 'acknowledged')),
    ack_by TEXT,
    ack_at INTEGER,
    ack_via TEXT,
    esc_step INTEGER NOT NULL DEFAULT 0,
    -- The durable escalation timer: ms since the epoch, NULL when nothing is scheduled.
    next_due INTEGER,
    -- SHA-256 of the signed body: a retry (same hash) is a duplicate, another body a conflict.
    body_hash TEXT NOT NULL,
    PRIMARY KEY (source, alert_id)
);
CREATE INDEX alerts_due ON alerts (state, next_due);

CREATE TABLE alert_posts (
    room_id TEXT NOT NULL,
    event_id TEXT NOT NULL PRIMARY KEY,
    source TEXT NOT NULL,
    alert_id TEXT NOT NULL,
    step INTEGER NOT NULL,
    target TEXT NOT NULL,
    recipient TEXT,
    at INTEGER NOT NULL,
    FOREIGN KEY (source, alert_id) REFERENCES alerts (source, alert_id)
);
CREATE INDEX alert_posts_alert ON alert_posts (source, alert_id);

CREATE TABLE alert_reads (
    source TEXT NOT NULL,
    alert_id TEXT NOT NULL,
    user_id TEXT NOT NULL,
    at INTEGER NOT NULL,
    PRIMARY KEY (source, alert_id, user_id)
);

CREATE TABLE managed_rooms (
    key TEXT PRIMARY KEY,
    room_id TEXT NOT NULL,
    created_at INTEGER NOT NULL
);

CREATE TABLE handled_events (event_id TEXT PRIMARY KEY);

-- Rota slots: the holder of a role between start and end (ms), from the CSV import.
CREATE TABLE rota (
    role TEXT NOT NULL,
    user_id TEXT NOT NULL,
    start_ms INTEGER NOT NULL,
    end_ms INTEGER NOT NULL
);
CREATE INDEX rota_role ON rota (role, start_ms);

-- A holder set by command (!oncall take / handover) until the next rota slot starts.
CREATE TABLE role_overrides (
    role TEXT PRIMARY KEY,
    user_id TEXT NOT NULL,
    set_at INTEGER NOT NULL,
    until_ms INTEGER
);

-- The holder the bridge has applied (invited into the role room).
CREATE TABLE role_holders (
    role TEXT PRIMARY KEY,
    user_id TEXT,
    since INTEGER NOT NULL
);
