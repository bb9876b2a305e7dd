//! What every bridge binary does first: read `--config FILE` and the `registration` command,
//! set up logging to stderr.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// The command line: `BIN [--config FILE] [registration]`.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Args {
    pub config: Option<PathBuf>,
    /// Print the appservice registration instead of running.
    pub registration: bool,
}

impl Args {
    /// Parses `args` (without the program name); `Err` is the usage line.
    pub fn parse(bin: &str, args: impl IntoIterator<Item = String>) -> Result<Self, String> {
        let usage = || format!("usage: {bin} [--config FILE] [registration]");
        let mut out = Self::default();
        let mut args = args.into_iter();
        while let Some(a) = args.next() {
            match a.as_str() {
                "--config" | "-c" => out.config = Some(args.next().ok_or_else(usage)?.into()),
                "registration" => out.registration = true,
                _ => return Err(usage()),
            }
        }
        Ok(out)
    }

    /// The process's own arguments; exits with the usage line (status 2) when they are wrong.
    pub fn from_env(bin: &str) -> Self {
        Self::parse(bin, std::env::args().skip(1)).unwrap_or_else(|usage| {
            eprintln!("{usage}");
            std::process::exit(2)
        })
    }
}

/// The `[log]` section.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    /// A tracing filter, e.g. `info,matrix_sdk=warn`.
    pub level: String,
}

impl Default for LogConfig {
    fn default() -> Self {
        Self {
            level: "info".into(),
        }
    }
}

/// Logs to stderr with the configured filter.
pub fn init_tracing(cfg: &LogConfig) {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(&cfg.level))
        .with_writer(std::io::stderr)
        .init();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn args() {
        let a = |v: &[&str]| Args::parse("b", v.iter().map(|s| s.to_string()));
        assert_eq!(a(&[]).unwrap(), Args::default());
        let got = a(&["--config", "x.toml", "registration"]).unwrap();
        assert_eq!(got.config.as_deref(), Some(std::path::Path::new("x.toml")));
        assert!(got.registration);
        assert!(a(&["--config"]).unwrap_err().contains("usage: b"));
        assert!(a(&["serve"]).is_err());
    }
}
