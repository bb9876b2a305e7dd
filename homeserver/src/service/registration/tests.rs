//! Registration restricted to NHS email domains, through the services with a real mail command
//! (a script appending each message to a file).

use std::sync::Arc;

use ruma::api::client::uiaa::{AuthData, AuthType, Dummy};
use ruma::api::error::ErrorKind;

use super::{Registration, RegistrationService};
use crate::config::{Config, RegistrationMode};
use crate::error::Error;
use crate::service::Services;

struct Fx {
    s: Services,
    dir: tempfile::TempDir,
}

impl Fx {
    fn new(edit: impl FnOnce(&mut Config)) -> Self {
        let (store, dir) = crate::store::sqlite::test_store();
        let mails = dir.path().join("mails.txt");
        let mut config = Config {
            data_dir: dir.path().to_owned(),
            public_baseurl: Some("https://matrix.trust.nhs.uk".into()),
            ..Config::default()
        };
        config.registration.mode = RegistrationMode::Open;
        config.registration.allowed_email_domains = vec!["nhs.net".into(), "*.nhs.uk".into()];
        config.email.sendmail_command = vec![
            "sh".into(),
            "-c".into(),
            "cat >> \"$0\"; echo '=== END ===' >> \"$0\"".into(),
            mails.display().to_string(),
        ];
        edit(&mut config);
        let s = Services::build(config, store, Arc::new(handover_policy::AllowAll)).unwrap();
        Fx { s, dir }
    }

    fn reg(&self) -> &RegistrationService {
        &self.s.registration
    }

    fn mails(&self) -> Vec<String> {
        std::fs::read_to_string(self.dir.path().join("mails.txt"))
            .unwrap_or_default()
            .split("=== END ===\n")
            .filter(|m| !m.is_empty())
            .map(str::to_owned)
            .collect()
    }

    /// The code in the last email.
    fn last_token(&self) -> String {
        let mail = self.mails().pop().expect("an email was sent");
        let (_, rest) = mail.split_once("code in the app: ").expect("a code");
        rest.split_whitespace().next().unwrap().to_owned()
    }

    async fn request(&self, email: &str, attempt: u64) -> Result<String, Error> {
        self.reg()
            .request_email_token("s3cret", email, attempt, None)
            .await
            .map(|t| t.sid)
    }

    async fn register(
        &self,
        user: &str,
        auth: Option<AuthData>,
    ) -> Result<super::Registered, Error> {
        self.reg()
            .register(
                Registration {
                    username: Some(user.into()),
                    password: Some("a long password".into()),
                    auth,
                    ..Registration::default()
                },
                None,
            )
            .await
    }

    /// Registers `user` through the whole email flow.
    async fn register_with_email(&self, user: &str, email: &str) -> super::Registered {
        let sid = self.request(email, 1).await.unwrap();
        let token = self.last_token();
        self.reg()
            .submit_email_token(&sid, "s3cret", &token)
            .await
            .unwrap();
        // First call: the UIA session; second: the email stage completes the flow.
        let Err(Error::Uiaa(info)) = self.register(user, None).await else {
            panic!("expected UIA")
        };
        self.register(user, Some(email_auth(&sid, info.session.clone())))
            .await
            .unwrap()
    }
}

/// ruma offers no constructor for `EmailIdentity`: built the way a client's JSON arrives.
fn email_auth(sid: &str, session: Option<String>) -> AuthData {
    serde_json::from_value(serde_json::json!({
        "type": "m.login.email.identity",
        "threepid_creds": { "sid": sid, "client_secret": "s3cret" },
        "session": session,
    }))
    .unwrap()
}

fn message(e: &Error) -> String {
    match e {
        Error::Matrix { message, .. } => message.clone(),
        Error::Uiaa(_) => String::new(),
    }
}

