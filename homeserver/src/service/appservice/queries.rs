//! Asking appservices: the ping (`POST /appservice/{id}/ping`), users and aliases in their
//! namespaces that do not exist yet, and the third-party lookups (`/thirdparty/*`).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use http::StatusCode;
use ruma::api::appservice::{ping, query, thirdparty};
use ruma::api::error::{BadStatusErrorData, ErrorKind};
use ruma::thirdparty::{Location, Protocol, User};
use ruma::{OwnedTransactionId, RoomAliasId, UserId};

use super::client::CallError;
use super::registration::{Appservice, Claim};
use super::AppserviceService;
use crate::error::{Error, Result};
use crate::service::users::Session;

/// What a third-party user or location lookup searches by.
pub enum Lookup {
    ByFields(String, BTreeMap<String, String>),
    ByMatrixId,
}

impl AppserviceService {
    /// `POST /_matrix/client/v1/appservice/{appserviceId}/ping`: only the appservice itself
    /// (its `as_token`) may ask; the answer is how long its `/_matrix/app/v1/ping` took.
    pub async fn ping(
        &self,
        session: &Session,
        appservice_id: &str,
        transaction_id: Option<OwnedTransactionId>,
    ) -> Result<Duration> {
        let a = match session.appservice.as_deref() {
            Some(id) if id == appservice_id => self.registry.by_id(id),
            _ => None,
        }
        .ok_or_else(|| Error::forbidden("The access token does not belong to that appservice"))?;
        let mut req = ping::send_ping::v1::Request::new();
        req.transaction_id = transaction_id;
        let started = Instant::now();
        match self.client.call(a, req).await {
            Ok(_) => Ok(started.elapsed()),
            Err(e) => Err(ping_error(e)),
        }
    }

    /// Whether an appservice created `user` when asked (it is unknown here and in one of their
    /// user namespaces). Failures count as "no": the caller answers "not found" as before.
    pub async fn query_user(&self, user: &UserId) -> bool {
        for a in self.registry.all().iter().filter(|a| a.user_claim(user) != Claim::None) {
            let req = query::query_user_id::v1::Request::new(user.to_owned());
            match self.client.call(a, req).await {
                Ok(_) => return true,
                Err(e) => log_query(a, "user", &e),
            }
        }
        false
    }

    /// Whether an appservice created `alias` when asked (as `query_user`).
    pub async fn query_alias(&self, alias: &RoomAliasId) -> bool {
        for a in self.registry.all().iter().filter(|a| a.alias_claim(alias) != Claim::None) {
            let req = query::query_room_alias::v1::Request::new(alias.to_owned());
            match self.client.call(a, req).await {
                Ok(_) => return true,
                Err(e) => log_query(a, "alias", &e),
            }
        }
        false
    }

    /// `GET /thirdparty/protocols`: every protocol of every appservice that answers for it.
    pub async fn protocols(&self) -> BTreeMap<String, Protocol> {
        let mut out: BTreeMap<String, Protocol> = BTreeMap::new();
        for a in self.registry.all() {
            for name in a.protocols() {
                if let Some(p) = self.ask_protocol(a, name).await {
                    match out.get_mut(name) {
                        // Several appservices may serve one protocol: their instances add up.
                        Some(existing) => existing.instances.extend(p.instances),
                        None => {
                            out.insert(name.clone(), p);
                        }
                    }
                }
            }
        }
        out
    }

    /// `GET /thirdparty/protocol/{protocol}`: 404 when no appservice serves it.
    pub async fn protocol(&self, name: &str) -> Result<Protocol> {
        let mut found: Option<Protocol> = None;
        for a in self.serving(name) {
            if let Some(p) = self.ask_protocol(a, name).await {
                match &mut found {
                    Some(f) => f.instances.extend(p.instances),
                    None => found = Some(p),
                }
            }
        }
        found.ok_or_else(|| Error::not_found(format!("No appservice serves protocol {name:?}")))
    }

    async fn ask_protocol(&self, a: &Appservice, name: &str) -> Option<Protocol> {
        let req = thirdparty::get_protocol::v1::Request::new(name.to_owned());
        match self.client.call(a, req).await {
            Ok(res) => {
                let mut p: Protocol = res.protocol.into();
                for i in &mut p.instances {
                    i.instance_id = Some(format!("{}|{}", a.id(), i.network_id));
                }
                Some(p)
            }
            Err(e) => {
                log_query(a, "protocol", &e);
                None
            }
        }
    }

