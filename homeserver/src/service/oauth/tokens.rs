//! The token endpoint (authorization_code with PKCE, refresh_token with rotation) and
//! revocation (RFC 7009). Refresh tokens rotate on every use; presenting a spent one is treated
//! as theft: the whole session is revoked and the reuse audited.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use handover_compliance::Outcome;
use serde::Deserialize;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::{DEFAULT_ACCESS_LIFETIME_MS, OAuthError, OAuthService, action};
use crate::service::audit::{self, entry, with_ip};
use crate::service::blocking;
use crate::service::users::{hash_token, new_token};
use crate::store::identity::RefreshOutcome;
use crate::store::now_ms;

/// The form of `POST /token`.
#[derive(Debug, Default, Deserialize)]
pub struct TokenParams {
    pub grant_type: Option<String>,
    pub code: Option<String>,
    pub redirect_uri: Option<String>,
    pub client_id: Option<String>,
    pub code_verifier: Option<String>,
    pub refresh_token: Option<String>,
    /// RFC 8628's device code.
    pub device_code: Option<String>,
}

/// The form of `POST /revoke`.
#[derive(Debug, Default, Deserialize)]
pub struct RevokeParams {
    pub token: Option<String>,
    pub token_type_hint: Option<String>,
    pub client_id: Option<String>,
}

fn grant_error(d: &str) -> OAuthError {
    OAuthError::bad("invalid_grant", d)
}

impl OAuthService {
    pub(super) fn lifetime_ms(&self) -> u64 {
        self.config
            .sessions
            .access_token_lifetime_ms()
            .ok()
            .flatten()
            .unwrap_or(DEFAULT_ACCESS_LIFETIME_MS)
    }

    /// `POST /token`.
    pub async fn token(
        &self,
        p: TokenParams,
        ip: Option<std::net::IpAddr>,
    ) -> Result<Value, OAuthError> {
        let client_id = p
            .client_id
            .clone()
            .ok_or_else(|| OAuthError::bad("invalid_client", "client_id is required"))?;
        if self.client(&client_id).await?.is_none() {
            return Err(OAuthError {
                status: http::StatusCode::UNAUTHORIZED,
                ..OAuthError::bad("invalid_client", "unknown client_id")
            });
        }
        match p.grant_type.as_deref() {
            Some("authorization_code") => self.code_grant(p, client_id, ip).await,
            Some("refresh_token") => self.refresh_grant(p, client_id, ip).await,
            Some(super::DEVICE_CODE_GRANT) => self.device_grant(p, client_id, ip).await,
            _ => Err(OAuthError::bad(
                "unsupported_grant_type",
                "grant_type must be authorization_code, refresh_token or \
                 urn:ietf:params:oauth:grant-type:device_code",
            )),
        }
    }

    async fn code_grant(
        &self,
        p: TokenParams,
        client_id: String,
        ip: Option<std::net::IpAddr>,
    ) -> Result<Value, OAuthError> {
        let code = p.code.unwrap_or_default();
        let Some(grant) = self.codes.take(&code) else {
            if let Some((user, device)) = self.spent_codes.take(&code) {
                // A code used twice: whoever holds it is not to be trusted with the session.
                self.users
                    .end_device_session(&user, device.clone(), "code_replay")
                    .await
                    .map_err(OAuthError::server)?;
                let e = entry(user.as_str(), action::CODE_REPLAY, Outcome::Denied)
                    .detail("client_id", client_id.as_str())
                    .detail("device_id", device.as_str());
                self.audit
                    .record(with_ip(e, ip))
                    .await
                    .map_err(OAuthError::server)?;
            }
            return Err(grant_error(
                "unknown, expired or already used authorization code",
            ));
        };
        if grant.client_id != client_id {
            return Err(grant_error("the code was issued to another client"));
        }
        if p.redirect_uri.as_deref() != Some(grant.redirect_uri.as_str()) {
            return Err(grant_error(
                "redirect_uri differs from the authorization request's",
            ));
        }
        let verifier = p.code_verifier.unwrap_or_default();
        let computed = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
        if !(43..=128).contains(&verifier.len()) || computed != grant.code_challenge {
            return Err(grant_error(
                "code_verifier does not match the code_challenge (PKCE)",
            ));
        }
        let (access, refresh) = (new_token(), new_token());
        let lifetime = self.lifetime_ms();
        let expires_ts = now_ms().saturating_add(lifetime as i64);
        let client = self
            .client(&client_id)
            .await?
            .ok_or_else(|| grant_error("client gone"))?;
        let store = self.store.clone();
        let (u, d) = (grant.user_id.to_string(), grant.device_id.to_string());
        let name = client.client_name.clone();
        let (ah, rh, c) = (hash_token(&access), hash_token(&refresh), client_id.clone());
        blocking(move || {
            Ok(store.create_oauth_session(
                &u,
                &d,
                name.as_deref(),
                &c,
                &ah,
                Some(expires_ts),
                &rh,
            )?)
        })
        .await
        .map_err(OAuthError::server)?;
        if let Some(up) = &grant.upstream {
            let store = self.grants.clone();
            let (up, u, d) = (
                up.clone(),
                grant.user_id.to_string(),
                grant.device_id.to_string(),
            );
            blocking(move || Ok(store.record_upstream_session(&up, &u, &d)?))
                .await
                .map_err(OAuthError::server)?;
        }
        self.spent_codes
            .insert(code, (grant.user_id.clone(), grant.device_id.clone()));
        let e = entry(
            grant.user_id.as_str(),
            audit::action::LOGIN,
            Outcome::Success,
        )
        .detail("via", "oauth")
        .detail("client_id", client_id.as_str())
        .detail("device_id", grant.device_id.as_str());
        self.audit
            .record(with_ip(e, ip))
            .await
            .map_err(OAuthError::server)?;
        Ok(json!({
            "access_token": access,
            "token_type": "Bearer",
            "expires_in": lifetime / 1000,
            "refresh_token": refresh,
            "scope": grant.scope,
        }))
    }

