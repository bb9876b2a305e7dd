-- Application services (issue 11). Their events wait in `event_deliveries` (v7, queue
-- `appservice:<id>`, written in the event's own transaction); this table remembers the
-- transaction in flight to each appservice: its id and the last queue position it covers, so a
-- retry (also after a restart) resends the same events under the same txnId, which is what lets
-- the appservice deduplicate.
CREATE TABLE appservice_txns (
    appservice_id TEXT PRIMARY KEY NOT NULL,
    txn_id TEXT NOT NULL,
    upto_pos INTEGER NOT NULL
);
