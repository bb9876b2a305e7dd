//! `[email]`: how the server sends email (validation links for registration restricted to NHS
//! domains, `registration.allowed_email_domains`). No SMTP client in the server: mail goes to a
//! `sendmail`-compatible command, as every MTA (Postfix, Exim, msmtp, NHSmail relays via msmtp)
//! provides one, and the relay's credentials and TLS stay in the MTA's own configuration.

use serde::{Deserialize, Serialize};

use super::parse_duration_ms;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmailConfig {
    /// The mail command, as argv: the whole message (headers and body) goes to its standard
    /// input. An argument `{to}` is replaced by the recipient's address. Exit 0 means accepted
    /// for delivery. Empty: this server sends no email. E.g. `["/usr/sbin/sendmail", "-t", "-i"]`.
    #[serde(default)]
    pub sendmail_command: Vec<String>,
    /// The `From:` header. Unset: `Handover <noreply@<server_name>>`.
    #[serde(default)]
    pub from: Option<String>,
    /// How long a validation link works; a validated address must then be used within the same
    /// time (a duration: "1h", "30m").
    #[serde(default = "default_validation_lifetime")]
    pub validation_lifetime: String,
    /// The mail command is killed, and the request fails, after this many seconds.
    #[serde(default = "default_timeout_secs")]
    pub timeout_secs: u64,
}

fn default_validation_lifetime() -> String {
    "1h".into()
}

fn default_timeout_secs() -> u64 {
    30
}

impl Default for EmailConfig {
    fn default() -> Self {
        Self {
            sendmail_command: vec![],
            from: None,
            validation_lifetime: default_validation_lifetime(),
            timeout_secs: default_timeout_secs(),
        }
    }
}

impl EmailConfig {
    pub fn validation_lifetime_ms(&self) -> Result<u64, String> {
        parse_duration_ms(&self.validation_lifetime)
            .map_err(|e| format!("configuration error: key `email.validation_lifetime`: {e}"))
    }

    /// The `From:` header for `server_name`.
    pub fn from_header(&self, server_name: &str) -> String {
        self.from
            .clone()
            .unwrap_or_else(|| format!("Handover <noreply@{server_name}>"))
    }

    /// Checks this section and, with it, `registration.allowed_email_domains`, which needs it.
    pub(super) fn validate(&self, allowed_email_domains: &[String]) -> Result<(), String> {
        self.validation_lifetime_ms()?;
        if self.timeout_secs == 0 {
            return Err("configuration error: key `email.timeout_secs` must be at least 1".into());
        }
        if self
            .from
            .as_deref()
            .is_some_and(|f| f.contains(['\r', '\n']) || f.trim().is_empty())
        {
            return Err(
                "configuration error: key `email.from` must be one non-empty header line".into(),
            );
        }
        handover_policy::EmailDomains::parse(allowed_email_domains).map_err(|e| {
            format!("configuration error: key `registration.allowed_email_domains`: {e}")
        })?;
        if !allowed_email_domains.is_empty() && self.sendmail_command.is_empty() {
            return Err(
                "configuration error: key `registration.allowed_email_domains` needs \
                 `email.sendmail_command`: registrants prove their address with an emailed link"
                    .into(),
            );
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use crate::config::Config;

    fn load(toml: &str) -> Result<Config, String> {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("c.toml");
        std::fs::write(&f, format!("server_name = \"trust.nhs.uk\"\n{toml}")).unwrap();
        Config::load(Some(&f))
    }

    #[test]
    fn email_domains_need_a_mail_command_and_valid_patterns() {
        let err = load("[registration]\nmode = \"open\"\nallowed_email_domains = [\"nhs.net\"]\n")
            .unwrap_err();
        assert!(err.contains("email.sendmail_command"), "{err}");
        let err = load(
            "[registration]\nmode = \"open\"\nallowed_email_domains = [\"*.uk\"]\n\
             [email]\nsendmail_command = [\"sendmail\", \"-t\"]\n",
        )
        .unwrap_err();
        assert!(err.contains("registration.allowed_email_domains"), "{err}");
        let cfg = load(
            "[registration]\nmode = \"open\"\nallowed_email_domains = [\"nhs.net\", \"*.nhs.uk\"]\n\
             [email]\nsendmail_command = [\"sendmail\", \"-t\"]\nvalidation_lifetime = \"30m\"\n",
        )
        .unwrap();
        assert_eq!(cfg.registration.allowed_email_domains.len(), 2);
        assert_eq!(cfg.email.validation_lifetime_ms().unwrap(), 30 * 60 * 1000);
        assert_eq!(
            cfg.email.from_header("trust.nhs.uk"),
            "Handover <noreply@trust.nhs.uk>"
        );
        let err = load("[email]\nvalidation_lifetime = \"soon\"\n").unwrap_err();
        assert!(err.contains("email.validation_lifetime"), "{err}");
    }

    #[test]
    fn defaults_send_no_email() {
        let cfg = load("").unwrap();
        assert!(cfg.email.sendmail_command.is_empty());
        assert!(cfg.registration.allowed_email_domains.is_empty());
    }
}
