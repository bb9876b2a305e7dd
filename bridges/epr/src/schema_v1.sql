-- EPR bridge state (applied once by name, see handover_bridge_core::store). No NHS numbers,
-- names or dates of birth are stored: rooms are linked to a FHIR logical id.

-- A patient's care-team room: one per (FHIR server, Patient).
CREATE TABLE patient_rooms (
    room_id TEXT PRIMARY KEY,
    fhir_base TEXT NOT NULL,
    patient_id TEXT NOT NULL,
    created_by TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    UNIQUE (fhir_base, patient_id)
);

-- The filing queue and its durable record: one row per Matrix event, ever (idempotency).
CREATE TABLE filings (
    event_id TEXT PRIMARY KEY,
    room_id TEXT NOT NULL,
    -- 'text' (a Communication) or 'file' (a DocumentReference).
    kind TEXT NOT NULL CHECK (kind IN ('text', 'file')),
    requested_by TEXT NOT NULL,
    requested_at INTEGER NOT NULL,
    -- The message's sender and time (ms).
    author TEXT NOT NULL,
    sent_at INTEGER NOT NULL,
    -- What to file (the decrypted text, or the file's media source with its key): the bot's
    -- device may change before a retry. Cleared once filed or refused.
    payload TEXT,
    state TEXT NOT NULL CHECK (state IN ('queued', 'filed', 'failed')),
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER,
    -- `Type/id` on the FHIR server once filed.
    resource TEXT,
    last_error TEXT
);
CREATE INDEX filings_due ON filings (state, next_attempt_at);
