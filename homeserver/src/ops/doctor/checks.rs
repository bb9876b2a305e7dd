//! The configuration checks of `handover doctor`, one function each. Thresholds are fixed
//! (docs/OPERATIONS.md, "doctor" explains each): a check that needs tuning per site is a
//! warning, never a critical.

use std::path::Path;

use super::{Finding, Severity};
use crate::config::{Config, PolicyRules, RegistrationMode};
use crate::service::federation::list::{Insecure, insecure_findings};

const DAY_MS: u64 = 24 * 3600 * 1000;
/// A certificate expiring within this is critical (renewal has visibly failed).
const CERT_CRITICAL_DAYS: u64 = 7;
/// ... within this, a warning (automatic renewal normally happens 30 days before).
const CERT_WARNING_DAYS: u64 = 21;
/// Free space of the data directory's file system below this share is critical (SQLite then
/// answers 503 to every write), below the second a warning.
const DISK_CRITICAL_PERCENT: f64 = 5.0;
const DISK_WARNING_PERCENT: f64 = 15.0;
/// The last backup older than this is a warning (backups are expected daily), older than the
/// second critical.
const BACKUP_WARNING_DAYS: u64 = 2;
const BACKUP_CRITICAL_DAYS: u64 = 7;

pub fn all(cfg: &Config, now_ms: u64) -> Vec<Finding> {
    let mut out = Vec::new();
    federation(cfg, &mut out);
    registration(cfg, &mut out);
    retention(cfg, &mut out);
    login_rate_limit(cfg, &mut out);
    policy(cfg, &mut out);
    audit_checkpoints(cfg, &mut out);
    listeners(cfg, &mut out);
    certificate(cfg, now_ms, &mut out);
    disk_space(&cfg.data_dir, &mut out);
    backup_age(&cfg.data_dir, now_ms, &mut out);
    for w in &cfg.load_warnings {
        out.push(Finding::new("config", Severity::Warning, w.clone()));
    }
    out
}

fn federation(cfg: &Config, out: &mut Vec<Finding>) {
    let list = match crate::service::federation::list::load(&cfg.federation) {
        Ok(l) => l,
        Err(e) => {
            out.push(Finding::new(
                "federation_list",
                Severity::Critical,
                format!("the federation list would be refused at start-up: {e}"),
            ));
            return;
        }
    };
    let current = list.as_ref().map(|l| l.current());
    match &current {
        None => out.push(Finding::new(
            "federation_list",
            Severity::Info,
            "no federation.list_file: this server federates with no one",
        )),
        Some(l) => out.push(Finding::new(
            "federation_list",
            Severity::Info,
            format!(
                "federation list serial {} in force, {} organisations",
                l.serial,
                l.organisations.len()
            ),
        )),
    }
    for (kind, message) in insecure_findings(&cfg.federation, current.as_deref()) {
        let (check, severity) = match kind {
            // Impersonation of a listed trust by anyone on the path.
            Insecure::TlsNotVerified => ("federation_tls", Severity::Critical),
            // Legal when the list arrives by a controlled route; an IG lead must know.
            Insecure::ListUnsigned => ("federation_list", Severity::Warning),
        };
        out.push(Finding::new(check, severity, message));
    }
}

fn registration(cfg: &Config, out: &mut Vec<Finding>) {
    let r = &cfg.registration;
    let f = match r.mode {
        RegistrationMode::Open if r.allowed_email_domains.is_empty() => Finding::new(
            "registration",
            Severity::Critical,
            "registration.mode = \"open\" with no allowed_email_domains: anyone who can reach \
             the server can make an account",
        ),
        RegistrationMode::Open => Finding::new(
            "registration",
            Severity::Warning,
            format!(
                "registration is open to anyone with an address in {}",
                r.allowed_email_domains.join(", ")
            ),
        ),
        RegistrationMode::Token => Finding::new(
            "registration",
            Severity::Info,
            "registration needs a registration token",
        ),
        RegistrationMode::Closed => Finding::new(
            "registration",
            Severity::Info,
            "registration is closed (accounts are made by admins)",
        ),
    };
    out.push(f);
}

