//! Claims from the provider's userinfo endpoint (OIDC Core §5.3) when the ID token lacks some
//! this server needs: the localpart and display name claims, `email`, and the first segment of
//! each `required_claims` path. Providers differ (Entra and CIS2 put profile claims in the ID
//! token when asked; others only at userinfo), so both are read. The ID token's claims win; a
//! userinfo answer for another subject is refused (§5.3.2), as is a signed (JWT) answer, which
//! this server does not verify.

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

/// Fetches userinfo with `access_token` and adds the claims the ID token did not carry.
pub async fn complete(
    client: &reqwest::Client,
    endpoint: &str,
    access_token: &str,
    v: &mut Verified,
) -> Result<(), UpstreamError> {
    let fail = |m: String| UpstreamError::Token(format!("userinfo: {m}"));
    let res = client
        .get(endpoint)
        .bearer_auth(access_token)
        .header(reqwest::header::ACCEPT, "application/json")
        .send()
        .await
        .map_err(|e| fail(e.to_string()))?;
    if !res.status().is_success() {
        return Err(fail(format!("the provider answered {}", res.status())));
    }
    let json_body = res
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|t| t.starts_with("application/json"));
    if !json_body {
        return Err(fail("only JSON answers are supported (not signed JWTs)".into()));
    }
    let claims: Map<String, Value> = res.json().await.map_err(|e| fail(e.to_string()))?;
    if claims.get("sub").and_then(Value::as_str) != Some(v.subject.as_str()) {
        return Err(fail("the answer is about another subject (sub)".into()));
    }
    merge(&mut v.claims, claims);
    Ok(())
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
