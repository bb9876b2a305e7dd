use ruma::{OwnedDeviceId, OwnedUserId};
use rusqlite::{OptionalExtension, params};

use super::SqliteStore;
use crate::store::users::{DeviceRecord, TokenHashes, TokenOwner, UserRecord, UserStore};
use crate::store::{StoreError, StoreResult, now_ms};

fn user_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<UserRecord> {
    let id: String = r.get(0)?;
    Ok(UserRecord {
        user_id: id.try_into().map_err(|e| {
            rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, Box::new(e))
        })?,
        password_hash: r.get(1)?,
        is_admin: r.get(2)?,
        deactivated: r.get(3)?,
        displayname: r.get(4)?,
        avatar_url: r.get(5)?,
    })
}

const USER_COLS: &str = "user_id, password_hash, is_admin, deactivated, displayname, avatar_url";

fn device_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<DeviceRecord> {
    let id: String = r.get(0)?;
    Ok(DeviceRecord {
        device_id: id.into(),
        display_name: r.get(1)?,
        last_seen_ts: r.get(2)?,
        last_seen_ip: r.get(3)?,
    })
}

/// Stores a device's new access token and, with it, its refresh token.
fn insert_tokens(
    ctx: &super::db::WriteCtx<'_>,
    user_id: &str,
    device_id: &str,
    t: &TokenHashes,
    now: i64,
) -> StoreResult<()> {
    ctx.tx.execute(
        "INSERT INTO access_tokens (token_hash, user_id, device_id, created_ts, expires_ts)
         VALUES (?1, ?2, ?3, ?4, ?5)",
        params![t.access, user_id, device_id, now, t.expires_ts],
    )?;
    if let Some(r) = &t.refresh {
        ctx.tx.execute(
            "INSERT INTO refresh_tokens (token_hash, user_id, device_id, access_hash, created_ts)
             VALUES (?1, ?2, ?3, ?4, ?5)",
            params![r, user_id, device_id, t.access, now],
        )?;
    }
    Ok(())
}

impl UserStore for SqliteStore {
    fn create_user(&self, u: &UserRecord) -> StoreResult<()> {
        let u = u.clone();
        self.db.write(move |ctx| {
            let n = ctx.tx.execute(
                "INSERT OR IGNORE INTO users (user_id, password_hash, is_admin, deactivated, displayname, avatar_url, created_ts)
                 VALUES (?1, ?2, ?3, 0, ?4, ?5, ?6)",
                params![u.user_id.as_str(), u.password_hash, u.is_admin, u.displayname, u.avatar_url, now_ms()],
            )?;
            if n == 0 { Err(StoreError::Conflict("user")) } else { Ok(()) }
        })
    }

    fn get_user(&self, user_id: &str) -> StoreResult<Option<UserRecord>> {
        self.db.read(|c| {
            Ok(c.query_row(
                &format!("SELECT {USER_COLS} FROM users WHERE user_id = ?1"),
                [user_id],
                user_from_row,
            )
            .optional()?)
        })
    }

    fn account_kind(&self, user_id: &str) -> StoreResult<Option<String>> {
        self.db.read(|c| {
            Ok(c.query_row(
                "SELECT account_kind FROM users WHERE user_id = ?1",
                [user_id],
                |r| r.get(0),
            )
            .optional()?)
        })
    }

