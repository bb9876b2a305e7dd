//! Push rules, pushers and notifications.

use ruma::api::client::push::{
    delete_pushrule, get_notifications, get_pushers, get_pushrule, get_pushrule_actions,
    get_pushrule_enabled, get_pushrules_all, get_pushrules_global_scope, set_pusher, set_pushrule,
    set_pushrule_actions, set_pushrule_enabled,
};

use crate::api::ruma::Ruma;
use crate::error::Result;
use crate::service::Services;

pub async fn get_all(
    s: Services,
    req: Ruma<get_pushrules_all::v3::Request>,
) -> Result<get_pushrules_all::v3::Response> {
    let rules = s.push.ruleset(req.user_id()).await?;
    Ok(get_pushrules_all::v3::Response::new(rules))
}

pub async fn get_global(
    s: Services,
    req: Ruma<get_pushrules_global_scope::v3::Request>,
) -> Result<get_pushrules_global_scope::v3::Response> {
    let rules = s.push.ruleset(req.user_id()).await?;
    Ok(get_pushrules_global_scope::v3::Response::new(rules))
}

pub async fn get_rule(
    s: Services,
    req: Ruma<get_pushrule::v3::Request>,
) -> Result<get_pushrule::v3::Response> {
    let rule = s
        .push
        .rule(req.user_id(), req.kind.clone(), &req.rule_id)
        .await?;
    Ok(get_pushrule::v3::Response::new(rule))
}

pub async fn set_rule(
    s: Services,
    req: Ruma<set_pushrule::v3::Request>,
) -> Result<set_pushrule::v3::Response> {
    s.push
        .set_rule(
            req.user_id(),
            req.body.rule.clone(),
            req.before.as_deref(),
            req.after.as_deref(),
        )
        .await?;
    Ok(set_pushrule::v3::Response::new())
}

pub async fn delete_rule(
    s: Services,
    req: Ruma<delete_pushrule::v3::Request>,
) -> Result<delete_pushrule::v3::Response> {
    s.push
        .delete_rule(req.user_id(), req.kind.clone(), &req.rule_id)
        .await?;
    Ok(delete_pushrule::v3::Response::new())
}

pub async fn get_enabled(
    s: Services,
    req: Ruma<get_pushrule_enabled::v3::Request>,
) -> Result<get_pushrule_enabled::v3::Response> {
    let enabled = s
        .push
        .rule_enabled(req.user_id(), req.kind.clone(), &req.rule_id)
        .await?;
    Ok(get_pushrule_enabled::v3::Response::new(enabled))
}

pub async fn set_enabled(
    s: Services,
    req: Ruma<set_pushrule_enabled::v3::Request>,
) -> Result<set_pushrule_enabled::v3::Response> {
    s.push
        .set_rule_enabled(req.user_id(), req.kind.clone(), &req.rule_id, req.enabled)
        .await?;
    Ok(set_pushrule_enabled::v3::Response::new())
}

pub async fn get_actions(
    s: Services,
    req: Ruma<get_pushrule_actions::v3::Request>,
) -> Result<get_pushrule_actions::v3::Response> {
    let actions = s
        .push
        .rule_actions(req.user_id(), req.kind.clone(), &req.rule_id)
        .await?;
    Ok(get_pushrule_actions::v3::Response::new(actions))
}

pub async fn set_actions(
    s: Services,
    req: Ruma<set_pushrule_actions::v3::Request>,
) -> Result<set_pushrule_actions::v3::Response> {
    s.push
        .set_rule_actions(
            req.user_id(),
            req.kind.clone(),
            &req.rule_id,
            req.actions.clone(),
        )
        .await?;
    Ok(set_pushrule_actions::v3::Response::new())
}

pub async fn get_pushers(
    s: Services,
    req: Ruma<get_pushers::v3::Request>,
) -> Result<get_pushers::v3::Response> {
    let pushers = s.push.pushers(req.user_id()).await?;
    Ok(get_pushers::v3::Response::new(pushers))
}

pub async fn set_pusher(
    s: Services,
    req: Ruma<set_pusher::v3::Request>,
) -> Result<set_pusher::v3::Response> {
    s.push
        .set_pusher(req.user_id(), req.body.action.clone())
        .await?;
    Ok(set_pusher::v3::Response::new())
}

pub async fn notifications(
    s: Services,
    req: Ruma<get_notifications::v3::Request>,
) -> Result<get_notifications::v3::Response> {
    s.push
        .notifications(
            req.user_id(),
            req.from.as_deref(),
            req.limit,
            req.only.as_deref(),
        )
        .await
}
