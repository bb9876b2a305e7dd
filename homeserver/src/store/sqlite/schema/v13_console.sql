-- Issue 15 (the IG lead's console, subject-access requests): the audit trail searched by user
-- (as actor or as target) and by rule, without scanning whole tables. A user's uploads (for a
-- subject-access request) use v12's `media_uploader`. Indexes only: no data changes.
CREATE INDEX audit_log_actor ON audit_log(actor, seq);
CREATE INDEX audit_log_target ON audit_log(target, seq);
CREATE INDEX audit_log_rule ON audit_log(rule, seq) WHERE rule IS NOT NULL;
