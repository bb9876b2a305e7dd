-- Encrypted appservices (MSC3202 device lists, MSC4203 to-device) for registrations with
-- `org.matrix.msc3202: true`. The to-device messages for their users' devices wait in
-- `to_device_messages` (v1) until the appservice accepts a transaction carrying them; the
-- device-list stream is read from `device_list_changes` (v1) after the position below.
CREATE TABLE appservice_device_lists (
    appservice_id TEXT PRIMARY KEY NOT NULL,
    -- Device-list changes up to here were accepted by the appservice.
    pos INTEGER NOT NULL
) WITHOUT ROWID;

-- The transaction in flight also fixes its device-list and to-device bounds, so a retry (also
-- after a restart) carries the same to-device messages and device-list range.
ALTER TABLE appservice_txns ADD COLUMN device_list_upto INTEGER;
ALTER TABLE appservice_txns ADD COLUMN to_device_upto INTEGER;
