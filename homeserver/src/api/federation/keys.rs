//! `GET /_matrix/key/v2/server` (our signing key) and the notary
//! (`POST /_matrix/key/v2/query`, `GET /_matrix/key/v2/query/{serverName}`), which answers only
//! for servers on the federation list (others are left out of the answer, and audited).

use ruma::api::federation::discovery::{
    get_remote_server_keys, get_remote_server_keys_batch, get_server_keys,
};

use crate::api::ruma::Ruma;
use crate::error::{Error, Result};
use crate::service::Services;

/// Most servers one (unauthenticated) notary request may ask about: each may cost a key fetch
/// or an audited refusal. Synapse's own key queries ask for a handful at a time.
const MAX_NOTARY_SERVERS: usize = 20;

pub async fn server_keys(
    s: Services,
    _req: Ruma<get_server_keys::v2::Request>,
) -> Result<get_server_keys::v2::Response> {
    Ok(get_server_keys::v2::Response::new(
        s.federation.own_key_response()?,
    ))
}

pub async fn notary_batch(
    s: Services,
    req: Ruma<get_remote_server_keys_batch::v2::Request>,
) -> Result<get_remote_server_keys_batch::v2::Response> {
    if req.server_keys.len() > MAX_NOTARY_SERVERS {
        return Err(Error::invalid_param(format!(
            "at most {MAX_NOTARY_SERVERS} servers per query"
        )));
    }
    let mut out = Vec::new();
    for (server, wanted) in &req.server_keys {
        // The latest minimum asked for any of the server's keys.
        let min = wanted
            .values()
            .filter_map(|c| c.minimum_valid_until_ts)
            .map(|t| i64::try_from(u64::from(t.0)).unwrap_or(i64::MAX))
            .max();
        if let Some(r) = s
            .federation
            .notary_lookup(server, min, req.client_ip)
            .await?
        {
            out.push(r);
        }
    }
    Ok(get_remote_server_keys_batch::v2::Response::new(out))
}

pub async fn notary_single(
    s: Services,
    req: Ruma<get_remote_server_keys::v2::Request>,
) -> Result<get_remote_server_keys::v2::Response> {
    let min = i64::try_from(u64::from(req.minimum_valid_until_ts.0)).unwrap_or(i64::MAX);
    let found = s
        .federation
        .notary_lookup(&req.server_name, Some(min), req.client_ip)
        .await?;
    Ok(get_remote_server_keys::v2::Response::new(
        found.into_iter().collect(),
    ))
}
