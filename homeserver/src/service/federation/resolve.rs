//! Server discovery: where to connect for a server name.
//!
//! Implemented: IP literals (`1.2.3.4`, `[::1]`, with or without a port; default 8448) and
//! `hostname:port` (connect to that host and port; the certificate must be valid for the
//! hostname). **Not yet implemented**: `/.well-known/matrix/server` delegation and SRV records
//! (spec steps 3–5) for a hostname without a port; such destinations are refused with a clear
//! error rather than guessed at.

use ruma::ServerName;

/// The port federation uses when a server name gives none.
pub const DEFAULT_PORT: u16 = 8448;

/// Where to send requests for a destination.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// `https://host:port`, without a trailing slash.
    pub base_url: String,
}

pub fn resolve(server: &ServerName) -> Result<Target, String> {
    let host = server.host();
    match (server.is_ip_literal(), server.port()) {
        (true, port) => Ok(Target {
            base_url: format!("https://{host}:{}", port.unwrap_or(DEFAULT_PORT)),
        }),
        (false, Some(port)) => Ok(Target {
            base_url: format!("https://{host}:{port}"),
        }),
        (false, None) => Err(format!(
            "cannot discover {server}: .well-known and SRV server discovery are not implemented \
             yet; list the server as host:port"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(s: &str) -> Result<String, String> {
        resolve(<&ServerName>::try_from(s).unwrap()).map(|t| t.base_url)
    }

    #[test]
    fn ip_literals_and_host_port() {
        assert_eq!(r("127.0.0.1").unwrap(), "https://127.0.0.1:8448");
        assert_eq!(r("127.0.0.1:9000").unwrap(), "https://127.0.0.1:9000");
        assert_eq!(r("[::1]").unwrap(), "https://[::1]:8448");
        assert_eq!(r("[::1]:9000").unwrap(), "https://[::1]:9000");
        assert_eq!(
            r("matrix.trust.nhs.uk:443").unwrap(),
            "https://matrix.trust.nhs.uk:443"
        );
        assert!(r("trust.nhs.uk").unwrap_err().contains("not implemented"));
    }
}
