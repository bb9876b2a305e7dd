-- Durable deliveries of committed events (service/commit/, store/deliveries.rs): one row per
-- (queue, event), inserted in the event's own transaction. Consumers read a queue by position
-- and delete what they have handled. An event purged by retention takes its rows with it.
CREATE TABLE event_deliveries (
    queue    TEXT NOT NULL,
    pos      INTEGER NOT NULL,
    event_id TEXT NOT NULL REFERENCES events(event_id) ON DELETE CASCADE,
    room_id  TEXT NOT NULL,
    PRIMARY KEY (queue, pos)
) WITHOUT ROWID;
CREATE INDEX event_deliveries_event ON event_deliveries(event_id);
