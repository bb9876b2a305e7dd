//! `[identity]`: sign-in through the organisation's OpenID providers (CIS2, NHSmail/Entra,
//! NHS login) and whether passwords are accepted at all. docs/IDENTITY.md explains the keys.

use std::path::PathBuf;

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
    #[serde(default)]
    pub providers: Vec<ProviderConfig>,
}

fn yes() -> bool {
    true
}

impl Default for IdentityConfig {
    fn default() -> Self {
        Self {
            password_login: true,
            get_login_token: false,
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

    pub fn validate(&self) -> Result<(), String> {
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
        }
        Ok(())
    }
}