    fn device_uses_oauth(&self, user_id: &str, device_id: &str) -> StoreResult<bool> {
        self.db.read(|c| {
            Ok(c.query_row(
                "SELECT EXISTS (SELECT 1 FROM oauth_refresh_tokens
                    WHERE user_id = ?1 AND device_id = ?2)",
                [user_id, device_id],
                |r| r.get(0),
            )?)
        })
    }

    fn set_account_kind(&self, user_id: &str, kind: &str) -> StoreResult<()> {
        let (u, k) = (user_id.to_owned(), kind.to_owned());
        self.db.write(move |ctx| {
            ctx.tx.execute(
                "UPDATE users SET account_kind = ?2 WHERE user_id = ?1",
                params![u, k],
            )?;
            Ok(())
        })
    }

    fn set_password_hash(&self, user_id: &str, hash: &str) -> StoreResult<()> {
        let (u, h) = (user_id.to_owned(), hash.to_owned());
        self.db.write(move |ctx| {
            ctx.tx.execute(
                "UPDATE users SET password_hash = ?2 WHERE user_id = ?1",
                params![u, h],
            )?;
            Ok(())
        })
    }

    fn deactivate_user(&self, user_id: &str, erase: bool) -> StoreResult<()> {
        let u = user_id.to_owned();
        self.db.write(move |ctx| {
            ctx.tx.execute(
                "UPDATE users SET deactivated = 1, password_hash = NULL, displayname = NULL, avatar_url = NULL WHERE user_id = ?1",
                [&u],
            )?;
            // Tokens go with their devices (foreign-key cascade).
            ctx.tx.execute("DELETE FROM devices WHERE user_id = ?1", [&u])?;
            // A deactivated account holds no email address (spec: 3PIDs are removed), so the
            // address can register again.
            ctx.tx
                .execute("DELETE FROM user_threepids WHERE user_id = ?1", [&u])?;
            super::keys::mark_changed(ctx, &u)?;
            if erase {
                ctx.tx
                    .execute("DELETE FROM account_data WHERE user_id = ?1", [&u])?;
                ctx.tx.execute("DELETE FROM filters WHERE user_id = ?1", [&u])?;
            }
            Ok(())
        })
    }

    fn set_profile(
        &self,
        user_id: &str,
        displayname: Option<Option<&str>>,
        avatar_url: Option<Option<&str>>,
    ) -> StoreResult<()> {
        let u = user_id.to_owned();
        let d = displayname.map(|o| o.map(str::to_owned));
        let a = avatar_url.map(|o| o.map(str::to_owned));
        self.db.write(move |ctx| {
            if let Some(d) = d {
                ctx.tx.execute(
                    "UPDATE users SET displayname = ?2 WHERE user_id = ?1",
                    params![u, d],
                )?;
            }
            if let Some(a) = a {
                ctx.tx.execute(
                    "UPDATE users SET avatar_url = ?2 WHERE user_id = ?1",
                    params![u, a],
                )?;
            }
            Ok(())
        })
    }

    fn create_session_tokens(
        &self,
        user_id: &str,
        device_id: &str,
        display_name: Option<&str>,
        tokens: &TokenHashes,
    ) -> StoreResult<()> {
        let (u, d, n, t) = (
            user_id.to_owned(),
            device_id.to_owned(),
            display_name.map(str::to_owned),
            tokens.clone(),
        );
        self.db.write(move |ctx| {
            let now = now_ms();
            ctx.tx.execute(
                "INSERT INTO devices (user_id, device_id, display_name, created_ts, last_seen_ts) VALUES (?1, ?2, ?3, ?4, ?4)
                 ON CONFLICT (user_id, device_id) DO UPDATE SET display_name = COALESCE(excluded.display_name, display_name),
                   last_seen_ts = excluded.last_seen_ts",
                params![u, d, n, now],
            )?;
            insert_tokens(ctx, &u, &d, &t, now)
        })
    }

    fn refresh_session(
        &self,
        refresh_hash: &str,
        next: &TokenHashes,
    ) -> StoreResult<Option<(OwnedUserId, OwnedDeviceId)>> {
        let (r, t) = (refresh_hash.to_owned(), next.clone());
        self.db.write(move |ctx| {
            // DELETE ... RETURNING: of two concurrent uses of one refresh token, one wins.
            let spent: Option<(String, String, String)> = ctx
                .tx
                .query_row(
                    "DELETE FROM refresh_tokens WHERE token_hash = ?1
                     RETURNING user_id, device_id, access_hash",
                    [&r],
                    |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)),
                )
                .optional()?;
            let Some((u, d, old_access)) = spent else {
                return Ok(None);
            };
            ctx.tx.execute(
                "DELETE FROM access_tokens WHERE token_hash = ?1",
                [&old_access],
            )?;
            insert_tokens(ctx, &u, &d, &t, now_ms())?;
            let uid = u
                .try_into()
                .map_err(|e: ruma::IdParseError| StoreError::Corrupt(e.to_string()))?;
            Ok(Some((uid, d.into())))
        })
    }

    fn token_owner(&self, token_hash: &str) -> StoreResult<Option<TokenOwner>> {
        self.db.read(|c| {
            c.query_row(
                "SELECT t.user_id, t.device_id, u.is_admin, u.deactivated, t.expires_ts,
                        COALESCE(d.created_ts, t.created_ts), d.last_seen_ts
                 FROM access_tokens t JOIN users u ON u.user_id = t.user_id
                 LEFT JOIN devices d ON d.user_id = t.user_id AND d.device_id = t.device_id
                 WHERE t.token_hash = ?1",
                [token_hash],
                |r| {
                    let (uid, did): (String, String) = (r.get(0)?, r.get(1)?);
                    let times: (i64, Option<i64>) = (r.get(5)?, r.get(6)?);
                    Ok((uid, did, r.get::<_, bool>(2)?, r.get::<_, bool>(3)?, r.get(4)?, times))
                },
            )
            .optional()?
            .map(
                |(uid, did, is_admin, deactivated, expires_ts, (start, seen))| -> StoreResult<TokenOwner> {
                    Ok(TokenOwner {
                        user_id: uid
                            .try_into()
                            .map_err(|e: ruma::IdParseError| StoreError::Corrupt(e.to_string()))?,
                        device_id: did.into(),
                        is_admin,
                        deactivated,
                        expires_ts,
                        session_start_ts: start,
                        last_seen_ts: seen,
                    })
                },
            )
            .transpose()
        })
    }

    fn delete_device_tokens(&self, user_id: &str, device_id: &str) -> StoreResult<()> {
        let (u, d) = (user_id.to_owned(), device_id.to_owned());
        self.db.write(move |ctx| {
            for table in ["access_tokens", "refresh_tokens", "oauth_refresh_tokens"] {
                ctx.tx.execute(
                    &format!("DELETE FROM {table} WHERE user_id = ?1 AND device_id = ?2"),
                    params![u, d],
                )?;
            }
            Ok(())
        })
    }

    fn delete_token(&self, token_hash: &str) -> StoreResult<()> {
        let t = token_hash.to_owned();
        self.db.write(move |ctx| {
            // Logging out removes the device too (spec: the device is deleted on /logout).
            let owner: Option<(String, String)> = ctx
                .tx
                .query_row(
                    "SELECT user_id, device_id FROM access_tokens WHERE token_hash = ?1",
                    [&t],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .optional()?;
            if let Some((u, d)) = owner {
                ctx.tx.execute(
                    "DELETE FROM devices WHERE user_id = ?1 AND device_id = ?2",
                    params![u, d],
                )?;
                // Room-mates must learn the device is gone (device_lists.changed).
                super::keys::mark_changed(ctx, &u)?;
            }
            Ok(())
        })
    }

    fn delete_devices(
        &self,
        user_id: &str,
        device_ids: Option<&[OwnedDeviceId]>,
    ) -> StoreResult<()> {
        let u = user_id.to_owned();
        let ids: Option<Vec<String>> =
            device_ids.map(|ids| ids.iter().map(|d| d.to_string()).collect());
        self.db.write(move |ctx| {
            match ids {
                None => {
                    ctx.tx
                        .execute("DELETE FROM devices WHERE user_id = ?1", [&u])?;
                }
                Some(ids) => {
                    let mut stmt = ctx
                        .tx
                        .prepare("DELETE FROM devices WHERE user_id = ?1 AND device_id = ?2")?;
                    for d in ids {
                        stmt.execute(params![u, d])?;
                    }
                }
            }
            super::keys::mark_changed(ctx, &u)?;
            Ok(())
        })
    }

    fn delete_other_devices(&self, user_id: &str, keep: &str) -> StoreResult<()> {
        let (u, k) = (user_id.to_owned(), keep.to_owned());
        self.db.write(move |ctx| {
            ctx.tx.execute(
                "DELETE FROM devices WHERE user_id = ?1 AND device_id != ?2",
                params![u, k],
            )?;
            super::keys::mark_changed(ctx, &u)?;
            Ok(())
        })
    }

    fn list_devices(&self, user_id: &str) -> StoreResult<Vec<DeviceRecord>> {
        self.db.read(|c| {
            let mut stmt = c.prepare(
                "SELECT device_id, display_name, last_seen_ts, last_seen_ip FROM devices WHERE user_id = ?1 ORDER BY created_ts",
            )?;
            let rows = stmt.query_map([user_id], device_from_row)?.collect::<Result<Vec<_>, _>>()?;
            Ok(rows)
        })
    }

    fn get_device(&self, user_id: &str, device_id: &str) -> StoreResult<Option<DeviceRecord>> {
        self.db.read(|c| {
            Ok(c.query_row(
                "SELECT device_id, display_name, last_seen_ts, last_seen_ip FROM devices WHERE user_id = ?1 AND device_id = ?2",
                [user_id, device_id],
                device_from_row,
            )
            .optional()?)
        })
    }

    fn set_device_name(
        &self,
        user_id: &str,
        device_id: &str,
        name: Option<&str>,
    ) -> StoreResult<bool> {
        let (u, d, n) = (
            user_id.to_owned(),
            device_id.to_owned(),
            name.map(str::to_owned),
        );
        self.db.write(move |ctx| {
            Ok(ctx.tx.execute(
                "UPDATE devices SET display_name = ?3 WHERE user_id = ?1 AND device_id = ?2",
                params![u, d, n],
            )? > 0)
        })
    }

    fn touch_device(
        &self,
        user_id: &str,
        device_id: &str,
        ts: i64,
        ip: Option<&str>,
    ) -> StoreResult<()> {
        let (u, d, ip) = (
            user_id.to_owned(),
            device_id.to_owned(),
            ip.map(str::to_owned),
        );
        self.db.write(move |ctx| {
            ctx.tx.execute(
                "UPDATE devices SET last_seen_ts = ?3, last_seen_ip = ?4 WHERE user_id = ?1 AND device_id = ?2",
                params![u, d, ts, ip],
            )?;
            Ok(())
        })
    }

    fn search_users(
        &self,
        user_id: &str,
        term: &str,
        limit: usize,
    ) -> StoreResult<Vec<UserRecord>> {
        let pattern = format!(
            "%{}%",
            term.replace('\\', "\\\\")
                .replace('%', "\\%")
                .replace('_', "\\_")
        );
        self.db.read(|c| {
            let mut stmt = c.prepare(&format!(
                "SELECT {USER_COLS} FROM users u WHERE u.deactivated = 0
                   AND (u.user_id LIKE ?2 ESCAPE '\\' OR u.displayname LIKE ?2 ESCAPE '\\')
                   AND (u.user_id = ?1 OR EXISTS (
                        SELECT 1 FROM memberships a JOIN memberships b ON a.room_id = b.room_id
                        WHERE a.user_id = ?1 AND a.membership = 'join'
                          AND b.user_id = u.user_id AND b.membership = 'join'))
                 ORDER BY u.user_id LIMIT ?3"
            ))?;
            let rows = stmt
                .query_map(params![user_id, pattern, limit as i64], user_from_row)?
                .collect::<Result<Vec<_>, _>>()?;
            Ok(rows)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::account_data::AccountDataStore;
    use crate::store::filters::FilterStore;
    use crate::store::sqlite::test_store;

    fn user(s: &SqliteStore, id: &str, name: Option<&str>) {
        s.create_user(&UserRecord {
            user_id: id.try_into().unwrap(),
            password_hash: Some("h".into()),
            is_admin: false,
            deactivated: false,
            displayname: name.map(str::to_owned),
            avatar_url: Some("mxc://l/a".into()),
        })
        .unwrap();
    }

    fn join(s: &SqliteStore, room: &str, user: &str, membership: &str) {
        let (r, u, m) = (room.to_owned(), user.to_owned(), membership.to_owned());
        s.db.write(move |ctx| {
            ctx.tx.execute(
                "INSERT INTO memberships (room_id, user_id, membership, event_id, pos) VALUES (?1, ?2, ?3, '$e', 1)",
                params![r, u, m],
            )?;
            Ok(())
        })
        .unwrap();
    }

    #[test]
    fn deactivate_removes_devices_tokens_and_profile() {
        let (s, _d) = test_store();
        user(&s, "@a:l", Some("Alice"));
        s.create_session("@a:l", "D1", None, "th1").unwrap();
        s.set_account_data("@a:l", "", "m.x", "{}").unwrap();
        s.create_filter("@a:l", "{}").unwrap();
        s.deactivate_user("@a:l", false).unwrap();
        let u = s.get_user("@a:l").unwrap().unwrap();
        assert!(u.deactivated);
        assert_eq!(
            (u.password_hash, u.displayname, u.avatar_url),
            (None, None, None)
        );
        assert!(s.token_owner("th1").unwrap().is_none());
        assert!(s.list_devices("@a:l").unwrap().is_empty());
        // Without erase, account data stays; with erase it goes.
        assert!(s.get_account_data("@a:l", "", "m.x").unwrap().is_some());
        s.deactivate_user("@a:l", true).unwrap();
        assert!(s.get_account_data("@a:l", "", "m.x").unwrap().is_none());
        assert!(s.get_filter("@a:l", 0).unwrap().is_none());
    }

    #[test]
    fn deleting_a_device_deletes_its_tokens_only() {
        let (s, _d) = test_store();
        user(&s, "@a:l", None);
        s.create_session("@a:l", "D1", Some("phone"), "th1")
            .unwrap();
        s.create_session("@a:l", "D2", None, "th2").unwrap();
        s.delete_devices("@a:l", Some(&["D1".into()])).unwrap();
        assert!(s.token_owner("th1").unwrap().is_none());
        assert!(s.token_owner("th2").unwrap().is_some());
        let names: Vec<_> = s
            .list_devices("@a:l")
            .unwrap()
            .into_iter()
            .map(|d| d.device_id)
            .collect();
        assert_eq!(names, vec![OwnedDeviceId::from("D2")]);
    }

    #[test]
    fn touch_device_records_last_seen() {
        let (s, _d) = test_store();
        user(&s, "@a:l", None);
        s.create_session("@a:l", "D1", None, "th1").unwrap();
        s.touch_device("@a:l", "D1", 1234, Some("10.0.0.1"))
            .unwrap();
        let d = s.get_device("@a:l", "D1").unwrap().unwrap();
        assert_eq!(d.last_seen_ts, Some(1234));
        assert_eq!(d.last_seen_ip.as_deref(), Some("10.0.0.1"));
    }

    #[test]
    fn search_users_only_finds_room_mates_and_self() {
        let (s, _d) = test_store();
        user(&s, "@me:l", Some("Me"));
        user(&s, "@mate:l", Some("Room Mate"));
        user(&s, "@stranger:l", Some("Mate Stranger"));
        user(&s, "@left:l", Some("Left Mate"));
        join(&s, "!r:l", "@me:l", "join");
        join(&s, "!r:l", "@mate:l", "join");
        join(&s, "!r:l", "@left:l", "leave");
        join(&s, "!other:l", "@stranger:l", "join");
        let ids = |term: &str| -> Vec<String> {
            s.search_users("@me:l", term, 10)
                .unwrap()
                .into_iter()
                .map(|u| u.user_id.to_string())
                .collect()
        };
        assert_eq!(ids("mate"), vec!["@mate:l"]);
        assert_eq!(ids("ME"), vec!["@me:l"]);
        // LIKE wildcards in the term are literal.
        assert!(ids("%").is_empty());
        assert_eq!(s.search_users("@me:l", "", 1).unwrap().len(), 1);
    }
}
