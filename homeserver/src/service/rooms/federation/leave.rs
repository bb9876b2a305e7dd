//! Leaves across servers: a remote user leaving our room through us (`make_leave` /
//! `send_leave`), and one of our users leaving a room we are not resident in (rejecting a
//! remote invite, or undoing a refused join) through a server that is.

use std::sync::Arc;

use ruma::api::federation::membership::{create_leave_event, prepare_leave_event};
use ruma::{EventId, OwnedEventId, OwnedServerName, RoomId, ServerName, UserId};
use serde_json::json;
use serde_json::value::RawValue as RawJsonValue;

use super::super::RoomService;
use super::super::pdu::Pdu;
use super::super::state::rules_for;
use super::super::timeline::append::new_event;
use super::super::timeline::build::BuiltEvent;
use crate::error::{Error, Result};
use crate::service::blocking;
use crate::service::federation::client::Sign;
use crate::service::federation::client_error::to_client_error;

impl RoomService {
    /// `send_leave` (v2): a remote user's signed leave, appended and sent on.
    pub async fn send_leave(
        &self,
        origin: &ServerName,
        room_id: &RoomId,
        event_id: &EventId,
        pdu: &RawJsonValue,
    ) -> Result<OwnedEventId> {
        self.receive_membership(origin, room_id, event_id, pdu, "leave")
            .await
    }

    /// Leaves a room we are not resident in through the first of `via` that lets us, then
    /// records the leave locally.
    pub async fn leave_remote(
        &self,
        room_id: &RoomId,
        user_id: &UserId,
        via: &[OwnedServerName],
    ) -> Result<()> {
        let mut last = None;
        for server in via.iter().filter(|s| **s != self.server_name) {
            match self.leave_via(server, room_id, user_id).await {
                Ok(()) => return Ok(()),
                Err(e) if e.is_policy() => return Err(e),
                Err(e) => last = Some(e),
            }
        }
        Err(last
            .unwrap_or_else(|| Error::not_found(format!("No server to leave {room_id} through"))))
    }

    async fn leave_via(
        &self,
        server: &ServerName,
        room_id: &RoomId,
        user_id: &UserId,
    ) -> Result<()> {
        let client = self.federation.client();
        let made = client
            .send(
                server,
                prepare_leave_event::v1::Request::new(room_id.to_owned(), user_id.to_owned()),
                "make_leave",
                Sign::AsRequired,
            )
            .await
            .map_err(to_client_error)?;
        let version = match made.room_version {
            Some(v) => v,
            None => self.room_version(room_id).await?,
        };
        let rules = rules_for(&version)?;
        let (event_id, json) = self.sign_template(
            server,
            &made.event,
            room_id,
            user_id,
            json!({ "membership": "leave" }),
            &rules,
        )?;
        client
            .send(
                server,
                create_leave_event::v2::Request::new(
                    room_id.to_owned(),
                    event_id.clone(),
                    RawJsonValue::from_string(json.clone()).map_err(Error::internal)?,
                ),
                "send_leave",
                Sign::AsRequired,
            )
            .await
            .map_err(to_client_error)?;
        self.record_remote_leave(room_id, event_id, json).await
    }

    /// Stores our user's leave of a room we hold little or nothing of (no auth check: the
    /// resident server accepted it), so their sync shows the room as left.
    async fn record_remote_leave(
        &self,
        room_id: &RoomId,
        event_id: OwnedEventId,
        json: String,
    ) -> Result<()> {
        if self.room_version(room_id).await.is_err() {
            return Ok(());
        }
        let mut guard = self.lock_room(room_id).await?;
        let state = guard.as_mut().expect("loaded by lock_room");
        let pdu = Pdu::from_json(event_id, room_id, &json)?;
        let sender = pdu.sender.clone();
        let built = BuiltEvent {
            pdu: Arc::new(pdu),
            json,
        };
        let mut new = new_event(state, &built, &sender, None)?;
        new.deliveries.extend(self.appservice_queues(state, &built.pdu));
        let store = self.store.clone();
        let queues = new.deliveries.clone();
        blocking(move || Ok(store.append_event(new)?)).await?;
        self.appservices.wake(&queues);
        state.advance(built.pdu.clone());
        drop(guard);
        self.notifier.notify(std::iter::once(&*sender));
        Ok(())
    }
}
