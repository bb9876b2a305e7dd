//! Email validation for registration: `POST /register/email/requestToken` sends a link (and a
//! code) to the address; the link's page, or a client through `submit_url`, submits the token;
//! the validated session then completes the `m.login.email.identity` stage of registration.
//!
//! The token is 128 random bits, sent only in the email and never logged; only its SHA-256 (and
//! the client secret's) is stored. Five wrong tokens end a session.

use handover_compliance::Outcome;
use handover_policy::ThreepidRequest;
use http::StatusCode;
use ruma::api::client::uiaa::ThirdpartyIdCredentials;
use ruma::api::error::ErrorKind;

use super::RegistrationService;
use super::address::{domain_of, normalise_email};
use super::mailer::Mail;
use crate::config::RegistrationMode;
use crate::error::{Error, Result};
use crate::service::audit::{action, entry, with_ip};
use crate::service::blocking;
use crate::service::users::hash_token;
use crate::store::now_ms;
use crate::store::threepids::Validation;

/// Where the emailed link points (GET: a confirmation page; POST: JSON or the page's form).
pub const SUBMIT_TOKEN_PATH: &str = "/_matrix/client/unstable/org.handover.email/submit_token";
/// Wrong tokens a session survives.
const MAX_FAILED_ATTEMPTS: u32 = 5;
pub const MEDIUM_EMAIL: &str = "email";

/// `requestToken`'s answer.
#[derive(Debug, Clone)]
pub struct TokenRequested {
    pub sid: String,
    pub submit_url: String,
}

