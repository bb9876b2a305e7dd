//! Receipts, read markers and typing.

use ruma::api::client::read_marker::set_read_marker;
use ruma::api::client::receipt::create_receipt::{self, v3::ReceiptType};
use ruma::api::client::typing::create_typing_event::{self, v3::Typing};
use ruma::events::receipt::ReceiptThread;

use crate::api::ruma::Ruma;
use crate::error::{Error, Result};
use crate::service::Services;

pub async fn receipt(
    s: Services,
    req: Ruma<create_receipt::v3::Request>,
) -> Result<create_receipt::v3::Response> {
    let thread = match &req.thread {
        ReceiptThread::Unthreaded => None,
        ReceiptThread::Main => Some("main".to_owned()),
        ReceiptThread::Thread(id) => Some(id.to_string()),
        _ => return Err(Error::invalid_param("Unknown thread_id")),
    };
    match &req.receipt_type {
        ReceiptType::FullyRead => {
            s.read_markers
                .set_fully_read(&req.room_id, req.user_id(), &req.event_id)
                .await?;
        }
        other => {
            s.receipts
                .set(
                    &req.room_id,
                    req.user_id(),
                    other.as_str(),
                    &req.event_id,
                    thread.as_deref(),
                )
                .await?;
        }
    }
    Ok(create_receipt::v3::Response::new())
}

pub async fn read_markers(
    s: Services,
    req: Ruma<set_read_marker::v3::Request>,
) -> Result<set_read_marker::v3::Response> {
    if let Some(id) = &req.fully_read {
        s.read_markers
            .set_fully_read(&req.room_id, req.user_id(), id)
            .await?;
    }
    if let Some(id) = &req.read_receipt {
        s.receipts
            .set(&req.room_id, req.user_id(), "m.read", id, None)
            .await?;
    }
    if let Some(id) = &req.private_read_receipt {
        s.receipts
            .set(&req.room_id, req.user_id(), "m.read.private", id, None)
            .await?;
    }
    Ok(set_read_marker::v3::Response::new())
}

pub async fn typing(
    s: Services,
    req: Ruma<create_typing_event::v3::Request>,
) -> Result<create_typing_event::v3::Response> {
    if req.body.user_id != *req.user_id() {
        return Err(Error::forbidden("You may only set your own typing state"));
    }
    let timeout = match &req.state {
        Typing::Yes(info) => Some(info.timeout),
        _ => None,
    };
    s.typing.set(&req.room_id, req.user_id(), timeout).await?;
    Ok(create_typing_event::v3::Response::new())
}