    async fn refresh_grant(
        &self,
        p: TokenParams,
        client_id: String,
        ip: Option<std::net::IpAddr>,
    ) -> Result<Value, OAuthError> {
        let spent = hash_token(&p.refresh_token.unwrap_or_default());
        let (access, refresh) = (new_token(), new_token());
        let lifetime = self.lifetime_ms();
        let expires_ts = now_ms().saturating_add(lifetime as i64);
        let store = self.store.clone();
        let (ah, rh, c) = (hash_token(&access), hash_token(&refresh), client_id.clone());
        let outcome = blocking(move || {
            Ok(store.rotate_oauth_refresh(&spent, &c, &ah, Some(expires_ts), &rh)?)
        })
        .await
        .map_err(OAuthError::server)?;
        match outcome {
            RefreshOutcome::Rotated { .. } => Ok(json!({
                "access_token": access,
                "token_type": "Bearer",
                "expires_in": lifetime / 1000,
                "refresh_token": refresh,
            })),
            RefreshOutcome::Reused { user_id, device_id } => {
                tracing::warn!(user_id = %user_id, "OAuth refresh token reused: session revoked");
                self.users.device_gone(&user_id, device_id.clone()).await;
                let e = entry(user_id.as_str(), action::REFRESH_REUSE, Outcome::Denied)
                    .detail("client_id", client_id.as_str())
                    .detail("device_id", device_id.as_str());
                self.audit
                    .record(with_ip(e, ip))
                    .await
                    .map_err(OAuthError::server)?;
                Err(grant_error(
                    "refresh token already used: the session has been revoked",
                ))
            }
            RefreshOutcome::Unknown => Err(grant_error("unknown refresh token")),
        }
    }

    /// `POST /revoke` (RFC 7009): an access or refresh token ends its session. Unknown tokens
    /// are answered the same (200), as the RFC asks.
    pub async fn revoke(&self, p: RevokeParams) -> Result<(), OAuthError> {
        let token = p
            .token
            .ok_or_else(|| OAuthError::bad("invalid_request", "token is required"))?;
        let hash = hash_token(&token);
        let store = self.store.clone();
        let users = self.user_store.clone();
        let h = hash.clone();
        let owner = blocking(move || {
            if let Some((u, d, _)) = store.oauth_refresh_owner(&h)? {
                return Ok(Some((u, d)));
            }
            Ok(users.token_owner(&h)?.map(|o| (o.user_id, o.device_id)))
        })
        .await
        .map_err(OAuthError::server)?;
        let _ = (p.token_type_hint, p.client_id);
        if let Some((user, device)) = owner {
            self.users
                .end_device_session(&user, device.clone(), "oauth_revoke")
                .await
                .map_err(OAuthError::server)?;
            let e = entry(user.as_str(), action::REVOKE, Outcome::Success)
                .detail("device_id", device.as_str());
            self.audit.record(e).await.map_err(OAuthError::server)?;
        }
        Ok(())
    }
}
