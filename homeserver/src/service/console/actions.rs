//! The console's actions: legal holds (the retention service's), ending every session of an
//! account (remote wipe), subject-access exports (the SAR service's). Each audited with the
//! signed-in admin as actor.

use std::io::Cursor;

use handover_compliance::Outcome;
use ruma::UserId;

use super::{ConsoleService, ConsoleSession, action};
use crate::error::{Error, Result};
use crate::service::audit::entry;
use crate::service::retention::HoldTarget;
use crate::service::sar::{Requester, SarCounts};

fn reason(r: &str) -> Result<String> {
    let r = r.trim();
    match r.is_empty() {
        true => Err(Error::invalid_param(
            "Give a reason (e.g. the case reference)",
        )),
        false => Ok(r.to_owned()),
    }
}

impl ConsoleService {
    /// Places (`release` false) or releases a legal hold on a room or user, with a reason.
    /// Returns whether anything changed (false: already held / no hold in place).
    pub async fn set_hold(
        &self,
        s: &ConsoleSession,
        kind: &str,
        id: &str,
        why: &str,
        release: bool,
    ) -> Result<bool> {
        let target = HoldTarget::parse(kind, id.trim())?;
        let why = reason(why)?;
        let actor = s.session.user_id.as_str();
        match release {
            false => self.d.retention.place_hold(actor, target, Some(why)).await,
            true => {
                self.d
                    .retention
                    .release_hold(actor, target, Some(why))
                    .await
            }
        }
    }

    /// Ends every session of `user_id` (remote wipe of a lost device, a leaver): every device
    /// and access token deleted, so each client gets `M_UNKNOWN_TOKEN` (not a soft logout).
    pub async fn end_all_sessions(&self, s: &ConsoleSession, user_id: &UserId) -> Result<usize> {
        let devices = self.d.admin.devices(&s.session, user_id).await?;
        self.d.users.logout_all(user_id).await?;
        let e = entry(
            s.session.user_id.as_str(),
            action::END_SESSIONS,
            Outcome::Success,
        )
        .target(user_id.as_str())
        .detail("devices", devices.len());
        self.d.audit.record(e).await?;
        Ok(devices.len())
    }

    /// A subject-access export of `user_id` as ZIP bytes (audited by the SAR service).
    pub async fn sar_zip(
        &self,
        s: &ConsoleSession,
        user_id: &UserId,
    ) -> Result<(SarCounts, Vec<u8>)> {
        let (counts, out) = (self.d.sar)
            .export(
                Requester::Admin(&s.session),
                user_id,
                Cursor::new(Vec::new()),
            )
            .await?;
        Ok((counts, out.into_inner()))
    }
}
