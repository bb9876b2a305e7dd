-- Admin room jobs (issue 15): Synapse's background room deletion (`DELETE /_synapse/admin/v2/
-- rooms/{roomId}`) and history purge (`POST /_synapse/admin/v1/purge_history/...`). A job row
-- is written before the request is answered, so its id and status survive a restart; a job
-- left `scheduled` or `active` by a stopped server is resumed at start-up (service/admin/
-- room_jobs.rs). `params` is the request as the service understood it, `result` the
-- shutdown's outcome (kicked users, moved aliases, the new room) once known.
CREATE TABLE admin_room_jobs (
    job_id       TEXT PRIMARY KEY,
    kind         TEXT NOT NULL CHECK (kind IN ('delete', 'purge_history')),
    room_id      TEXT NOT NULL,
    requested_by TEXT NOT NULL,
    params       TEXT NOT NULL,
    status       TEXT NOT NULL CHECK (status IN ('scheduled', 'active', 'complete', 'failed')),
    error        TEXT,
    result       TEXT,
    created_ts   INTEGER NOT NULL,
    updated_ts   INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX admin_room_jobs_room ON admin_room_jobs(room_id, created_ts);

-- Rooms an admin blocked: local users may not join, be invited or knock, and other servers
-- may not join through us or invite our users (Synapse's `blocked_rooms`). A room may be
-- blocked before this server knows it.
CREATE TABLE blocked_rooms (
    room_id    TEXT PRIMARY KEY,
    blocked_by TEXT NOT NULL,
    blocked_ts INTEGER NOT NULL
) WITHOUT ROWID;
