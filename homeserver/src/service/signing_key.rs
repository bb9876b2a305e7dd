//! The server's ed25519 signing key: generated once, kept in `data_dir/signing.key` (mode 0600).
//! Every PDU we create is hashed and signed with it, so the same events later serve federation.

use std::path::Path;

use base64::Engine;
use base64::engine::general_purpose::STANDARD_NO_PAD;
use ruma::signatures::Ed25519KeyPair;

pub struct ServerKeys {
    pub keypair: Ed25519KeyPair,
}

impl ServerKeys {
    /// Loads the key, creating it on first start. File format: `ed25519 <version> <base64 pkcs8>`,
    /// the same layout Synapse uses for its signing key file, so admins recognise it.
    pub fn load_or_generate(data_dir: &Path) -> anyhow::Result<Self> {
        Self::load_or_generate_file(&data_dir.join("signing.key"), "server signing key")
    }

    /// As `load_or_generate`, for any key file (the audit key, `AUDIT_KEY_FILE`).
    pub fn load_or_generate_file(path: &Path, what: &str) -> anyhow::Result<Self> {
        let path = path.to_path_buf();
        if !path.exists() {
            let der = Ed25519KeyPair::generate();
            let version: String = ruma::TransactionId::new()
                .as_str()
                .chars()
                .filter(char::is_ascii_alphanumeric)
                .take(6)
                .collect();
            let line = format!("ed25519 {version} {}\n", STANDARD_NO_PAD.encode(&der[..]));
            let tmp = path.with_extension("tmp");
            write_private(&tmp, line.as_bytes())?;
            std::fs::rename(&tmp, &path)?;
            tracing::info!(key_id = %format!("ed25519:{version}"), "generated {what}");
        }
        let text = std::fs::read_to_string(&path)?;
        let mut parts = text.split_whitespace();
        let (Some("ed25519"), Some(version), Some(b64)) =
            (parts.next(), parts.next(), parts.next())
        else {
            anyhow::bail!(
                "{} is not a signing key file (expected `ed25519 <version> <base64>`)",
                path.display()
            );
        };
        let der = STANDARD_NO_PAD
            .decode(b64.trim_end_matches('='))
            .map_err(|e| anyhow::anyhow!("{}: bad base64: {e}", path.display()))?;
        let keypair = Ed25519KeyPair::from_der(&der, version.to_owned())
            .map_err(|e| anyhow::anyhow!("{}: bad key: {e}", path.display()))?;
        Ok(Self { keypair })
    }

    pub fn key_id(&self) -> String {
        format!("ed25519:{}", self.keypair.version())
    }

    /// `ed25519:<version> <unpadded base64 public key>`: what `handover audit public-key`
    /// prints and `handover audit verify --public-key` reads.
    pub fn public_line(&self) -> String {
        format!(
            "{} {}",
            self.key_id(),
            STANDARD_NO_PAD.encode(self.keypair.public_key())
        )
    }
}

/// The audit checkpoint key's file in `data_dir`: separate from the federation key, which is
/// rotated (and published) for other reasons (docs/GOVERNANCE.md, "Audit trail").
pub const AUDIT_KEY_FILE: &str = "audit_signing.key";

fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts.open(path)?;
    f.write_all(bytes)?;
    f.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_once_then_reloaded() {
        let dir = tempfile::tempdir().unwrap();
        let a = ServerKeys::load_or_generate(dir.path()).unwrap();
        let b = ServerKeys::load_or_generate(dir.path()).unwrap();
        assert_eq!(a.key_id(), b.key_id());
        assert_eq!(a.keypair.public_key(), b.keypair.public_key());
    }
}
