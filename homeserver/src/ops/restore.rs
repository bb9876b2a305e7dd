//! `handover admin restore SRC --data-dir D`: a backup into an empty data directory.
//!
//! Every file of the manifest is checked (size and sha256) before anything is written, so a
//! damaged or tampered backup is refused whole, naming the file; then the files are copied,
//! synced, and the keys made private. A non-empty target is refused: restoring never mixes
//! with, or overwrites, live data.

use std::path::{Component, Path, PathBuf};

use super::backup::{
    DB_FILE, FORMAT, MANIFEST, Manifest, copy_hashed, ensure_empty_dir, hash_file, set_private,
    sync_dir,
};
use super::progress::Progress;

/// What was restored.
#[derive(Debug)]
pub struct Restored {
    pub server_name: String,
    pub files: usize,
    pub bytes: u64,
    pub created_ms: u64,
}

/// A manifest path as a safe relative path (no `..`, not absolute).
fn safe_relative(p: &str) -> anyhow::Result<PathBuf> {
    let path = PathBuf::from(p);
    if p.is_empty() || !path.components().all(|c| matches!(c, Component::Normal(_))) {
        anyhow::bail!("manifest names an unsafe path {p:?}");
    }
    Ok(path)
}

/// Reads and checks `src`'s manifest and every file it lists. Blocking.
pub fn verify(src: &Path) -> anyhow::Result<Manifest> {
    let bytes = std::fs::read(src.join(MANIFEST)).map_err(|e| {
        anyhow::anyhow!(
            "{}: {e} (an incomplete backup has no manifest)",
            src.join(MANIFEST).display()
        )
    })?;
    let manifest: Manifest = serde_json::from_slice(&bytes)
        .map_err(|e| anyhow::anyhow!("{}: {e}", src.join(MANIFEST).display()))?;
    if manifest.format != FORMAT {
        anyhow::bail!(
            "backup format {} is not understood (this build reads {FORMAT})",
            manifest.format
        );
    }
    if !manifest.files.iter().any(|f| f.path == DB_FILE) {
        anyhow::bail!("the manifest lists no {DB_FILE}");
    }
    let total: u64 = manifest.files.iter().map(|f| f.bytes).sum();
    let mut done = 0;
    let mut bar = Progress::new("verify");
    for f in &manifest.files {
        let path = src.join(safe_relative(&f.path)?);
        let (bytes, sha256) =
            hash_file(&path).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
        if bytes != f.bytes || sha256 != f.sha256 {
            anyhow::bail!(
                "{} does not match the manifest (size or sha256): the backup is damaged",
                f.path
            );
        }
        done += bytes;
        bar.update(done, total);
    }
    bar.finish();
    Ok(manifest)
}

/// `handover admin restore`: [`run`], then one line saying what was restored.
pub fn command(src: &Path, data_dir: &Path) -> anyhow::Result<()> {
    let r = run(src, data_dir)?;
    println!(
        "restored {} files ({} bytes) of {}'s backup taken at {} into {}",
        r.files,
        r.bytes,
        r.server_name,
        handover_compliance::time::format_rfc3339(r.created_ms as i64),
        data_dir.display()
    );
    Ok(())
}

/// Restores `src` into `data_dir` (must not exist or be empty). Blocking.
pub fn run(src: &Path, data_dir: &Path) -> anyhow::Result<Restored> {
    if data_dir.exists() && std::fs::read_dir(data_dir)?.next().is_some() {
        anyhow::bail!(
            "{} is not empty: restore only into an empty data directory",
            data_dir.display()
        );
    }
    let manifest = verify(src)?;
    ensure_empty_dir(data_dir)?;
    let total: u64 = manifest.files.iter().map(|f| f.bytes).sum();
    let mut done = 0;
    let mut bar = Progress::new("restore");
    for f in &manifest.files {
        let rel = safe_relative(&f.path)?;
        let to = data_dir.join(&rel);
        let (bytes, sha256) = copy_hashed(&src.join(&rel), &to)
            .map_err(|e| anyhow::anyhow!("{}: {e}", to.display()))?;
        // Read again while copying: the source may have changed since it was verified.
        if bytes != f.bytes || sha256 != f.sha256 {
            anyhow::bail!("{} changed while it was restored", f.path);
        }
        if super::backup::KEY_FILES.contains(&f.path.as_str()) {
            set_private(&to)?;
        }
        done += bytes;
        bar.update(done, total);
    }
    bar.finish();
    sync_dir(data_dir)?;
    Ok(Restored {
        server_name: manifest.server_name,
        files: manifest.files.len(),
        bytes: total,
        created_ms: manifest.created_ms,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unsafe_paths_are_refused() {
        assert!(safe_relative("media/ab/cd").is_ok());
        for bad in ["../etc/passwd", "/etc/passwd", "media/../../x", ""] {
            assert!(safe_relative(bad).is_err(), "{bad}");
        }
    }
}
