//! The device authorization grant (RFC 8628; MSC4341 for Matrix): a device without a usable
//! browser (a shared ward tablet, a TV, a second phone) asks for a grant, shows the user a short
//! code, and polls the token endpoint while the user enters the code on another device, signs in
//! there and consents. Grants are stored (migration v17) so an acknowledged approval survives a
//! restart; the session is created in the same transaction that spends the grant.

use std::net::IpAddr;

use handover_compliance::Outcome;
use http::StatusCode;
use ruma::OwnedUserId;
use serde::Deserialize;
use serde_json::{Value, json};

use super::authorize::{Answer, AppRequest, AuthRequest, Purpose, parse_scope};
use super::{DEVICE_CODE_GRANT, OAuthError, OAuthService, TokenParams, action, paths};
use crate::service::audit::{self, entry, with_ip};
use crate::service::blocking;
use crate::service::identity::Refusal;
use crate::service::identity::expiring::secret;
use crate::service::users::{hash_token, new_token};
use crate::store::StoreError;
use crate::store::device_grants::{DevicePoll, IssuedTokens, NewDeviceGrant, UpstreamSession};
use crate::store::now_ms;

/// User codes: consonants only (no vowels, so no words; no look-alike digits), 8 of them
/// (20^8, about 34 bits) shown as `BCDF-GHJK`; entry is rate-limited per address.
const USER_CODE_ALPHABET: &[u8] = b"BCDFGHJKLMNPQRSTVWXZ";
const USER_CODE_LEN: usize = 8;

/// The form of `POST /device_authorization`.
#[derive(Debug, Default, Deserialize)]
pub struct DeviceAuthParams {
    pub client_id: Option<String>,
    pub scope: Option<String>,
}

/// What the verification page (`GET /_handover/oauth/device`) shows.
pub enum DeviceEntry {
    /// The form asking for the code (with why the last one was not accepted).
    AskCode { error: Option<String> },
    /// A known code: the sign-in page of the request made for it.
    SignIn(Box<AuthRequest>),
    /// The user decided; the device learns it at its next poll.
    Done { approved: bool },
}

fn new_user_code() -> String {
    (0..USER_CODE_LEN)
        .map(|_| {
            let i = rand::random::<u32>() as usize % USER_CODE_ALPHABET.len();
            USER_CODE_ALPHABET[i] as char
        })
        .collect()
}

/// The code as typed (any case, with or without the dash or spaces), or `None` if it cannot
/// be one.
pub fn normalise_user_code(typed: &str) -> Option<String> {
    let s: String = typed
        .chars()
        .filter(|c| !matches!(c, '-' | ' '))
        .flat_map(char::to_uppercase)
        .collect();
    (s.len() == USER_CODE_LEN && s.bytes().all(|b| USER_CODE_ALPHABET.contains(&b))).then_some(s)
}

/// `BCDFGHJK` -> `BCDF-GHJK`, as shown to people.
pub fn display_user_code(code: &str) -> String {
    let (a, b) = code.split_at(code.len() / 2);
    format!("{a}-{b}")
}

fn poll_error(error: &'static str, d: &str) -> OAuthError {
    OAuthError::bad(error, d)
}