    fn serving<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a std::sync::Arc<Appservice>> {
        self.registry
            .all()
            .iter()
            .filter(move |a| a.protocols().iter().any(|p| p == name))
    }

    /// `GET /thirdparty/user[/{protocol}]`: the answers of the appservices serving it (an
    /// empty list when none does).
    pub async fn third_party_users(&self, lookup: Lookup, userid: Option<&UserId>) -> Vec<User> {
        let mut out = Vec::new();
        match (lookup, userid) {
            (Lookup::ByFields(protocol, fields), _) => {
                for a in self.serving(&protocol) {
                    let mut req = thirdparty::get_user_for_protocol::v1::Request::new(protocol.clone());
                    req.fields = fields.clone();
                    match self.client.call(a, req).await {
                        Ok(r) => out.extend(r.users),
                        Err(e) => log_query(a, "thirdparty user", &e),
                    }
                }
            }
            (Lookup::ByMatrixId, Some(user)) => {
                for a in self.registry.all().iter().filter(|a| !a.protocols().is_empty()) {
                    let req = thirdparty::get_user_for_user_id::v1::Request::new(user.to_owned());
                    match self.client.call(a, req).await {
                        Ok(r) => out.extend(r.users),
                        Err(e) => log_query(a, "thirdparty user", &e),
                    }
                }
            }
            (Lookup::ByMatrixId, None) => {}
        }
        out
    }

    /// `GET /thirdparty/location[/{protocol}]`, as `third_party_users`.
    pub async fn third_party_locations(
        &self,
        lookup: Lookup,
        alias: Option<&RoomAliasId>,
    ) -> Vec<Location> {
        let mut out = Vec::new();
        match (lookup, alias) {
            (Lookup::ByFields(protocol, fields), _) => {
                for a in self.serving(&protocol) {
                    let mut req =
                        thirdparty::get_location_for_protocol::v1::Request::new(protocol.clone());
                    req.fields = fields.clone();
                    match self.client.call(a, req).await {
                        Ok(r) => out.extend(r.locations),
                        Err(e) => log_query(a, "thirdparty location", &e),
                    }
                }
            }
            (Lookup::ByMatrixId, Some(alias)) => {
                for a in self.registry.all().iter().filter(|a| !a.protocols().is_empty()) {
                    let req =
                        thirdparty::get_location_for_room_alias::v1::Request::new(alias.to_owned());
                    match self.client.call(a, req).await {
                        Ok(r) => out.extend(r.locations),
                        Err(e) => log_query(a, "thirdparty location", &e),
                    }
                }
            }
            (Lookup::ByMatrixId, None) => {}
        }
        out
    }
}

fn log_query(a: &Appservice, what: &str, e: &CallError) {
    if !matches!(e, CallError::NoUrl | CallError::Status { status: 404, .. }) {
        tracing::warn!(appservice = a.id(), what, error = %e, "appservice query failed");
    }
}

/// The client ping's errors, as the spec lists them.
fn ping_error(e: CallError) -> Error {
    match e {
        CallError::NoUrl => Error::new(
            StatusCode::BAD_REQUEST,
            ErrorKind::UrlNotSet,
            "The appservice has no url in its registration",
        ),
        CallError::Timeout => Error::new(
            StatusCode::GATEWAY_TIMEOUT,
            ErrorKind::ConnectionTimeout,
            "The appservice did not answer in time",
        ),
        CallError::Connection(msg) => Error::new(
            StatusCode::BAD_GATEWAY,
            ErrorKind::ConnectionFailed,
            format!("Could not reach the appservice: {msg}"),
        ),
        CallError::Status { status, body } => {
            let mut data = BadStatusErrorData::new();
            data.status = StatusCode::from_u16(status).ok();
            data.body = Some(body);
            Error::new(
                StatusCode::BAD_GATEWAY,
                ErrorKind::BadStatus(data),
                format!("The appservice answered HTTP {status}"),
            )
        }
        CallError::Response(msg) => Error::new(
            StatusCode::BAD_GATEWAY,
            ErrorKind::BadStatus(BadStatusErrorData::new()),
            format!("The appservice's answer was not understood: {msg}"),
        ),
    }
}
