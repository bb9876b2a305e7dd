//! `handover doctor`: what an IG lead or the IT team would want flagged in a configuration and,
//! with `--url`, in the running server. Each finding has a severity; any critical finding makes
//! the command exit non-zero, so it can gate a deployment or page someone from cron.

mod cert;
mod checks;
mod remote;

use serde::Serialize;

use crate::config::Config;

pub use self::cert::not_after;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Info,
    Warning,
    Critical,
}

impl Severity {
    fn label(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Warning => "WARNING",
            Severity::Critical => "CRITICAL",
        }
    }
}

/// One thing found: which check, how bad, and what to do about it in words.
#[derive(Debug, Clone, Serialize)]
pub struct Finding {
    pub check: &'static str,
    pub severity: Severity,
    pub message: String,
}

impl Finding {
    pub fn new(check: &'static str, severity: Severity, message: impl Into<String>) -> Self {
        Self {
            check,
            severity,
            message: message.into(),
        }
    }
}

/// Every configuration check (files the config names included), at time `now_ms`.
pub fn check_config(cfg: &Config, now_ms: u64) -> Vec<Finding> {
    checks::all(cfg, now_ms)
}

/// The running server at `url`: `/ready` and `/_matrix/client/versions`.
pub async fn check_server(url: &str) -> Vec<Finding> {
    remote::check(url).await
}

/// The `doctor` command: every check, printed; returns the exit code.
pub async fn run(cfg: &Config, url: Option<&str>, json: bool) -> i32 {
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or_default();
    let mut findings = check_config(cfg, now_ms);
    if let Some(url) = url {
        findings.extend(check_server(url).await);
    }
    if json {
        println!("{:#}", render_json(&findings));
    } else {
        print!("{}", render_human(&findings));
    }
    exit_code(&findings)
}

/// Findings worst first, one per line.
pub fn render_human(findings: &[Finding]) -> String {
    let mut sorted: Vec<&Finding> = findings.iter().collect();
    sorted.sort_by_key(|f| std::cmp::Reverse(f.severity));
    let mut out = String::new();
    for f in sorted {
        out.push_str(&format!(
            "{:<8} {:<22} {}\n",
            f.severity.label(),
            f.check,
            f.message
        ));
    }
    let count = |s| findings.iter().filter(|f| f.severity == s).count();
    out.push_str(&format!(
        "{} critical, {} warning(s), {} info\n",
        count(Severity::Critical),
        count(Severity::Warning),
        count(Severity::Info)
    ));
    out
}

/// `{"findings": [...], "critical": n, "warnings": n}`.
pub fn render_json(findings: &[Finding]) -> serde_json::Value {
    let count = |s| findings.iter().filter(|f| f.severity == s).count();
    serde_json::json!({
        "findings": findings,
        "critical": count(Severity::Critical),
        "warnings": count(Severity::Warning),
    })
}

/// The process exit code: 1 when anything is critical.
pub fn exit_code(findings: &[Finding]) -> i32 {
    i32::from(findings.iter().any(|f| f.severity == Severity::Critical))
}