impl OAuthService {
    /// `POST /device_authorization` (RFC 8628 §3.1–3.2).
    pub async fn device_authorization(
        &self,
        p: DeviceAuthParams,
        ip: Option<IpAddr>,
    ) -> Result<Value, OAuthError> {
        let client_id = p
            .client_id
            .ok_or_else(|| OAuthError::bad("invalid_client", "client_id is required"))?;
        let client = self.client(&client_id).await?.ok_or_else(|| OAuthError {
            status: StatusCode::UNAUTHORIZED,
            ..OAuthError::bad("invalid_client", "unknown client_id")
        })?;
        if !client.grant_types().iter().any(|g| g == DEVICE_CODE_GRANT) {
            return Err(OAuthError::bad(
                "unauthorized_client",
                "the client did not register the device_code grant type",
            ));
        }
        let scope = p.scope.unwrap_or_default();
        let device_id = parse_scope(&scope).map_err(|(e, d)| OAuthError::bad(e, d))?;
        let device_code = secret();
        let now = now_ms();
        let lifetime = self.config.identity.device_code_lifetime_ms() as i64;
        let interval = self.config.identity.device_poll_interval_ms() as i64;
        let mut user_code = new_user_code();
        for attempt in 0.. {
            let g = NewDeviceGrant {
                device_code_hash: hash_token(&device_code),
                user_code: user_code.clone(),
                client_id: client_id.clone(),
                scope: scope.clone(),
                device_id: device_id.to_string(),
                created_ts: now,
                expires_ts: now.saturating_add(lifetime),
                interval_ms: interval,
            };
            let store = self.grants.clone();
            let res = blocking(move || match store.insert_device_grant(&g) {
                Err(StoreError::Conflict(_)) => Ok(false),
                other => Ok(other.map(|()| true)?),
            })
            .await
            .map_err(OAuthError::server)?;
            if res {
                break;
            }
            if attempt >= 5 {
                return Err(OAuthError::server("no free user code"));
            }
            user_code = new_user_code();
        }
        let e = entry(&client_id, action::DEVICE_AUTHORIZATION, Outcome::Success)
            .detail("device_id", device_id.as_str());
        self.audit
            .record(with_ip(e, ip))
            .await
            .map_err(OAuthError::server)?;
        let shown = display_user_code(&user_code);
        let uri = format!("{}{}", self.base(), paths::DEVICE);
        Ok(json!({
            "device_code": device_code,
            "user_code": shown,
            "verification_uri": uri,
            "verification_uri_complete": format!("{uri}?user_code={shown}"),
            "expires_in": lifetime / 1000,
            "interval": (interval / 1000).max(1),
        }))
    }

    /// The token endpoint's `device_code` grant (RFC 8628 §3.4–3.5).
    pub(super) async fn device_grant(
        &self,
        p: TokenParams,
        client_id: String,
        ip: Option<IpAddr>,
    ) -> Result<Value, OAuthError> {
        let code = p
            .device_code
            .ok_or_else(|| OAuthError::bad("invalid_request", "device_code is required"))?;
        let (access, refresh) = (new_token(), new_token());
        let lifetime = self.lifetime_ms();
        let client = self.client(&client_id).await?;
        let tokens = IssuedTokens {
            access_hash: hash_token(&access),
            expires_ts: Some(now_ms().saturating_add(lifetime as i64)),
            refresh_hash: hash_token(&refresh),
            display_name: client.and_then(|c| c.client_name),
        };
        let store = self.grants.clone();
        let (h, c) = (hash_token(&code), client_id.clone());
        let polled = blocking(move || Ok(store.poll_device_grant(&h, &c, now_ms(), &tokens)?))
            .await
            .map_err(OAuthError::server)?;
        match polled {
            DevicePoll::Pending => Err(poll_error(
                "authorization_pending",
                "the user has not yet approved this device",
            )),
            DevicePoll::SlowDown => Err(poll_error(
                "slow_down",
                "polling too fast: wait 5 seconds longer between polls",
            )),
            DevicePoll::Expired => Err(poll_error(
                "expired_token",
                "the device code has expired: start again",
            )),
            DevicePoll::Denied => Err(poll_error("access_denied", "the user declined this device")),
            DevicePoll::Unknown => Err(OAuthError::bad(
                "invalid_grant",
                "unknown or already used device code",
            )),
            DevicePoll::Issued {
                user_id,
                device_id,
                scope,
            } => {
                let e = entry(user_id.as_str(), audit::action::LOGIN, Outcome::Success)
                    .detail("via", "oauth_device")
                    .detail("client_id", client_id.as_str())
                    .detail("device_id", device_id.as_str());
                self.audit
                    .record(with_ip(e, ip))
                    .await
                    .map_err(OAuthError::server)?;
                Ok(json!({
                    "access_token": access,
                    "token_type": "Bearer",
                    "expires_in": lifetime / 1000,
                    "refresh_token": refresh,
                    "scope": scope,
                }))
            }
        }
    }

