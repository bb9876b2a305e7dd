//! End-to-end encryption keys: upload, query, claim, changes, cross-signing, signatures.

use ruma::api::client::keys::{
    claim_keys, get_key_changes, get_keys, upload_keys, upload_signatures, upload_signing_keys,
};

use super::limit_password_attempts;
use crate::api::ruma::Ruma;
use crate::error::Result;
use crate::service::Services;

pub async fn upload(
    s: Services,
    req: Ruma<upload_keys::v3::Request>,
) -> Result<upload_keys::v3::Response> {
    s.e2ee.upload_keys(req.session(), req.body.clone()).await
}

pub async fn query(
    s: Services,
    req: Ruma<get_keys::v3::Request>,
) -> Result<get_keys::v3::Response> {
    s.e2ee.query_keys(req.session(), req.body.clone()).await
}

pub async fn claim(
    s: Services,
    req: Ruma<claim_keys::v3::Request>,
) -> Result<claim_keys::v3::Response> {
    s.e2ee.claim_keys(req.body).await
}

pub async fn changes(
    s: Services,
    req: Ruma<get_key_changes::v3::Request>,
) -> Result<get_key_changes::v3::Response> {
    s.e2ee.key_changes(req.user_id(), &req.from, &req.to).await
}

pub async fn upload_signing_keys(
    s: Services,
    req: Ruma<upload_signing_keys::v3::Request>,
) -> Result<upload_signing_keys::v3::Response> {
    limit_password_attempts(&s, &req, req.auth.as_ref())?;
    s.e2ee
        .upload_signing_keys(req.session(), req.body.clone())
        .await
}

pub async fn upload_signatures(
    s: Services,
    req: Ruma<upload_signatures::v3::Request>,
) -> Result<upload_signatures::v3::Response> {
    s.e2ee
        .upload_signatures(req.session(), req.body.clone())
        .await
}
