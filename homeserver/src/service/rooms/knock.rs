//! `POST /knock/{roomIdOrAlias}`: asking to join a room whose join rule is `knock` (or
//! `knock_restricted`). The knock is a member event of the knocker's own; a member with invite
//! power accepts it by inviting, rejects it by kicking; the knocker withdraws by leaving. The
//! policy's `check_knock` comes first: a patient-context room is never knockable (rule
//! `patient_room_not_knockable`, audited). Knocking over federation is not offered yet.

use handover_policy::KnockRequest;
use ruma::{OwnedServerName, RoomId, UserId};

use super::RoomService;
use super::create::is_patient_room;
use crate::error::{Error, Result};

impl RoomService {
    pub async fn knock(
        &self,
        room_id: &RoomId,
        user: &UserId,
        reason: Option<String>,
        _via: &[OwnedServerName],
    ) -> Result<()> {
        self.users.ensure_not_suspended(user)?;
        self.check_not_blocked(room_id, user.as_str(), "knock")
            .await?;
        if self.room_version(room_id).await.is_err() || !self.is_resident(room_id).await? {
            return Err(Error::forbidden(
                "Knocking on a room this server is not in (over federation) is not supported \
                 yet; ask a member for an invite",
            ));
        }
        let state = self.current_state(room_id).await?;
        let decision = self.policy.check_knock(&KnockRequest {
            room_id: room_id.as_str(),
            user: user.as_str(),
            patient_context: is_patient_room(&state),
        });
        (self.audit)
            .enforce(
                decision,
                "check_knock",
                user.as_str(),
                Some(room_id.as_str()),
            )
            .await?;
        match state.membership_of(user).as_deref() {
            Some("join") => return Err(Error::forbidden("You are already in this room")),
            Some("invite") => {
                return Err(Error::forbidden(
                    "You are invited to this room already: join it instead",
                ));
            }
            Some("ban") => return Err(Error::forbidden("You are banned from this room")),
            Some("knock") => return Ok(()),
            _ => {}
        }
        // The room's rules decide the rest (join rule knock / knock_restricted, room version).
        let content = self.member_content(user, "knock", reason).await?;
        self.set_membership(room_id, user, user, content).await?;
        Ok(())
    }
}
