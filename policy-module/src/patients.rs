//! Patient accounts (medCrowd's use case, issue 10): accounts of kind patient take part only in
//! the conversations staff bring them into.
//!
//! - `patient_cannot_create_room`: a patient creates no rooms (a patient's room would have no
//!   staff member accountable for it).
//! - `patient_cannot_invite`: a patient invites nobody (not other patients, not staff).
//! - `patient_join_needs_staff_invite`: a patient joins only a room they hold an invite to from a
//!   staff account. An invite from another organisation's server counts as staff: the federation
//!   list admits NHS organisations only, and their servers confine their own patients.
//! - `patient_no_public_directory`: no publishing to, or browsing, the public room directory
//!   (federation-wide: it would expose or expose to the patient rooms beyond their care).
//! - `patient_profile_confined`: a patient sees the profile of someone they share a room with
//!   (and their own) only. The user directory already lists only room-mates for everyone.

use crate::{Decision, Denial, Policy};

pub const RULE_PATIENT_CANNOT_CREATE_ROOM: &str = "patient_cannot_create_room";
pub const RULE_PATIENT_CANNOT_INVITE: &str = "patient_cannot_invite";
pub const RULE_PATIENT_JOIN_NEEDS_STAFF_INVITE: &str = "patient_join_needs_staff_invite";
pub const RULE_PATIENT_NO_PUBLIC_DIRECTORY: &str = "patient_no_public_directory";
pub const RULE_PATIENT_PROFILE_CONFINED: &str = "patient_profile_confined";

/// What an account is: staff (the default) or a patient.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AccountKind {
    #[default]
    Staff,
    Patient,
}

impl AccountKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Staff => "staff",
            Self::Patient => "patient",
        }
    }
    /// `None` for anything but the two stored spellings.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "staff" => Some(Self::Staff),
            "patient" => Some(Self::Patient),
            _ => None,
        }
    }
}

/// Who sent the invite a join would accept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Inviter {
    /// No pending invite.
    None,
    /// A local account of this kind.
    Local(AccountKind),
    /// A user of another (federation-listed) server.
    Remote,
}

#[derive(Debug, Clone)]
pub enum AccountAction<'a> {
    CreateRoom,
    Invite {
        invitee: &'a str,
    },
    Join {
        room_id: &'a str,
        inviter: Inviter,
    },
    /// Publishing a room to, or reading, the public room directory.
    PublicDirectory,
    ViewProfile {
        target: &'a str,
        shares_room: bool,
    },
}

/// A local account about to do something only some kinds of account may do.
#[derive(Debug, Clone)]
pub struct AccountActionRequest<'a> {
    pub user_id: &'a str,
    pub kind: AccountKind,
    pub action: AccountAction<'a>,
}

/// The patient rules above (a layer of its own: it binds whatever rule set is chosen).
#[derive(Debug, Clone, Default)]
pub struct PatientConfinement;

impl Policy for PatientConfinement {
    fn name(&self) -> &str {
        "patient-confinement"
    }
    fn check_account_action(&self, req: &AccountActionRequest<'_>) -> Decision {
        if req.kind != AccountKind::Patient {
            return Ok(());
        }
        match &req.action {
            AccountAction::CreateRoom => Err(Denial::new(
                RULE_PATIENT_CANNOT_CREATE_ROOM,
                "Patient accounts cannot create rooms; a member of staff starts the conversation",
            )),
            AccountAction::Invite { invitee } => Err(Denial::new(
                RULE_PATIENT_CANNOT_INVITE,
                format!("Patient accounts cannot invite anyone (tried {invitee})"),
            )),
            AccountAction::Join { inviter, room_id } => match inviter {
                Inviter::Local(AccountKind::Staff) | Inviter::Remote => Ok(()),
                Inviter::None | Inviter::Local(AccountKind::Patient) => Err(Denial::new(
                    RULE_PATIENT_JOIN_NEEDS_STAFF_INVITE,
                    format!("Patient accounts join only rooms staff invited them to ({room_id})"),
                )),
            },
            AccountAction::PublicDirectory => Err(Denial::new(
                RULE_PATIENT_NO_PUBLIC_DIRECTORY,
                "Patient accounts do not take part in the public room directory",
            )),
            AccountAction::ViewProfile {
                target,
                shares_room,
            } => {
                if *shares_room || *target == req.user_id {
                    Ok(())
                } else {
                    Err(Denial::new(
                        RULE_PATIENT_PROFILE_CONFINED,
                        "Patient accounts see the profiles of people in their own rooms only",
                    ))
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(kind: AccountKind, action: AccountAction<'_>) -> Result<(), String> {
        PatientConfinement
            .check_account_action(&AccountActionRequest {
                user_id: "@p:x",
                kind,
                action,
            })
            .map_err(|d| d.rule)
    }

    #[test]
    fn staff_are_not_confined() {
        use AccountAction::*;
        for a in [
            CreateRoom,
            Invite { invitee: "@b:x" },
            Join {
                room_id: "!r:x",
                inviter: Inviter::None,
            },
            PublicDirectory,
            ViewProfile {
                target: "@b:x",
                shares_room: false,
            },
        ] {
            assert_eq!(check(AccountKind::Staff, a), Ok(()));
        }
    }

    #[test]
    fn patients_are_confined_each_rule_named() {
        use AccountAction::*;
        let p = AccountKind::Patient;
        assert_eq!(
            check(p, CreateRoom).unwrap_err(),
            RULE_PATIENT_CANNOT_CREATE_ROOM
        );
        assert_eq!(
            check(p, Invite { invitee: "@b:x" }).unwrap_err(),
            RULE_PATIENT_CANNOT_INVITE
        );
        assert_eq!(
            check(p, PublicDirectory).unwrap_err(),
            RULE_PATIENT_NO_PUBLIC_DIRECTORY
        );
        let join = |inviter| Join {
            room_id: "!r:x",
            inviter,
        };
        assert_eq!(check(p, join(Inviter::Local(AccountKind::Staff))), Ok(()));
        assert_eq!(check(p, join(Inviter::Remote)), Ok(()));
        for i in [Inviter::None, Inviter::Local(AccountKind::Patient)] {
            assert_eq!(
                check(p, join(i)).unwrap_err(),
                RULE_PATIENT_JOIN_NEEDS_STAFF_INVITE
            );
        }
        let view = |target, shares_room| ViewProfile {
            target,
            shares_room,
        };
        assert_eq!(check(p, view("@b:x", true)), Ok(()));
        assert_eq!(check(p, view("@p:x", false)), Ok(()));
        assert_eq!(
            check(p, view("@b:x", false)).unwrap_err(),
            RULE_PATIENT_PROFILE_CONFINED
        );
    }
}
