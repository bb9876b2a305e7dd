//! The account behind a provider's subject: linked by (provider id, subject) only, provisioned
//! on the first sign-in, its display name and claims refreshed on later ones. A localpart that
//! is already taken is refused, never merged: an existing account is not handed to whoever a
//! provider names the same.

use std::net::IpAddr;

use handover_compliance::Outcome;
use handover_policy::IdentityLoginRequest;
use ruma::OwnedUserId;
use serde_json::{Map, Value};

use super::upstream::Verified;
use super::{IdentityService, Refusal, action};
use crate::config::ProviderConfig;
use crate::service::audit::{entry, with_ip};
use crate::service::blocking;
use crate::store::StoreError;
use crate::store::identity::IdentityLink;
use crate::store::users::UserRecord;
use ::http::StatusCode;

/// A claim as text (strings as they are, numbers and booleans printed).
fn claim(claims: &Map<String, Value>, name: &str) -> Option<String> {
    match claims.get(name)? {
        Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_owned()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// A Matrix localpart from a claim: an email-style name keeps its local part; letters are
/// lower-cased; characters the spec does not allow become `_`.
pub fn sanitise_localpart(raw: &str) -> Option<String> {
    let base = raw.split('@').next().unwrap_or(raw);
    let s: String = base
        .chars()
        .flat_map(char::to_lowercase)
        .map(|c| match c {
            'a'..='z' | '0'..='9' | '.' | '_' | '=' | '-' | '/' => c,
            _ => '_',
        })
        .collect();
    let s = s.trim_matches('_').to_owned();
    (!s.is_empty() && s.len() <= 200).then_some(s)
}

impl IdentityService {
    /// The user the verified ID token stands for, after the policy gate.
    pub(super) async fn sign_in(
        &self,
        p: &ProviderConfig,
        v: Verified,
        ip: Option<IpAddr>,
    ) -> Result<OwnedUserId, Refusal> {
        let actor = format!("{}:{}", p.id, v.subject);
        let decision = self.policy.check_identity_login(&IdentityLoginRequest {
            provider: &p.id,
            subject: &v.subject,
            acr: v.acr.as_deref(),
            claims: &v.claims,
        });
        if let Err(denial) = decision {
            self.audit
                .record_denial(&denial, "check_identity_login", &actor, None)
                .await
                .map_err(Refusal::internal)?;
            return Err(Refusal::new(
                StatusCode::FORBIDDEN,
                "Sign-in refused",
                format!("{} (rule {})", denial.reason, denial.rule),
            ));
        }
        // Only the claims this server uses are kept.
        let mut kept = Map::new();
        for name in super::userinfo::wanted(p) {
            if let Some(val) = v.claims.get(&name) {
                kept.insert(name, val.clone());
            }
        }
        if let Some(acr) = &v.acr {
            kept.insert("acr".into(), Value::String(acr.clone()));
        }
        let kept = Value::Object(kept).to_string();
        let display = claim(&v.claims, &p.displayname_claim);

        let store = self.store.clone();
        let (pid, sub) = (p.id.clone(), v.subject.clone());
        let link = blocking(move || Ok(store.find_identity_link(&pid, &sub)?))
            .await
            .map_err(Refusal::internal)?;
        let user_id = match link {
            Some(link) => self.returning(p, &v, link, &kept, display).await?,
            None => self.provision(p, &v, &kept, display, ip).await?,
        };
        let e = entry(user_id.as_str(), action::IDENTITY_LOGIN, Outcome::Success)
            .detail("provider", p.id.as_str())
            .detail("subject", v.subject.as_str())
            .detail("acr", v.acr.clone().unwrap_or_default());
        self.audit
            .record(with_ip(e, ip))
            .await
            .map_err(Refusal::internal)?;
        Ok(user_id)
    }

    async fn returning(
        &self,
        p: &ProviderConfig,
        v: &Verified,
        link: IdentityLink,
        kept: &str,
        display: Option<String>,
    ) -> Result<OwnedUserId, Refusal> {
        let user = self
            .users
            .get_user(&link.user_id)
            .await
            .map_err(Refusal::internal)?;
        let Some(user) = user.filter(|u| !u.deactivated) else {
            let e = entry(
                link.user_id.as_str(),
                action::IDENTITY_REFUSED,
                Outcome::Denied,
            )
            .detail("reason", "deactivated");
            self.audit.record(e).await.map_err(Refusal::internal)?;
            return Err(Refusal::new(
                StatusCode::FORBIDDEN,
                "Account deactivated",
                "The account linked to this identity has been deactivated.",
            ));
        };
        let store = self.store.clone();
        let (pid, sub, claims) = (p.id.clone(), v.subject.clone(), kept.to_owned());
        blocking(move || Ok(store.touch_identity_link(&pid, &sub, &claims)?))
            .await
            .map_err(Refusal::internal)?;
        // The provider is the source of truth for the name (also when names are locked).
        if display.is_some() && display != user.displayname {
            self.accounts
                .admin_set_displayname(&user.user_id, display)
                .await
                .map_err(Refusal::internal)?;
        }
        Ok(user.user_id)
    }

    async fn provision(
        &self,
        p: &ProviderConfig,
        v: &Verified,
        kept: &str,
        display: Option<String>,
        ip: Option<IpAddr>,
    ) -> Result<OwnedUserId, Refusal> {
        let actor = format!("{}:{}", p.id, v.subject);
        let refuse = |why: String| Refusal::new(StatusCode::FORBIDDEN, "No account name", why);
        let raw = claim(&v.claims, &p.localpart_claim).ok_or_else(|| {
            refuse(format!(
                "{} did not send the claim `{}` needed to name a new account.",
                p.name, p.localpart_claim
            ))
        })?;
        let localpart = sanitise_localpart(&raw)
            .ok_or_else(|| refuse(format!("`{raw}` cannot be made into an account name.")))?;
        let user_id = self
            .users
            .user_id_for(&localpart)
            .map_err(|_| refuse(format!("`{localpart}` is not a valid account name.")))?;
        let record = UserRecord {
            user_id: user_id.clone(),
            password_hash: None,
            is_admin: false,
            deactivated: false,
            displayname: Some(display.unwrap_or_else(|| localpart.clone())),
            avatar_url: None,
        };
        let link = IdentityLink {
            provider_id: p.id.clone(),
            subject: v.subject.clone(),
            user_id: user_id.clone(),
            account_kind: p.account_kind.as_str().to_owned(),
            claims: kept.to_owned(),
        };
        let store = self.store.clone();
        let res = blocking(move || match store.provision_linked_user(&record, &link) {
            Err(StoreError::Conflict(what)) => Ok(Some(what)),
            other => Ok(other.map(|()| None)?),
        })
        .await
        .map_err(Refusal::internal)?;
        match res {
            None => {
                let e = entry(&actor, action::IDENTITY_PROVISION, Outcome::Success)
                    .target(user_id.as_str())
                    .detail("account_kind", p.account_kind.as_str());
                self.audit
                    .record(with_ip(e, ip))
                    .await
                    .map_err(Refusal::internal)?;
                tracing::info!(user_id = %user_id, provider = %p.id, "account provisioned");
                Ok(user_id)
            }
            Some("link") => {
                // Two first sign-ins raced; the other one made the account.
                let store = self.store.clone();
                let (pid, sub) = (p.id.clone(), v.subject.clone());
                let link = blocking(move || Ok(store.find_identity_link(&pid, &sub)?))
                    .await
                    .map_err(Refusal::internal)?;
                link.map(|l| l.user_id)
                    .ok_or_else(|| Refusal::internal("link vanished"))
            }
            Some(_) => {
                let e = entry(&actor, action::IDENTITY_REFUSED, Outcome::Denied)
                    .target(user_id.as_str())
                    .detail("reason", "localpart_taken");
                self.audit
                    .record(with_ip(e, ip))
                    .await
                    .map_err(Refusal::internal)?;
                Err(Refusal::new(
                    StatusCode::CONFLICT,
                    "Account name already taken",
                    format!(
                        "An account called {user_id} already exists and is not linked to your \
                         {} identity. It has not been changed. Ask your administrator to link \
                         or rename it.",
                        p.name
                    ),
                ))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::sanitise_localpart;

    #[test]
    fn localparts_are_sanitised() {
        assert_eq!(
            sanitise_localpart("Alice.Smith@nhs.net").as_deref(),
            Some("alice.smith")
        );
        assert_eq!(
            sanitise_localpart("Bob Jones").as_deref(),
            Some("bob_jones")
        );
        assert_eq!(sanitise_localpart("@@").as_deref(), None);
        assert_eq!(sanitise_localpart("Zoë").as_deref(), Some("zo"));
    }
}
