//! The policy, assembled in one place: the rule sets in force, consulted together at every hook
//! (`handover_policy::Layers`). `policy_from_config` is the configured rule set with Handover's
//! built-in layers (what `handover serve` enforces); `with_service_layers` adds the layers every
//! build gets from config, whichever rule set it was given (tests pass their own).

use std::sync::Arc;

use handover_policy::{
    AcrRequirement, AllowAll, ClinicalMedia, Defaults, DisplayNameLock, EmailDomains,
    FederationGate, FhirResourceEvents, IdentityAssurance, Layers, LiveFederationList, NhsPolicy,
    OrganisationInvites, PatientConfinement, Policy,
};

use crate::config::{Config, PolicyRules};
use crate::error::{Error, Result};

/// The rule set named in `[policy]`, Handover's room defaults (encrypted private rooms,
/// irreversible encryption: `rooms.encrypt_by_default`), the federation list (no list: no
/// federation), invites inside the organisation (`[invites] allowed_servers`), patient
/// confinement, MSC4302 FHIR resource events (always) and, when `[policy] lock_display_names`
/// is on, the display name lock.
pub fn policy_from_config(
    cfg: &Config,
    federation_list: Option<LiveFederationList>,
) -> Arc<dyn Policy> {
    let rules: Arc<dyn Policy> = match cfg.policy.rules {
        PolicyRules::Nhs => Arc::new(NhsPolicy {
            check_messages: cfg.policy.nhs_number_in_messages,
        }),
        PolicyRules::AllowAll => Arc::new(AllowAll),
    };
    let defaults = Defaults {
        encrypt: cfg.rooms.encrypt_by_default,
    };
    let federation = FederationGate {
        list: federation_list,
    };
    let invites = OrganisationInvites {
        server_name: cfg.server_name.clone(),
        allowed_servers: cfg.invites.allowed_servers.clone(),
    };
    let mut layers: Vec<Arc<dyn Policy>> = vec![
        rules,
        Arc::new(defaults),
        Arc::new(federation),
        Arc::new(invites),
        // Binds whichever rule set is chosen: only accounts stored as patients are confined.
        Arc::new(PatientConfinement),
        // MSC4302 FHIR resource events are checked whichever rule set is chosen.
        Arc::new(FhirResourceEvents),
    ];
    if cfg.policy.lock_display_names {
        layers.push(Arc::new(DisplayNameLock));
    }
    Arc::new(Layers::new(layers))
}

/// `policy` with the layers every build adds from config: the clinical media rules
/// (`[clinical_media]`), registration restricted to the organisation's email domains
/// (`[registration]`) and the identity providers' assurance gate (`[[identity.providers]]`).
pub fn with_service_layers(config: &Config, policy: Arc<dyn Policy>) -> Result<Arc<dyn Policy>> {
    let clinical = ClinicalMedia {
        rules: config.clinical_media.rules(),
    };
    let email_domains =
        EmailDomains::parse(&config.registration.allowed_email_domains).map_err(Error::internal)?;
    Ok(Arc::new(Layers::new(vec![
        policy,
        Arc::new(clinical),
        Arc::new(email_domains),
        Arc::new(identity_assurance(config)),
        Arc::new(required_claims(config)),
    ])))
}

/// The assurance gate of `[[identity.providers]] min_acr`, as a policy layer.
fn identity_assurance(config: &Config) -> IdentityAssurance {
    let providers = config
        .identity
        .providers
        .iter()
        .filter_map(|p| {
            let min = p.min_acr.clone()?;
            let req = AcrRequirement {
                order: p.acr_values.clone(),
                min,
            };
            Some((p.id.clone(), req))
        })
        .collect();
    IdentityAssurance { providers }
}

/// The required-claims gate of `[[identity.providers]] required_claims`, as a policy layer.
fn required_claims(config: &Config) -> handover_policy::RequiredClaims {
    let providers = (config.identity.providers.iter())
        .filter(|p| !p.required_claims.is_empty())
        .map(|p| {
            let needs = (p.required_claims.iter())
                .map(|(path, any_of)| handover_policy::ClaimRequirement {
                    path: path.clone(),
                    any_of: any_of.clone(),
                })
                .collect();
            (p.id.clone(), needs)
        })
        .collect();
    handover_policy::RequiredClaims { providers }
}
