//! SQLite side of registration tokens.

use rusqlite::{OptionalExtension, params};

use super::SqliteStore;
use crate::store::StoreResult;
use crate::store::registration_tokens::{RegistrationToken, RegistrationTokenStore, TokenUpdate};

fn token_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<RegistrationToken> {
    Ok(RegistrationToken {
        token: r.get(0)?,
        uses_allowed: r.get::<_, Option<i64>>(1)?.map(|n| n.max(0) as u64),
        pending: r.get::<_, i64>(2)?.max(0) as u64,
        completed: r.get::<_, i64>(3)?.max(0) as u64,
        expiry_time: r.get(4)?,
    })
}

const TOKEN_COLS: &str = "token, uses_allowed, pending, completed, expiry_time";
/// A token row that may be used at `?2` (now).
const USABLE: &str = "(uses_allowed IS NULL OR pending + completed < uses_allowed) \
    AND (expiry_time IS NULL OR expiry_time > ?2)";

impl RegistrationTokenStore for SqliteStore {
    fn registration_tokens(&self) -> StoreResult<Vec<RegistrationToken>> {
        let sql = format!("SELECT {TOKEN_COLS} FROM registration_tokens ORDER BY token");
        self.db.read(|c| {
            let mut st = c.prepare(&sql)?;
            let rows = st.query_map([], token_row)?;
            Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
        })
    }

    fn registration_token(&self, token: &str) -> StoreResult<Option<RegistrationToken>> {
        let sql = format!("SELECT {TOKEN_COLS} FROM registration_tokens WHERE token = ?1");
        self.db
            .read(|c| Ok(c.query_row(&sql, [token], token_row).optional()?))
    }

    fn insert_registration_token(&self, t: &RegistrationToken) -> StoreResult<bool> {
        let t = t.clone();
        self.db.write(move |ctx| {
            Ok(ctx.tx.execute(
                "INSERT OR IGNORE INTO registration_tokens
                   (token, uses_allowed, pending, completed, expiry_time) VALUES (?1, ?2, 0, 0, ?3)",
                params![t.token, t.uses_allowed.map(|n| n as i64), t.expiry_time],
            )? == 1)
        })
    }

    fn update_registration_token(
        &self,
        token: &str,
        u: &TokenUpdate,
    ) -> StoreResult<Option<RegistrationToken>> {
        let (token, u) = (token.to_owned(), u.clone());
        let sql = format!("SELECT {TOKEN_COLS} FROM registration_tokens WHERE token = ?1");
        self.db.write(move |ctx| {
            if let Some(n) = u.uses_allowed {
                ctx.tx.execute(
                    "UPDATE registration_tokens SET uses_allowed = ?2 WHERE token = ?1",
                    params![token, n.map(|n| n as i64)],
                )?;
            }
            if let Some(t) = u.expiry_time {
                ctx.tx.execute(
                    "UPDATE registration_tokens SET expiry_time = ?2 WHERE token = ?1",
                    params![token, t],
                )?;
            }
            Ok(ctx.tx.query_row(&sql, [&token], token_row).optional()?)
        })
    }

    fn delete_registration_token(&self, token: &str) -> StoreResult<bool> {
        let token = token.to_owned();
        self.db.write(move |ctx| {
            Ok(ctx
                .tx
                .execute("DELETE FROM registration_tokens WHERE token = ?1", [&token])?
                == 1)
        })
    }

    fn registration_token_usable(&self, token: &str, now: i64) -> StoreResult<bool> {
        let sql = format!(
            "SELECT EXISTS (SELECT 1 FROM registration_tokens WHERE token = ?1 AND {USABLE})"
        );
        self.db
            .read(|c| Ok(c.query_row(&sql, params![token, now], |r| r.get(0))?))
    }

    fn reserve_registration_token(&self, token: &str, now: i64) -> StoreResult<bool> {
        let token = token.to_owned();
        let sql = format!(
            "UPDATE registration_tokens SET pending = pending + 1 WHERE token = ?1 AND {USABLE}"
        );
        self.db
            .write(move |ctx| Ok(ctx.tx.execute(&sql, params![token, now])? == 1))
    }

    fn complete_registration_token(
        &self,
        token: &str,
        reserved: bool,
        now: i64,
    ) -> StoreResult<bool> {
        let token = token.to_owned();
        let sql = if reserved {
            "UPDATE registration_tokens SET pending = MAX(pending - 1, 0), completed = completed + 1
             WHERE token = ?1 AND ?2 = ?2"
                .to_owned()
        } else {
            format!(
                "UPDATE registration_tokens SET completed = completed + 1 WHERE token = ?1 AND {USABLE}"
            )
        };
        self.db
            .write(move |ctx| Ok(ctx.tx.execute(&sql, params![token, now])? == 1))
    }

    fn refund_registration_token(&self, token: &str) -> StoreResult<()> {
        let token = token.to_owned();
        self.db.write(move |ctx| {
            ctx.tx.execute(
                "UPDATE registration_tokens SET completed = MAX(completed - 1, 0) WHERE token = ?1",
                [&token],
            )?;
            Ok(())
        })
    }
}
