//! Sign-in through an OpenID provider: how strongly the user was authenticated.
//!
//! - [`IdentityAssurance`] (rule `identity_assurance_too_low`): a provider with `min_acr` only
//!   lets in users whose returned `acr` is that value or one listed after it in the provider's
//!   `acr_values` (weakest first). A missing `acr` never meets a minimum. CIS2's AAL levels and
//!   Entra's authentication context are both plain strings, so the order is the operator's.

use std::collections::HashMap;

use crate::{Decision, Denial, Policy};

/// Rule id: the provider vouched for a weaker authentication than the minimum configured.
pub const RULE_IDENTITY_ASSURANCE_TOO_LOW: &str = "identity_assurance_too_low";

/// A completed sign-in at an upstream provider, before any account is touched.
#[derive(Debug, Clone)]
pub struct IdentityLoginRequest<'a> {
    pub provider: &'a str,
    pub subject: &'a str,
    /// The ID token's `acr`, if any.
    pub acr: Option<&'a str>,
    /// Every claim the provider vouched for (the ID token's, completed from userinfo).
    pub claims: &'a serde_json::Map<String, serde_json::Value>,
}

/// One provider's assurance requirement.
#[derive(Debug, Clone, Default)]
pub struct AcrRequirement {
    /// Acceptable values, weakest first.
    pub order: Vec<String>,
    pub min: String,
}

impl AcrRequirement {
    fn met_by(&self, acr: &str) -> bool {
        if acr == self.min {
            return true;
        }
        let pos = |v: &str| self.order.iter().position(|o| o == v);
        matches!((pos(&self.min), pos(acr)), (Some(m), Some(a)) if a >= m)
    }
}

/// The per-provider minimum assurance, from `[[identity.providers]] min_acr`.
#[derive(Debug, Clone, Default)]
pub struct IdentityAssurance {
    pub providers: HashMap<String, AcrRequirement>,
}

impl Policy for IdentityAssurance {
    fn name(&self) -> &str {
        "identity-assurance"
    }
    fn check_identity_login(&self, req: &IdentityLoginRequest<'_>) -> Decision {
        let Some(need) = self.providers.get(req.provider) else {
            return Ok(());
        };
        match req.acr {
            Some(acr) if need.met_by(acr) => Ok(()),
            got => Err(Denial::new(
                RULE_IDENTITY_ASSURANCE_TOO_LOW,
                format!(
                    "this service needs sign-in at assurance level {} or stronger; the identity \
                     provider reported {}",
                    need.min,
                    got.unwrap_or("none")
                ),
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gate() -> IdentityAssurance {
        let req = AcrRequirement {
            order: vec!["aal1".into(), "aal2".into(), "aal3".into()],
            min: "aal2".into(),
        };
        IdentityAssurance {
            providers: HashMap::from([("cis2".to_owned(), req)]),
        }
    }

    fn check(provider: &str, acr: Option<&str>) -> Decision {
        gate().check_identity_login(&IdentityLoginRequest {
            provider,
            subject: "s",
            acr,
            claims: &serde_json::Map::new(),
        })
    }

    #[test]
    fn minimum_or_stronger_passes_weaker_or_missing_is_refused() {
        assert!(check("cis2", Some("aal2")).is_ok());
        assert!(check("cis2", Some("aal3")).is_ok());
        let low = check("cis2", Some("aal1")).unwrap_err();
        assert_eq!(low.rule, RULE_IDENTITY_ASSURANCE_TOO_LOW);
        assert!(check("cis2", None).is_err());
        assert!(check("cis2", Some("made-up")).is_err());
        // Providers without a minimum are not gated.
        assert!(check("nhsmail", None).is_ok());
    }
}
