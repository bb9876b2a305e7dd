-- Schema v2: federation (issue 3) and the governance follow-ups (issue 5).
-- v1 has shipped: never edit it. Each area keeps its own section below.

-- Federation media (fedquery): copies of other servers' media fetched over federation for a
-- local user's download, kept so the next request is served locally. `variant` is '' for the
-- file itself or 'WxH-method' for a thumbnail the other server made. The bytes live under
-- `data_dir/media/remote/ab/cd/<local_id>`. Only ever served to local users: federation media
-- endpoints serve this server's own uploads only.
CREATE TABLE remote_media_cache (
    origin        TEXT NOT NULL,
    media_id      TEXT NOT NULL,
    variant       TEXT NOT NULL,
    local_id      TEXT NOT NULL UNIQUE,
    content_type  TEXT,
    filename      TEXT,
    size          INTEGER NOT NULL,
    sha256        TEXT NOT NULL,
    fetched_ts    INTEGER NOT NULL,
    -- The local user whose download fetched it (for the IG lead: who brought it in).
    requested_by  TEXT NOT NULL,
    PRIMARY KEY (origin, media_id, variant)
) WITHOUT ROWID;
