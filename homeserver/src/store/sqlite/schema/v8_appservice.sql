-- Application services (issue 11): each appservice's durable queue of events to push.
-- A row is written in the same transaction as its event (rooms.rs insert_event), claimed into a
-- transaction (txn_id set, kept across retries and restarts so the appservice can deduplicate)
-- and deleted when the appservice acknowledges that transaction.
CREATE TABLE appservice_queue (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    appservice_id TEXT NOT NULL,
    event_id TEXT NOT NULL,
    txn_id TEXT
);
CREATE INDEX appservice_queue_by_as ON appservice_queue (appservice_id, id);
CREATE INDEX appservice_queue_by_txn ON appservice_queue (appservice_id, txn_id);
