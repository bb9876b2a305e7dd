-- Patient accounts (issue 10, docs/IDENTITY.md "Patient accounts"): the kind lives on the
-- account itself, not only on an identity link, so admin-created patients are confined too and
-- the policy hooks need one indexed read. Existing accounts are staff.
ALTER TABLE users ADD COLUMN account_kind TEXT NOT NULL DEFAULT 'staff'
    CHECK (account_kind IN ('staff', 'patient'));
