//! Bridge configuration: defaults, then a TOML file, then `PREFIX_SECTION__KEY` environment
//! variables (e.g. `HANDOVER_ALERTS_APPSERVICE__AS_TOKEN`), like the server's config. Only
//! variables naming a known top-level key are configuration, so tools around the bridge may
//! use other variables with the same prefix (the tests' `HANDOVER_ALERTS_BIN`).

use std::path::Path;

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use serde::Serialize;
use serde::de::DeserializeOwned;

/// Loads `T` from its defaults, `file` (must exist when given) and the environment.
/// `known_keys` are the top-level keys of `T` (lower case). Errors name the key at fault.
pub fn load<T: DeserializeOwned + Serialize + Default>(
    file: Option<&Path>,
    env_prefix: &str,
    known_keys: &'static [&'static str],
) -> Result<T, String> {
    let mut fig = Figment::from(Serialized::defaults(T::default()));
    if let Some(file) = file {
        if !file.exists() {
            return Err(format!("config file {} does not exist", file.display()));
        }
        fig = fig.merge(Toml::file_exact(file));
    }
    fig = fig.merge(
        Env::prefixed(env_prefix)
            .filter(move |k| {
                let first = k.as_str().split("__").next().unwrap_or_default();
                known_keys.contains(&first.to_ascii_lowercase().as_str())
            })
            .split("__"),
    );
    fig.extract().map_err(|e| {
        e.into_iter()
            .map(|e| format!("configuration error: {e}"))
            .collect::<Vec<_>>()
            .join("\n")
    })
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;

    use super::*;

    #[derive(Serialize, Deserialize, Default, Debug)]
    #[serde(deny_unknown_fields, default)]
    struct Cfg {
        name: String,
        section: Section,
    }
    #[derive(Serialize, Deserialize, Default, Debug)]
    #[serde(deny_unknown_fields, default)]
    struct Section {
        token: String,
        port: u16,
    }

    #[test]
    fn file_then_env_override_and_unknown_keys_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.toml");
        std::fs::write(&path, "name = \"a\"\n[section]\ntoken = \"t\"\nport = 1\n").unwrap();
        // SAFETY: single test touching these variables; names unique to it.
        unsafe {
            std::env::set_var("HBCTEST_SECTION__PORT", "9");
            std::env::set_var("HBCTEST_BIN", "/not/config");
        }
        let c: Cfg = load(Some(&path), "HBCTEST_", &["name", "section"]).unwrap();
        assert_eq!(c.name, "a");
        assert_eq!(c.section.token, "t");
        assert_eq!(c.section.port, 9);

        std::fs::write(&path, "[section]\ntokn = \"t\"\n").unwrap();
        let err = load::<Cfg>(Some(&path), "HBCTEST_", &["name", "section"]).unwrap_err();
        assert!(err.contains("tokn"), "{err}");
        let err = load::<Cfg>(Some(&dir.path().join("missing.toml")), "X_", &[]).unwrap_err();
        assert!(err.contains("does not exist"), "{err}");
    }
}
