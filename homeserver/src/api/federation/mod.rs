//! Server-server API handlers, served only on the federation listener (`listen.federation`).
//!
//! Every request that carries an X-Matrix `Authorization` header has it verified by the
//! extractor (`api/ruma.rs`) before the handler runs, and endpoints whose ruma auth scheme is
//! `ServerSignatures` require it. The origin's federation-list check comes first.

pub(crate) mod discovery;
mod events;
mod keys;
mod media;
mod openid;
mod public_rooms;
mod query;
mod rooms;
mod space;
mod user;

use axum::Router;

use super::router::RouterExt;
use crate::service::Services;

pub fn routes(r: Router<Services>) -> Router<Services> {
    r.ruma(keys::server_keys)
        .ruma(keys::notary_batch)
        .ruma(keys::notary_single)
        .ruma(discovery::version)
        .ruma(discovery::well_known_server)
        .ruma(rooms::send_transaction)
        .ruma(rooms::make_join)
        .ruma(rooms::send_join)
        .ruma(rooms::make_leave)
        .ruma(rooms::send_leave)
        .ruma(rooms::invite)
        .ruma(events::event)
        .ruma(events::state)
        .ruma(events::state_ids)
        .ruma(events::event_auth)
        .ruma(events::backfill)
        .ruma(events::missing_events)
        .ruma(events::timestamp_to_event)
        .ruma(query::profile)
        .ruma(query::directory)
        .ruma(public_rooms::get)
        .ruma(public_rooms::filtered)
        .ruma(media::download)
        .ruma(media::thumbnail)
        .ruma(user::user_devices)
        .ruma(user::keys_query)
        .ruma(user::keys_claim)
        .ruma(space::hierarchy)
        .ruma(openid::userinfo)
}

#[cfg(test)]
mod events_tests;
#[cfg(test)]
mod media_tests;
#[cfg(test)]
mod query_tests;
#[cfg(test)]
mod test_peer;

#[cfg(test)]
mod tests {
    //! The extractor on an endpoint whose ruma auth scheme is `ServerSignatures`, via a probe
    //! route that exists only in this test (no such endpoint is served yet).

    use std::net::SocketAddr;
    use std::sync::Arc;

    use handover_policy::{FederationGate, LiveFederationList};
    use ruma::api::federation::authentication::{XMatrix, XMatrixSigningInput};
    use ruma::api::federation::query::get_profile_information;
    use ruma::signatures::Ed25519KeyPair;
    use ruma::{OwnedServerName, ServerName};

    use super::*;
    use crate::error::Result;
    use crate::store::now_ms;
    use crate::store::server_keys::ServerKeyStore;

    async fn probe(
        _s: Services,
        req: crate::api::ruma::Ruma<get_profile_information::v1::Request>,
    ) -> Result<get_profile_information::v1::Response> {
        // Reaching the handler means the extractor verified the origin.
        let mut res = get_profile_information::v1::Response::new();
        if let Some(o) = &req.origin {
            res.data.set("displayname".into(), o.as_str().into());
        }
        Ok(res)
    }

    #[tokio::test]
    async fn server_signatures_are_required_and_verified() {
        let doc =
            br#"{"serial":1,"organisations":[{"ods_code":"RRK","servers":["a.nhs.uk:8448"]}]}"#;
        let gate = FederationGate {
            list: Some(LiveFederationList::load(doc, None, None).unwrap()),
        };
        let (s, store, _d) = crate::service::test_services_with_policy(Arc::new(gate));
        let origin = <&ServerName>::try_from("a.nhs.uk:8448").unwrap();
        let kp = Ed25519KeyPair::from_der(&Ed25519KeyPair::generate(), "k1".into()).unwrap();
        let raw =
            crate::service::federation::server_keys::own_response(origin, &kp, now_ms()).unwrap();
        let v = crate::service::federation::server_keys::verify_response(
            origin,
            raw.json().get(),
            now_ms(),
        )
        .unwrap();
        store
            .save_server_keys(origin.as_str(), &v.keys, &v.response, now_ms())
            .unwrap();

        let app = Router::new()
            .ruma(probe)
            .with_state(s)
            .into_make_service_with_connect_info::<SocketAddr>();
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(l, app).await });
        let path = "/_matrix/federation/v1/query/profile?user_id=%40u%3Alocalhost";
        let http = reqwest::Client::builder().no_proxy().build().unwrap();

        // No signature: 401.
        let res = http
            .get(format!("http://{addr}{path}"))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 401);

        // Signed by the listed origin: the handler sees the verified origin.
        let sign = |kp: &Ed25519KeyPair, from: &str| {
            let req = http::Request::builder()
                .method("GET")
                .uri(path)
                .body(Vec::<u8>::new())
                .unwrap();
            let x = XMatrix::sign_http_request(
                &req,
                XMatrixSigningInput::new(
                    OwnedServerName::try_from(from).unwrap(),
                    OwnedServerName::try_from("localhost").unwrap(),
                    kp,
                ),
            )
            .unwrap();
            x.to_string()
        };
        let res = http
            .get(format!("http://{addr}{path}"))
            .header("authorization", sign(&kp, origin.as_str()))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
        let body: serde_json::Value = res.json().await.unwrap();
        assert_eq!(body["displayname"], origin.as_str());

        // Signed for another path than requested: 401.
        let res = http
            .get(format!("http://{addr}{path}x"))
            .header("authorization", sign(&kp, origin.as_str()))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 401);

        // An unlisted origin: 403.
        let res = http
            .get(format!("http://{addr}{path}"))
            .header("authorization", sign(&kp, "b.nhs.uk:8448"))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 403);
    }
}