fn random_hex() -> String {
    rand::random::<[u8; 16]>()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Compares without stopping at the first difference, so timing reveals no prefix.
fn same(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

/// Percent-encodes a query value (sids and tokens are hex; client secrets may hold `=`).
fn query_value(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// An error code ruma has no variant for (the identity service API's `M_SESSION_EXPIRED`).
fn custom_error(status: StatusCode, errcode: &str, message: &str) -> Error {
    let kind = serde_json::from_value::<ErrorKind>(serde_json::json!({ "errcode": errcode }))
        .unwrap_or(ErrorKind::Unknown);
    Error::new(status, kind, message)
}

fn unknown_session() -> Error {
    Error::invalid_param("Unknown validation session, or a client secret that does not match it")
}

impl RegistrationService {
    /// `POST /register/email/requestToken`.
    pub async fn request_email_token(
        &self,
        client_secret: &str,
        email: &str,
        send_attempt: u64,
        ip: Option<std::net::IpAddr>,
    ) -> Result<TokenRequested> {
        if self.config.registration.mode == RegistrationMode::Closed {
            return Err(Error::forbidden("Registration is disabled on this server"));
        }
        let Some(mailer) = self.mailer.as_ref().filter(|_| self.email_required()) else {
            return Err(Error::new(
                StatusCode::BAD_REQUEST,
                ErrorKind::ThreepidMediumNotSupported,
                "This server does not ask for email addresses at registration",
            ));
        };
        let address = normalise_email(email).map_err(|why| {
            Error::invalid_param(format!("`email` is not an email address: {why}"))
        })?;
        self.enforce_domain(&address, ip).await?;
        let (now, secret_hash) = (now_ms(), hash_token(client_secret));
        let (store, a, h) = (self.store.clone(), address.clone(), secret_hash.clone());
        let (current, owner) = blocking(move || {
            Ok((
                store.current_validation(MEDIUM_EMAIL, &a, &h, now)?,
                store.threepid_owner(MEDIUM_EMAIL, &a)?,
            ))
        })
        .await?;
        let submit_url = format!("{}{SUBMIT_TOKEN_PATH}", self.base_url());
        // A retry of the same attempt (or of a validated session) gets the same session and no
        // second email; a higher `send_attempt` resends with a fresh token.
        if let Some(cur) = &current
            && (send_attempt <= cur.send_attempt || cur.validated_ts.is_some())
        {
            return Ok(TokenRequested {
                sid: cur.sid.clone(),
                submit_url,
            });
        }
        let token = random_hex();
        let v = Validation {
            sid: current.map_or_else(random_hex, |c| c.sid),
            client_secret_hash: secret_hash,
            medium: MEDIUM_EMAIL.into(),
            address: address.clone(),
            // An address that already has an account gets a notice instead of a token (the
            // spec's advice: the requester learns nothing), so this session never validates.
            token_hash: hash_token(&if owner.is_some() {
                random_hex()
            } else {
                token.clone()
            }),
            send_attempt,
            failed_attempts: 0,
            created_ts: now,
            expires_ts: now.saturating_add(self.lifetime_ms),
            validated_ts: None,
        };
        let (store, row) = (self.store.clone(), v.clone());
        blocking(move || Ok(store.put_validation(&row, now)?)).await?;
        let body = match owner {
            Some(_) => self.in_use_notice(),
            None => self.validation_email(&v.sid, client_secret, &token),
        };
        let subject = format!("Confirm your email address for {}", self.config.server_name);
        let mail = Mail {
            to: &address,
            subject: &subject,
            body: &body,
        };
        if let Err(why) = mailer.send(&mail).await {
            tracing::error!(error = %why, domain = domain_of(&address), "validation email not sent");
            return Err(Error::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                ErrorKind::Unknown,
                "The validation email could not be sent; try again later",
            ));
        }
        tracing::info!(domain = domain_of(&address), "validation email sent");
        Ok(TokenRequested {
            sid: v.sid,
            submit_url,
        })
    }

    /// The domain rule (`check_threepid`): a denial is audited (the domain, not the address)
    /// and answered with the spec's 403 `M_THREEPID_DENIED`, naming the rule.
    pub(super) async fn enforce_domain(
        &self,
        address: &str,
        ip: Option<std::net::IpAddr>,
    ) -> Result<()> {
        let decision = self.policy.check_threepid(&ThreepidRequest {
            medium: MEDIUM_EMAIL,
            address,
            user_id: None,
        });
        let Err(denial) = decision else {
            return Ok(());
        };
        let e = entry("anonymous", action::POLICY_DENIAL, Outcome::Denied)
            .rule(&denial.rule)
            .detail("hook", "check_threepid")
            .detail("domain", domain_of(address));
        self.audit.record(with_ip(e, ip)).await?;
        tracing::warn!(target: "handover::policy", rule = %denial.rule, "policy denial");
        Err(Error::new(
            StatusCode::FORBIDDEN,
            ErrorKind::ThreepidDenied,
            format!("Denied by policy rule `{}`: {}", denial.rule, denial.reason),
        ))
    }

    fn base_url(&self) -> String {
        self.config.base_url().trim_end_matches('/').to_owned()
    }

    fn validation_email(&self, sid: &str, client_secret: &str, token: &str) -> String {
        let link = format!(
            "{}{SUBMIT_TOKEN_PATH}?sid={}&client_secret={}&token={}",
            self.base_url(),
            query_value(sid),
            query_value(client_secret),
            query_value(token)
        );
        let minutes = self.lifetime_ms / 60_000;
        format!(
            "Someone asked to register an account on {server} with this email address.\n\n\
             If it was you, open this link and press Confirm:\n\n{link}\n\n\
             or enter this code in the app: {token}\n\n\
             The link works for {minutes} minutes. If you did not ask for this, ignore this \
             email: no account is created without the link.\n",
            server = self.config.server_name
        )
    }

    fn in_use_notice(&self) -> String {
        format!(
            "Someone asked to register an account on {server} with this email address, but \
             an account already uses it.\n\nIf that was you, sign in with that account instead; \
             if you have forgotten its password, contact your IT service desk. If it was not \
             you, ignore this email.\n",
            server = self.config.server_name
        )
    }

    /// Submits the emailed token (`submit_url`, or the link's confirmation page).
    pub async fn submit_email_token(
        &self,
        sid: &str,
        client_secret: &str,
        token: &str,
    ) -> Result<()> {
        let (store, s) = (self.store.clone(), sid.to_owned());
        let v = blocking(move || Ok(store.validation(&s)?))
            .await?
            .filter(|v| same(&v.client_secret_hash, &hash_token(client_secret)))
            .ok_or_else(unknown_session)?;
        let now = now_ms();
        if v.expires_ts <= now {
            return Err(custom_error(
                StatusCode::BAD_REQUEST,
                "M_SESSION_EXPIRED",
                "This validation link has expired; request a new one",
            ));
        }
        if v.validated_ts.is_some() {
            return Ok(());
        }
        let store = self.store.clone();
        if !same(&v.token_hash, &hash_token(token)) {
            let s = v.sid.clone();
            blocking(move || {
                if store.count_failed_attempt(&s)? >= MAX_FAILED_ATTEMPTS {
                    store.delete_validation(&s)?;
                }
                Ok(())
            })
            .await?;
            return Err(Error::new(
                StatusCode::BAD_REQUEST,
                ErrorKind::TokenIncorrect,
                "The token is incorrect",
            ));
        }
        let until = now.saturating_add(self.lifetime_ms);
        blocking(move || Ok(store.mark_validated(&v.sid, now, until)?)).await?;
        tracing::info!(domain = domain_of(&v.address), "email address validated");
        Ok(())
    }

    /// The validated, unexpired session `creds` name, if any (the `m.login.email.identity`
    /// stage).
    pub(super) async fn validated_email(
        &self,
        creds: &ThirdpartyIdCredentials,
    ) -> Result<Option<Validation>> {
        let (store, sid) = (self.store.clone(), creds.sid.to_string());
        let secret = hash_token(creds.client_secret.as_str());
        let now = now_ms();
        Ok(blocking(move || Ok(store.validation(&sid)?))
            .await?
            .filter(|v| {
                same(&v.client_secret_hash, &secret)
                    && v.validated_ts.is_some()
                    && v.expires_ts > now
            }))
    }

    /// A validation session by id (`None` once consumed or expired).
    pub(super) async fn live_validation(&self, sid: &str) -> Result<Option<Validation>> {
        let (store, sid) = (self.store.clone(), sid.to_owned());
        let now = now_ms();
        Ok(blocking(move || Ok(store.validation(&sid)?))
            .await?
            .filter(|v| v.validated_ts.is_some() && v.expires_ts > now))
    }
}
