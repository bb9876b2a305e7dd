//! Server discovery: well-known (client, support), supported versions, capabilities.

use std::collections::BTreeMap;
use std::net::SocketAddr;

use axum::Json;
use axum::extract::{ConnectInfo, State};
use ruma::api::client::discovery::{discover_support, get_capabilities, get_supported_versions};
use ruma::api::client::profile::ProfileFieldName;

use crate::api::ruma::Ruma;
use crate::error::Result;
use crate::service::Services;
use crate::service::rooms::SUPPORTED_ROOM_VERSIONS;

/// The base URL, with the scheme a trusted proxy says the client used when `public_baseurl`
/// is unset (a proxy may serve both http and https).
pub async fn well_known_client(
    State(s): State<Services>,
    req: axum::extract::Request,
) -> Json<serde_json::Value> {
    let peer = (req.extensions().get::<ConnectInfo<SocketAddr>>()).map(|c| c.0.ip());
    let proto = (s.rate_limits).forwarded_proto(peer, req.headers());
    Json(serde_json::json!({ "m.homeserver": { "base_url": s.config.base_url_for(proto) } }))
}

pub async fn support(
    s: Services,
    _: Ruma<discover_support::Request>,
) -> Result<discover_support::Response> {
    crate::service::support::support_info(&s.config.support)
}

pub async fn versions(
    _: Services,
    _: Ruma<get_supported_versions::Request>,
) -> Result<get_supported_versions::Response> {
    let versions = [
        "r0.6.1", "v1.1", "v1.2", "v1.3", "v1.4", "v1.5", "v1.6", "v1.7", "v1.8", "v1.9", "v1.10",
        "v1.11", "v1.12",
    ];
    let mut res =
        get_supported_versions::Response::new(versions.iter().map(|v| v.to_string()).collect());
    // matrix-sdk (Element X) enables sliding sync only when this flag is true (ruma's
    // FeatureFlag::Msc4186); Synapse and tuwunel advertise the same.
    // MSC3814 dehydrated devices: Synapse advertises the same flag.
    res.unstable_features = BTreeMap::from([
        ("org.matrix.simplified_msc3575".to_owned(), true),
        ("org.matrix.msc3814".to_owned(), true),
    ]);
    Ok(res)
}

pub async fn capabilities(
    s: Services,
    req: Ruma<get_capabilities::v3::Request>,
) -> Result<get_capabilities::v3::Response> {
    #[allow(deprecated)]
    // m.set_displayname / m.set_avatar_url: superseded in 1.16, we serve 1.12
    use get_capabilities::v3::{
        Capabilities, ChangePasswordCapability, GetLoginTokenCapability, ProfileFieldsCapability,
        RoomVersionStability, RoomVersionsCapability, SetAvatarUrlCapability,
        SetDisplayNameCapability, ThirdPartyIdChangesCapability,
    };
    let me = &req.session().user_id;
    let may = |field: &str| s.users.may_change_profile_field(me, field);
    let available = SUPPORTED_ROOM_VERSIONS
        .iter()
        .map(|v| (v.clone(), RoomVersionStability::Stable))
        .collect();
    let mut caps = Capabilities::new();
    caps.room_versions =
        RoomVersionsCapability::new(crate::service::rooms::DEFAULT_ROOM_VERSION, available);
    // ruma omits a capability that has its spec default (enabled), which clients read the same.
    caps.change_password = ChangePasswordCapability::new(true);
    #[allow(deprecated)]
    {
        caps.set_displayname = SetDisplayNameCapability::new(may("displayname"));
        caps.set_avatar_url = SetAvatarUrlCapability::new(may("avatar_url"));
    }
    // Extended profile fields (spec v1.16); policy refusals still name their rule. Under the
    // display-name lock only the avatar is the user's to change.
    let mut fields = ProfileFieldsCapability::new(true);
    if !may("displayname") {
        fields.allowed = Some(vec![ProfileFieldName::AvatarUrl]);
    }
    caps.profile_fields = Some(fields);
    // No email or phone ids: accounts are provisioned by the trust.
    caps.thirdparty_id_changes = ThirdPartyIdChangesCapability::new(false);
    caps.get_login_token = GetLoginTokenCapability::new(s.identity.get_login_token());
    Ok(get_capabilities::v3::Response::new(caps))
}
