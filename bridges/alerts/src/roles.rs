//! On-call roles: who holds a role now. A holder set by command (`!oncall take`) wins until
//! the next rota slot of that role starts; otherwise the rota slot covering now (the latest
//! starting one if slots overlap). The rota comes from a CSV import:
//! `role,user_id,start,end` with RFC 3339 times, header row required; an import replaces every
//! CSV slot of the roles it names. FHIR PractitionerRole/Schedule/Slot imports: rota_fhir.rs.

use handover_bridge_core::store::{AuditEntry, insert_audit};
use rusqlite::{Connection, OptionalExtension, params};
use serde::Serialize;

use crate::alert::FieldError;
use crate::config::Config;
use crate::state::{AlertStore, into_sqlite};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Slot {
    pub role: String,
    pub user_id: String,
    pub start_ms: i64,
    pub end_ms: i64,
}

/// Parses a rota CSV, checking roles exist and users are on this server; lists every error.
pub fn parse_rota(cfg: &Config, csv_text: &str) -> Result<Vec<Slot>, Vec<FieldError>> {
    let mut errors = Vec::new();
    let mut slots = Vec::new();
    let mut rd = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .from_reader(csv_text.as_bytes());
    let header_ok = rd
        .headers()
        .map(|h| h.iter().collect::<Vec<_>>() == ["role", "user_id", "start", "end"])
        .unwrap_or(false);
    if !header_ok {
        errors.push(FieldError {
            field: "line 1".into(),
            error: "header must be role,user_id,start,end".into(),
        });
        return Err(errors);
    }
    let suffix = format!(":{}", cfg.appservice.server_name);
    for (i, rec) in rd.records().enumerate() {
        let line = format!("line {}", i + 2);
        let mut err = |e: String| {
            errors.push(FieldError {
                field: line.clone(),
                error: e,
            })
        };
        let rec = match rec {
            Ok(r) if r.len() == 4 => r,
            Ok(_) => {
                err("needs 4 columns".into());
                continue;
            }
            Err(e) => {
                err(format!("unreadable: {e}"));
                continue;
            }
        };
        let time = |s: &str| chrono::DateTime::parse_from_rfc3339(s).map(|t| t.timestamp_millis());
        let (role, user) = (&rec[0], &rec[1]);
        if cfg.role(role).is_none() {
            err(format!("unknown role {role:?}"));
            continue;
        }
        if !(user.starts_with('@') && user.ends_with(&suffix)) {
            err(format!(
                "user_id {user:?} must be a user of {}",
                cfg.appservice.server_name
            ));
            continue;
        }
        match (time(&rec[2]), time(&rec[3])) {
            (Ok(start_ms), Ok(end_ms)) if start_ms < end_ms => slots.push(Slot {
                role: role.to_owned(),
                user_id: user.to_owned(),
                start_ms,
                end_ms,
            }),
            (Ok(_), Ok(_)) => err("start must be before end".into()),
            _ => err("start and end must be RFC 3339 times (2025-06-01T08:00:00Z)".into()),
        }
    }
    if errors.is_empty() {
        Ok(slots)
    } else {
        Err(errors)
    }
}

/// The holder of `role` at `now` from overrides and rota (pure: tests give any `now`).
pub fn holder_at(c: &Connection, role: &str, now: i64) -> rusqlite::Result<Option<String>> {
    let over: Option<(String, Option<i64>)> = c
        .query_row(
            "SELECT user_id, until_ms FROM role_overrides WHERE role = ?1",
            [role],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?;
    if let Some((user, until)) = over
        && until.is_none_or(|u| now < u)
    {
        return Ok(Some(user));
    }
    c.query_row(
        "SELECT user_id FROM rota WHERE role = ?1 AND start_ms <= ?2 AND ?2 < end_ms
         ORDER BY start_ms DESC LIMIT 1",
        params![role, now],
        |r| r.get(0),
    )
    .optional()
}

/// What the `role_holders` table says was applied, and what should be now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HolderChange {
    pub role: String,
    pub from: Option<String>,
    pub to: Option<String>,
}

