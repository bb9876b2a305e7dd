//! OIDC Back-Channel Logout 1.0: the provider POSTs a `logout_token` (a signed JWT) when a user
//! signs out there (or is switched off); Handover checks it as §2.6 asks and ends, as §2.7
//! asks, the sessions made through that provider session when the token names a `sid`
//! (recorded at sign-in, migration v17), or every session of the account linked to the
//! subject when it names only `sub`.
//!
//! Checked: signature against the provider's JWKS (asymmetric algorithms only; the key named by
//! `kid`, or the only one), `iss` is the provider's issuer, `aud` holds our `client_id`, `iat`
//! present and within [`MAX_AGE_SECS`] (and `exp`, if present, not passed), `events` holds the
//! back-channel logout event as an object, `sub` or `sid` present, no `nonce`, and `jti` not seen
//! before (replay).

use std::net::IpAddr;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use handover_compliance::Outcome;
use http::StatusCode;
use openidconnect::JsonWebKey;
use openidconnect::core::{CoreJsonWebKeySet, CoreJwsSigningAlgorithm};
use serde_json::Value;

use super::{IdentityService, action};
use crate::service::audit::{entry, with_ip};
use crate::service::blocking;

const LOGOUT_EVENT: &str = "http://schemas.openid.net/event/backchannel-logout";
/// A logout token older than this (or this far in the future: clock skew) is refused.
pub const MAX_AGE_SECS: i64 = 300;

/// The parts of a valid logout token Handover acts on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogoutToken {
    pub sub: Option<String>,
    pub sid: Option<String>,
    pub jti: Option<String>,
}

/// Validates `token` (pure: keys, issuer, audience and the time are given).
pub fn validate(
    token: &str,
    issuer: &str,
    client_id: &str,
    keys: &CoreJsonWebKeySet,
    now_secs: i64,
) -> Result<LogoutToken, String> {
    let mut parts = token.split('.');
    let (Some(h), Some(p), Some(s), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err("not a signed JWT (three parts)".into());
    };
    let json = |part: &str, what: &str| -> Result<Value, String> {
        let bytes = URL_SAFE_NO_PAD
            .decode(part)
            .map_err(|_| format!("{what} is not base64url"))?;
        serde_json::from_slice(&bytes).map_err(|_| format!("{what} is not JSON"))
    };
    let header = json(h, "header")?;
    let alg_name = header["alg"].as_str().unwrap_or_default();
    if alg_name.is_empty() || alg_name == "none" || alg_name.starts_with("HS") {
        return Err(format!("algorithm `{alg_name}` is not accepted"));
    }
    let alg: CoreJwsSigningAlgorithm = serde_json::from_value(header["alg"].clone())
        .map_err(|_| format!("unknown algorithm `{alg_name}`"))?;
    let kid = header["kid"].as_str();
    let candidates: Vec<_> = keys
        .keys()
        .iter()
        .filter(|k| kid.is_none_or(|kid| k.key_id().is_some_and(|id| id.as_str() == kid)))
        .collect();
    let sig = URL_SAFE_NO_PAD
        .decode(s)
        .map_err(|_| "signature is not base64url".to_owned())?;
    let message = &token.as_bytes()[..h.len() + 1 + p.len()];
    if !candidates
        .iter()
        .any(|k| k.verify_signature(&alg, message, &sig).is_ok())
    {
        return Err("signature does not verify with the provider's keys".into());
    }
    let c = json(p, "payload")?;
    if c["iss"].as_str() != Some(issuer) {
        return Err("wrong issuer (iss)".into());
    }
    let aud_ok = match &c["aud"] {
        Value::String(a) => a == client_id,
        Value::Array(a) => a.iter().any(|v| v.as_str() == Some(client_id)),
        _ => false,
    };
    if !aud_ok {
        return Err("not for this client (aud)".into());
    }
    let iat = c["iat"].as_i64().ok_or("no issue time (iat)")?;
    if (now_secs - iat).abs() > MAX_AGE_SECS {
        return Err("too old or from the future (iat)".into());
    }
    if c["exp"].as_i64().is_some_and(|exp| exp < now_secs) {
        return Err("expired (exp)".into());
    }
    if !c["events"][LOGOUT_EVENT].is_object() {
        return Err("no back-channel logout event (events)".into());
    }
    if c.get("nonce").is_some() {
        return Err("a logout token must not carry a nonce".into());
    }
    let text = |k: &str| c[k].as_str().map(str::to_owned);
    let (sub, sid) = (text("sub"), text("sid"));
    if sub.is_none() && sid.is_none() {
        return Err("names neither sub nor sid".into());
    }
    Ok(LogoutToken {
        sub,
        sid,
        jti: text("jti"),
    })
}

