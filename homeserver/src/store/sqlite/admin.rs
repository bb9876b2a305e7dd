//! SQLite side of the admin API's account queries and flags.

use rusqlite::{OptionalExtension, params_from_iter};

use super::SqliteStore;
use crate::store::StoreResult;
use crate::store::admin::{AdminStore, AdminUserRow, Restriction, UserListQuery, UserOrder};

const COLS: &str = "u.user_id, u.is_admin, u.deactivated, u.erased, u.locked, u.suspended, \
    u.displayname, u.avatar_url, u.created_ts, \
    (SELECT MAX(d.last_seen_ts) FROM devices d WHERE d.user_id = u.user_id) AS last_seen";

fn row(r: &rusqlite::Row<'_>) -> rusqlite::Result<AdminUserRow> {
    let id: String = r.get(0)?;
    Ok(AdminUserRow {
        user_id: id.try_into().map_err(|e| {
            rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, Box::new(e))
        })?,
        is_admin: r.get(1)?,
        deactivated: r.get(2)?,
        erased: r.get(3)?,
        locked: r.get(4)?,
        suspended: r.get(5)?,
        displayname: r.get(6)?,
        avatar_url: r.get(7)?,
        created_ts: r.get(8)?,
        last_seen_ts: r.get(9)?,
    })
}

/// Escapes LIKE wildcards so a search for `a_b` matches only that text.
fn like(term: &str) -> String {
    let escaped = term
        .replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_");
    format!("%{escaped}%")
}

fn order_column(o: UserOrder) -> &'static str {
    match o {
        UserOrder::Name | UserOrder::Constant => "u.user_id",
        UserOrder::Admin => "u.is_admin",
        UserOrder::Deactivated => "u.deactivated",
        UserOrder::Displayname => "u.displayname",
        UserOrder::AvatarUrl => "u.avatar_url",
        UserOrder::CreationTs => "u.created_ts",
        UserOrder::LastSeenTs => "last_seen",
    }
}

impl SqliteStore {
    fn set_flag(&self, user_id: &str, column: &'static str, on: bool) -> StoreResult<bool> {
        let u = user_id.to_owned();
        self.db.write(move |ctx| {
            let n = ctx.tx.execute(
                &format!("UPDATE users SET {column} = ?2 WHERE user_id = ?1"),
                rusqlite::params![u, on],
            )?;
            Ok(n > 0)
        })
    }
}

impl AdminStore for SqliteStore {
    fn list_users(&self, q: &UserListQuery) -> StoreResult<(Vec<AdminUserRow>, u64)> {
        let mut conds = Vec::new();
        let mut args: Vec<rusqlite::types::Value> = Vec::new();
        if let Some(n) = &q.name {
            conds.push(
                "(u.user_id LIKE ? ESCAPE '\\' COLLATE NOCASE \
                 OR u.displayname LIKE ? ESCAPE '\\' COLLATE NOCASE)",
            );
            args.push(like(n).into());
            args.push(like(n).into());
        }
        if let Some(n) = &q.user_id {
            conds.push("u.user_id LIKE ? ESCAPE '\\' COLLATE NOCASE");
            args.push(like(n).into());
        }
        if !q.include_deactivated {
            conds.push("u.deactivated = 0");
        }
        if !q.include_locked {
            conds.push("u.locked = 0");
        }
        if let Some(a) = q.admins {
            conds.push("u.is_admin = ?");
            args.push(i64::from(a).into());
        }
        let filter = if conds.is_empty() {
            String::new()
        } else {
            format!("WHERE {}", conds.join(" AND "))
        };
        let dir = if q.backwards { "DESC" } else { "ASC" };
        // The user id breaks ties, so pages never overlap or skip.
        let sql = format!(
            "SELECT {COLS} FROM users u {filter} ORDER BY {} {dir}, u.user_id {dir} \
             LIMIT ? OFFSET ?",
            order_column(q.order)
        );
        let count_sql = format!("SELECT COUNT(*) FROM users u {filter}");
        let (limit, from) = (
            i64::try_from(q.limit).unwrap_or(i64::MAX),
            i64::try_from(q.from).unwrap_or(i64::MAX),
        );
        self.db.read(|c| {
            let total: i64 =
                c.query_row(&count_sql, params_from_iter(args.iter()), |r| r.get(0))?;
            let mut page_args = args.clone();
            page_args.push(limit.into());
            page_args.push(from.into());
            let mut st = c.prepare(&sql)?;
            let rows = st
                .query_map(params_from_iter(page_args.iter()), row)?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            Ok((rows, total.max(0) as u64))
        })
    }

    fn admin_user(&self, user_id: &str) -> StoreResult<Option<AdminUserRow>> {
        self.db.read(|c| {
            Ok(c.query_row(
                &format!("SELECT {COLS} FROM users u WHERE u.user_id = ?1"),
                [user_id],
                row,
            )
            .optional()?)
        })
    }

    fn set_admin(&self, user_id: &str, admin: bool) -> StoreResult<bool> {
        self.set_flag(user_id, "is_admin", admin)
    }

    fn set_locked(&self, user_id: &str, locked: bool) -> StoreResult<bool> {
        self.set_flag(user_id, "locked", locked)
    }

    fn set_suspended(&self, user_id: &str, suspended: bool) -> StoreResult<bool> {
        self.set_flag(user_id, "suspended", suspended)
    }

    fn set_erased(&self, user_id: &str) -> StoreResult<()> {
        self.set_flag(user_id, "erased", true).map(|_| ())
    }

    fn reactivate(&self, user_id: &str) -> StoreResult<()> {
        let u = user_id.to_owned();
        self.db.write(move |ctx| {
            ctx.tx.execute(
                "UPDATE users SET deactivated = 0, erased = 0 WHERE user_id = ?1",
                [u],
            )?;
            Ok(())
        })
    }

    fn restricted_users(&self) -> StoreResult<Vec<Restriction>> {
        self.db.read(|c| {
            let mut st = c.prepare(
                "SELECT user_id, locked, suspended FROM users WHERE locked = 1 OR suspended = 1",
            )?;
            let rows = st
                .query_map([], |r| {
                    let id: String = r.get(0)?;
                    Ok((id, r.get(1)?, r.get(2)?))
                })?
                .collect::<rusqlite::Result<Vec<(String, bool, bool)>>>()?;
            Ok(rows
                .into_iter()
                .filter_map(|(id, locked, suspended)| {
                    Some(Restriction {
                        user_id: id.try_into().ok()?,
                        locked,
                        suspended,
                    })
                })
                .collect())
        })
    }
}
