//! Sign-in through an OpenID provider: claims the organisation requires.
//!
//! - [`RequiredClaims`] (rule `identity_required_claim_missing`): a provider with
//!   `required_claims` only lets in users whose claims hold, for every configured claim path,
//!   one of the accepted values (or, with no values listed, anything at all). A path walks
//!   objects by `.` and looks into every element of an array, so
//!   `nhsid_nrbac_roles.org_code = ["RXX"]` asks for a CIS2 role at organisation RXX.

use std::collections::HashMap;

use serde_json::Value;

use crate::{Decision, Denial, IdentityLoginRequest, Policy};

/// Rule id: the provider did not vouch for a claim the organisation requires.
pub const RULE_IDENTITY_REQUIRED_CLAIM_MISSING: &str = "identity_required_claim_missing";

/// One required claim: where it is, and the values accepted (empty: any value).
#[derive(Debug, Clone, Default)]
pub struct ClaimRequirement {
    pub path: String,
    pub any_of: Vec<String>,
}

/// The per-provider required claims, from `[[identity.providers]] required_claims`.
#[derive(Debug, Clone, Default)]
pub struct RequiredClaims {
    pub providers: HashMap<String, Vec<ClaimRequirement>>,
}

/// Every scalar found at `path` (strings as they are, numbers and booleans printed).
pub fn claim_values(claims: &serde_json::Map<String, Value>, path: &str) -> Vec<String> {
    let mut parts = path.split('.');
    let Some(first) = parts.next() else {
        return Vec::new();
    };
    let mut here: Vec<&Value> = claims.get(first).into_iter().collect();
    for part in parts {
        here = here
            .into_iter()
            .flat_map(|v| match v {
                Value::Array(a) => a.iter().collect::<Vec<_>>(),
                v => vec![v],
            })
            .filter_map(|v| v.get(part))
            .collect();
    }
    let mut out = Vec::new();
    let mut push = |v: &Value| match v {
        Value::String(s) if !s.is_empty() => out.push(s.clone()),
        Value::Number(n) => out.push(n.to_string()),
        Value::Bool(b) => out.push(b.to_string()),
        _ => {}
    };
    for v in here {
        match v {
            Value::Array(a) => a.iter().for_each(&mut push),
            v => push(v),
        }
    }
    out
}

impl ClaimRequirement {
    fn met_by(&self, claims: &serde_json::Map<String, Value>) -> bool {
        let found = claim_values(claims, &self.path);
        if self.any_of.is_empty() {
            return !found.is_empty();
        }
        found.iter().any(|v| self.any_of.contains(v))
    }
}

impl Policy for RequiredClaims {
    fn name(&self) -> &str {
        "required-claims"
    }
    fn check_identity_login(&self, req: &IdentityLoginRequest<'_>) -> Decision {
        let Some(needs) = self.providers.get(req.provider) else {
            return Ok(());
        };
        match needs.iter().find(|n| !n.met_by(req.claims)) {
            None => Ok(()),
            Some(n) if n.any_of.is_empty() => Err(Denial::new(
                RULE_IDENTITY_REQUIRED_CLAIM_MISSING,
                format!(
                    "this service needs the identity provider to vouch for `{}`, which it did \
                     not send",
                    n.path
                ),
            )),
            Some(n) => Err(Denial::new(
                RULE_IDENTITY_REQUIRED_CLAIM_MISSING,
                format!(
                    "this service needs `{}` to be one of {}; the identity provider did not \
                     vouch for any of them",
                    n.path,
                    n.any_of.join(", ")
                ),
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn gate() -> RequiredClaims {
        RequiredClaims {
            providers: HashMap::from([(
                "cis2".to_owned(),
                vec![
                    ClaimRequirement {
                        path: "nhsid_nrbac_roles.org_code".into(),
                        any_of: vec!["RXX".into(), "RYY".into()],
                    },
                    ClaimRequirement {
                        path: "uid".into(),
                        any_of: vec![],
                    },
                ],
            )]),
        }
    }

    fn check(provider: &str, claims: Value) -> Decision {
        gate().check_identity_login(&IdentityLoginRequest {
            provider,
            subject: "s",
            acr: None,
            claims: claims.as_object().unwrap(),
        })
    }

    #[test]
    fn paths_walk_objects_and_arrays() {
        let c = json!({"roles": [{"org": "A"}, {"org": "B", "n": 3}], "flag": true,
                       "list": ["x", "y"]});
        let c = c.as_object().unwrap();
        assert_eq!(claim_values(c, "roles.org"), vec!["A", "B"]);
        assert_eq!(claim_values(c, "roles.n"), vec!["3"]);
        assert_eq!(claim_values(c, "flag"), vec!["true"]);
        assert_eq!(claim_values(c, "list"), vec!["x", "y"]);
        assert!(claim_values(c, "missing.x").is_empty());
    }

    #[test]
    fn every_required_claim_must_be_met() {
        let ok =
            json!({"uid": "123", "nhsid_nrbac_roles": [{"org_code": "RAA"}, {"org_code": "RYY"}]});
        assert!(check("cis2", ok).is_ok());
        let wrong_org = json!({"uid": "123", "nhsid_nrbac_roles": [{"org_code": "RAA"}]});
        let d = check("cis2", wrong_org).unwrap_err();
        assert_eq!(d.rule, RULE_IDENTITY_REQUIRED_CLAIM_MISSING);
        assert!(d.reason.contains("nhsid_nrbac_roles.org_code"));
        let no_uid = json!({"nhsid_nrbac_roles": [{"org_code": "RXX"}]});
        assert!(check("cis2", no_uid).unwrap_err().reason.contains("`uid`"));
        // Providers without requirements are not gated.
        assert!(check("nhsmail", json!({})).is_ok());
    }
}