impl AlertStore {
    /// Replaces the CSV slots of the roles the CSV names, audited.
    pub async fn import_rota(
        &self,
        slots: Vec<Slot>,
        actor: String,
    ) -> rusqlite::Result<Vec<String>> {
        let mut roles: Vec<String> = slots.iter().map(|s| s.role.clone()).collect();
        roles.sort();
        roles.dedup();
        self.import_rota_from(slots, "csv", roles, actor).await
    }

    /// Replaces the slots from `origin` (`csv`, `fhir`) of `replace` with `slots`, audited;
    /// returns the roles the slots name.
    pub async fn import_rota_from(
        &self,
        slots: Vec<Slot>,
        origin: &'static str,
        replace: Vec<String>,
        actor: String,
    ) -> rusqlite::Result<Vec<String>> {
        self.db
            .call(move |c| {
                let tx = c.transaction()?;
                let mut roles: Vec<String> = slots.iter().map(|s| s.role.clone()).collect();
                roles.sort();
                roles.dedup();
                for r in &replace {
                    tx.execute("DELETE FROM rota WHERE role = ?1 AND origin = ?2", params![r, origin])?;
                }
                for s in &slots {
                    tx.execute(
                        "INSERT INTO rota (role, user_id, start_ms, end_ms, origin) VALUES (?1, ?2, ?3, ?4, ?5)",
                        params![s.role, s.user_id, s.start_ms, s.end_ms, origin],
                    )?;
                }
                insert_audit(
                    &tx,
                    &AuditEntry::new("rota.imported", "ok")
                        .actor(actor)
                        .detail("origin", origin)
                        .detail("roles", roles.clone())
                        .detail("slots", slots.len()),
                )?;
                tx.commit()?;
                Ok(roles)
            })
            .await
            .map_err(into_sqlite)
    }

    /// Sets the holder by command until the next rota slot of the role starts.
    pub async fn set_override(
        &self,
        role: String,
        user: String,
        actor: String,
        action: &'static str,
        now: i64,
    ) -> rusqlite::Result<()> {
        self.db
            .call(move |c| {
                let tx = c.transaction()?;
                let until: Option<i64> = tx.query_row(
                    "SELECT MIN(start_ms) FROM rota WHERE role = ?1 AND start_ms > ?2",
                    params![role, now],
                    |r| r.get(0),
                )?;
                tx.execute(
                    "INSERT OR REPLACE INTO role_overrides (role, user_id, set_at, until_ms) VALUES (?1, ?2, ?3, ?4)",
                    params![role, user, now, until],
                )?;
                insert_audit(
                    &tx,
                    &AuditEntry::new(action, "ok").actor(actor).target(&role).detail("holder", user),
                )?;
                tx.commit()
            })
            .await
            .map_err(into_sqlite)
    }

    pub async fn holder(&self, role: String, now: i64) -> rusqlite::Result<Option<String>> {
        self.db
            .call(move |c| holder_at(c, &role, now))
            .await
            .map_err(into_sqlite)
    }

    /// Roles whose holder at `now` differs from the applied one.
    pub async fn holder_changes(
        &self,
        roles: Vec<String>,
        now: i64,
    ) -> rusqlite::Result<Vec<HolderChange>> {
        self.db
            .call(move |c| {
                let mut out = Vec::new();
                for role in roles {
                    let applied: Option<Option<String>> = c
                        .query_row(
                            "SELECT user_id FROM role_holders WHERE role = ?1",
                            [&role],
                            |r| r.get(0),
                        )
                        .optional()?;
                    let from = applied.flatten();
                    let to = holder_at(c, &role, now)?;
                    if from != to {
                        out.push(HolderChange { role, from, to });
                    }
                }
                Ok(out)
            })
            .await
            .map_err(into_sqlite)
    }

    /// Records an applied handover, audited.
    pub async fn applied_holder(&self, ch: HolderChange, now: i64) -> rusqlite::Result<()> {
        self.db
            .call(move |c| {
                let tx = c.transaction()?;
                tx.execute(
                    "INSERT OR REPLACE INTO role_holders (role, user_id, since) VALUES (?1, ?2, ?3)",
                    params![ch.role, ch.to, now],
                )?;
                let mut e = AuditEntry::new("role.handover", "ok").target(&ch.role);
                e = e.detail("from", ch.from.clone()).detail("to", ch.to.clone());
                insert_audit(&tx, &e)?;
                tx.commit()
            })
            .await
            .map_err(into_sqlite)
    }
}

