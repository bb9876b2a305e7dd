//! The bridge's state in one place ([`Epr`]) and patient rooms: finding the patient on the FHIR
//! server, finding or creating the patient's care-team room (a patient-context room:
//! private, invite-only, `joined` history, encrypted, never in the directory), inviting the
//! clinician and optionally the care team from FHIR `CareTeam` / `EpisodeOfCare`.
//!
//! The room's `org.handover.patient` state holds a reference only (FHIR base URL and logical
//! id): state is never end-to-end encrypted. Names, NHS numbers and dates of birth are shown by
//! the bot in the encrypted timeline, on demand (`!patient`).

use std::sync::Arc;

use handover_bridge_core::Clock;
use handover_bridge_core::bot::{Bot, NewRoom};
use handover_bridge_core::store::AuditEntry;
use handover_policy::PATIENT_LINK_TYPE;
use handover_policy::nhs_number::contains_nhs_number;
use matrix_sdk::ruma::events::room::member::MembershipState;
use matrix_sdk::ruma::{OwnedRoomId, RoomId, UserId};
use serde_json::json;
use tokio::sync::{Mutex, Notify};

use crate::config::{Config, LaunchAllow};
use crate::fhir::resources::{self, Lookup, enc};
use crate::fhir::{FhirClient, FhirError};
use crate::staff::StaffMap;
use crate::state::{EprStore, PatientRoom};

/// Which patient a launch names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PatientQuery {
    /// A valid NHS number (10 digits).
    NhsNumber(String),
    /// A FHIR logical id (SMART-style launch).
    LogicalId(String),
}

/// Why a launch did not lead to a room: the HTTP status, a code and a sentence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LaunchError {
    pub status: u16,
    pub code: &'static str,
    pub message: String,
}

impl LaunchError {
    pub fn new(status: u16, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
        }
    }
    fn internal(e: impl std::fmt::Display) -> Self {
        tracing::error!(error = %e, "launch failed");
        Self::new(500, "internal", "the bridge failed; see its log")
    }
}

impl From<FhirError> for LaunchError {
    fn from(e: FhirError) -> Self {
        Self::new(502, "epr_unavailable", e.to_string())
    }
}

pub struct Epr {
    pub cfg: Arc<Config>,
    pub store: EprStore,
    pub fhir: FhirClient,
    pub staff: StaffMap,
    pub bot: Bot,
    pub clock: Arc<dyn Clock>,
    /// Wakes the filing worker when something is queued.
    pub wake: Notify,
    /// Serialises room creation: one room per patient even when two launches race.
    rooms: Mutex<()>,
}

impl Epr {
    pub fn new(
        cfg: Arc<Config>,
        store: EprStore,
        fhir: FhirClient,
        staff: StaffMap,
        bot: Bot,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self {
            cfg,
            store,
            fhir,
            staff,
            bot,
            clock,
            wake: Notify::new(),
            rooms: Mutex::new(()),
        }
    }

    pub fn now(&self) -> i64 {
        self.clock.now_ms()
    }

    /// The patient's logical id on the FHIR server.
    pub async fn resolve(&self, q: &PatientQuery) -> Result<String, LaunchError> {
        match q {
            PatientQuery::NhsNumber(n) => {
                let bundle = self.fhir.get(&resources::patient_search(n)).await?;
                match resources::single_patient(&bundle) {
                    Lookup::Found(id) => Ok(id),
                    Lookup::NotFound => Err(LaunchError::new(
                        404,
                        "patient_not_found",
                        "no patient with this NHS number in the EPR",
                    )),
                    Lookup::Ambiguous(n) => Err(LaunchError::new(
                        409,
                        "patient_ambiguous",
                        format!(
                            "{n} patients in the EPR have this NHS number; launch with the patient id"
                        ),
                    )),
                }
            }
            PatientQuery::LogicalId(id) => match self.fhir.get(&format!("Patient/{id}")).await {
                Ok(p) if p["resourceType"] == "Patient" => Ok(id.clone()),
                Ok(_) => Err(LaunchError::new(
                    502,
                    "epr_unavailable",
                    "the EPR did not answer with a Patient",
                )),
                Err(e) if e.not_found() => Err(LaunchError::new(
                    404,
                    "patient_not_found",
                    "no patient with this id in the EPR",
                )),
                Err(e) => Err(e.into()),
            },
        }
    }

    /// The patient's room with `user` in it (invited if not a member yet), created with the
    /// user as its first invitee if the patient has none.
    pub async fn open_for(
        &self,
        patient_id: &str,
        user: &UserId,
    ) -> Result<OwnedRoomId, LaunchError> {
        if self.cfg.launch.allow == LaunchAllow::CareTeam
            && !self
                .care_team_users(patient_id)
                .await?
                .iter()
                .any(|u| u == user.as_str())
        {
            let _ = self
                .store
                .db
                .audit(
                    AuditEntry::new("launch", "denied")
                        .actor(user.as_str())
                        .target(format!("Patient/{patient_id}"))
                        .detail("reason", "not in the patient's care team"),
                )
                .await;
            return Err(LaunchError::new(
                403,
                "not_in_care_team",
                "you are not in this patient's care team in the EPR",
            ));
        }
        let _guard = self.rooms.lock().await;
        let base = self.cfg.fhir_base();
        let existing = self
            .store
            .room_of_patient(base.clone(), patient_id.to_owned())
            .await
            .map_err(LaunchError::internal)?;
        let room_id: OwnedRoomId = match existing {
            Some(r) => r.as_str().try_into().map_err(LaunchError::internal)?,
            None => return self.create_room(&base, patient_id, user).await,
        };
        match self
            .bot
            .membership(&room_id, user)
            .await
            .map_err(LaunchError::internal)?
        {
            Some(MembershipState::Join | MembershipState::Invite) => {}
            Some(MembershipState::Ban) => {
                return Err(LaunchError::new(
                    403,
                    "banned",
                    "you are banned from this patient's room",
                ));
            }
            _ => self
                .bot
                .invite(&room_id, user)
                .await
                .map_err(LaunchError::internal)?,
        }
        Ok(room_id)
    }

