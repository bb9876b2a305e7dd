//! Reporting events, rooms and users to the server's moderators.

use ruma::api::client::reporting::report_user;
use ruma::api::client::room::{report_content, report_room};

use crate::api::ruma::Ruma;
use crate::error::Result;
use crate::service::Services;

pub async fn report_event(
    s: Services,
    req: Ruma<report_content::v3::Request>,
) -> Result<report_content::v3::Response> {
    s.reports
        .report_event(
            req.user_id(),
            &req.room_id,
            &req.event_id,
            req.reason.clone(),
        )
        .await?;
    Ok(report_content::v3::Response::new())
}

pub async fn report_room(
    s: Services,
    req: Ruma<report_room::v3::Request>,
) -> Result<report_room::v3::Response> {
    s.reports
        .report_room(req.user_id(), &req.room_id, req.reason.clone())
        .await?;
    Ok(report_room::v3::Response::new())
}

pub async fn report_user(
    s: Services,
    req: Ruma<report_user::v3::Request>,
) -> Result<report_user::v3::Response> {
    s.reports
        .report_user(req.user_id(), &req.body.user_id, req.reason.clone())
        .await?;
    Ok(report_user::v3::Response::new())
}
