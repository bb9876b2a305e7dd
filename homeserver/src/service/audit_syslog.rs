//! Audit checkpoints to syslog (`[audit] checkpoint_syslog`, issue 9 item 20): each signed
//! checkpoint also leaves the host's database through the system logger, which forwards it
//! (journald, rsyslog to a log server) beyond the reach of whoever holds the database.
//!
//! One datagram per checkpoint on the logger's Unix socket (usually /dev/log), in the local
//! syslog form `<PRI>TAG[PID]: MSG` that journald and rsyslog accept there; facility authpriv
//! (security records, restricted readers), severity notice. Written here rather than through a
//! crate: it is one `send_to`, and a crate would add a dependency for no more than that.

use std::io;
use std::os::unix::net::UnixDatagram;
use std::path::Path;

use handover_compliance::Checkpoint;

/// authpriv (10) * 8 + notice (5).
const PRIORITY: u8 = 85;
pub const TAG: &str = "handover-audit";

/// Sends `cp` (its signed JSON) to the syslog socket at `socket`.
pub fn send(socket: &Path, cp: &Checkpoint) -> io::Result<()> {
    let json = serde_json::to_string(&cp.signed_object())?;
    let msg = format!("<{PRIORITY}>{TAG}[{}]: {json}", std::process::id());
    let sock = UnixDatagram::unbound()?;
    let sent = sock.send_to(msg.as_bytes(), socket)?;
    if sent != msg.len() {
        return Err(io::Error::other("syslog message truncated"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use handover_compliance::Outcome;

    use crate::service::audit::{AuditService, entry};
    use crate::store::sqlite::SqliteStore;

    #[tokio::test]
    async fn each_checkpoint_reaches_the_syslog_socket() {
        let dir = tempfile::tempdir().unwrap();
        let socket = dir.path().join("log.sock");
        let listener = std::os::unix::net::UnixDatagram::bind(&socket).unwrap();
        listener
            .set_read_timeout(Some(std::time::Duration::from_secs(5)))
            .unwrap();
        let store = SqliteStore::open(&dir.path().join("a.db"), 1).unwrap();
        let keys = crate::service::audit_checkpoint::load_or_generate(dir.path()).unwrap();
        let cfg = crate::config::AuditConfig {
            checkpoint_every: 2,
            checkpoint_syslog: Some(socket.clone()),
            ..Default::default()
        };
        let audit = AuditService::signing(Arc::new(store), keys, &cfg).unwrap();
        for i in 0..2 {
            let e = entry(&format!("@u{i}:x"), "login", Outcome::Success);
            audit.record(e).await.unwrap();
        }
        let mut buf = vec![0u8; 8192];
        let n = listener.recv(&mut buf).unwrap();
        let msg = std::str::from_utf8(&buf[..n]).unwrap();
        let prefix = format!("<85>handover-audit[{}]: ", std::process::id());
        let json: serde_json::Value =
            serde_json::from_str(msg.strip_prefix(&prefix).expect(msg)).unwrap();
        assert_eq!(json["seq"], 2, "{json}");
        assert!(json["signatures"].is_object(), "{json}");

        // No logger listening: the checkpoint write fails, and so does the action it records.
        drop(listener);
        for i in 2..4 {
            let e = entry(&format!("@u{i}:x"), "login", Outcome::Success);
            let res = audit.record(e).await;
            if i == 3 {
                assert!(res.is_err(), "a failed syslog write fails the action");
            }
        }
    }
}
