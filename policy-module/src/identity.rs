//! Rooms, invites and identity: who may be invited, by whom, and who names a user.
//!
//! - [`OrganisationInvites`] (rule `invite_outside_organisation`): invites only to users on this
//!   server or on a server in `[invites] allowed_servers`.
//! - [`DisplayNameLock`] (rule `display_name_locked`): with `[policy] lock_display_names`, users
//!   cannot change their own display name; an admin sets it.
//! - [`invite_permission`] (rule `invite_blocked_by_invitee`): the invitee's own MSC4155
//!   `m.invite_permission_config` account data. The homeserver reads the account data and asks
//!   this function; it is not a [`Policy`] hook because a hook does no I/O.

use serde_json::Value;

use crate::{Decision, Denial, InviteRequest, Policy, ProfileUpdate};

/// Rule id: the invitee is on a server outside the organisation.
pub const RULE_INVITE_OUTSIDE_ORGANISATION: &str = "invite_outside_organisation";
/// Rule id: display names are locked; only an admin sets them.
pub const RULE_DISPLAY_NAME_LOCKED: &str = "display_name_locked";
/// Rule id: the invitee's invite permission config refuses invites from this inviter.
pub const RULE_INVITE_BLOCKED_BY_INVITEE: &str = "invite_blocked_by_invitee";
/// Rule id: a patient-context room asked for state that would expose it.
pub const RULE_PATIENT_CONTEXT_ROOM: &str = "patient_context_room";

/// The account data types holding an invite permission config: stable first, then MSC4155's
/// unstable prefix (what Element sends today).
pub const INVITE_PERMISSION_TYPES: &[&str] = &[
    "m.invite_permission_config",
    "org.matrix.msc4155.invite_permission_config",
];

/// The server part of a user id (`@local:server` → `server`).
fn server_of(user_id: &str) -> &str {
    user_id.split_once(':').map_or("", |(_, s)| s)
}

/// Invites stay inside the organisation: this server and the listed ones.
#[derive(Debug, Clone, Default)]
pub struct OrganisationInvites {
    pub server_name: String,
    /// Other servers whose users may be invited (`[invites] allowed_servers`).
    pub allowed_servers: Vec<String>,
}

impl Policy for OrganisationInvites {
    fn name(&self) -> &str {
        "organisation-invites"
    }
    fn check_invite(&self, req: &InviteRequest<'_>) -> Decision {
        let server = server_of(req.invitee);
        if server.eq_ignore_ascii_case(&self.server_name)
            || self
                .allowed_servers
                .iter()
                .any(|s| s.eq_ignore_ascii_case(server))
        {
            return Ok(());
        }
        Err(Denial::new(
            RULE_INVITE_OUTSIDE_ORGANISATION,
            format!("users on {server} cannot be invited: it is outside this organisation"),
        ))
    }
}

/// Display names, and every other profile field kept through the policy (extended profiles),
/// are set by an admin only (`[policy] lock_display_names`).
#[derive(Debug, Clone, Copy, Default)]
pub struct DisplayNameLock;

impl Policy for DisplayNameLock {
    fn name(&self) -> &str {
        "display-name-lock"
    }
    fn check_profile_update(&self, req: &ProfileUpdate<'_>) -> Decision {
        // The lock is about names (and the extended fields that carry identity); an avatar
        // stays the user's own.
        if req.by_admin || req.field == "avatar_url" {
            return Ok(());
        }
        Err(Denial::new(
            RULE_DISPLAY_NAME_LOCKED,
            format!(
                "{} on this server is set by an administrator",
                if req.field == "displayname" {
                    "the display name".to_owned()
                } else {
                    format!("the profile field {}", req.field)
                }
            ),
        ))
    }
}

