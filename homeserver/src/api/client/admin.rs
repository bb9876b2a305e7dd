//! Server administration: whois.

use ruma::MilliSecondsSinceUnixEpoch;
use ruma::api::client::admin::get_user_info::{
    self,
    v3::{ConnectionInfo, DeviceInfo, SessionInfo},
};

use crate::api::ruma::Ruma;
use crate::error::Result;
use crate::service::Services;

/// Each device is one session with its last-seen connection (we keep no user agents).
pub async fn whois(
    s: Services,
    req: Ruma<get_user_info::v3::Request>,
) -> Result<get_user_info::v3::Response> {
    let devices = s.users.whois(req.session(), &req.body.user_id).await?;
    let mut res = get_user_info::v3::Response::new();
    res.user_id = Some(req.body.user_id.clone());
    for d in devices {
        let mut session = SessionInfo::new();
        if d.last_seen_ts.is_some() || d.last_seen_ip.is_some() {
            let mut c = ConnectionInfo::new();
            c.ip = d.last_seen_ip;
            c.last_seen = d
                .last_seen_ts
                .and_then(|t| ruma::UInt::try_from(t.max(0) as u64).ok())
                .map(MilliSecondsSinceUnixEpoch);
            session.connections.push(c);
        }
        let mut info = DeviceInfo::new();
        info.sessions.push(session);
        res.devices.insert(d.device_id.to_string(), info);
    }
    Ok(res)
}
