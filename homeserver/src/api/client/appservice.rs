//! Appservice endpoints of the client API: the ping, and the third-party lookups answered from
//! the appservices' protocols (`service/appservice/`).

use ruma::api::client::appservice::request_ping;
use ruma::api::client::thirdparty::{
    get_location_for_protocol, get_location_for_room_alias, get_protocol, get_protocols,
    get_user_for_protocol, get_user_for_user_id,
};

use crate::api::ruma::Ruma;
use crate::error::Result;
use crate::service::Services;
use crate::service::appservice::Lookup;

pub async fn ping(
    s: Services,
    req: Ruma<request_ping::v1::Request>,
) -> Result<request_ping::v1::Response> {
    let took = (s.appservices)
        .ping(
            req.session(),
            &req.appservice_id,
            req.body.transaction_id.clone(),
        )
        .await?;
    Ok(request_ping::v1::Response::new(took))
}

pub async fn protocols(
    s: Services,
    _req: Ruma<get_protocols::v3::Request>,
) -> Result<get_protocols::v3::Response> {
    Ok(get_protocols::v3::Response::new(
        s.appservices.protocols().await,
    ))
}

pub async fn protocol(
    s: Services,
    req: Ruma<get_protocol::v3::Request>,
) -> Result<get_protocol::v3::Response> {
    let p = s.appservices.protocol(&req.protocol).await?;
    Ok(get_protocol::v3::Response::new(p))
}

pub async fn locations_for_protocol(
    s: Services,
    req: Ruma<get_location_for_protocol::v3::Request>,
) -> Result<get_location_for_protocol::v3::Response> {
    let lookup = Lookup::ByFields(req.protocol.clone(), req.fields.clone());
    let found = s.appservices.third_party_locations(lookup, None).await;
    Ok(get_location_for_protocol::v3::Response::new(found))
}

pub async fn locations_for_alias(
    s: Services,
    req: Ruma<get_location_for_room_alias::v3::Request>,
) -> Result<get_location_for_room_alias::v3::Response> {
    let found = (s.appservices)
        .third_party_locations(Lookup::ByMatrixId, Some(&req.alias))
        .await;
    Ok(get_location_for_room_alias::v3::Response::new(found))
}

pub async fn users_for_protocol(
    s: Services,
    req: Ruma<get_user_for_protocol::v3::Request>,
) -> Result<get_user_for_protocol::v3::Response> {
    let lookup = Lookup::ByFields(req.protocol.clone(), req.fields.clone());
    let found = s.appservices.third_party_users(lookup, None).await;
    Ok(get_user_for_protocol::v3::Response::new(found))
}

pub async fn users_for_user_id(
    s: Services,
    req: Ruma<get_user_for_user_id::v3::Request>,
) -> Result<get_user_for_user_id::v3::Response> {
    let found = (s.appservices)
        .third_party_users(Lookup::ByMatrixId, Some(&req.userid))
        .await;
    Ok(get_user_for_user_id::v3::Response::new(found))
}