fn retention(cfg: &Config, out: &mut Vec<Finding>) {
    let r = &cfg.retention;
    if r.default_lifetime.is_none() && r.max_lifetime.is_none() {
        out.push(Finding::new(
            "retention",
            Severity::Warning,
            "no retention: retention.default_lifetime and max_lifetime are unset, so messages \
             are kept for ever (set them to the records-management schedule)",
        ));
    } else {
        out.push(Finding::new(
            "retention",
            Severity::Info,
            format!(
                "retention default {}, maximum {}",
                r.default_lifetime.as_deref().unwrap_or("none"),
                r.max_lifetime.as_deref().unwrap_or("none")
            ),
        ));
    }
}

fn login_rate_limit(cfg: &Config, out: &mut Vec<Finding>) {
    // Password login is always offered, so an unlimited login endpoint is a password-guessing
    // endpoint.
    if !cfg.rate_limit.enabled {
        out.push(Finding::new(
            "login_rate_limit",
            Severity::Critical,
            "rate_limit.enabled = false: password login has no rate limit (password guessing)",
        ));
    } else if cfg.rate_limit.login_per_second > 1.0 || cfg.rate_limit.login_burst > 100 {
        out.push(Finding::new(
            "login_rate_limit",
            Severity::Warning,
            format!(
                "login rate limit is loose: burst {} at {}/s per address and account",
                cfg.rate_limit.login_burst, cfg.rate_limit.login_per_second
            ),
        ));
    }
}

fn policy(cfg: &Config, out: &mut Vec<Finding>) {
    if cfg.policy.rules == PolicyRules::AllowAll {
        out.push(Finding::new(
            "policy",
            Severity::Critical,
            "policy.rules = \"allow-all\": no governance rules are enforced",
        ));
    }
}

fn audit_checkpoints(cfg: &Config, out: &mut Vec<Finding>) {
    let a = &cfg.audit;
    let timer_off = a.checkpoint_interval_ms().map(|ms| ms == 0).unwrap_or(true);
    if a.checkpoint_every == 0 && timer_off {
        out.push(Finding::new(
            "audit_checkpoints",
            Severity::Critical,
            "audit checkpoints are off (checkpoint_every = 0 and checkpoint_interval = 0s): a \
             rewritten and rehashed audit trail would not be detected",
        ));
    } else if a.checkpoint_file.is_none() && a.checkpoint_syslog.is_none() {
        out.push(Finding::new(
            "audit_checkpoints",
            Severity::Warning,
            "audit checkpoints stay in the database only: set audit.checkpoint_file (another \
             mount, append-only) or audit.checkpoint_syslog so they are kept out of reach",
        ));
    }
}

fn listeners(cfg: &Config, out: &mut Vec<Finding>) {
    let l = &cfg.listen;
    if !l.client_tls_on(&cfg.tls) && !l.client.ip().is_loopback() && l.trusted_proxies.is_empty() {
        out.push(Finding::new(
            "client_listener",
            Severity::Warning,
            format!(
                "the client API is plain HTTP on {} (not loopback) and no trusted_proxies: \
                 tokens and passwords cross the network unencrypted unless a proxy is in front",
                l.client
            ),
        ));
    }
    if let Some(m) = cfg.metrics.listen
        && !m.ip().is_loopback()
    {
        out.push(Finding::new(
            "metrics_listener",
            Severity::Warning,
            format!("/metrics (no authentication) listens on {m}: keep it on a management network"),
        ));
    }
    if cfg.public_baseurl.is_none() {
        out.push(Finding::new(
            "public_baseurl",
            Severity::Info,
            format!("public_baseurl unset: clients are told {}", cfg.base_url()),
        ));
    }
}