#[cfg(test)]
#[allow(clippy::field_reassign_with_default)] // configs built field by field read best
mod tests {
    use handover_bridge_core::store::Db;

    use super::*;
    use crate::config::RoleConfig;
    use crate::state::MIGRATIONS;

    fn cfg() -> Config {
        let mut c = Config::default();
        c.roles = vec![RoleConfig {
            id: "medreg".into(),
            ..Default::default()
        }];
        c
    }

    const H: i64 = 3_600_000;
    fn t(h: i64) -> i64 {
        chrono::DateTime::parse_from_rfc3339("2025-06-01T00:00:00Z")
            .unwrap()
            .timestamp_millis()
            + h * H
    }

    #[test]
    fn rota_csv_errors_are_listed_by_line() {
        let csv = "role,user_id,start,end\n\
                   medreg,@a:localhost,2025-06-01T08:00:00Z,2025-06-01T20:00:00Z\n\
                   nurse,@b:localhost,2025-06-01T08:00:00Z,2025-06-01T20:00:00Z\n\
                   medreg,@c:elsewhere,2025-06-01T08:00:00Z,2025-06-01T20:00:00Z\n\
                   medreg,@d:localhost,tomorrow,2025-06-01T20:00:00Z\n\
                   medreg,@e:localhost,2025-06-01T20:00:00Z,2025-06-01T08:00:00Z\n";
        let errs = parse_rota(&cfg(), csv).unwrap_err();
        let lines: Vec<&str> = errs.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(lines, ["line 3", "line 4", "line 5", "line 6"], "{errs:?}");
        assert!(parse_rota(&cfg(), "who,when\n").is_err());
        let ok = parse_rota(&cfg(), "role,user_id,start,end\nmedreg,@a:localhost,2025-06-01T08:00:00Z,2025-06-01T20:00:00+00:00\n").unwrap();
        assert_eq!(ok[0].start_ms, t(8));
        assert_eq!(ok[0].end_ms, t(20));
    }

    #[tokio::test]
    async fn holder_follows_rota_and_command_until_next_slot() {
        let store = AlertStore::new(Db::memory(MIGRATIONS).unwrap());
        let slot = |u: &str, a, b| Slot {
            role: "medreg".into(),
            user_id: u.into(),
            start_ms: t(a),
            end_ms: t(b),
        };
        store
            .import_rota(
                vec![slot("@day:l", 8, 20), slot("@night:l", 20, 32)],
                "admin".into(),
            )
            .await
            .unwrap();
        let h = |n| store.holder("medreg".into(), n);
        assert_eq!(h(t(7)).await.unwrap(), None);
        assert_eq!(h(t(8)).await.unwrap().as_deref(), Some("@day:l"));
        assert_eq!(h(t(20)).await.unwrap().as_deref(), Some("@night:l"));
        // Taken by command at 10:00: holds until the night slot starts at 20:00.
        store
            .set_override(
                "medreg".into(),
                "@locum:l".into(),
                "@locum:l".into(),
                "role.take",
                t(10),
            )
            .await
            .unwrap();
        assert_eq!(h(t(11)).await.unwrap().as_deref(), Some("@locum:l"));
        assert_eq!(h(t(21)).await.unwrap().as_deref(), Some("@night:l"));

        let changes = store
            .holder_changes(vec!["medreg".into()], t(11))
            .await
            .unwrap();
        assert_eq!(
            changes,
            [HolderChange {
                role: "medreg".into(),
                from: None,
                to: Some("@locum:l".into())
            }]
        );
        store
            .applied_holder(changes[0].clone(), t(11))
            .await
            .unwrap();
        assert!(
            store
                .holder_changes(vec!["medreg".into()], t(12))
                .await
                .unwrap()
                .is_empty()
        );
        let changes = store
            .holder_changes(vec!["medreg".into()], t(21))
            .await
            .unwrap();
        assert_eq!(changes[0].from.as_deref(), Some("@locum:l"));
        assert_eq!(changes[0].to.as_deref(), Some("@night:l"));
        assert_eq!(store.db.audit_rows(Some("role.handover")).unwrap().len(), 1);
        assert_eq!(store.db.audit_rows(Some("role.take")).unwrap().len(), 1);
    }
}
