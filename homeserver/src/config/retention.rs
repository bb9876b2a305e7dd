//! `[retention]`: message retention and purge (docs/GOVERNANCE.md, "Retention and purge").

use serde::{Deserialize, Serialize};

/// Durations are strings: a number with a unit `ms`, `s`, `m`, `h`, `d` or `w` ("30d", "1h").
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetentionConfig {
    /// Lifetime of events in rooms without `m.room.retention`; unset keeps them forever.
    #[serde(default)]
    pub default_lifetime: Option<String>,
    /// Bounds a room's own `m.room.retention` is clamped into.
    #[serde(default)]
    pub min_lifetime: Option<String>,
    #[serde(default)]
    pub max_lifetime: Option<String>,
    /// How often the purge job runs inside the server.
    #[serde(default = "default_purge_interval")]
    pub purge_interval: String,
    /// How long the original content of a redacted event is kept before it is erased.
    #[serde(default = "default_redacted_grace")]
    pub redacted_grace: String,
    /// Undelivered to-device messages (e.g. room keys for a device that stopped syncing) are
    /// dropped after this long; unset keeps them until delivered.
    #[serde(default = "default_to_device_lifetime")]
    pub to_device_lifetime: Option<String>,
    /// Rows changed per write transaction, so a purge never holds the writer for long.
    #[serde(default = "default_purge_batch")]
    pub batch_size: usize,
    /// PDUs and EDUs queued for a server that stayed unreachable this long are dropped (the
    /// queued copy of a message must not outlive the message); unset keeps them until sent.
    #[serde(default = "default_outbox_lifetime")]
    pub outbox_lifetime: Option<String>,
    /// Cached copies of other servers' media are deleted this long after they were fetched
    /// (fetched again on the next download); unset keeps them.
    #[serde(default = "default_remote_media_lifetime")]
    pub remote_media_lifetime: Option<String>,
    /// The free-text reason of a content report is erased this long after the report (the
    /// report itself stays as IG evidence); unset keeps it.
    #[serde(default = "default_report_reason_lifetime")]
    pub report_reason_lifetime: Option<String>,
    /// The room preview (stripped state) of a pending invite from another server is dropped
    /// this long after the invite; unset keeps it while the invite is pending.
    #[serde(default = "default_remote_invite_lifetime")]
    pub remote_invite_lifetime: Option<String>,
    /// Uploads of type `application/octet-stream` (encrypted attachments: their URL is inside
    /// the ciphertext, so no event is known to refer to them) that no event, profile or legal
    /// hold keeps are deleted this long after upload. Unset: the server's `max_lifetime` (no
    /// room keeps the message longer); with neither, they are kept.
    #[serde(default)]
    pub unreferenced_media_lifetime: Option<String>,
}

fn default_purge_interval() -> String {
    "1h".into()
}
fn default_redacted_grace() -> String {
    "7d".into()
}
fn default_to_device_lifetime() -> Option<String> {
    Some("30d".into())
}
fn default_purge_batch() -> usize {
    500
}
fn default_outbox_lifetime() -> Option<String> {
    Some("7d".into())
}
fn default_remote_media_lifetime() -> Option<String> {
    Some("30d".into())
}
fn default_report_reason_lifetime() -> Option<String> {
    Some("365d".into())
}
fn default_remote_invite_lifetime() -> Option<String> {
    Some("30d".into())
}

impl Default for RetentionConfig {
    fn default() -> Self {
        Self {
            default_lifetime: None,
            min_lifetime: None,
            max_lifetime: None,
            purge_interval: default_purge_interval(),
            redacted_grace: default_redacted_grace(),
            to_device_lifetime: default_to_device_lifetime(),
            batch_size: default_purge_batch(),
            outbox_lifetime: default_outbox_lifetime(),
            remote_media_lifetime: default_remote_media_lifetime(),
            report_reason_lifetime: default_report_reason_lifetime(),
            remote_invite_lifetime: default_remote_invite_lifetime(),
            unreferenced_media_lifetime: None,
        }
    }
}

/// Lifetimes (ms) of copies of content outside the events: `None` keeps them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CopyLifetimes {
    /// Federation queue rows (and their payloads) for unreachable servers.
    pub outbox_ms: Option<u64>,
    /// Cached copies of other servers' media.
    pub remote_media_ms: Option<u64>,
    /// The free-text reason of content reports.
    pub report_reason_ms: Option<u64>,
    /// The stripped state of pending invites from other servers.
    pub remote_invite_ms: Option<u64>,
    /// Unreferenced `application/octet-stream` uploads (encrypted attachments).
    pub unreferenced_media_ms: Option<u64>,
}

/// Parses "30d", "12h", "15m", "10s", "500ms", "2w" into milliseconds.
pub fn parse_duration_ms(s: &str) -> Result<u64, String> {
    let s = s.trim();
    let split = s
        .find(|c: char| !c.is_ascii_digit())
        .ok_or_else(|| format!("`{s}` needs a unit (ms, s, m, h, d, w)"))?;
    let (num, unit) = s.split_at(split);
    let n: u64 = num
        .parse()
        .map_err(|_| format!("`{s}` is not a duration"))?;
    let mult = match unit {
        "ms" => 1,
        "s" => 1000,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        "w" => 7 * 86_400_000,
        _ => return Err(format!("`{s}`: unknown unit (ms, s, m, h, d, w)")),
    };
    n.checked_mul(mult)
        .ok_or_else(|| format!("`{s}` is too long"))
}

