//! Erasure on request (UK GDPR Art. 17): the existing deactivate-with-erase path, plus one audit
//! entry that records the request's reason and the records-management exemption — what was kept
//! and why (Art. 17(3)(b) legal obligation and (3)(c)/(d) public health and archiving: the NHS
//! Records Management Code of Practice keeps clinical communications for their retention period).

use handover_compliance::Outcome;
use ruma::UserId;
use serde_json::json;

use super::{AdminService, action, blocking};
use crate::error::{Error, Result};
use crate::service::audit::{ADMIN_CLI, entry};
use crate::service::users::Session;

/// What erasure deletes (the deactivate-with-erase path).
pub const ERASED: &[&str] = &[
    "password (hash)",
    "devices, sessions and access tokens",
    "display name and avatar",
    "email addresses (3PIDs)",
    "account data and filters",
    "room memberships (the account leaves every room)",
];

/// What is kept, each with why: the exemption recorded in the audit entry.
pub const KEPT: &[(&str, &str)] = &[
    (
        "messages and files the person sent into rooms",
        "part of the other participants' clinical record; kept for the room's retention period \
         under the NHS Records Management Code of Practice, then purged (UK GDPR Art. 17(3)(b), \
         (c))",
    ),
    (
        "audit trail entries naming the person",
        "append-only, hash-chained evidence of access (DSPT standards 4 and 6); deleting one \
         would break the chain (Art. 17(3)(b), (e))",
    ),
    (
        "content reports made by or about the person",
        "incident evidence for the IG lead; their free-text reasons age out by \
         retention.report_reason_lifetime",
    ),
    (
        "legal holds naming the person",
        "a hold is placed for litigation or an investigation and outranks erasure until released \
         (Art. 17(3)(e))",
    ),
    (
        "the user id (deactivated)",
        "never reused, so past messages cannot be attributed to someone else",
    ),
];

impl AdminService {
    /// Erases `user_id` on request: `by` is the admin who asked (the console) or `None` for the
    /// operator (`handover admin erase`). The reason is required and audited with the exemption.
    pub async fn erase(&self, by: Option<&Session>, user_id: &UserId, reason: &str) -> Result<()> {
        let actor = match by {
            Some(s) => {
                self.authorize(s, action::USER_ERASE, Some(user_id.as_str()))
                    .await?;
                s.user_id.as_str()
            }
            None => ADMIN_CLI,
        };
        let reason = reason.trim();
        if reason.is_empty() {
            return Err(Error::invalid_param(
                "An erasure needs a reason (the request's reference)",
            ));
        }
        self.require_local(user_id)?;
        if self.load_details(user_id).await?.is_none() {
            return Err(Error::not_found("User not found"));
        }
        self.accounts.deactivate_by_admin(user_id, true).await?;
        let (store, uid) = (self.store.clone(), user_id.to_owned());
        blocking(move || Ok(store.set_erased(uid.as_str())?)).await?;
        let kept: Vec<_> = (KEPT.iter())
            .map(|(what, why)| json!({ "what": what, "why": why }))
            .collect();
        let e = entry(actor, action::USER_ERASE, Outcome::Success)
            .target(user_id.as_str())
            .detail("reason", reason)
            .detail("legal_basis", "UK GDPR Article 17 (right to erasure)")
            .detail("erased", ERASED.to_vec())
            .detail("kept", kept);
        self.audit.record(e).await
    }
}
