//! Server-server API handlers, served only on the federation listener (`listen.federation`).
//!
//! Every request that carries an X-Matrix `Authorization` header has it verified by the
//! extractor (`api/ruma.rs`) before the handler runs, and endpoints whose ruma auth scheme is
//! `ServerSignatures` require it. The origin's federation-list check comes first.

pub(crate) mod discovery;
mod keys;

use axum::Router;

use super::router::RouterExt;
use crate::service::Services;

pub fn routes(r: Router<Services>) -> Router<Services> {
    r.ruma(keys::server_keys)
        .ruma(keys::notary_batch)
        .ruma(keys::notary_single)
        .ruma(discovery::version)
        .ruma(discovery::well_known_server)
}
