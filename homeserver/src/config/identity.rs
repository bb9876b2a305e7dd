//! `[identity]`: sign-in through the organisation's OpenID providers (CIS2, NHSmail/Entra,
//! NHS login) and whether passwords are accepted at all. docs/IDENTITY.md explains the keys.

use std::collections::BTreeMap;
use std::path::PathBuf;

use super::parse_duration_ms;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IdentityConfig {
    /// `false`: /login offers no password flow, API registration is closed and Handover's own
    /// sign-in page shows only the providers. Admin-created accounts still exist.
    #[serde(default = "yes")]
    pub password_login: bool,
    /// `POST /login/get_token` (spec v1.7): a signed-in user, after re-entering their password,
    /// gets a single-use two-minute `m.login.token` to sign in another device. Off by default:
    /// it lets one session mint another, which an IG lead should choose to allow.
    #[serde(default)]
    pub get_login_token: bool,
    /// Legacy SSO (`/login/sso/redirect?redirectUrl=`): the client addresses a `loginToken` may
    /// be sent to, as URL prefixes (`https://chat.trust.nhs.uk/`). An entry on a loopback host
    /// (`http://localhost/`, `http://127.0.0.1/`) matches any port (desktop clients listen on a
    /// free one). Empty: legacy SSO is refused (docs/IDENTITY.md "Legacy SSO").
    #[serde(default)]
    pub sso_redirect_allowlist: Vec<String>,
    /// How long a device authorization grant's codes live (RFC 8628 `expires_in`).
    #[serde(default = "default_device_code_lifetime")]
    pub device_code_lifetime: String,
    /// The least time between two polls of the token endpoint by a device (`interval`).
    #[serde(default = "default_device_poll_interval")]
    pub device_poll_interval: String,
    #[serde(default)]
    pub providers: Vec<ProviderConfig>,
}

fn default_device_code_lifetime() -> String {
    "10m".into()
}
fn default_device_poll_interval() -> String {
    "5s".into()
}

fn yes() -> bool {
    true
}

impl Default for IdentityConfig {
    fn default() -> Self {
        Self {
            password_login: true,
            get_login_token: false,
            sso_redirect_allowlist: Vec::new(),
            device_code_lifetime: default_device_code_lifetime(),
            device_poll_interval: default_device_poll_interval(),
            providers: Vec::new(),
        }
    }
}

/// How Handover authenticates itself to the provider's token endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum ClientAuth {
    /// `client_secret` in HTTP Basic (the OAuth default).
    #[default]
    ClientSecretBasic,
    ClientSecretPost,
    /// A JWT signed with `private_key_file` (RS256), as CIS2 requires.
    PrivateKeyJwt,
}

/// What a provider's users are: staff (CIS2, NHSmail) or patients (NHS login).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum AccountKind {
    #[default]
    Staff,
    Patient,
}

impl AccountKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Staff => "staff",
            Self::Patient => "patient",
        }
    }
}

/// One `[[identity.providers]]` table.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProviderConfig {
    /// Stable: used in URLs and in the account link. Changing it orphans the links.
    pub id: String,
    /// Shown on the sign-in page.
    pub name: String,
    /// Discovery from `<issuer>/.well-known/openid-configuration`.
    pub issuer: String,
    pub client_id: String,
    #[serde(default)]
    pub client_secret: Option<String>,
    #[serde(default)]
    pub client_auth: ClientAuth,
    /// PEM (PKCS#8) RSA key for `client_auth = "private_key_jwt"`.
    #[serde(default)]
    pub private_key_file: Option<PathBuf>,
    #[serde(default = "default_scopes")]
    pub scopes: Vec<String>,
    #[serde(default = "default_localpart_claim")]
    pub localpart_claim: String,
    #[serde(default = "default_displayname_claim")]
    pub displayname_claim: String,
    /// Requested from the provider, weakest first; `min_acr` is met by the returned `acr`
    /// being `min_acr` or a value listed after it.
    #[serde(default)]
    pub acr_values: Vec<String>,
    #[serde(default)]
    pub min_acr: Option<String>,
    #[serde(default)]
    pub account_kind: AccountKind,
    /// Claims the provider must vouch for (rule `identity_required_claim_missing`): claim path
    /// -> accepted values. A path walks objects by `.` and looks into every element of an
    /// array (`"nhsid_nrbac_roles.org_code"`); the claim must hold one of the values, or with
    /// an empty list merely be present. Taken from the ID token, else from userinfo.
    #[serde(default)]
    pub required_claims: BTreeMap<String, Vec<String>>,
}

fn default_scopes() -> Vec<String> {
    vec!["openid".into(), "profile".into()]
}
fn default_localpart_claim() -> String {
    "preferred_username".into()
}
fn default_displayname_claim() -> String {
    "name".into()
}

impl IdentityConfig {
    pub fn provider(&self, id: &str) -> Option<&ProviderConfig> {
        self.providers.iter().find(|p| p.id == id)
    }

    /// `device_code_lifetime` in milliseconds.
    pub fn device_code_lifetime_ms(&self) -> u64 {
        parse_duration_ms(&self.device_code_lifetime).unwrap_or(600_000)
    }

