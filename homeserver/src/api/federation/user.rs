//! Other servers asking about local users' E2EE keys: `GET /user/devices/{userId}`,
//! `POST /user/keys/query`, `POST /user/keys/claim`. All require X-Matrix (their ruma auth
//! scheme is `ServerSignatures`), so the extractor has verified the origin before these run.

use ruma::OwnedServerName;
use ruma::api::federation::device::get_devices;
use ruma::api::federation::keys::{claim_keys, get_keys};

use crate::api::ruma::Ruma;
use crate::error::{Error, Result};
use crate::service::Services;

fn origin<T>(req: &Ruma<T>) -> Result<OwnedServerName> {
    req.origin
        .clone()
        .ok_or_else(|| Error::forbidden("A signed federation request is required"))
}

pub async fn user_devices(
    s: Services,
    req: Ruma<get_devices::v1::Request>,
) -> Result<get_devices::v1::Response> {
    s.e2ee
        .federation_devices(&origin(&req)?, &req.user_id)
        .await
}

pub async fn keys_query(
    s: Services,
    req: Ruma<get_keys::v1::Request>,
) -> Result<get_keys::v1::Response> {
    let origin = origin(&req)?;
    s.e2ee.federation_query(&origin, req.body.device_keys).await
}

pub async fn keys_claim(
    s: Services,
    req: Ruma<claim_keys::v1::Request>,
) -> Result<claim_keys::v1::Response> {
    let origin = origin(&req)?;
    s.e2ee
        .federation_claim(&origin, req.body.one_time_keys)
        .await
}

#[cfg(test)]
mod tests {
    //! Signed requests from a listed server against the real federation routes.

    use std::net::SocketAddr;
    use std::sync::Arc;

    use axum::Router;
    use handover_policy::{FederationGate, LiveFederationList};
    use ruma::api::client::keys::upload_keys;
    use ruma::api::federation::authentication::{XMatrix, XMatrixSigningInput};
    use ruma::signatures::Ed25519KeyPair;
    use ruma::{OwnedServerName, ServerName};
    use serde_json::{Value, json};

    use crate::service::federation::server_keys::{own_response, verify_response};
    use crate::service::users::test_login;
    use crate::store::now_ms;
    use crate::store::server_keys::ServerKeyStore;

    struct Peer {
        http: reqwest::Client,
        addr: SocketAddr,
        kp: Ed25519KeyPair,
    }

    impl Peer {
        /// `method path body`, X-Matrix-signed as `from` (unsigned when `None`).
        async fn call(
            &self,
            from: Option<&str>,
            method: &str,
            path: &str,
            body: Option<Value>,
        ) -> (u16, Value) {
            let bytes = body.map(|b| b.to_string().into_bytes()).unwrap_or_default();
            let req = http::Request::builder()
                .method(method)
                .uri(path)
                .body(bytes.clone())
                .unwrap();
            let mut out = self
                .http
                .request(
                    method.parse().unwrap(),
                    format!("http://{}{path}", self.addr),
                )
                .header("content-type", "application/json")
                .body(bytes);
            if let Some(from) = from {
                let x = XMatrix::sign_http_request(
                    &req,
                    XMatrixSigningInput::new(
                        OwnedServerName::try_from(from).unwrap(),
                        OwnedServerName::try_from("localhost").unwrap(),
                        &self.kp,
                    ),
                )
                .unwrap();
                out = out.header("authorization", x.to_string());
            }
            let res = out.send().await.unwrap();
            let status = res.status().as_u16();
            (status, res.json().await.unwrap_or(Value::Null))
        }
    }

