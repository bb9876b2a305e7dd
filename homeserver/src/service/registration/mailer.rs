//! Sends a message through the configured `sendmail`-compatible command (`email.sendmail_command`):
//! the whole RFC 5322 message on standard input, exit 0 = accepted for delivery. The message
//! itself (it carries a validation token) never reaches the logs; failures log the exit status.

use std::process::Stdio;
use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio::process::Command;

/// An argument replaced by the recipient's address.
const TO_PLACEHOLDER: &str = "{to}";

pub struct Mailer {
    argv: Vec<String>,
    timeout: Duration,
    from: String,
}

/// One plain-text message.
pub struct Mail<'a> {
    pub to: &'a str,
    pub subject: &'a str,
    pub body: &'a str,
}

impl Mailer {
    /// `None` when no command is configured.
    pub fn new(argv: &[String], timeout: Duration, from: String) -> Option<Self> {
        (!argv.is_empty()).then(|| Self {
            argv: argv.to_vec(),
            timeout,
            from,
        })
    }

    /// The message as the mail command receives it. `to` is a validated address (no line
    /// breaks); the subject and body are ours.
    pub fn render(&self, m: &Mail<'_>) -> String {
        let mut out = format!(
            "From: {}\r\nTo: {}\r\nSubject: {}\r\nMIME-Version: 1.0\r\n\
             Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\
             Auto-Submitted: auto-generated\r\n\r\n",
            self.from, m.to, m.subject
        );
        for line in m.body.lines() {
            out.push_str(line);
            out.push_str("\r\n");
        }
        out
    }

    pub async fn send(&self, m: &Mail<'_>) -> Result<(), String> {
        let message = self.render(m);
        tokio::time::timeout(self.timeout, self.run(m.to, message.as_bytes()))
            .await
            .unwrap_or_else(|_| Err(format!("mail command timed out after {:?}", self.timeout)))
    }

    async fn run(&self, to: &str, message: &[u8]) -> Result<(), String> {
        let args = self.argv[1..].iter().map(|a| a.replace(TO_PLACEHOLDER, to));
        let mut child = Command::new(&self.argv[0])
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            // A timed-out command must not linger.
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| format!("mail command did not start: {e}"))?;
        if let Some(mut stdin) = child.stdin.take() {
            stdin
                .write_all(message)
                .await
                .map_err(|e| format!("mail command did not read the message: {e}"))?;
        }
        let status = child
            .wait()
            .await
            .map_err(|e| format!("mail command failed: {e}"))?;
        if status.success() {
            Ok(())
        } else {
            Err(format!("mail command exited with {status}"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mailer(argv: &[&str], timeout_ms: u64) -> Mailer {
        let argv: Vec<String> = argv.iter().map(|s| s.to_string()).collect();
        Mailer::new(
            &argv,
            Duration::from_millis(timeout_ms),
            "Handover <noreply@x>".into(),
        )
        .unwrap()
    }

    #[tokio::test]
    async fn the_message_goes_to_stdin_and_to_replaces_the_placeholder() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("mail");
        let script = format!(
            "cat > '{}'; echo \"$0\" >> '{}'",
            out.display(),
            out.display()
        );
        let m = mailer(&["sh", "-c", &script, "{to}"], 5000);
        let mail = Mail {
            to: "a.smith@nhs.net",
            subject: "Hello",
            body: "line one\nline two",
        };
        m.send(&mail).await.unwrap();
        let got = std::fs::read_to_string(&out).unwrap();
        assert!(got.starts_with("From: Handover <noreply@x>\r\nTo: a.smith@nhs.net\r\n"));
        assert!(got.contains("Subject: Hello\r\n"));
        assert!(got.contains("\r\n\r\nline one\r\nline two\r\n"));
        assert!(got.ends_with("a.smith@nhs.net\n"), "{got}");
    }

    #[tokio::test]
    async fn failures_are_reported() {
        let mail = Mail {
            to: "a@nhs.net",
            subject: "s",
            body: "b",
        };
        let e = mailer(&["sh", "-c", "cat >/dev/null; exit 75"], 5000)
            .send(&mail)
            .await
            .unwrap_err();
        assert!(e.contains("75"), "{e}");
        let e = mailer(&["sh", "-c", "sleep 5"], 100)
            .send(&mail)
            .await
            .unwrap_err();
        assert!(e.contains("timed out"), "{e}");
        assert!(
            mailer(&["/nonexistent/sendmail"], 1000)
                .send(&mail)
                .await
                .is_err()
        );
        assert!(Mailer::new(&[], Duration::from_secs(1), String::new()).is_none());
    }
}