#[tokio::test]
async fn flows_ask_for_an_email_address_when_domains_are_set() {
    let f = Fx::new(|_| {});
    let flows = f.reg().flows().unwrap();
    assert_eq!(flows.len(), 1);
    assert_eq!(flows[0].stages, vec![AuthType::EmailIdentity]);
    let f = Fx::new(|c| {
        c.registration.mode = RegistrationMode::Token;
        c.registration.tokens = vec!["t".into()];
    });
    assert_eq!(
        f.reg().flows().unwrap()[0].stages,
        vec![AuthType::RegistrationToken, AuthType::EmailIdentity]
    );
    let f = Fx::new(|c| c.registration.allowed_email_domains.clear());
    assert_eq!(f.reg().flows().unwrap()[0].stages, vec![AuthType::Dummy]);
    // Without domains no email is validated at all.
    let e = f.request("a@nhs.net", 1).await.unwrap_err();
    assert_eq!(e.kind(), Some(&ErrorKind::ThreepidMediumNotSupported));
    // The dummy stage alone no longer registers when an email is required.
    let f = Fx::new(|_| {});
    let Err(Error::Uiaa(info)) = f.register("alice", None).await else {
        panic!("expected UIA")
    };
    let mut d = Dummy::new();
    d.session = info.session.clone();
    assert!(matches!(
        f.register("alice", Some(AuthData::Dummy(d))).await,
        Err(Error::Uiaa(_))
    ));
}

#[tokio::test]
async fn addresses_outside_the_domains_are_refused_and_audited() {
    let f = Fx::new(|_| {});
    let e = f.request("someone@gmail.com", 1).await.unwrap_err();
    assert_eq!(e.kind(), Some(&ErrorKind::ThreepidDenied));
    assert!(
        message(&e).contains("email_domain_not_allowed"),
        "{}",
        message(&e)
    );
    for lookalike in ["a@nhs.uk", "a@evilnhs.uk", "a@nhs.net.evil.example"] {
        let e = f.request(lookalike, 1).await.unwrap_err();
        assert_eq!(e.kind(), Some(&ErrorKind::ThreepidDenied), "{lookalike}");
    }
    assert!(f.mails().is_empty(), "no email for a refused address");
    let audit = f.s.audit.all().await.unwrap();
    let denial = audit
        .iter()
        .find(|r| r.rule.as_deref() == Some("email_domain_not_allowed"))
        .expect("audited");
    assert_eq!(denial.action, "policy.denial");
    let details = serde_json::to_string(&denial.details).unwrap();
    assert!(
        details.contains("gmail.com") && !details.contains("someone"),
        "{details}"
    );
    // Bad input is the spec's M_INVALID_PARAM.
    let e = f.request("not an address", 1).await.unwrap_err();
    assert_eq!(e.kind(), Some(&ErrorKind::InvalidParam));
}

#[tokio::test]
async fn a_validated_address_registers_and_becomes_the_accounts_3pid() {
    let f = Fx::new(|_| {});
    let sid = f.request("A.Smith@UHB.nhs.uk", 1).await.unwrap();
    let mail = f.mails().pop().unwrap();
    assert!(mail.contains("To: a.smith@uhb.nhs.uk\r\n"), "{mail}");
    assert!(mail.contains(&format!(
        "https://matrix.trust.nhs.uk/_matrix/client/unstable/org.handover.email/submit_token?sid={sid}&client_secret=s3cret&token="
    )));
    let token = f.last_token();
    // Not validated yet: the stage fails (401 with the flows again).
    let Err(Error::Uiaa(info)) = f.register("alice", None).await else {
        panic!("expected UIA")
    };
    let early = f
        .register("alice", Some(email_auth(&sid, info.session.clone())))
        .await;
    let Err(Error::Uiaa(again)) = early else {
        panic!("expected UIA")
    };
    assert!(again.auth_error.is_some());
    // A wrong token, then the right one.
    let e = f
        .reg()
        .submit_email_token(&sid, "s3cret", "nope")
        .await
        .unwrap_err();
    assert_eq!(e.kind(), Some(&ErrorKind::TokenIncorrect));
    let e = f
        .reg()
        .submit_email_token(&sid, "other-secret", &token)
        .await
        .unwrap_err();
    assert_eq!(e.kind(), Some(&ErrorKind::InvalidParam));
    f.reg()
        .submit_email_token(&sid, "s3cret", &token)
        .await
        .unwrap();
    let done = f
        .register("alice", Some(email_auth(&sid, info.session.clone())))
        .await
        .unwrap();
    assert!(done.session.is_some());
    let ids = f.reg().threepids(&done.user_id).await.unwrap();
    assert_eq!(ids.len(), 1);
    assert_eq!(ids[0].address, "a.smith@uhb.nhs.uk");
    assert_eq!(ids[0].medium.as_str(), "email");
    // The session is consumed: it cannot register a second account.
    let Err(Error::Uiaa(info)) = f.register("bob", None).await else {
        panic!("expected UIA")
    };
    assert!(matches!(
        f.register("bob", Some(email_auth(&sid, info.session.clone())))
            .await,
        Err(Error::Uiaa(_))
    ));
    assert!(
        f.s.audit
            .all()
            .await
            .unwrap()
            .iter()
            .any(|r| r.action == "threepid.bind")
    );
}

