//! The account's kind (staff or patient, docs/IDENTITY.md "Patient accounts") and the patient
//! confinement check every confined action runs through (policy hook `check_account_action`).

use handover_policy::{AccountAction, AccountActionRequest, AccountKind};
use ruma::UserId;

use handover_compliance::Outcome;

use super::UserService;
use crate::error::{Error, Result};
use crate::service::audit::{action, entry};
use crate::service::blocking;

impl UserService {
    /// A local account's kind; staff for remote users and unknown accounts (the rules confine
    /// only accounts this server knows to be patients).
    pub async fn account_kind(&self, user_id: &UserId) -> Result<AccountKind> {
        if user_id.server_name() != self.config.server_name.as_str() {
            return Ok(AccountKind::Staff);
        }
        let store = self.store.clone();
        let u = user_id.to_string();
        let kind = blocking(move || Ok(store.account_kind(&u)?)).await?;
        Ok(kind
            .as_deref()
            .and_then(AccountKind::parse)
            .unwrap_or_default())
    }

    /// Sets a local account's kind (admin CLI and admin API), audited as `account.kind` by
    /// `actor`.
    pub async fn set_account_kind(
        &self,
        actor: &str,
        user_id: &UserId,
        kind: AccountKind,
    ) -> Result<()> {
        let store = self.store.clone();
        let u = user_id.to_string();
        if blocking({
            let store = store.clone();
            let u = u.clone();
            move || Ok(store.get_user(&u)?)
        })
        .await?
        .is_none()
        {
            return Err(Error::not_found(format!("Unknown user {user_id}")));
        }
        blocking(move || Ok(store.set_account_kind(&u, kind.as_str())?)).await?;
        let e = entry(actor, action::ACCOUNT_KIND, Outcome::Success)
            .target(user_id.as_str())
            .detail("account_kind", kind.as_str());
        self.audit.record(e).await
    }

    /// Asks the policy whether `user_id`'s kind of account may do `action`; a refusal is
    /// audited and answered with 403 naming the rule.
    pub async fn check_account_action(
        &self,
        user_id: &UserId,
        action: AccountAction<'_>,
        target: Option<&str>,
    ) -> Result<()> {
        let kind = self.account_kind(user_id).await?;
        let decision = self.policy.check_account_action(&AccountActionRequest {
            user_id: user_id.as_str(),
            kind,
            action,
        });
        self.audit
            .enforce(decision, "check_account_action", user_id.as_str(), target)
            .await
    }
}
