//! A logged-in user driven over the raw client-server API, the same way on Handover and on
//! Synapse, for the federation tests: create/invite/join/leave/send, read `/messages` and room
//! state, and wait (bounded) until something federated arrives.

use std::future::Future;
use std::sync::Mutex;
use std::time::Duration;

use serde_json::{Value, json};

use crate::{Http, Resp, enc, within};

/// Polls `check` every 300 ms until it returns `Some`, or panics after `secs` with `what`.
pub async fn eventually<T, F, Fut>(secs: u64, what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    within(secs, what, async {
        loop {
            if let Some(v) = check().await {
                return v;
            }
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    })
    .await
}

/// A user with an access token on one server.
pub struct Account {
    pub http: Http,
    pub user_id: String,
    pub token: String,
    since: Mutex<Option<String>>,
}

impl Account {
    /// Registers `local` with `m.login.dummy` (open registration) and logs in.
    pub async fn register(http: Http, local: &str) -> Self {
        let (user_id, token) = http.register(local, crate::PASSWORD).await;
        Account {
            http,
            user_id,
            token,
            since: Mutex::new(None),
        }
    }

    /// Logs the existing account `user_id` in with `password` (a new device).
    pub async fn login(http: Http, user_id: &str, password: &str) -> Self {
        let local = user_id
            .trim_start_matches('@')
            .split(':')
            .next()
            .unwrap_or("");
        let token = http.login(local, password).await;
        let user_id = user_id.to_owned();
        Account {
            http,
            user_id,
            token,
            since: Mutex::new(None),
        }
    }

    /// The server part of the user id.
    pub fn server_name(&self) -> &str {
        self.user_id.split_once(':').map(|(_, s)| s).unwrap_or("")
    }

    fn t(&self) -> Option<&str> {
        Some(&self.token)
    }

    pub async fn get(&self, path: &str) -> Resp {
        self.http.get(path, self.t()).await
    }

    pub async fn post(&self, path: &str, body: &Value) -> Resp {
        self.http.post_json(path, self.t(), body).await
    }

    pub async fn put(&self, path: &str, body: &Value) -> Resp {
        self.http.put_json(path, self.t(), body).await
    }

    /// `POST /createRoom`; returns the room id.
    pub async fn create_room(&self, body: &Value) -> String {
        self.http.create_room(&self.token, body).await
    }

    /// A public, unencrypted room (`public_chat`: shared history, anyone may join) so the
    /// tests can read message bodies on both servers.
    pub async fn create_public_room(&self, name: &str) -> String {
        self.create_room(&json!({"preset": "public_chat", "name": name}))
            .await
    }

    pub async fn try_invite(&self, room: &str, user: &str) -> Resp {
        let path = format!("/_matrix/client/v3/rooms/{}/invite", enc(room));
        self.post(&path, &json!({"user_id": user})).await
    }

    pub async fn invite(&self, room: &str, user: &str) {
        self.try_invite(room, user).await.ok();
    }

    /// `POST /join/{roomIdOrAlias}?server_name=...` (the `via` servers).
    pub async fn try_join(&self, room: &str, via: &[&str]) -> Resp {
        let q: Vec<String> = via
            .iter()
            .map(|s| format!("server_name={}", enc(s)))
            .collect();
        let path = format!("/_matrix/client/v3/join/{}?{}", enc(room), q.join("&"));
        self.post(&path, &json!({})).await
    }

    /// Joins and returns the room id.
    pub async fn join(&self, room: &str, via: &[&str]) -> String {
        let r = self.try_join(room, via).await;
        r.ok()["room_id"].as_str().expect("room_id").to_owned()
    }

    pub async fn leave(&self, room: &str) {
        let path = format!("/_matrix/client/v3/rooms/{}/leave", enc(room));
        self.post(&path, &json!({})).await.ok();
    }

    pub async fn try_send_text(&self, room: &str, body: &str) -> Resp {
        let txn = format!(
            "t{}",
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos()
        );
        let path = format!(
            "/_matrix/client/v3/rooms/{}/send/m.room.message/{txn}",
            enc(room)
        );
        self.put(&path, &json!({"msgtype": "m.text", "body": body}))
            .await
    }

    /// Sends an `m.text` message; returns its event id.
    pub async fn send_text(&self, room: &str, body: &str) -> String {
        let r = self.try_send_text(room, body).await;
        r.ok()["event_id"].as_str().expect("event_id").to_owned()
    }

    /// `GET /messages` backwards from the end (up to `limit` events): `chunk`, newest first.
    pub async fn try_messages(&self, room: &str, limit: u32) -> Resp {
        let path = format!(
            "/_matrix/client/v3/rooms/{}/messages?dir=b&limit={limit}",
            enc(room)
        );
        self.get(&path).await
    }

    /// Bodies of the `m.room.message` events among the latest `limit` events, oldest first.
    pub async fn bodies(&self, room: &str, limit: u32) -> Vec<String> {
        let r = self.try_messages(room, limit).await;
        if r.status != 200 {
            return vec![];
        }
        let mut out: Vec<String> = r.json()["chunk"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|e| e["type"] == "m.room.message")
            .filter_map(|e| e["content"]["body"].as_str().map(str::to_owned))
            .collect();
        out.reverse();
        out
    }

    /// Waits until every body in `want` is among the room's latest 200 messages.
    pub async fn wait_for_bodies(&self, room: &str, want: &[&str], secs: u64) {
        let what = format!("{} to see {want:?} in {room}", self.user_id);
        eventually(secs, &what, || async {
            let have = self.bodies(room, 200).await;
            want.iter()
                .all(|w| have.iter().any(|h| h == w))
                .then_some(())
        })
        .await
    }

    /// `GET /rooms/{id}/state`: the current state events (empty if refused).
    pub async fn state(&self, room: &str) -> Vec<Value> {
        let r = self
            .get(&format!("/_matrix/client/v3/rooms/{}/state", enc(room)))
            .await;
        r.json().as_array().cloned().unwrap_or_default()
    }

    /// Current state as sorted `(type, state_key, event_id)`: equal on two servers when they
    /// agree on the room's state.
    pub async fn state_ids(&self, room: &str) -> Vec<(String, String, String)> {
        let mut v: Vec<_> = self
            .state(room)
            .await
            .iter()
            .map(|e| {
                (
                    e["type"].as_str().unwrap_or("").to_owned(),
                    e["state_key"].as_str().unwrap_or("").to_owned(),
                    e["event_id"].as_str().unwrap_or("").to_owned(),
                )
            })
            .collect();
        v.sort();
        v
    }

    /// Membership of `user` in the current state (`join`, `invite`, `leave`...), if any.
    pub async fn membership_of(&self, room: &str, user: &str) -> Option<String> {
        self.state(room)
            .await
            .iter()
            .find(|e| e["type"] == "m.room.member" && e["state_key"] == user)
            .and_then(|e| e["content"]["membership"].as_str().map(str::to_owned))
    }

    /// Waits until this user's server shows `user` with `membership` in the room.
    pub async fn wait_membership(&self, room: &str, user: &str, membership: &str, secs: u64) {
        let what = format!("{} to see {user} {membership} in {room}", self.user_id);
        eventually(secs, &what, || async {
            (self.membership_of(room, user).await.as_deref() == Some(membership)).then_some(())
        })
        .await
    }

    /// One `/sync` (long-poll `timeout_ms`), continuing from the previous one.
    pub async fn sync(&self, timeout_ms: u64) -> Value {
        let since = self.since.lock().unwrap().clone();
        let mut path = format!("/_matrix/client/v3/sync?timeout={timeout_ms}");
        if let Some(s) = since {
            path.push_str(&format!("&since={}", enc(&s)));
        }
        let body = self.get(&path).await.ok();
        if let Some(next) = body["next_batch"].as_str() {
            *self.since.lock().unwrap() = Some(next.to_owned());
        }
        body
    }

    /// Syncs until the room shows up under `rooms.invite`.
    pub async fn wait_invite(&self, room: &str, secs: u64) {
        let what = format!("{} to be invited to {room}", self.user_id);
        within(secs, &what, async {
            loop {
                let s = self.sync(1000).await;
                if s["rooms"]["invite"].get(room).is_some() {
                    return;
                }
            }
        })
        .await
    }
}
