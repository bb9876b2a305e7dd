//! Identity links, OAuth clients and OAuth refresh tokens on SQLite.

use ruma::{OwnedDeviceId, OwnedUserId};
use rusqlite::{OptionalExtension, params};

use super::SqliteStore;
use crate::store::identity::{IdentityLink, IdentityStore, RefreshOutcome};
use crate::store::users::UserRecord;
use crate::store::{StoreError, StoreResult, now_ms};

fn corrupt(e: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(e.to_string())
}

fn ids(u: String, d: String) -> StoreResult<(OwnedUserId, OwnedDeviceId)> {
    Ok((u.try_into().map_err(corrupt)?, d.into()))
}

impl IdentityStore for SqliteStore {
    fn find_identity_link(
        &self,
        provider: &str,
        subject: &str,
    ) -> StoreResult<Option<IdentityLink>> {
        let (p, s) = (provider.to_owned(), subject.to_owned());
        let row = self.db.read(move |c| {
            Ok(c.query_row(
                "SELECT user_id, account_kind, claims FROM identity_links
                 WHERE provider_id = ?1 AND subject = ?2",
                params![p, s],
                |r| Ok((r.get::<_, String>(0)?, r.get(1)?, r.get(2)?)),
            )
            .optional()?)
        })?;
        row.map(|(u, account_kind, claims)| {
            Ok(IdentityLink {
                provider_id: provider.to_owned(),
                subject: subject.to_owned(),
                user_id: u.try_into().map_err(corrupt)?,
                account_kind,
                claims,
            })
        })
        .transpose()
    }

    fn provision_linked_user(&self, user: &UserRecord, link: &IdentityLink) -> StoreResult<()> {
        let (u, l) = (user.clone(), link.clone());
        self.db.write(move |ctx| {
            let now = now_ms();
            let linked: Option<i64> = ctx
                .tx
                .query_row(
                    "SELECT 1 FROM identity_links WHERE provider_id = ?1 AND subject = ?2",
                    params![l.provider_id, l.subject],
                    |r| r.get(0),
                )
                .optional()?;
            if linked.is_some() {
                return Err(StoreError::Conflict("link"));
            }
            let n = ctx.tx.execute(
                "INSERT OR IGNORE INTO users (user_id, password_hash, is_admin, deactivated, displayname, avatar_url, created_ts, account_kind)
                 VALUES (?1, NULL, 0, 0, ?2, NULL, ?3, ?4)",
                params![u.user_id.as_str(), u.displayname, now, l.account_kind],
            )?;
            if n == 0 {
                return Err(StoreError::Conflict("user"));
            }
            ctx.tx.execute(
                "INSERT INTO identity_links (provider_id, subject, user_id, account_kind, claims, created_ts, last_login_ts)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6)",
                params![l.provider_id, l.subject, u.user_id.as_str(), l.account_kind, l.claims, now],
            )?;
            Ok(())
        })
    }

    fn touch_identity_link(&self, provider: &str, subject: &str, claims: &str) -> StoreResult<()> {
        let (p, s, c) = (provider.to_owned(), subject.to_owned(), claims.to_owned());
        self.db.write(move |ctx| {
            ctx.tx.execute(
                "UPDATE identity_links SET claims = ?3, last_login_ts = ?4
                 WHERE provider_id = ?1 AND subject = ?2",
                params![p, s, c, now_ms()],
            )?;
            Ok(())
        })
    }

    fn insert_oauth_client(&self, client_id: &str, metadata: &str) -> StoreResult<()> {
        let (c, m) = (client_id.to_owned(), metadata.to_owned());
        self.db.write(move |ctx| {
            let n = ctx.tx.execute(
                "INSERT OR IGNORE INTO oauth_clients (client_id, metadata, created_ts) VALUES (?1, ?2, ?3)",
                params![c, m, now_ms()],
            )?;
            if n == 0 { Err(StoreError::Conflict("client")) } else { Ok(()) }
        })
    }

    fn get_oauth_client(&self, client_id: &str) -> StoreResult<Option<String>> {
        let c = client_id.to_owned();
        self.db.read(move |conn| {
            Ok(conn
                .query_row(
                    "SELECT metadata FROM oauth_clients WHERE client_id = ?1",
                    [&c],
                    |r| r.get(0),
                )
                .optional()?)
        })
    }