    #[tokio::test]
    async fn listed_servers_query_and_claim_local_keys() {
        let doc =
            br#"{"serial":1,"organisations":[{"ods_code":"RRK","servers":["a.nhs.uk:8448"]}]}"#;
        let gate = FederationGate {
            list: Some(LiveFederationList::load(doc, None, None).unwrap()),
        };
        let (s, store, _d) = crate::service::test_services_with_policy(Arc::new(gate));
        let origin = <&ServerName>::try_from("a.nhs.uk:8448").unwrap();
        let kp = Ed25519KeyPair::from_der(&Ed25519KeyPair::generate(), "k1".into()).unwrap();
        let v = verify_response(
            origin,
            own_response(origin, &kp, now_ms()).unwrap().json().get(),
            now_ms(),
        )
        .unwrap();
        store
            .save_server_keys(origin.as_str(), &v.keys, &v.response, now_ms())
            .unwrap();

        let (alice, _) = test_login(&s.users, "alice", "correct horse").await;
        let (u, d) = (alice.user_id.as_str(), alice.device_id.as_str());
        let mut upload = upload_keys::v3::Request::new();
        upload.device_keys = Some(
            ruma::serde::Raw::new(&json!({
                "user_id": u, "device_id": d,
                "algorithms": ["m.olm.v1.curve25519-aes-sha2"],
                "keys": { format!("curve25519:{d}"): "c", format!("ed25519:{d}"): "e" },
                "signatures": {}
            }))
            .unwrap()
            .cast_unchecked(),
        );
        upload.one_time_keys.insert(
            "signed_curve25519:AAA".try_into().unwrap(),
            ruma::serde::Raw::new(&json!({ "key": "otk", "signatures": {} }))
                .unwrap()
                .cast_unchecked(),
        );
        s.e2ee.upload_keys(&alice, upload).await.unwrap();

        let app = super::super::routes(Router::new())
            .with_state(s)
            .into_make_service_with_connect_info::<SocketAddr>();
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(l, app).await });
        let peer = Peer {
            http: reqwest::Client::builder().no_proxy().build().unwrap(),
            addr,
            kp,
        };
        let listed = Some("a.nhs.uk:8448");
        let devices = "/_matrix/federation/v1/user/devices/%40alice%3Alocalhost";

        // Unsigned: 401. Unlisted origin: 403.
        assert_eq!(peer.call(None, "GET", devices, None).await.0, 401);
        assert_eq!(
            peer.call(Some("b.nhs.uk:8448"), "GET", devices, None)
                .await
                .0,
            403
        );

        let (status, body) = peer.call(listed, "GET", devices, None).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["user_id"], u);
        assert!(body["stream_id"].as_u64().unwrap() > 0);
        assert_eq!(body["devices"][0]["device_id"], d);
        assert_eq!(
            body["devices"][0]["keys"]["keys"][format!("curve25519:{d}")],
            "c"
        );

        // Only local users: another server's user is refused.
        let (status, body) = peer
            .call(
                listed,
                "GET",
                "/_matrix/federation/v1/user/devices/%40bob%3Aa.nhs.uk%3A8448",
                None,
            )
            .await;
        assert_eq!(
            (status, body["errcode"].as_str()),
            (400, Some("M_INVALID_PARAM"))
        );

        let query = json!({ "device_keys": { u: [], "@bob:a.nhs.uk:8448": [] } });
        let (status, body) = peer
            .call(
                listed,
                "POST",
                "/_matrix/federation/v1/user/keys/query",
                Some(query),
            )
            .await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["device_keys"][u][d]["device_id"], d);
        assert!(body["device_keys"].get("@bob:a.nhs.uk:8448").is_none());

        let claim = json!({ "one_time_keys": { u: { d: "signed_curve25519" } } });
        let (status, body) = peer
            .call(
                listed,
                "POST",
                "/_matrix/federation/v1/user/keys/claim",
                Some(claim.clone()),
            )
            .await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(
            body["one_time_keys"][u][d]["signed_curve25519:AAA"]["key"],
            "otk"
        );
        let (_, body) = peer
            .call(
                listed,
                "POST",
                "/_matrix/federation/v1/user/keys/claim",
                Some(claim),
            )
            .await;
        assert_eq!(body["one_time_keys"], json!({}));

        // A body that is not the endpoint's shape is M_BAD_JSON / M_NOT_JSON.
        let (status, body) = peer
            .call(
                listed,
                "POST",
                "/_matrix/federation/v1/user/keys/query",
                Some(json!({ "device_keys": 7 })),
            )
            .await;
        assert_eq!(status, 400, "{body}");
    }
}
