//! The device authorization grant and provider sessions on SQLite.

use ruma::{OwnedDeviceId, OwnedUserId};
use rusqlite::{OptionalExtension, params};

use super::SqliteStore;
use crate::store::device_grants::{
    DeviceGrantStore, DevicePoll, IssuedTokens, NewDeviceGrant, PendingDeviceGrant, UpstreamSession,
};
use crate::store::{StoreError, StoreResult};

fn corrupt(e: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(e.to_string())
}

/// Grants this long past their expiry are deleted when a new one is made.
const KEEP_EXPIRED_MS: i64 = 86_400_000;

type GrantRow = (
    String,
    String,
    String,
    i64,
    i64,
    Option<i64>,
    String,
    Option<String>,
    Option<String>,
    Option<String>,
);

impl DeviceGrantStore for SqliteStore {
    fn insert_device_grant(&self, g: &NewDeviceGrant) -> StoreResult<()> {
        let g = g.clone();
        self.db.write(move |ctx| {
            ctx.tx.execute(
                "DELETE FROM oauth_device_grants WHERE expires_ts < ?1",
                [g.created_ts - KEEP_EXPIRED_MS],
            )?;
            let n = ctx.tx.execute(
                "INSERT OR IGNORE INTO oauth_device_grants (device_code_hash, user_code, client_id,
                    scope, device_id, created_ts, expires_ts, interval_ms)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                params![
                    g.device_code_hash,
                    g.user_code,
                    g.client_id,
                    g.scope,
                    g.device_id,
                    g.created_ts,
                    g.expires_ts,
                    g.interval_ms
                ],
            )?;
            if n == 0 {
                return Err(StoreError::Conflict("user_code"));
            }
            Ok(())
        })
    }

    fn pending_device_grant(
        &self,
        user_code: &str,
        now: i64,
    ) -> StoreResult<Option<PendingDeviceGrant>> {
        let code = user_code.to_owned();
        self.db.read(move |c| {
            Ok(c.query_row(
                "SELECT client_id, scope, device_id, user_code FROM oauth_device_grants
                 WHERE user_code = ?1 AND state = 'pending' AND expires_ts > ?2",
                params![code, now],
                |r| {
                    Ok(PendingDeviceGrant {
                        client_id: r.get(0)?,
                        scope: r.get(1)?,
                        device_id: r.get::<_, String>(2)?.into(),
                        user_code: r.get(3)?,
                    })
                },
            )
            .optional()?)
        })
    }

    fn decide_device_grant(
        &self,
        user_code: &str,
        approved_for: Option<(&str, Option<&UpstreamSession>)>,
        now: i64,
    ) -> StoreResult<bool> {
        let code = user_code.to_owned();
        let user = approved_for.map(|(u, _)| u.to_owned());
        let up = approved_for.and_then(|(_, up)| up.cloned());
        let state = if user.is_some() { "approved" } else { "denied" };
        self.db.write(move |ctx| {
            let n = ctx.tx.execute(
                "UPDATE oauth_device_grants SET state = ?2, user_id = ?3, upstream_provider = ?4,
                    upstream_sid = ?5, decided_ts = ?6
                 WHERE user_code = ?1 AND state = 'pending' AND expires_ts > ?6",
                params![
                    code,
                    state,
                    user,
                    up.as_ref().map(|u| &u.0),
                    up.as_ref().map(|u| &u.1),
                    now
                ],
            )?;
            Ok(n == 1)
        })
    }

    fn poll_device_grant(
        &self,
        device_code_hash: &str,
        client_id: &str,
        now: i64,
        tokens: &IssuedTokens,
    ) -> StoreResult<DevicePoll> {
        let (h, c, t) = (
            device_code_hash.to_owned(),
            client_id.to_owned(),
            tokens.clone(),
        );
        self.db.write(move |ctx| {
            let row: Option<GrantRow> = ctx
                .tx
                .query_row(
                    "SELECT client_id, scope, device_id, expires_ts, interval_ms, last_poll_ts,
                        state, user_id, upstream_provider, upstream_sid
                     FROM oauth_device_grants WHERE device_code_hash = ?1",
                    [&h],
                    |r| {
                        Ok((
                            r.get(0)?,
                            r.get(1)?,
                            r.get(2)?,
                            r.get(3)?,
                            r.get(4)?,
                            r.get(5)?,
                            r.get(6)?,
                            r.get(7)?,
                            r.get(8)?,
                            r.get(9)?,
                        ))
                    },
                )
                .optional()?;
            let Some((owner, scope, device, expires, interval, last, state, user, prov, sid)) = row
            else {
                return Ok(DevicePoll::Unknown);
            };
            if owner != c || state == "spent" {
                return Ok(DevicePoll::Unknown);
            }
            if state == "denied" {
                return Ok(DevicePoll::Denied);
            }
            if expires <= now {
                return Ok(DevicePoll::Expired);
            }
            if state == "pending" {
                // RFC 8628 §3.5: too soon is `slow_down`, and the interval grows by 5 seconds.
                let too_soon = last.is_some_and(|l| now - l < interval);
                ctx.tx.execute(
                    "UPDATE oauth_device_grants SET last_poll_ts = ?2,
                        interval_ms = interval_ms + ?3 WHERE device_code_hash = ?1",
                    params![h, now, if too_soon { 5000 } else { 0 }],
                )?;
                return Ok(if too_soon {
                    DevicePoll::SlowDown
                } else {
                    DevicePoll::Pending
                });
            }
            let user = user.ok_or_else(|| corrupt("approved device grant without a user"))?;
            ctx.tx.execute(
                "UPDATE oauth_device_grants SET state = 'spent', last_poll_ts = ?2
                 WHERE device_code_hash = ?1",
                params![h, now],
            )?;
            super::identity::insert_oauth_session(
                ctx.tx,
                &user,
                &device,
                t.display_name.as_deref(),
                &c,
                &t.access_hash,
                t.expires_ts,
                &t.refresh_hash,
            )?;
            if let (Some(p), Some(s)) = (prov, sid) {
                ctx.tx.execute(
                    "INSERT OR IGNORE INTO identity_upstream_sessions
                        (provider_id, sid, user_id, device_id, created_ts)
                     VALUES (?1, ?2, ?3, ?4, ?5)",
                    params![p, s, user, device, now],
                )?;
            }
            Ok(DevicePoll::Issued {
                user_id: user.try_into().map_err(corrupt)?,
                device_id: device.into(),
                scope,
            })
        })
    }

    fn record_upstream_session(
        &self,
        upstream: &UpstreamSession,
        user_id: &str,
        device_id: &str,
    ) -> StoreResult<()> {
        let (p, s) = upstream.clone();
        let (u, d) = (user_id.to_owned(), device_id.to_owned());
        self.db.write(move |ctx| {
            ctx.tx.execute(
                "INSERT OR IGNORE INTO identity_upstream_sessions
                    (provider_id, sid, user_id, device_id, created_ts)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
                params![p, s, u, d, crate::store::now_ms()],
            )?;
            Ok(())
        })
    }

    fn upstream_session_devices(
        &self,
        provider_id: &str,
        sid: &str,
    ) -> StoreResult<Vec<(OwnedUserId, OwnedDeviceId)>> {
        let (p, s) = (provider_id.to_owned(), sid.to_owned());
        let rows: Vec<(String, String)> = self.db.read(move |c| {
            let mut st = c.prepare(
                "SELECT user_id, device_id FROM identity_upstream_sessions
                 WHERE provider_id = ?1 AND sid = ?2",
            )?;
            let rows = st
                .query_map(params![p, s], |r| Ok((r.get(0)?, r.get(1)?)))?
                .collect::<Result<_, _>>()?;
            Ok(rows)
        })?;
        rows.into_iter()
            .map(|(u, d)| Ok((u.try_into().map_err(corrupt)?, d.into())))
            .collect()
    }
}