    /// `device_poll_interval` in milliseconds.
    pub fn device_poll_interval_ms(&self) -> u64 {
        parse_duration_ms(&self.device_poll_interval).unwrap_or(5_000)
    }

    pub fn validate(&self) -> Result<(), String> {
        let key = |k: &str, v: &str, min_ms: u64| {
            let ms = parse_duration_ms(v)
                .map_err(|e| format!("configuration error: key `identity.{k}`: {e}"))?;
            if ms < min_ms {
                return Err(format!(
                    "configuration error: key `identity.{k}` must be at least {}s",
                    min_ms / 1000
                ));
            }
            Ok(())
        };
        key("device_code_lifetime", &self.device_code_lifetime, 1000)?;
        key("device_poll_interval", &self.device_poll_interval, 1000)?;
        for (i, u) in self.sso_redirect_allowlist.iter().enumerate() {
            url::Url::parse(u).map_err(|e| {
                format!("configuration error: `identity.sso_redirect_allowlist[{i}]`: {e}")
            })?;
        }
        let err =
            |i: usize, m: &str| format!("configuration error: `identity.providers[{i}]`: {m}");
        for (i, p) in self.providers.iter().enumerate() {
            let id_ok = !p.id.is_empty()
                && p.id.len() <= 64
                && p.id
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
            if !id_ok {
                return Err(err(i, "key `id` must be 1-64 of [A-Za-z0-9._-]"));
            }
            if self.providers[..i].iter().any(|q| q.id == p.id) {
                return Err(err(i, &format!("provider id `{}` is used twice", p.id)));
            }
            let issuer =
                url::Url::parse(&p.issuer).map_err(|e| err(i, &format!("key `issuer`: {e}")))?;
            if !matches!(issuer.scheme(), "https" | "http") {
                return Err(err(i, "key `issuer` must be an https URL"));
            }
            if !p.scopes.iter().any(|s| s == "openid") {
                return Err(err(i, "key `scopes` must include \"openid\""));
            }
            match p.client_auth {
                ClientAuth::PrivateKeyJwt if p.private_key_file.is_none() => {
                    return Err(err(
                        i,
                        "client_auth = \"private_key_jwt\" needs key `private_key_file`",
                    ));
                }
                ClientAuth::ClientSecretBasic | ClientAuth::ClientSecretPost
                    if p.client_secret.is_none() =>
                {
                    return Err(err(
                        i,
                        "key `client_secret` is required (or client_auth = \"private_key_jwt\")",
                    ));
                }
                _ => {}
            }
            if let Some(min) = &p.min_acr
                && !p.acr_values.is_empty()
                && !p.acr_values.contains(min)
            {
                return Err(err(i, "key `min_acr` must be one of `acr_values`"));
            }
            if let Some(bad) = p
                .required_claims
                .keys()
                .find(|k| k.is_empty() || k.split('.').any(str::is_empty))
            {
                return Err(err(
                    i,
                    &format!("key `required_claims`: `{bad}` is not a claim path"),
                ));
            }
        }
        Ok(())
    }
}

impl IdentityConfig {
    /// Whether legacy SSO may send a `loginToken` to `redirect_url`
    /// (`sso_redirect_allowlist`).
    pub fn sso_redirect_allowed(&self, redirect_url: &url::Url) -> bool {
        self.sso_redirect_allowlist.iter().any(|entry| {
            let Ok(e) = url::Url::parse(entry) else {
                return false;
            };
            let loopback = matches!(e.host_str(), Some("localhost" | "127.0.0.1" | "[::1]"));
            let port_ok = (loopback && e.port().is_none())
                || e.port_or_known_default() == redirect_url.port_or_known_default();
            e.scheme() == redirect_url.scheme()
                && e.host_str() == redirect_url.host_str()
                && port_ok
                && redirect_url.path().starts_with(e.path())
                && redirect_url.username().is_empty()
                && redirect_url.password().is_none()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sso_redirect_allowlist_matches_prefixes_and_loopback_ports() {
        let c = IdentityConfig {
            sso_redirect_allowlist: vec![
                "https://chat.trust.nhs.uk/app/".into(),
                "http://127.0.0.1/sso".into(),
            ],
            ..IdentityConfig::default()
        };
        let ok = |u: &str| c.sso_redirect_allowed(&url::Url::parse(u).unwrap());
        assert!(ok("https://chat.trust.nhs.uk/app/#/home"));
        assert!(ok("https://chat.trust.nhs.uk/app/?x=1"));
        assert!(ok("http://127.0.0.1:45678/sso-done"));
        assert!(!ok("https://chat.trust.nhs.uk/other/"));
        assert!(!ok("https://chat.trust.nhs.uk.evil.org/app/"));
        assert!(!ok("http://chat.trust.nhs.uk/app/"));
        assert!(!ok("https://chat.trust.nhs.uk:8443/app/"));
        assert!(!ok("https://user@chat.trust.nhs.uk/app/"));
        assert!(!ok("http://127.0.0.2:1/sso"));
        assert!(
            !IdentityConfig::default()
                .sso_redirect_allowed(&url::Url::parse("https://a.org/").unwrap())
        );
    }
}
