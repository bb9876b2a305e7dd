//! Encrypted appservices on SQLite (schema v19): the accepted device-list position, the
//! encryption bounds of the open transaction, and reads of queued to-device messages and keyed
//! users (v1 tables).

use rusqlite::{OptionalExtension, params};

use super::SqliteStore;
use crate::store::StoreResult;
use crate::store::appservice::OpenTxn;
use crate::store::appservice_crypto::{AppserviceCryptoStore, AsToDevice, CryptoAck, CryptoUpto};
use crate::store::deliveries::DeliveryQueue;

impl AppserviceCryptoStore for SqliteStore {
    fn device_list_pos(&self, appservice_id: &str, start: i64) -> StoreResult<i64> {
        let id = appservice_id.to_owned();
        self.db.write(move |ctx| {
            ctx.tx.execute(
                "INSERT OR IGNORE INTO appservice_device_lists (appservice_id, pos) VALUES (?1, ?2)",
                params![id, start],
            )?;
            Ok(ctx.tx.query_row(
                "SELECT pos FROM appservice_device_lists WHERE appservice_id = ?1",
                [&id],
                |r| r.get(0),
            )?)
        })
    }

    fn open_crypto(&self, appservice_id: &str) -> StoreResult<Option<CryptoUpto>> {
        self.db.read(|c| {
            let row: Option<(Option<i64>, Option<i64>)> = c
                .query_row(
                    "SELECT device_list_upto, to_device_upto FROM appservice_txns
                     WHERE appservice_id = ?1",
                    [appservice_id],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .optional()?;
            Ok(match row {
                Some((Some(device_lists), Some(to_device))) => Some(CryptoUpto {
                    device_lists,
                    to_device,
                }),
                _ => None,
            })
        })
    }

    fn begin_crypto_txn(
        &self,
        appservice_id: &str,
        txn: &OpenTxn,
        upto: CryptoUpto,
    ) -> StoreResult<()> {
        let (id, t) = (appservice_id.to_owned(), txn.clone());
        self.db.write(move |ctx| {
            ctx.tx.execute(
                "INSERT OR REPLACE INTO appservice_txns
                   (appservice_id, txn_id, upto_pos, device_list_upto, to_device_upto)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
                params![id, t.txn_id, t.upto_pos, upto.device_lists, upto.to_device],
            )?;
            Ok(())
        })
    }

    fn finish_crypto_txn(
        &self,
        appservice_id: &str,
        upto_pos: i64,
        ack: &CryptoAck,
    ) -> StoreResult<()> {
        let (id, ack) = (appservice_id.to_owned(), ack.clone());
        let queue = DeliveryQueue::Appservice(id.clone()).to_string();
        self.db.write(move |ctx| {
            ctx.tx.execute(
                "DELETE FROM event_deliveries WHERE queue = ?1 AND pos <= ?2",
                params![queue, upto_pos],
            )?;
            for (user, device, upto) in &ack.to_device {
                ctx.tx.execute(
                    "DELETE FROM to_device_messages WHERE user_id = ?1 AND device_id = ?2 AND pos <= ?3",
                    params![user, device, upto],
                )?;
            }
            ctx.tx.execute(
                "UPDATE appservice_device_lists SET pos = MAX(pos, ?2) WHERE appservice_id = ?1",
                params![id, ack.device_lists],
            )?;
            ctx.tx.execute(
                "DELETE FROM appservice_txns WHERE appservice_id = ?1",
                [&id],
            )?;
            Ok(())
        })
    }

    fn to_device_recipients(&self) -> StoreResult<Vec<String>> {
        self.db.read(|c| {
            let mut st = c.prepare("SELECT DISTINCT user_id FROM to_device_messages")?;
            let rows = st
                .query_map([], |r| r.get(0))?
                .collect::<Result<Vec<String>, _>>()?;
            Ok(rows)
        })
    }

    fn to_device_of(
        &self,
        users: &[String],
        upto: i64,
        limit: usize,
    ) -> StoreResult<Vec<AsToDevice>> {
        self.db.read(|c| {
            let mut st = c.prepare(
                "SELECT user_id, device_id, pos, sender, type, content FROM to_device_messages
                 WHERE user_id = ?1 AND pos <= ?2 ORDER BY pos",
            )?;
            let mut all = Vec::new();
            for u in users {
                let rows = st.query_map(params![u, upto], |r| {
                    Ok(AsToDevice {
                        user_id: r.get(0)?,
                        device_id: r.get(1)?,
                        pos: r.get(2)?,
                        sender: r.get(3)?,
                        event_type: r.get(4)?,
                        content: r.get(5)?,
                    })
                })?;
                for row in rows {
                    all.push(row?);
                }
            }
            all.sort_by(|a, b| {
                (a.pos, &a.user_id, &a.device_id).cmp(&(b.pos, &b.user_id, &b.device_id))
            });
            // Cut after `limit` rows, but never inside one position.
            if all.len() > limit {
                let last = all[limit - 1].pos;
                all.retain(|r| r.pos <= last);
            }
            Ok(all)
        })
    }

    fn users_with_device_keys(&self) -> StoreResult<Vec<String>> {
        self.db.read(|c| {
            let mut st = c.prepare("SELECT DISTINCT user_id FROM device_keys")?;
            let rows = st
                .query_map([], |r| r.get(0))?
                .collect::<Result<Vec<String>, _>>()?;
            Ok(rows)
        })
    }
}