impl RetentionConfig {
    fn opt(key: &str, v: &Option<String>) -> Result<Option<u64>, String> {
        v.as_deref()
            .map(parse_duration_ms)
            .transpose()
            .map_err(|e| format!("configuration error: key `retention.{key}`: {e}"))
    }

    /// The server's bounds for the policy hook, in milliseconds.
    pub fn bounds(&self) -> Result<handover_policy::RetentionBounds, String> {
        Ok(handover_policy::RetentionBounds {
            default_lifetime: Self::opt("default_lifetime", &self.default_lifetime)?,
            min_lifetime: Self::opt("min_lifetime", &self.min_lifetime)?,
            max_lifetime: Self::opt("max_lifetime", &self.max_lifetime)?,
        })
    }

    pub fn purge_interval_ms(&self) -> Result<u64, String> {
        Ok(Self::opt("purge_interval", &Some(self.purge_interval.clone()))?.unwrap_or(0))
    }

    pub fn redacted_grace_ms(&self) -> Result<u64, String> {
        Ok(Self::opt("redacted_grace", &Some(self.redacted_grace.clone()))?.unwrap_or(0))
    }

    pub fn to_device_lifetime_ms(&self) -> Result<Option<u64>, String> {
        Self::opt("to_device_lifetime", &self.to_device_lifetime)
    }

    /// Lifetimes of the other copies of content. `"never"` keeps them (the keys have
    /// defaults, so leaving one out does not).
    pub fn copy_lifetimes_ms(&self) -> Result<CopyLifetimes, String> {
        let life = |key: &str, v: &Option<String>| {
            Self::opt(key, &v.clone().filter(|s| s.trim() != "never"))
        };
        Ok(CopyLifetimes {
            outbox_ms: life("outbox_lifetime", &self.outbox_lifetime)?,
            remote_media_ms: life("remote_media_lifetime", &self.remote_media_lifetime)?,
            report_reason_ms: life("report_reason_lifetime", &self.report_reason_lifetime)?,
            remote_invite_ms: life("remote_invite_lifetime", &self.remote_invite_lifetime)?,
            unreferenced_media_ms: match &self.unreferenced_media_lifetime {
                None => self.bounds()?.max_lifetime,
                v => life("unreferenced_media_lifetime", v)?,
            },
        })
    }

    pub(super) fn validate(&self) -> Result<(), String> {
        self.to_device_lifetime_ms()?;
        self.copy_lifetimes_ms()?;
        let b = self.bounds()?;
        if let (Some(min), Some(max)) = (b.min_lifetime, b.max_lifetime)
            && min > max
        {
            return Err(
                "configuration error: `retention.min_lifetime` exceeds `retention.max_lifetime`"
                    .into(),
            );
        }
        if self.purge_interval_ms()? == 0 {
            return Err("configuration error: key `retention.purge_interval` must be > 0".into());
        }
        self.redacted_grace_ms()?;
        if self.batch_size == 0 {
            return Err("configuration error: key `retention.batch_size` must be > 0".into());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::super::Config;

    #[test]
    fn retention_section_defaults_and_loads() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("c.toml");
        std::fs::write(&f, "server_name = \"x\"\n").unwrap();
        let cfg = Config::load(Some(&f)).unwrap();
        assert_eq!(cfg.retention.bounds().unwrap().default_lifetime, None);
        assert_eq!(cfg.retention.purge_interval_ms().unwrap(), 3_600_000);
        assert_eq!(cfg.retention.redacted_grace_ms().unwrap(), 7 * 86_400_000);
        assert_eq!(
            cfg.retention.copy_lifetimes_ms().unwrap(),
            super::CopyLifetimes {
                outbox_ms: Some(7 * 86_400_000),
                remote_media_ms: Some(30 * 86_400_000),
                report_reason_ms: Some(365 * 86_400_000),
                remote_invite_ms: Some(30 * 86_400_000),
                unreferenced_media_ms: None,
            }
        );
        std::fs::write(
            &f,
            "server_name = \"x\"\n[retention]\ndefault_lifetime = \"30d\"\nmax_lifetime = \"2w\"\n",
        )
        .unwrap();
        let b = Config::load(Some(&f)).unwrap().retention.bounds().unwrap();
        assert_eq!(b.default_lifetime, Some(30 * 86_400_000));
        assert_eq!(b.max_lifetime, Some(14 * 86_400_000));
        std::fs::write(
            &f,
            "server_name = \"x\"\n[retention]\nmin_lifetime = \"3 days\"\n",
        )
        .unwrap();
        let err = Config::load(Some(&f)).unwrap_err();
        assert!(err.contains("retention.min_lifetime"), "{err}");
    }

    #[test]
    fn copy_lifetimes_follow_never_and_max_lifetime() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("c.toml");
        std::fs::write(
            &f,
            "server_name = \"x\"\n[retention]\nmax_lifetime = \"90d\"\noutbox_lifetime = \"never\"\n",
        )
        .unwrap();
        let c = Config::load(Some(&f))
            .unwrap()
            .retention
            .copy_lifetimes_ms()
            .unwrap();
        assert_eq!(c.outbox_ms, None);
        // Unset: encrypted attachments live as long as any room may keep a message.
        assert_eq!(c.unreferenced_media_ms, Some(90 * 86_400_000));
        std::fs::write(
            &f,
            "server_name = \"x\"\n[retention]\nremote_media_lifetime = \"soon\"\n",
        )
        .unwrap();
        let err = Config::load(Some(&f)).unwrap_err();
        assert!(err.contains("retention.remote_media_lifetime"), "{err}");
    }
}
