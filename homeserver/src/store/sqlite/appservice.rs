//! `appservice_txns` on SQLite (schema v8).

use rusqlite::{OptionalExtension, params};

use super::SqliteStore;
use crate::store::StoreResult;
use crate::store::appservice::{AppserviceStore, OpenTxn};
use crate::store::deliveries::DeliveryQueue;

impl AppserviceStore for SqliteStore {
    fn open_txn(&self, appservice_id: &str) -> StoreResult<Option<OpenTxn>> {
        self.db.read(|c| {
            Ok(c.query_row(
                "SELECT txn_id, upto_pos FROM appservice_txns WHERE appservice_id = ?1",
                [appservice_id],
                |r| {
                    Ok(OpenTxn {
                        txn_id: r.get(0)?,
                        upto_pos: r.get(1)?,
                    })
                },
            )
            .optional()?)
        })
    }

    fn begin_txn(&self, appservice_id: &str, txn: &OpenTxn) -> StoreResult<()> {
        let (id, t) = (appservice_id.to_owned(), txn.clone());
        self.db.write(move |ctx| {
            ctx.tx.execute(
                "INSERT OR REPLACE INTO appservice_txns (appservice_id, txn_id, upto_pos)
                 VALUES (?1, ?2, ?3)",
                params![id, t.txn_id, t.upto_pos],
            )?;
            Ok(())
        })
    }

    fn finish_txn(&self, appservice_id: &str, upto_pos: i64) -> StoreResult<()> {
        let id = appservice_id.to_owned();
        let queue = DeliveryQueue::Appservice(id.clone()).to_string();
        self.db.write(move |ctx| {
            ctx.tx.execute(
                "DELETE FROM event_deliveries WHERE queue = ?1 AND pos <= ?2",
                params![queue, upto_pos],
            )?;
            ctx.tx.execute(
                "DELETE FROM appservice_txns WHERE appservice_id = ?1",
                [&id],
            )?;
            Ok(())
        })
    }
}
