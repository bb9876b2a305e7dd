-- Admin API (issue 15): account restrictions. A locked account cannot log in or use any token
-- (M_USER_LOCKED); a suspended one is read-only (M_USER_SUSPENDED on writes). Both are set only
-- by server admins and are audited.
ALTER TABLE users ADD COLUMN locked INTEGER NOT NULL DEFAULT 0;
ALTER TABLE users ADD COLUMN suspended INTEGER NOT NULL DEFAULT 0;
-- Whether the account was deactivated with erase (Synapse's `erased`).
ALTER TABLE users ADD COLUMN erased INTEGER NOT NULL DEFAULT 0;
CREATE INDEX users_restricted ON users(user_id) WHERE locked = 1 OR suspended = 1;
