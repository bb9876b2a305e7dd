-- Issue 15 (the IG lead's console, subject-access requests): the audit trail searched by user
-- (as actor or as target) and by rule, and a user's uploads listed for a subject-access request,
-- without scanning whole tables. Indexes only: no data changes.
CREATE INDEX audit_log_actor ON audit_log(actor, seq);
CREATE INDEX audit_log_target ON audit_log(target, seq);
CREATE INDEX audit_log_rule ON audit_log(rule, seq) WHERE rule IS NOT NULL;
CREATE INDEX media_uploader ON media(uploader, created_ts);
