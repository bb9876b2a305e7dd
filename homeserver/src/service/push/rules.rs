//! Push rules (`/pushrules/`): the user's ruleset lives in global account data `m.push_rules`
//! (so clients see changes in /sync); until the user changes something, the server default is
//! served. Stored rulesets are merged with the current server defaults on load, so a new
//! default rule reaches every user.

use std::sync::Arc;

use http::StatusCode;
use ruma::api::client::push::{PushRule, RuleKind};
use ruma::api::error::ErrorKind;
use ruma::events::push_rules::PushRulesEventContent;
use ruma::push::{
    Action, InsertPushRuleError, NewPushRule, RemovePushRuleError, RuleNotFoundError, Ruleset,
};
use ruma::{OwnedUserId, UserId};

use super::PushService;
use super::evaluate::PushEvaluator;
use crate::error::{Error, Result};

const PUSH_RULES: &str = "m.push_rules";

impl PushEvaluator {
    /// The user's ruleset (cached; every change goes through `save_ruleset`).
    pub(super) async fn ruleset(&self, user: &UserId) -> Result<Arc<Ruleset>> {
        if let Some(r) = self.rules.lock().expect("rules cache").get(user) {
            return Ok(r.clone());
        }
        let stored = match self.account_data.get_global(user, user, PUSH_RULES).await {
            Ok(raw) => Some(raw),
            Err(e) if e.kind() == Some(&ErrorKind::NotFound) => None,
            Err(e) => return Err(e),
        };
        let rules = match stored {
            Some(raw) => {
                let content: PushRulesEventContent =
                    serde_json::from_str(raw.json().get()).map_err(Error::internal)?;
                let mut global = content.global;
                global.update_with_server_default(Ruleset::server_default(user));
                global
            }
            None => Ruleset::server_default(user),
        };
        let rules = Arc::new(rules);
        let mut cache = self.rules.lock().expect("rules cache");
        if cache.len() >= super::evaluate::RULES_CACHE_MAX {
            cache.clear();
        }
        cache.insert(user.to_owned(), rules.clone());
        Ok(rules)
    }

    async fn save_ruleset(&self, user: &UserId, rules: Ruleset) -> Result<()> {
        let content = serde_json::to_string(&PushRulesEventContent::new(rules.clone()))
            .map_err(Error::internal)?;
        self.account_data
            .write(user, "", PUSH_RULES, content)
            .await?;
        self.rules
            .lock()
            .expect("rules cache")
            .insert(user.to_owned(), Arc::new(rules));
        Ok(())
    }
}

fn rule_not_found() -> Error {
    Error::not_found("The push rule was not found")
}

fn not_found(_: RuleNotFoundError) -> Error {
    rule_not_found()
}

impl PushService {
    pub async fn ruleset(&self, user: &UserId) -> Result<Ruleset> {
        Ok((*self.evaluator.ruleset(user).await?).clone())
    }

    pub async fn rule(&self, user: &UserId, kind: RuleKind, rule_id: &str) -> Result<PushRule> {
        let rules = self.evaluator.ruleset(user).await?;
        let rule = rules.get(kind, rule_id).ok_or_else(rule_not_found)?;
        Ok(rule.into())
    }

    /// PUT: create or update a user-defined rule, placed by `before`/`after`.
    pub async fn set_rule(
        &self,
        user: &UserId,
        rule: NewPushRule,
        before: Option<&str>,
        after: Option<&str>,
    ) -> Result<()> {
        self.modify(user, |rules| {
            rules.insert(rule, after, before).map_err(|e| match e {
                InsertPushRuleError::UnknownRuleId => Error::new(
                    StatusCode::BAD_REQUEST,
                    ErrorKind::Unknown,
                    format!(
                        "before/after rule not found: {}",
                        before.or(after).unwrap_or("")
                    ),
                ),
                other => Error::invalid_param(other.to_string()),
            })
        })
        .await
    }

    pub async fn delete_rule(&self, user: &UserId, kind: RuleKind, rule_id: &str) -> Result<()> {
        self.modify(user, |rules| {
            rules.remove(kind, rule_id).map_err(|e| match e {
                RemovePushRuleError::ServerDefault => {
                    Error::invalid_param("Server-default push rules cannot be deleted")
                }
                _ => rule_not_found(),
            })
        })
        .await
    }

    pub async fn rule_enabled(&self, user: &UserId, kind: RuleKind, rule_id: &str) -> Result<bool> {
        Ok(self.rule(user, kind, rule_id).await?.enabled)
    }

    pub async fn set_rule_enabled(
        &self,
        user: &UserId,
        kind: RuleKind,
        rule_id: &str,
        enabled: bool,
    ) -> Result<()> {
        self.modify(user, |rules| {
            rules.set_enabled(kind, rule_id, enabled).map_err(not_found)
        })
        .await
    }

    pub async fn rule_actions(
        &self,
        user: &UserId,
        kind: RuleKind,
        rule_id: &str,
    ) -> Result<Vec<Action>> {
        Ok(self.rule(user, kind, rule_id).await?.actions)
    }

    pub async fn set_rule_actions(
        &self,
        user: &UserId,
        kind: RuleKind,
        rule_id: &str,
        actions: Vec<Action>,
    ) -> Result<()> {
        self.modify(user, |rules| {
            rules.set_actions(kind, rule_id, actions).map_err(not_found)
        })
        .await
    }

    /// Read-modify-write of the user's ruleset, serialised so concurrent edits are not lost.
    async fn modify(
        &self,
        user: &UserId,
        change: impl FnOnce(&mut Ruleset) -> Result<()>,
    ) -> Result<()> {
        let _guard = self.rules_lock.lock().await;
        let mut rules = (*self.evaluator.ruleset(user).await?).clone();
        change(&mut rules)?;
        let owner: OwnedUserId = user.to_owned();
        self.evaluator.save_ruleset(&owner, rules).await
    }
}
