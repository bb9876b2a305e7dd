//! PUT /sendToDevice/{eventType}/{txnId}.

use ruma::api::client::to_device::send_event_to_device;

use crate::api::ruma::Ruma;
use crate::error::Result;
use crate::service::Services;

pub async fn send(
    s: Services,
    req: Ruma<send_event_to_device::v3::Request>,
) -> Result<send_event_to_device::v3::Response> {
    s.to_device
        .send(
            req.session(),
            &req.event_type.to_string(),
            req.txn_id.as_str(),
            &req.messages,
        )
        .await?;
    Ok(send_event_to_device::v3::Response::new())
}
