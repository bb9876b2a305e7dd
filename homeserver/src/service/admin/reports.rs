//! Event reports (Synapse's `/_synapse/admin/v1/event_reports...`): list, read, delete. Reading
//! one shows the reported event, which is what a moderator must judge; that read is audited.

use serde_json::Value;

/// A report with the room's name and canonical alias (from its current state), as Synapse
/// lists them.
#[derive(Debug)]
pub struct LabelledReport {
    pub report: EventReportRow,
    pub room_name: Option<String>,
    pub canonical_alias: Option<String>,
}

use super::{AdminService, action};
use crate::error::{Error, Result};
use crate::service::blocking;
use crate::service::users::Session;
use crate::store::admin::{EventReportRow, ReportListQuery};

impl AdminService {
    pub async fn event_reports(
        &self,
        who: &Session,
        q: ReportListQuery,
    ) -> Result<(Vec<LabelledReport>, u64)> {
        self.authorize(who, action::REPORTS_LIST, None).await?;
        let store = self.room_store.clone();
        let (rows, total) = blocking(move || Ok(store.event_reports(&q)?)).await?;
        let mut out = Vec::with_capacity(rows.len());
        for report in rows {
            let labels = self.room_labels(&report.room_id).await;
            out.push(LabelledReport {
                report,
                room_name: labels.0,
                canonical_alias: labels.1,
            });
        }
        let server = self.users.server_name().to_owned();
        self.audited(who, action::REPORTS_LIST, &server, None)
            .await?;
        Ok((out, total))
    }

    async fn room_labels(&self, room_id: &str) -> (Option<String>, Option<String>) {
        let Ok(room_id) = ruma::RoomId::parse(room_id) else {
            return (None, None);
        };
        let Ok(state) = self.rooms.current_state(&room_id).await else {
            return (None, None);
        };
        let text = |k: ruma::events::StateEventType, f: &str| {
            let c = state.content_json(&k, "")?;
            c.get(f)?.as_str().map(str::to_owned)
        };
        (
            text(ruma::events::StateEventType::RoomName, "name"),
            text(ruma::events::StateEventType::RoomCanonicalAlias, "alias"),
        )
    }

    /// One report and the reported event's JSON (`None` once the event is gone).
    pub async fn event_report(
        &self,
        who: &Session,
        id: i64,
    ) -> Result<(LabelledReport, Option<Value>)> {
        let target = format!("report:{id}");
        self.authorize(who, action::REPORT_GET, Some(&target))
            .await?;
        let store = self.room_store.clone();
        let found = blocking(move || {
            let Some(r) = store.event_report(id)? else {
                return Ok(None);
            };
            let json = store.event_json(&r.event_id)?;
            Ok(Some((r, json)))
        })
        .await?;
        let (report, json) = found.ok_or_else(|| Error::not_found("Event report not found"))?;
        let event = json.and_then(|j| serde_json::from_str(&j).ok());
        let d = ("event_id", report.event_id.clone().into());
        self.audited(who, action::REPORT_GET, &target, Some(d))
            .await?;
        let (room_name, canonical_alias) = self.room_labels(&report.room_id).await;
        let labelled = LabelledReport {
            report,
            room_name,
            canonical_alias,
        };
        Ok((labelled, event))
    }

    pub async fn delete_event_report(&self, who: &Session, id: i64) -> Result<()> {
        let target = format!("report:{id}");
        self.authorize(who, action::REPORT_DELETE, Some(&target))
            .await?;
        let store = self.room_store.clone();
        let existing = blocking(move || {
            let r = store.event_report(id)?;
            if r.is_some() {
                store.delete_event_report(id)?;
            }
            Ok(r)
        })
        .await?;
        let r = existing.ok_or_else(|| Error::not_found("Event report not found"))?;
        // What the report was about stays in the trail after the report itself is gone.
        let d = json_detail(&r);
        self.audited(who, action::REPORT_DELETE, &target, Some(("report", d)))
            .await?;
        Ok(())
    }
}

fn json_detail(r: &EventReportRow) -> Value {
    serde_json::json!({
        "room_id": r.room_id,
        "event_id": r.event_id,
        "reporter": r.reporter,
        "received_ts": r.received_ts,
    })
}
