//! Registration tokens (Synapse's `/_synapse/admin/v1/registration_tokens`): list, read,
//! create (given or generated), change limits, delete. They take effect with
//! `[registration] mode = "token"` (service/registration/tokens.rs); the token text is a
//! credential, so audit entries name it only by a SHA-256 prefix.

use sha2::{Digest, Sha256};

use super::{AdminService, action};
use crate::error::{Error, Result};
use crate::service::blocking;
use crate::service::users::Session;
use crate::store::now_ms;
use crate::store::registration_tokens::{RegistrationToken, TokenUpdate};

/// Synapse's alphabet and bounds.
const TOKEN_CHARS: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._~-";
const MAX_TOKEN_LEN: usize = 64;
const DEFAULT_LENGTH: usize = 16;

/// What `POST /registration_tokens/new` asks for.
#[derive(Debug, Default)]
pub struct NewToken {
    pub token: Option<String>,
    pub uses_allowed: Option<u64>,
    pub expiry_time: Option<i64>,
    pub length: Option<u64>,
}

fn audit_name(token: &str) -> String {
    let h = Sha256::digest(token.as_bytes());
    let hex: String = h[..9].iter().map(|b| format!("{b:02x}")).collect();
    format!("registration_token:{hex}")
}

fn valid_token_text(t: &str) -> bool {
    !t.is_empty() && t.len() <= MAX_TOKEN_LEN && t.bytes().all(|b| TOKEN_CHARS.contains(&b))
}

fn check_expiry(t: Option<i64>) -> Result<()> {
    match t {
        Some(t) if t < now_ms() => Err(Error::invalid_param("expiry_time must not be in the past")),
        _ => Ok(()),
    }
}

impl AdminService {
    /// `valid`: `Some(true)` only usable tokens, `Some(false)` only used-up or expired ones.
    pub async fn registration_tokens(
        &self,
        who: &Session,
        valid: Option<bool>,
    ) -> Result<Vec<RegistrationToken>> {
        self.authorize(who, action::TOKENS_LIST, None).await?;
        let store = self.tokens.clone();
        let all = blocking(move || Ok(store.registration_tokens()?)).await?;
        let now = now_ms();
        let usable = |t: &RegistrationToken| {
            t.uses_allowed.is_none_or(|n| t.pending + t.completed < n)
                && t.expiry_time.is_none_or(|e| e > now)
        };
        let out = all
            .into_iter()
            .filter(|t| valid.is_none_or(|v| usable(t) == v))
            .collect();
        let server = self.users.server_name().to_owned();
        self.audited(who, action::TOKENS_LIST, &server, None)
            .await?;
        Ok(out)
    }

    pub async fn registration_token(
        &self,
        who: &Session,
        token: &str,
    ) -> Result<RegistrationToken> {
        let target = audit_name(token);
        self.authorize(who, action::TOKEN_GET, Some(&target))
            .await?;
        let (store, t) = (self.tokens.clone(), token.to_owned());
        let found = blocking(move || Ok(store.registration_token(&t)?)).await?;
        let found = found.ok_or_else(|| Error::not_found("No such registration token"))?;
        self.audited(who, action::TOKEN_GET, &target, None).await?;
        Ok(found)
    }

    pub async fn create_registration_token(
        &self,
        who: &Session,
        new: NewToken,
    ) -> Result<RegistrationToken> {
        self.authorize(who, action::TOKEN_CREATE, None).await?;
        check_expiry(new.expiry_time)?;
        let given = new.token.is_some();
        let token = match new.token {
            Some(t) if valid_token_text(&t) => t,
            Some(_) => {
                return Err(Error::invalid_param(
                    "token must be 1 to 64 characters of A-Z a-z 0-9 . _ ~ -",
                ));
            }
            None => {
                let len = new.length.unwrap_or(DEFAULT_LENGTH as u64);
                if !(1..=MAX_TOKEN_LEN as u64).contains(&len) {
                    return Err(Error::invalid_param("length must be between 1 and 64"));
                }
                (0..len)
                    .map(|_| TOKEN_CHARS[rand::random_range(0..TOKEN_CHARS.len())] as char)
                    .collect()
            }
        };
        let row = RegistrationToken {
            token: token.clone(),
            uses_allowed: new.uses_allowed,
            pending: 0,
            completed: 0,
            expiry_time: new.expiry_time,
        };
        let (store, r) = (self.tokens.clone(), row.clone());
        if !blocking(move || Ok(store.insert_registration_token(&r)?)).await? {
            // A generated token colliding is vanishingly unlikely; a given one is the caller's.
            let what = if given {
                "Token already exists"
            } else {
                "Try again"
            };
            return Err(Error::invalid_param(what));
        }
        let d = serde_json::json!({
            "uses_allowed": row.uses_allowed, "expiry_time": row.expiry_time,
        });
        self.audited(
            who,
            action::TOKEN_CREATE,
            &audit_name(&token),
            Some(("limits", d)),
        )
        .await?;
        Ok(row)
    }

    pub async fn update_registration_token(
        &self,
        who: &Session,
        token: &str,
        u: TokenUpdate,
    ) -> Result<RegistrationToken> {
        let target = audit_name(token);
        self.authorize(who, action::TOKEN_UPDATE, Some(&target))
            .await?;
        if let Some(t) = u.expiry_time {
            check_expiry(t)?;
        }
        let d = serde_json::json!({
            "uses_allowed": u.uses_allowed, "expiry_time": u.expiry_time,
        });
        let (store, t) = (self.tokens.clone(), token.to_owned());
        let row = blocking(move || Ok(store.update_registration_token(&t, &u)?)).await?;
        let row = row.ok_or_else(|| Error::not_found("No such registration token"))?;
        self.audited(who, action::TOKEN_UPDATE, &target, Some(("changes", d)))
            .await?;
        Ok(row)
    }

    pub async fn delete_registration_token(&self, who: &Session, token: &str) -> Result<()> {
        let target = audit_name(token);
        self.authorize(who, action::TOKEN_DELETE, Some(&target))
            .await?;
        let (store, t) = (self.tokens.clone(), token.to_owned());
        if !blocking(move || Ok(store.delete_registration_token(&t)?)).await? {
            return Err(Error::not_found("No such registration token"));
        }
        self.audited(who, action::TOKEN_DELETE, &target, None).await
    }
}
