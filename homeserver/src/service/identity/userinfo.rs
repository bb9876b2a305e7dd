//! Claims from the provider's userinfo endpoint (OIDC Core §5.3) when the ID token lacks some
//! this server needs: the localpart and display name claims, `email`, and the first segment of
//! each `required_claims` path. Providers differ (Entra and CIS2 put profile claims in the ID
//! token when asked; others only at userinfo), so both are read. The ID token's claims win; a
//! userinfo answer for another subject refuses the sign-in (§5.3.2); an unreadable one (an
//! error, or a signed JWT, which this server does not verify) is logged and skipped.

use serde_json::{Map, Value};

use super::upstream::{UpstreamError, Verified};
use crate::config::ProviderConfig;

/// The top-level claims this server reads for provider `p`.
pub fn wanted(p: &ProviderConfig) -> Vec<String> {
    let mut out = vec![
        p.localpart_claim.clone(),
        p.displayname_claim.clone(),
        "email".to_owned(),
    ];
    for path in p.required_claims.keys() {
        out.push(path.split('.').next().unwrap_or(path).to_owned());
    }
    out.sort();
    out.dedup();
    out
}

/// Whether a wanted claim is missing from `claims`.
pub fn incomplete(p: &ProviderConfig, claims: &Map<String, Value>) -> bool {
    wanted(p).iter().any(|c| !claims.contains_key(c))
}

/// Fetches userinfo with `access_token` and adds the claims the ID token did not carry. A
/// provider whose userinfo cannot be read is not fatal (logged; the ID token's claims are used
/// and the gates decide on them), but an answer about another subject is.
pub async fn complete(
    client: &reqwest::Client,
    endpoint: &str,
    access_token: &str,
    v: &mut Verified,
) -> Result<(), UpstreamError> {
    match fetch(client, endpoint, access_token).await {
        Ok(claims) => {
            if claims.get("sub").and_then(Value::as_str) != Some(v.subject.as_str()) {
                return Err(UpstreamError::Token(
                    "userinfo: the answer is about another subject (sub)".into(),
                ));
            }
            merge(&mut v.claims, claims);
        }
        Err(e) => tracing::warn!(error = %e, "userinfo not read; using the ID token's claims"),
    }
    Ok(())
}

async fn fetch(
    client: &reqwest::Client,
    endpoint: &str,
    access_token: &str,
) -> Result<Map<String, Value>, String> {
    let res = client
        .get(endpoint)
        .bearer_auth(access_token)
        .header(reqwest::header::ACCEPT, "application/json")
        .send()
        .await
        .map_err(|e| e.to_string())?;
    if !res.status().is_success() {
        return Err(format!("the provider answered {}", res.status()));
    }
    let json_body = res
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|t| t.starts_with("application/json"));
    if !json_body {
        return Err("only JSON answers are supported (not signed JWTs)".into());
    }
    res.json().await.map_err(|e| e.to_string())
}

/// Adds `extra`'s claims that `claims` lacks (the ID token's own are kept).
fn merge(claims: &mut Map<String, Value>, extra: Map<String, Value>) {
    for (k, val) in extra {
        claims.entry(k).or_insert(val);
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn the_id_tokens_claims_win() {
        let mut c = json!({"sub": "s", "name": "From ID token"})
            .as_object()
            .unwrap()
            .clone();
        let extra = json!({"sub": "s", "name": "From userinfo", "roles": ["R1"]});
        merge(&mut c, extra.as_object().unwrap().clone());
        assert_eq!(c["name"], "From ID token");
        assert_eq!(c["roles"], json!(["R1"]));
    }
}