    /// The verification page: ask for the code, or start the sign-in for a known one.
    pub async fn device_entry(
        &self,
        user_code: Option<&str>,
        done: Option<&str>,
        browser: &str,
    ) -> Result<DeviceEntry, Refusal> {
        if let Some(d) = done {
            return Ok(DeviceEntry::Done {
                approved: d == "approved",
            });
        }
        let Some(typed) = user_code.filter(|c| !c.trim().is_empty()) else {
            return Ok(DeviceEntry::AskCode { error: None });
        };
        let unknown = || DeviceEntry::AskCode {
            error: Some(
                "That code is not valid: it may have expired or been used. Check the code on \
                 your other device, or start again there."
                    .into(),
            ),
        };
        let Some(code) = normalise_user_code(typed) else {
            return Ok(unknown());
        };
        let store = self.grants.clone();
        let c = code.clone();
        let grant = blocking(move || Ok(store.pending_device_grant(&c, now_ms())?))
            .await
            .map_err(|e| {
                Refusal::new(StatusCode::INTERNAL_SERVER_ERROR, "Failed", e.to_string())
            })?;
        let Some(grant) = grant else {
            return Ok(unknown());
        };
        let client = self
            .client(&grant.client_id)
            .await
            .map_err(|e| Refusal::new(StatusCode::INTERNAL_SERVER_ERROR, "Failed", e.description))?
            .ok_or_else(|| {
                Refusal::new(
                    StatusCode::BAD_REQUEST,
                    "Unknown app",
                    "The app that asked is no longer registered.",
                )
            })?;
        let app = AppRequest {
            client,
            device_id: grant.device_id,
            scope: grant.scope,
            answer: Answer::Device {
                user_code: grant.user_code,
            },
        };
        let req = self.new_request(browser, Purpose::App(Box::new(app)), false);
        Ok(DeviceEntry::SignIn(Box::new(req)))
    }

    /// The user's decision on the consent page: recorded durably before the page says so.
    pub(super) async fn decide_device(
        &self,
        user_code: &str,
        approved_for: Option<&OwnedUserId>,
        upstream: Option<UpstreamSession>,
    ) -> Result<String, Refusal> {
        let store = self.grants.clone();
        let (c, u) = (user_code.to_owned(), approved_for.map(|u| u.to_string()));
        let decided = blocking(move || {
            let who = u.as_deref().map(|u| (u, upstream.as_ref()));
            Ok(store.decide_device_grant(&c, who, now_ms())?)
        })
        .await
        .map_err(|e| Refusal::new(StatusCode::INTERNAL_SERVER_ERROR, "Failed", e.to_string()))?;
        if !decided {
            return Err(Refusal::new(
                StatusCode::BAD_REQUEST,
                "Code expired",
                "This code has expired or was already used. Start again on your other device.",
            ));
        }
        let result = if approved_for.is_some() {
            "approved"
        } else {
            "denied"
        };
        Ok(format!("{}{}?done={result}", self.base(), paths::DEVICE))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_codes_are_typed_loosely_and_shown_with_a_dash() {
        let c = new_user_code();
        assert_eq!(normalise_user_code(&display_user_code(&c)), Some(c.clone()));
        assert_eq!(
            normalise_user_code(&display_user_code(&c).to_lowercase()),
            Some(c)
        );
        assert_eq!(
            normalise_user_code("bcdf ghjk").as_deref(),
            Some("BCDFGHJK")
        );
        assert_eq!(normalise_user_code("BCDF-GHJ"), None);
        assert_eq!(normalise_user_code("ABCD-EFGH"), None);
    }
}
