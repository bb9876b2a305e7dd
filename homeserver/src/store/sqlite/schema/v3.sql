-- Schema v3. v1 and v2 have shipped: never edit them. Each area keeps its own section below.

-- Retention (security review, issue 9) -------------------------------------------------------
-- Media files whose rows are deleted but whose files may still be on disk: recorded in the same
-- transaction that deletes the rows, cleared once every file is unlinked. A failed unlink is
-- retried by the next purge, so no file outlives its row unnoticed.
CREATE TABLE media_pending_deletion (
    media_id  TEXT PRIMARY KEY,
    since_ts  INTEGER NOT NULL
) WITHOUT ROWID;
