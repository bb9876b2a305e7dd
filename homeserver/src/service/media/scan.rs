//! The upload scanner hook (`clinical_media.scanner_command`, e.g. ClamAV's `clamdscan`).
//! Fails closed: a scanner that reports a finding (non-zero exit; ClamAV's "FOUND" is exit 1),
//! errors, cannot start or runs past its timeout quarantines the file.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio::process::Command;

use super::staged::Staged;

/// The argument replaced by a temporary file's path; without it the file goes to stdin.
const PATH_PLACEHOLDER: &str = "{path}";

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScanOutcome {
    Clean,
    /// Why the file is quarantined (for the IG lead; never the file's content).
    Flagged(String),
}

pub struct Scanner {
    argv: Vec<String>,
    timeout: Duration,
    /// Where `{path}` files are written (inside the media directory, same disk and permissions).
    tmp_dir: PathBuf,
}

impl Scanner {
    /// `None` when no scanner is configured.
    pub fn new(argv: &[String], timeout: Duration, tmp_dir: PathBuf) -> Option<Self> {
        (!argv.is_empty()).then(|| Self {
            argv: argv.to_vec(),
            timeout,
            tmp_dir,
        })
    }

    /// Scans an upload. A streamed upload is scanned where it lies (`{path}`) or piped from its
    /// file (stdin): never read into memory for the scanner.
    pub async fn scan(&self, file: &Staged) -> ScanOutcome {
        let uses_path = self.argv.iter().any(|a| a.contains(PATH_PLACEHOLDER));
        let mut written = None;
        let path = match file {
            Staged::File(t) if uses_path => Some(t.path().to_owned()),
            Staged::Bytes(b) if uses_path => {
                let path = self
                    .tmp_dir
                    .join(format!("scan-{:016x}", rand::random::<u64>()));
                if let Err(e) = tokio::fs::write(&path, b).await {
                    return ScanOutcome::Flagged(format!("scanner input not written: {e}"));
                }
                written = Some(path.clone());
                Some(path)
            }
            _ => None,
        };
        let outcome = tokio::time::timeout(self.timeout, self.run(file, path.as_ref()))
            .await
            .unwrap_or_else(|_| {
                ScanOutcome::Flagged(format!("scanner timed out after {:?}", self.timeout))
            });
        if let Some(path) = written {
            let _ = tokio::fs::remove_file(path).await;
        }
        outcome
    }

    async fn run(&self, file: &Staged, path: Option<&PathBuf>) -> ScanOutcome {
        let args = self.argv[1..].iter().map(|a| match path {
            Some(p) => a.replace(PATH_PLACEHOLDER, &p.to_string_lossy()),
            None => a.clone(),
        });
        let mut cmd = Command::new(&self.argv[0]);
        cmd.args(args)
            .stdin(if path.is_some() {
                Stdio::null()
            } else {
                Stdio::piped()
            })
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            // A timed-out scan must not linger.
            .kill_on_drop(true);
        let mut child = match cmd.spawn() {
            Ok(c) => c,
            Err(e) => return ScanOutcome::Flagged(format!("scanner did not start: {e}")),
        };
        if let Some(mut stdin) = child.stdin.take() {
            // A scanner may exit before reading everything; its exit status decides.
            match file {
                Staged::Bytes(b) => {
                    let _ = stdin.write_all(b).await;
                }
                Staged::File(t) => {
                    if let Ok(mut f) = tokio::fs::File::open(t.path()).await {
                        let _ = tokio::io::copy(&mut f, &mut stdin).await;
                    }
                }
            }
            drop(stdin);
        }
        match child.wait().await {
            Ok(status) if status.success() => ScanOutcome::Clean,
            Ok(status) => ScanOutcome::Flagged(match status.code() {
                Some(1) => "scanner found a threat (exit 1)".to_owned(),
                Some(c) => format!("scanner exit {c}"),
                None => "scanner killed by a signal".to_owned(),
            }),
            Err(e) => ScanOutcome::Flagged(format!("scanner failed: {e}")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scanner(argv: &[&str], timeout_ms: u64) -> (Scanner, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        let argv: Vec<String> = argv.iter().map(|s| s.to_string()).collect();
        let s = Scanner::new(&argv, Duration::from_millis(timeout_ms), dir.path().into());
        (s.unwrap(), dir)
    }

    #[tokio::test]
    async fn stdin_scanner_flags_eicar() {
        let (s, _d) = scanner(&["sh", "-c", "grep -q EICAR && exit 1 || exit 0"], 5000);
        assert_eq!(
            s.scan(&Staged::from(b"hello".to_vec())).await,
            ScanOutcome::Clean
        );
        assert!(
            matches!(s.scan(&Staged::from(b"xx EICAR xx".to_vec())).await, ScanOutcome::Flagged(r) if r.contains("exit 1"))
        );
    }

    #[tokio::test]
    async fn path_placeholder_and_fail_closed() {
        let (s, dir) = scanner(&["sh", "-c", "! grep -q EICAR \"$0\"", "{path}"], 5000);
        assert_eq!(
            s.scan(&Staged::from(b"clean".to_vec())).await,
            ScanOutcome::Clean
        );
        assert_ne!(
            s.scan(&Staged::from(b"EICAR".to_vec())).await,
            ScanOutcome::Clean
        );
        assert_eq!(
            std::fs::read_dir(dir.path()).unwrap().count(),
            0,
            "temp file removed"
        );
        let (s, _d) = scanner(&["sh", "-c", "sleep 5"], 100);
        assert!(
            matches!(s.scan(&Staged::from(b"x".to_vec())).await, ScanOutcome::Flagged(r) if r.contains("timed out"))
        );
        let (s, _d) = scanner(&["/nonexistent/scanner"], 1000);
        assert!(matches!(
            s.scan(&Staged::from(b"x".to_vec())).await,
            ScanOutcome::Flagged(_)
        ));
        assert!(Scanner::new(&[], Duration::from_secs(1), "/tmp".into()).is_none());
    }
}
