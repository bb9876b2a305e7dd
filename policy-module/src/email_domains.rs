//! Registration restricted to the organisation's email domains (rule `email_domain_not_allowed`,
//! `[registration] allowed_email_domains`).
//!
//! Patterns are anchored like the federation list's: `nhs.net` is that domain exactly;
//! `*.nhs.uk` is any domain ending in `.nhs.uk` with at least one whole label before it (not
//! `nhs.uk` itself, not `evilnhs.uk`, not `nhs.uk.evil.example`). Case does not matter.

use crate::{Decision, Denial, Policy};

/// A third-party identifier (an email address) about to be validated for, or bound to, an
/// account.
#[derive(Debug, Clone)]
pub struct ThreepidRequest<'a> {
    /// `email` (the only medium Handover validates).
    pub medium: &'a str,
    /// Normalised (lower case).
    pub address: &'a str,
    /// The account, once there is one; `None` while registering.
    pub user_id: Option<&'a str>,
}

/// Rule id: an email address outside the allowed domains.
pub const RULE_EMAIL_DOMAIN_NOT_ALLOWED: &str = "email_domain_not_allowed";

/// One allowed-domain pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DomainPattern {
    /// Lower case, without the `*.`.
    domain: String,
    wildcard: bool,
    text: String,
}

/// Whether `s` is a DNS domain of at least two labels (letters, digits, `-`).
fn valid_domain(s: &str) -> bool {
    let labels: Vec<&str> = s.split('.').collect();
    labels.len() >= 2
        && s.len() <= 253
        && labels.iter().all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
}

impl DomainPattern {
    /// `nhs.net` or `*.nhs.uk`; the wildcard only as a whole first label, over at least two
    /// labels (`*.uk` would admit every UK domain).
    pub fn parse(s: &str) -> Result<Self, String> {
        let text = s.trim().to_owned();
        let lower = text.to_ascii_lowercase();
        let (wildcard, domain) = match lower.strip_prefix("*.") {
            Some(rest) => (true, rest.to_owned()),
            None => (false, lower.clone()),
        };
        if !valid_domain(&domain) {
            return Err(format!(
                "`{text}` is not a domain (e.g. `nhs.net`) or a wildcard over at least two \
                 labels (e.g. `*.nhs.uk`)"
            ));
        }
        Ok(Self {
            domain,
            wildcard,
            text,
        })
    }

    pub fn matches(&self, domain: &str) -> bool {
        let d = domain.to_ascii_lowercase();
        if !valid_domain(&d) {
            return false;
        }
        if self.wildcard {
            d.strip_suffix(self.domain.as_str())
                .is_some_and(|prefix| prefix.len() >= 2 && prefix.ends_with('.'))
        } else {
            d == self.domain
        }
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }
}

/// Only addresses in these domains may be validated for registration. An empty list allows
/// every domain (the server then does not ask for an email address at all).
#[derive(Debug, Clone, Default)]
pub struct EmailDomains {
    pub patterns: Vec<DomainPattern>,
}

impl EmailDomains {
    pub fn parse(patterns: &[String]) -> Result<Self, String> {
        Ok(Self {
            patterns: patterns
                .iter()
                .map(|p| DomainPattern::parse(p))
                .collect::<Result<_, _>>()?,
        })
    }
}

impl Policy for EmailDomains {
    fn name(&self) -> &str {
        "email-domains"
    }
    fn check_threepid(&self, req: &ThreepidRequest<'_>) -> Decision {
        if req.medium != "email" || self.patterns.is_empty() {
            return Ok(());
        }
        let domain = req.address.rsplit_once('@').map_or("", |(_, d)| d);
        if self.patterns.iter().any(|p| p.matches(domain)) {
            return Ok(());
        }
        let allowed: Vec<&str> = self.patterns.iter().map(DomainPattern::as_str).collect();
        Err(Denial::new(
            RULE_EMAIL_DOMAIN_NOT_ALLOWED,
            format!(
                "email addresses at {domain} cannot be used on this server; use an address in: {}",
                allowed.join(", ")
            ),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn allows(patterns: &[&str], address: &str) -> bool {
        let p = EmailDomains::parse(&patterns.iter().map(|s| s.to_string()).collect::<Vec<_>>())
            .unwrap();
        p.check_threepid(&ThreepidRequest {
            medium: "email",
            address,
            user_id: None,
        })
        .is_ok()
    }

    #[test]
    fn patterns_are_anchored_on_whole_labels() {
        let nhs = ["nhs.net", "*.nhs.uk"];
        assert!(allows(&nhs, "a.smith@nhs.net"));
        assert!(allows(&nhs, "a.smith@NHS.NET"));
        assert!(allows(&nhs, "a@uhb.nhs.uk"));
        assert!(allows(&nhs, "a@ward.uhb.nhs.uk"));
        for bad in [
            "a@nhs.uk",
            "a@evilnhs.uk",
            "a@nhs.uk.evil.example",
            "a@mail.nhs.net",
            "a@nhs.net.evil.example",
            "a@gmail.com",
            "a@.nhs.uk",
            "a@x..nhs.uk",
            "no-at-sign",
        ] {
            assert!(!allows(&nhs, bad), "{bad}");
        }
        // No patterns: no restriction.
        assert!(allows(&[], "a@gmail.com"));
    }

    #[test]
    fn the_denial_names_the_rule_and_the_allowed_domains() {
        let p = EmailDomains::parse(&["nhs.net".into()]).unwrap();
        let d = p
            .check_threepid(&ThreepidRequest {
                medium: "email",
                address: "x@gmail.com",
                user_id: None,
            })
            .unwrap_err();
        assert_eq!(d.rule, RULE_EMAIL_DOMAIN_NOT_ALLOWED);
        assert!(d.reason.contains("nhs.net") && d.reason.contains("gmail.com"));
    }

    #[test]
    fn bad_patterns_are_refused() {
        for bad in [
            "*.uk",
            "uk",
            "*",
            "a.*.nhs.uk",
            "nhs .net",
            "*.*.nhs.uk",
            "-a.nhs.uk",
            "",
        ] {
            assert!(DomainPattern::parse(bad).is_err(), "{bad}");
        }
        assert!(DomainPattern::parse(" NHS.net ").is_ok());
    }
}