fn certificate(cfg: &Config, now_ms: u64, out: &mut Vec<Finding>) {
    let Some(path) = &cfg.tls.cert else {
        return;
    };
    let expiry = match super::not_after(path) {
        Ok(t) => t,
        Err(e) => {
            out.push(Finding::new(
                "tls_certificate",
                Severity::Critical,
                format!("{}: {e}", path.display()),
            ));
            return;
        }
    };
    let now_s = (now_ms / 1000) as i64;
    let days_left = (expiry - now_s).div_euclid(86_400);
    let when = handover_compliance::time::format_rfc3339(expiry.saturating_mul(1000));
    let (severity, message) = if expiry <= now_s {
        (Severity::Critical, format!("expired at {when}"))
    } else if days_left < CERT_CRITICAL_DAYS as i64 {
        (
            Severity::Critical,
            format!("expires in {days_left} day(s), at {when}"),
        )
    } else if days_left < CERT_WARNING_DAYS as i64 {
        (
            Severity::Warning,
            format!("expires in {days_left} days, at {when}"),
        )
    } else {
        (
            Severity::Info,
            format!("valid until {when} ({days_left} days)"),
        )
    };
    out.push(Finding::new(
        "tls_certificate",
        severity,
        format!("{}: {message}", path.display()),
    ));
}

/// Free space of the file system holding `dir` (or its nearest existing parent).
fn disk_space(dir: &Path, out: &mut Vec<Finding>) {
    let mut at = dir;
    while !at.exists() {
        match at.parent() {
            Some(p) if !p.as_os_str().is_empty() => at = p,
            _ => {
                at = Path::new(".");
                break;
            }
        }
    }
    match free_space(at) {
        Some((free, total)) if total > 0 => {
            let pct = free as f64 * 100.0 / total as f64;
            let severity = if pct < DISK_CRITICAL_PERCENT {
                Severity::Critical
            } else if pct < DISK_WARNING_PERCENT {
                Severity::Warning
            } else {
                Severity::Info
            };
            out.push(Finding::new(
                "disk_space",
                severity,
                format!(
                    "{}: {:.1} GiB free of {:.1} GiB ({pct:.0}%)",
                    at.display(),
                    free as f64 / (1u64 << 30) as f64,
                    total as f64 / (1u64 << 30) as f64
                ),
            ));
        }
        _ => out.push(Finding::new(
            "disk_space",
            Severity::Warning,
            format!("{}: free space could not be read", at.display()),
        )),
    }
}

/// (available to unprivileged users, total) in bytes.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn free_space(path: &Path) -> Option<(u64, u64)> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(path.as_os_str().as_bytes()).ok()?;
    // SAFETY: statvfs writes into the zeroed struct we own; `c` is a valid C string.
    unsafe {
        let mut s: libc::statvfs = std::mem::zeroed();
        if libc::statvfs(c.as_ptr(), &mut s) != 0 {
            return None;
        }
        let frag = s.f_frsize as u64;
        Some((s.f_bavail as u64 * frag, s.f_blocks as u64 * frag))
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn free_space(_path: &Path) -> Option<(u64, u64)> {
    None
}

fn backup_age(data_dir: &Path, now_ms: u64, out: &mut Vec<Finding>) {
    let marker = data_dir.join(crate::ops::BACKUP_MARKER);
    let completed = std::fs::read(&marker)
        .ok()
        .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
        .and_then(|v| v["completed_ms"].as_u64());
    let Some(done) = completed else {
        out.push(Finding::new(
            "backup",
            Severity::Warning,
            format!(
                "no backup recorded ({} missing): run `handover admin backup` on a schedule",
                marker.display()
            ),
        ));
        return;
    };
    let age_days = now_ms.saturating_sub(done) / DAY_MS;
    let when = handover_compliance::time::format_rfc3339(done as i64);
    let severity = if age_days >= BACKUP_CRITICAL_DAYS {
        Severity::Critical
    } else if age_days >= BACKUP_WARNING_DAYS {
        Severity::Warning
    } else {
        Severity::Info
    };
    out.push(Finding::new(
        "backup",
        severity,
        format!("last backup completed {when} ({age_days} day(s) ago)"),
    ));
}

#[cfg(test)]
#[path = "checks_tests.rs"]
mod tests;