    fn create_oauth_session(
        &self,
        user_id: &str,
        device_id: &str,
        display_name: Option<&str>,
        client_id: &str,
        access_hash: &str,
        expires_ts: Option<i64>,
        refresh_hash: &str,
    ) -> StoreResult<()> {
        let (u, d, n) = (
            user_id.to_owned(),
            device_id.to_owned(),
            display_name.map(str::to_owned),
        );
        let (c, a, r) = (
            client_id.to_owned(),
            access_hash.to_owned(),
            refresh_hash.to_owned(),
        );
        self.db.write(move |ctx| {
            insert_oauth_session(ctx.tx, &u, &d, n.as_deref(), &c, &a, expires_ts, &r)
        })
    }

    fn rotate_oauth_refresh(
        &self,
        refresh_hash: &str,
        client_id: &str,
        access_hash: &str,
        expires_ts: Option<i64>,
        next_refresh_hash: &str,
    ) -> StoreResult<RefreshOutcome> {
        let (r, c) = (refresh_hash.to_owned(), client_id.to_owned());
        let (a, n) = (access_hash.to_owned(), next_refresh_hash.to_owned());
        self.db.write(move |ctx| {
            let now = now_ms();
            let row: Option<(String, String, String, String, Option<i64>)> = ctx
                .tx
                .query_row(
                    "SELECT user_id, device_id, client_id, access_hash, spent_ts
                     FROM oauth_refresh_tokens WHERE token_hash = ?1",
                    [&r],
                    |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?, row.get(4)?)),
                )
                .optional()?;
            let Some((u, d, owner, old_access, spent)) = row else {
                return Ok(RefreshOutcome::Unknown);
            };
            if owner != c {
                return Ok(RefreshOutcome::Unknown);
            }
            if spent.is_some() {
                // Theft or a replay: the whole session goes (tokens cascade with the device).
                ctx.tx.execute(
                    "DELETE FROM devices WHERE user_id = ?1 AND device_id = ?2",
                    params![u, d],
                )?;
                super::keys::mark_changed(ctx, &u)?;
                let (user_id, device_id) = ids(u, d)?;
                return Ok(RefreshOutcome::Reused { user_id, device_id });
            }
            ctx.tx.execute(
                "UPDATE oauth_refresh_tokens SET spent_ts = ?2 WHERE token_hash = ?1",
                params![r, now],
            )?;
            ctx.tx
                .execute("DELETE FROM access_tokens WHERE token_hash = ?1", [&old_access])?;
            ctx.tx.execute(
                "INSERT INTO access_tokens (token_hash, user_id, device_id, created_ts, expires_ts)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
                params![a, u, d, now, expires_ts],
            )?;
            ctx.tx.execute(
                "INSERT INTO oauth_refresh_tokens (token_hash, user_id, device_id, client_id, access_hash, created_ts)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![n, u, d, c, a, now],
            )?;
            let (user_id, device_id) = ids(u, d)?;
            Ok(RefreshOutcome::Rotated { user_id, device_id })
        })
    }

    fn oauth_refresh_owner(
        &self,
        refresh_hash: &str,
    ) -> StoreResult<Option<(OwnedUserId, OwnedDeviceId, String)>> {
        let r = refresh_hash.to_owned();
        let row: Option<(String, String, String)> = self.db.read(move |c| {
            Ok(c.query_row(
                "SELECT user_id, device_id, client_id FROM oauth_refresh_tokens WHERE token_hash = ?1",
                [&r],
                |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)),
            )
            .optional()?)
        })?;
        row.map(|(u, d, c)| ids(u, d).map(|(u, d)| (u, d, c)))
            .transpose()
    }
}

/// Creates (or re-uses) the device and stores its access token and OAuth refresh token, in the
/// caller's transaction (the code grant's and the device grant's).
#[allow(clippy::too_many_arguments)]
pub(super) fn insert_oauth_session(
    tx: &rusqlite::Transaction<'_>,
    u: &str,
    d: &str,
    n: Option<&str>,
    c: &str,
    a: &str,
    expires_ts: Option<i64>,
    r: &str,
) -> StoreResult<()> {
    let now = now_ms();
    tx.execute(
        "INSERT INTO devices (user_id, device_id, display_name, created_ts) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (user_id, device_id) DO UPDATE SET display_name = COALESCE(excluded.display_name, display_name)",
        params![u, d, n, now],
    )?;
    tx.execute(
        "INSERT INTO access_tokens (token_hash, user_id, device_id, created_ts, expires_ts)
         VALUES (?1, ?2, ?3, ?4, ?5)",
        params![a, u, d, now, expires_ts],
    )?;
    tx.execute(
        "INSERT INTO oauth_refresh_tokens (token_hash, user_id, device_id, client_id, access_hash, created_ts)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![r, u, d, c, a, now],
    )?;
    Ok(())
}
