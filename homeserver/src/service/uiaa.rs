//! User-interactive authentication: sessions in memory, stages completed one request at a time.
//! Sessions are short-lived (a client finishes a flow in seconds), so memory is the right home:
//! a restart only makes a client start its flow again.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use ruma::api::client::uiaa::{AuthData, AuthFlow, AuthType, UiaaInfo};
use ruma::api::error::{ErrorKind, StandardErrorBody};

use crate::error::{Error, Result};

const SESSION_TTL: Duration = Duration::from_secs(15 * 60);
/// The account page (MSC4191), where the `m.oauth` stage sends the user to approve; defined
/// here, below the OAuth service that serves it, so the users service can name it.
pub const ACCOUNT_PAGE_PATH: &str = "/_handover/account/";

struct UiaSession {
    completed: Vec<AuthType>,
    created: Instant,
    /// What completed stages proved (e.g. the validated email address), handed to the caller
    /// when the whole flow completes: a flow's stages may arrive in different requests.
    notes: BTreeMap<String, String>,
}

#[derive(Default)]
pub struct UiaaService {
    sessions: Mutex<HashMap<String, UiaSession>>,
    /// `m.oauth` (MSC4312): users who approved an action on the account page, until when.
    oauth_approvals: Mutex<HashMap<String, Instant>>,
}

/// Checks one submitted stage; returns `Ok(true)` if it is valid.
pub type StageCheck<'a> = &'a (dyn Fn(&AuthData) -> Result<bool> + Send + Sync);

impl UiaaService {
    /// The user approved, on the account page, the action the `m.oauth` stage guards (a
    /// cross-signing reset) for `window`.
    pub fn approve_oauth(&self, user_id: &str, window: Duration) {
        let mut a = self.oauth_approvals.lock().expect("uiaa lock");
        let now = Instant::now();
        a.retain(|_, until| *until > now);
        a.insert(user_id.to_owned(), now + window);
    }

    /// Spends the user's live approval, if any (one approval, one reset).
    pub fn take_oauth_approval(&self, user_id: &str) -> bool {
        let mut a = self.oauth_approvals.lock().expect("uiaa lock");
        a.remove(user_id)
            .is_some_and(|until| until > Instant::now())
    }

    /// The `m.oauth` stage's 401 (MSC4312): one flow, the account page URL in `params`, the
    /// client's session kept (it retries with it once the user has approved).
    pub fn oauth_required(&self, auth: Option<&AuthData>, url: &str) -> Error {
        let mut sessions = self.sessions.lock().expect("uiaa lock");
        sessions.retain(|_, s| s.created.elapsed() < SESSION_TTL);
        let id = match auth.and_then(|a| a.session()) {
            Some(id) if sessions.contains_key(id) => id.to_owned(),
            _ => {
                let id = ruma::TransactionId::new().to_string();
                sessions.insert(
                    id.clone(),
                    UiaSession {
                        completed: Vec::new(),
                        created: Instant::now(),
                        notes: BTreeMap::new(),
                    },
                );
                id
            }
        };
        let mut info = UiaaInfo::new(vec![AuthFlow::new(vec![AuthType::OAuth])]);
        info.session = Some(id);
        info.params =
            serde_json::value::to_raw_value(&serde_json::json!({"m.oauth": {"url": url}})).ok();
        Error::Uiaa(Box::new(info))
    }

    /// Advances the flow with `auth`. `Ok(())` once some flow's stages are all complete;
    /// otherwise `Err(Error::Uiaa)` (401 with flows, completed stages and the session id).
    pub fn check(
        &self,
        auth: Option<&AuthData>,
        flows: &[AuthFlow],
        check_stage: StageCheck<'_>,
    ) -> Result<()> {
        self.check_with_notes(auth, flows, check_stage, None)
            .map(|_| ())
    }

    /// As `check`; when the submitted stage is valid, `note` (key, value) is kept with the UIA
    /// session. Returns every note of the session once some flow is complete.
    pub fn check_with_notes(
        &self,
        auth: Option<&AuthData>,
        flows: &[AuthFlow],
        check_stage: StageCheck<'_>,
        note: Option<(&str, String)>,
    ) -> Result<BTreeMap<String, String>> {
        let mut sessions = self.sessions.lock().expect("uiaa lock");
        sessions.retain(|_, s| s.created.elapsed() < SESSION_TTL);

        let session_id = auth.and_then(|a| a.session()).map(str::to_owned);
        let session_id = match session_id {
            Some(id) if sessions.contains_key(&id) => id,
            Some(_) => {
                return Err(Error::new(
                    http::StatusCode::BAD_REQUEST,
                    ErrorKind::Unknown,
                    "Unknown UIA session",
                ));
            }
            None => {
                let id = ruma::TransactionId::new().to_string();
                sessions.insert(
                    id.clone(),
                    UiaSession {
                        completed: Vec::new(),
                        created: Instant::now(),
                        notes: BTreeMap::new(),
                    },
                );
                id
            }
        };

        let mut auth_error = None;
        if let Some(auth) = auth {
            let stage = auth.auth_type();
            let allowed = stage
                .as_ref()
                .is_some_and(|s| flows.iter().any(|f| f.stages.contains(s)));
            match (allowed, check_stage(auth)) {
                (true, Ok(true)) => {
                    let s = sessions.get_mut(&session_id).expect("present");
                    let stage = stage.expect("allowed implies some");
                    if !s.completed.contains(&stage) {
                        s.completed.push(stage);
                    }
                    if let Some((k, v)) = note {
                        s.notes.insert(k.to_owned(), v);
                    }
                }
                (true, Ok(false)) => {
                    auth_error = Some(StandardErrorBody::new(
                        ErrorKind::Forbidden,
                        "Invalid authentication".into(),
                    ));
                }
                (false, _) => {
                    auth_error = Some(StandardErrorBody::new(
                        ErrorKind::Unrecognized,
                        "Unsupported authentication stage".into(),
                    ));
                }
                (true, Err(e)) => return Err(e),
            }
        }

        let completed = &sessions[&session_id].completed;
        if flows
            .iter()
            .any(|f| f.stages.iter().all(|s| completed.contains(s)))
        {
            let done = sessions.remove(&session_id).expect("present");
            return Ok(done.notes);
        }
        let mut info = UiaaInfo::new(flows.to_vec());
        info.completed = completed.clone();
        info.session = Some(session_id);
        info.auth_error = auth_error.map(Box::new);
        Err(Error::Uiaa(Box::new(info)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ruma::api::client::uiaa::Dummy;

    #[test]
    fn dummy_flow_needs_a_session_round_trip() {
        let svc = UiaaService::default();
        let flows = [AuthFlow::new(vec![AuthType::Dummy])];
        let ok: StageCheck<'_> = &|_| Ok(true);
        let Err(Error::Uiaa(info)) = svc.check(None, &flows, ok) else {
            panic!("expected 401")
        };
        let session = info.session.clone().unwrap();
        let mut d = Dummy::new();
        d.session = Some(session.clone());
        svc.check(Some(&AuthData::Dummy(d.clone())), &flows, ok)
            .unwrap();
        // The session is consumed once the flow completes.
        assert!(svc.check(Some(&AuthData::Dummy(d)), &flows, ok).is_err());
    }
}