/// Glob match with `*` (any run) and `?` (one character), as MSC4155's lists use.
fn glob(pattern: &str, text: &str) -> bool {
    let (p, t): (Vec<char>, Vec<char>) = (pattern.chars().collect(), text.chars().collect());
    let (mut pi, mut ti) = (0, 0);
    let (mut star, mut mark) = (None, 0);
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            pi += 1;
            mark = ti;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ti = mark;
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

/// Whether the invitee's invite permission config (the account data's content) lets `inviter`
/// invite them. MSC4155: the lists `allowed_users`, `ignored_users`, `blocked_users`,
/// `allowed_servers`, `ignored_servers`, `blocked_servers` (globs; users match the full id,
/// servers the inviter's server name) are checked in that order and the first match decides;
/// "ignored" is not refused here. With no match, `default_action` decides (`"block"` refuses;
/// absent or `"allow"` allows; MSC4380's block-all is `{"default_action": "block"}`).
pub fn invite_permission(config: &Value, inviter: &str) -> Decision {
    let server = server_of(inviter);
    let matches = |key: &str, text: &str| {
        config[key]
            .as_array()
            .is_some_and(|l| l.iter().filter_map(Value::as_str).any(|p| glob(p, text)))
    };
    let order = [
        ("allowed_users", inviter, true),
        ("ignored_users", inviter, true),
        ("blocked_users", inviter, false),
        ("allowed_servers", server, true),
        ("ignored_servers", server, true),
        ("blocked_servers", server, false),
    ];
    let allowed = match order.iter().find(|(k, text, _)| matches(k, text)) {
        Some((_, _, allow)) => *allow,
        None => config["default_action"].as_str() != Some("block"),
    };
    if allowed {
        Ok(())
    } else {
        Err(Denial::new(
            RULE_INVITE_BLOCKED_BY_INVITEE,
            "this user does not accept invites from you",
        ))
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn invite(invitee: &str) -> InviteRequest<'_> {
        InviteRequest {
            room_id: "!r:a.nhs.uk",
            inviter: "@x:a.nhs.uk",
            invitee,
        }
    }

    #[test]
    fn organisation_invites() {
        let p = OrganisationInvites {
            server_name: "a.nhs.uk".into(),
            allowed_servers: vec!["b.nhs.uk".into()],
        };
        assert!(p.check_invite(&invite("@y:a.nhs.uk")).is_ok());
        assert!(p.check_invite(&invite("@y:B.nhs.uk")).is_ok());
        assert_eq!(
            p.check_invite(&invite("@y:gmail.example"))
                .unwrap_err()
                .rule,
            RULE_INVITE_OUTSIDE_ORGANISATION
        );
        let own_only = OrganisationInvites {
            server_name: "a.nhs.uk".into(),
            allowed_servers: vec![],
        };
        assert!(own_only.check_invite(&invite("@y:b.nhs.uk")).is_err());
    }

    #[test]
    fn display_name_lock() {
        let mut u = ProfileUpdate {
            user_id: "@a:x",
            field: "displayname",
            value: Some("A"),
            by_admin: false,
        };
        assert_eq!(
            DisplayNameLock.check_profile_update(&u).unwrap_err().rule,
            RULE_DISPLAY_NAME_LOCKED
        );
        // Every profile field, removal too.
        u.field = "org.example.job_title";
        u.value = None;
        assert_eq!(
            DisplayNameLock.check_profile_update(&u).unwrap_err().rule,
            RULE_DISPLAY_NAME_LOCKED
        );
        // The avatar is not a name.
        u.field = "avatar_url";
        assert!(DisplayNameLock.check_profile_update(&u).is_ok());
        u.field = "displayname";
        u.by_admin = true;
        assert!(DisplayNameLock.check_profile_update(&u).is_ok());
    }

    #[test]
    fn globs() {
        assert!(glob("*", "anything"));
        assert!(glob("*.nhs.uk", "a.nhs.uk"));
        assert!(!glob("*.nhs.uk", "nhs.uk.evil"));
        assert!(glob("@?:x", "@a:x"));
        assert!(!glob("@?:x", "@ab:x"));
        assert!(glob("@a*b:x", "@aXXb:x"));
    }

    #[test]
    fn invite_permission_lists() {
        let rule = |c: Value, who: &str| invite_permission(&c, who).err().map(|d| d.rule);
        let blocked = Some(RULE_INVITE_BLOCKED_BY_INVITEE.to_owned());
        assert_eq!(rule(json!({}), "@a:x"), None);
        assert_eq!(rule(json!({"default_action": "allow"}), "@a:x"), None);
        assert_eq!(rule(json!({"default_action": "block"}), "@a:x"), blocked);
        let c = json!({"default_action": "block", "allowed_users": ["@a:x"],
                       "allowed_servers": ["*.nhs.uk"]});
        assert_eq!(rule(c.clone(), "@a:x"), None);
        assert_eq!(rule(c.clone(), "@b:x"), blocked);
        assert_eq!(rule(c, "@b:trust.nhs.uk"), None);
        let c = json!({"blocked_users": ["@spam:*"], "blocked_servers": ["evil.example"],
                       "allowed_users": ["@friend:evil.example"]});
        assert_eq!(rule(c.clone(), "@spam:x"), blocked);
        assert_eq!(rule(c.clone(), "@any:evil.example"), blocked);
        assert_eq!(rule(c.clone(), "@friend:evil.example"), None);
        assert_eq!(rule(c, "@ok:x"), None);
    }
}