#[tokio::test]
async fn retries_resend_only_for_a_new_attempt() {
    let f = Fx::new(|_| {});
    let sid = f.request("a@nhs.net", 1).await.unwrap();
    let first = f.last_token();
    assert_eq!(f.request("a@nhs.net", 1).await.unwrap(), sid);
    assert_eq!(f.mails().len(), 1, "a retry sends nothing");
    assert_eq!(f.request("a@nhs.net", 2).await.unwrap(), sid);
    assert_eq!(f.mails().len(), 2);
    let second = f.last_token();
    assert_ne!(first, second);
    let e = f
        .reg()
        .submit_email_token(&sid, "s3cret", &first)
        .await
        .unwrap_err();
    assert_eq!(e.kind(), Some(&ErrorKind::TokenIncorrect));
    f.reg()
        .submit_email_token(&sid, "s3cret", &second)
        .await
        .unwrap();
}

#[tokio::test]
async fn an_address_in_use_gets_a_notice_not_a_token() {
    let f = Fx::new(|_| {});
    f.register_with_email("alice", "a@nhs.net").await;
    let sid = f.request("a@nhs.net", 1).await.unwrap();
    let mail = f.mails().pop().unwrap();
    assert!(mail.contains("already uses it"), "{mail}");
    assert!(!mail.contains("code in the app"));
    assert!(!mail.contains("submit_token?"));
    let e = f
        .reg()
        .submit_email_token(&sid, "s3cret", "0123456789abcdef0123456789abcdef")
        .await
        .unwrap_err();
    assert_eq!(e.kind(), Some(&ErrorKind::TokenIncorrect));
}

#[tokio::test]
async fn sessions_expire_and_five_wrong_tokens_end_them() {
    let f = Fx::new(|c| c.email.validation_lifetime = "200ms".into());
    let sid = f.request("a@nhs.net", 1).await.unwrap();
    let token = f.last_token();
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let e = f
        .reg()
        .submit_email_token(&sid, "s3cret", &token)
        .await
        .unwrap_err();
    assert_eq!(
        e.kind().map(|k| k.errcode().to_string()).as_deref(),
        Some("M_SESSION_EXPIRED")
    );

    let f = Fx::new(|_| {});
    let sid = f.request("b@nhs.net", 1).await.unwrap();
    let token = f.last_token();
    for _ in 0..5 {
        let e = f
            .reg()
            .submit_email_token(&sid, "s3cret", "wrong")
            .await
            .unwrap_err();
        assert_eq!(e.kind(), Some(&ErrorKind::TokenIncorrect));
    }
    let e = f
        .reg()
        .submit_email_token(&sid, "s3cret", &token)
        .await
        .unwrap_err();
    assert_eq!(e.kind(), Some(&ErrorKind::InvalidParam));
}

#[tokio::test]
async fn deactivation_frees_the_address() {
    let f = Fx::new(|_| {});
    let done = f.register_with_email("alice", "a@nhs.net").await;
    f.s.users.deactivate(&done.user_id, false).await.unwrap();
    assert!(f.reg().threepids(&done.user_id).await.unwrap().is_empty());
    f.register_with_email("alice2", "a@nhs.net").await;
}

#[tokio::test]
async fn closed_registration_sends_nothing() {
    let f = Fx::new(|c| c.registration.mode = RegistrationMode::Closed);
    let e = f.request("a@nhs.net", 1).await.unwrap_err();
    assert_eq!(e.kind(), Some(&ErrorKind::Forbidden));
    assert!(f.mails().is_empty());
}