/// Why a logout token was refused: the spec's `400` with an OAuth-style error body.
#[derive(Debug)]
pub struct LogoutError {
    pub status: StatusCode,
    pub description: String,
}

impl IdentityService {
    /// A logout token from `provider_id`: with `sid`, ends the sessions that provider session
    /// made; with only `sub`, every session of the linked account.
    pub async fn backchannel_logout(
        &self,
        provider_id: &str,
        token: &str,
        ip: Option<IpAddr>,
    ) -> Result<(), LogoutError> {
        let bad = |status, d: String| LogoutError {
            status,
            description: d,
        };
        let p = self
            .provider(provider_id)
            .map_err(|r| bad(StatusCode::NOT_FOUND, r.message))?
            .clone();
        let meta = self
            .metadata(&p)
            .await
            .map_err(|r| bad(StatusCode::BAD_GATEWAY, r.message))?;
        let now = crate::store::now_ms() / 1000;
        let checked =
            validate(token, &p.issuer, &p.client_id, meta.jwks(), now).and_then(|t| match &t.jti {
                Some(jti) if !self.seen_logout_tokens.insert_new(jti.clone(), ()) => {
                    Err("already used (jti)".to_owned())
                }
                _ => Ok(t),
            });
        let t = match checked {
            Ok(t) => t,
            Err(reason) => {
                let e = entry(&p.id, action::BACKCHANNEL_LOGOUT, Outcome::Denied)
                    .detail("reason", reason.clone());
                let _ = self.audit.record(with_ip(e, ip)).await;
                return Err(bad(StatusCode::BAD_REQUEST, reason));
            }
        };
        let internal =
            |e: crate::error::Error| bad(StatusCode::INTERNAL_SERVER_ERROR, e.to_string());
        // The account linked to `sub`, when the token names one.
        let linked = match &t.sub {
            Some(sub) => {
                let store = self.store.clone();
                let (pid, s) = (p.id.clone(), sub.clone());
                let link = blocking(move || Ok(store.find_identity_link(&pid, &s)?))
                    .await
                    .map_err(internal)?;
                match link {
                    Some(l) => Some(l.user_id),
                    // Nobody here signed in as this subject: nothing to end (not an error).
                    None => return Ok(()),
                }
            }
            None => None,
        };
        let (ended, scope) = match &t.sid {
            // §2.7: a `sid` names one provider session: only the sessions it made end.
            Some(sid) => {
                let store = self.sessions.clone();
                let (pid, s) = (p.id.clone(), sid.clone());
                let devices = blocking(move || Ok(store.upstream_session_devices(&pid, &s)?))
                    .await
                    .map_err(internal)?;
                let mut ended = Vec::new();
                for (user, device) in devices {
                    if linked.as_ref().is_some_and(|l| *l != user) {
                        continue;
                    }
                    self.users
                        .end_device_session(&user, device, "backchannel_logout")
                        .await
                        .map_err(internal)?;
                    if !ended.contains(&user) {
                        ended.push(user);
                    }
                }
                (ended, "sid")
            }
            // Only `sub`: every session of the subject's account ends.
            None => {
                let Some(user) = linked else {
                    return Ok(());
                };
                self.users.logout_all(&user).await.map_err(internal)?;
                (vec![user], "sub")
            }
        };
        for user in ended {
            let mut e = entry(&p.id, action::BACKCHANNEL_LOGOUT, Outcome::Success)
                .target(user.as_str())
                .detail("scope", scope);
            if let Some(sub) = &t.sub {
                e = e.detail("subject", sub.as_str());
            }
            self.audit.record(with_ip(e, ip)).await.map_err(internal)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const PEM: &str = include_str!("testdata/logout-test-key.pem");

    fn key() -> ring::signature::RsaKeyPair {
        let b64: String = PEM.lines().filter(|l| !l.starts_with("-----")).collect();
        let der = base64::engine::general_purpose::STANDARD
            .decode(b64)
            .unwrap();
        ring::signature::RsaKeyPair::from_pkcs8(&der).unwrap()
    }

    fn jwks() -> CoreJsonWebKeySet {
        let k = key();
        let c: ring::rsa::PublicKeyComponents<Vec<u8>> = k.public().into();
        let trim =
            |b: &[u8]| URL_SAFE_NO_PAD.encode(&b[b.iter().take_while(|x| **x == 0).count()..]);
        let (n, e) = (trim(&c.n), trim(&c.e));
        serde_json::from_value(json!({"keys": [
            {"kty": "RSA", "kid": "k1", "use": "sig", "alg": "RS256", "n": n, "e": e}
        ]}))
        .unwrap()
    }

    fn sign(header: Value, claims: Value) -> String {
        let input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let k = key();
        let mut sig = vec![0; k.public().modulus_len()];
        k.sign(
            &ring::signature::RSA_PKCS1_SHA256,
            &ring::rand::SystemRandom::new(),
            input.as_bytes(),
            &mut sig,
        )
        .unwrap();
        format!("{input}.{}", URL_SAFE_NO_PAD.encode(sig))
    }

    const NOW: i64 = 1_800_000_000;

    fn good() -> Value {
        json!({"iss": "https://op.example", "aud": "handover", "iat": NOW, "jti": "j1",
               "sub": "s1", "sid": "x", "events": {LOGOUT_EVENT: {}}})
    }

    fn check(header: Value, claims: Value) -> Result<LogoutToken, String> {
        validate(
            &sign(header, claims),
            "https://op.example",
            "handover",
            &jwks(),
            NOW,
        )
    }

    fn hdr() -> Value {
        json!({"alg": "RS256", "kid": "k1", "typ": "logout+jwt"})
    }

    #[test]
    fn a_valid_logout_token_is_accepted() {
        let t = check(hdr(), good()).unwrap();
        assert_eq!(t.sub.as_deref(), Some("s1"));
        let mut c = good();
        c["aud"] = json!(["other", "handover"]);
        assert!(check(hdr(), c).is_ok());
    }

    #[test]
    fn each_broken_claim_is_refused() {
        let with = |k: &str, v: Value| {
            let mut c = good();
            c[k] = v;
            check(hdr(), c).unwrap_err()
        };
        assert!(with("iss", json!("https://evil.example")).contains("iss"));
        assert!(with("aud", json!("someone-else")).contains("aud"));
        assert!(with("iat", json!(NOW - MAX_AGE_SECS - 1)).contains("iat"));
        assert!(with("exp", json!(NOW - 1)).contains("exp"));
        assert!(with("events", json!({"other": {}})).contains("events"));
        assert!(with("nonce", json!("n")).contains("nonce"));
        let mut c = good();
        c.as_object_mut().unwrap().remove("sub");
        c.as_object_mut().unwrap().remove("sid");
        assert!(check(hdr(), c).unwrap_err().contains("sub nor sid"));
        let mut c = good();
        c.as_object_mut().unwrap().remove("iat");
        assert!(check(hdr(), c).unwrap_err().contains("iat"));
    }

    #[test]
    fn forged_or_unsigned_tokens_are_refused() {
        // Another claim set under a valid signature's header: the signature no longer matches.
        let t = sign(hdr(), good());
        let mut parts: Vec<&str> = t.split('.').collect();
        let mut c = good();
        c["sub"] = json!("victim");
        let forged = URL_SAFE_NO_PAD.encode(c.to_string());
        parts[1] = &forged;
        let err = validate(
            &parts.join("."),
            "https://op.example",
            "handover",
            &jwks(),
            NOW,
        );
        assert!(err.unwrap_err().contains("signature"));
        let none = format!(
            "{}.{}.",
            URL_SAFE_NO_PAD.encode(json!({"alg": "none"}).to_string()),
            URL_SAFE_NO_PAD.encode(good().to_string())
        );
        let err = validate(&none, "https://op.example", "handover", &jwks(), NOW);
        assert!(err.unwrap_err().contains("none"));
        // A key id the provider does not publish.
        let err = check(json!({"alg": "RS256", "kid": "k2"}), good());
        assert!(err.unwrap_err().contains("signature"));
        assert!(validate("a.b", "i", "c", &jwks(), NOW).is_err());
    }
}