    async fn create_room(
        &self,
        base: &str,
        patient_id: &str,
        user: &UserId,
    ) -> Result<OwnedRoomId, LaunchError> {
        // `"org.handover.context": "patient"` makes it a patient-context room (the server's
        // rule `patient_context_room`, docs/GOVERNANCE.md).
        let mut initial_state = Vec::new();
        // Some EPRs use the NHS number as the logical id: then the link stays in the bridge.
        let withheld = contains_nhs_number(patient_id);
        if !withheld {
            initial_state.push(json!({"type": PATIENT_LINK_TYPE, "state_key": "",
                "content": {"fhir_base": base, "patient_id": patient_id}}));
        }
        let room_id = self
            .bot
            .create_room(NewRoom {
                name: "Patient care team".into(),
                topic: Some(
                    "Linked to a patient's record in the EPR. !patient shows who; react 📋 or reply !file to file a message or photo to the record.".into(),
                ),
                invite: vec![user.to_owned()],
                creation_content: Some(json!({"org.handover.context": "patient"})),
                initial_state,
                ..Default::default()
            })
            .await
            .map_err(LaunchError::internal)?;
        let link = PatientRoom {
            room_id: room_id.to_string(),
            fhir_base: base.to_owned(),
            patient_id: patient_id.to_owned(),
        };
        self.store
            .link_room(link, user.to_string(), self.now())
            .await
            .map_err(LaunchError::internal)?;
        if withheld {
            let _ = self
                .store
                .db
                .audit(AuditEntry::new("room.link_state_withheld", "ok").target(room_id.as_str()))
                .await;
        }
        if self.cfg.care_team.seed {
            self.seed_care_team(&room_id, patient_id, user).await;
        }
        Ok(room_id)
    }

    /// Invites the mapped care team (best effort: the room works without them).
    async fn seed_care_team(&self, room_id: &RoomId, patient_id: &str, caller: &UserId) {
        let users = match self.care_team_users(patient_id).await {
            Ok(u) => u,
            Err(e) => {
                tracing::warn!(error = %e, room_id = %room_id, "care team not seeded");
                return;
            }
        };
        for u in users.iter().filter(|u| u.as_str() != caller.as_str()) {
            let Ok(uid) = <&UserId>::try_from(u.as_str()) else {
                continue;
            };
            let outcome = match self.bot.invite(room_id, uid).await {
                Ok(()) => "ok",
                Err(e) => {
                    tracing::warn!(error = %e, "inviting a care team member failed");
                    "error"
                }
            };
            let _ = self
                .store
                .db
                .audit(
                    AuditEntry::new("room.care_team_invite", outcome)
                        .target(u.clone())
                        .detail("room_id", room_id.to_string()),
                )
                .await;
        }
    }

    /// Local users of the patient's active care team (CareTeam participants, EpisodeOfCare
    /// care managers), mapped through the staff identifiers.
    pub async fn care_team_users(&self, patient_id: &str) -> Result<Vec<String>, FhirError> {
        let subject = enc(&format!("Patient/{patient_id}"));
        let teams = self
            .fhir
            .get(&format!("CareTeam?subject={subject}&status=active"))
            .await?;
        let episodes = self
            .fhir
            .get(&format!("EpisodeOfCare?patient={subject}&status=active"))
            .await?;
        let mut users = Vec::new();
        for r in resources::care_team_practitioners(&[teams, episodes]) {
            let p = match self.fhir.get(&r).await {
                Ok(p) => p,
                Err(e) if e.not_found() => continue,
                Err(e) => return Err(e),
            };
            let (ids, emails) = resources::practitioner_ids(&p);
            if let Some(u) = self.staff.user_for(&ids, &emails)
                && !users.contains(&u)
            {
                users.push(u);
            }
        }
        Ok(users)
    }

    /// `Practitioner/<id>` of a local user, found by the identifiers the staff mapping gives.
    pub async fn practitioner_of(&self, user: &str) -> Result<Option<String>, FhirError> {
        for (system, value) in self.staff.identifiers_of(user) {
            let b = self
                .fhir
                .get(&format!(
                    "Practitioner?identifier={}",
                    enc(&format!("{system}|{value}"))
                ))
                .await?;
            let id = b["entry"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|e| &e["resource"])
                .find(|r| r["resourceType"] == "Practitioner")
                .and_then(|r| r["id"].as_str());
            if let Some(id) = id {
                return Ok(Some(format!("Practitioner/{id}")));
            }
        }
        Ok(None)
    }
}
