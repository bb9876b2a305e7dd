//! `[http]`: timeouts and the connection cap of both listeners (issue 9, item 14), so a slow or
//! idle client cannot hold connections, tasks and memory for ever.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpConfig {
    /// An HTTP/1 request's head (request line and headers) must arrive within this many
    /// seconds of the server starting to wait for it; the same clock closes a keep-alive
    /// connection that stays idle this long between requests.
    #[serde(default = "default_header_timeout_secs")]
    pub header_timeout_secs: u64,
    /// A request body that sends nothing for this many seconds is abandoned (400 to the
    /// handler reading it, and the connection closed).
    #[serde(default = "default_body_timeout_secs")]
    pub body_timeout_secs: u64,
    /// Open connections per listener; a connection beyond it is closed at once.
    #[serde(default = "default_max_connections")]
    pub max_connections: usize,
}

fn default_header_timeout_secs() -> u64 {
    20
}

fn default_body_timeout_secs() -> u64 {
    30
}

fn default_max_connections() -> usize {
    4096
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            header_timeout_secs: default_header_timeout_secs(),
            body_timeout_secs: default_body_timeout_secs(),
            max_connections: default_max_connections(),
        }
    }
}

impl HttpConfig {
    pub fn validate(&self) -> Result<(), String> {
        for (key, v) in [
            ("header_timeout_secs", self.header_timeout_secs),
            ("body_timeout_secs", self.body_timeout_secs),
            ("max_connections", self.max_connections as u64),
        ] {
            if v == 0 {
                return Err(format!(
                    "configuration error: key `http.{key}` must be at least 1"
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::super::Config;

    #[test]
    fn http_section_defaults_and_zero_refused() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("c.toml");
        std::fs::write(&f, "server_name = \"x\"\n[http]\nmax_connections = 10\n").unwrap();
        let cfg = Config::load(Some(&f)).unwrap();
        assert_eq!(cfg.http.max_connections, 10);
        assert_eq!(cfg.http.header_timeout_secs, 20);
        assert_eq!(cfg.http.body_timeout_secs, 30);
        std::fs::write(&f, "server_name = \"x\"\n[http]\nheader_timeout_secs = 0\n").unwrap();
        let err = Config::load(Some(&f)).unwrap_err();
        assert!(err.contains("http.header_timeout_secs"), "{err}");
        std::fs::write(
            &f,
            "server_name = \"x\"\n[sessions]\naccess_token_lifetime = \"5\"\n",
        )
        .unwrap();
        let err = Config::load(Some(&f)).unwrap_err();
        assert!(err.contains("sessions.access_token_lifetime"), "{err}");
    }
}
