-- Schema v2: federation (issue 3) and the governance follow-ups (issue 5).
-- v1 has shipped: never edit it. Each area keeps its own section below.

-- Rooms over federation (issue 3): invites from other servers to rooms we are not yet in.
-- The invite event itself is in `events`; this keeps the stripped state shown with it.
CREATE TABLE remote_invites (
    room_id     TEXT NOT NULL,
    user_id     TEXT NOT NULL,
    event_id    TEXT NOT NULL,
    invite_state TEXT NOT NULL,
    PRIMARY KEY (room_id, user_id)
) WITHOUT ROWID;
