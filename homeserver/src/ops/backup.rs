//! `handover admin backup DEST`: a consistent copy of a server's data while it serves.
//!
//! What: the database (SQLite's online backup API, one snapshot: `store::sqlite::snapshot`),
//! the media files, the server and audit signing keys, and `manifest.json` (size and sha256
//! of every file, written last: a backup without it is incomplete). Order: the database first,
//! then media, so every file the copied database refers to was already on disk when the
//! snapshot was taken (uploads write the file before the row); files added later are copied
//! too and are harmless, files purged in between are reported as skipped.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::progress::Progress;
use crate::config::Config;

/// Manifest format version.
pub const FORMAT: u32 = 1;
pub const MANIFEST: &str = "manifest.json";
/// The database's name inside a backup.
pub const DB_FILE: &str = "handover.db";
/// Key files of the data directory, copied when present.
pub const KEY_FILES: &[&str] = &["signing.key", "audit_signing.key"];

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Manifest {
    pub format: u32,
    pub server_name: String,
    pub handover_version: String,
    pub created_ms: u64,
    pub files: Vec<FileEntry>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FileEntry {
    /// Relative to the backup (and to the data directory on restore), `/`-separated.
    pub path: String,
    pub bytes: u64,
    pub sha256: String,
}

/// What a finished backup holds.
#[derive(Debug)]
pub struct Summary {
    pub files: usize,
    pub bytes: u64,
    /// Media files that disappeared between listing and copying (purged meanwhile).
    pub skipped: usize,
}

pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or_default()
}

/// `handover admin backup`: [`run`], then one line saying what was saved.
pub fn command(cfg: &Config, dest: &Path) -> anyhow::Result<()> {
    let s = run(cfg, dest)?;
    let skipped = match s.skipped {
        0 => String::new(),
        n => format!(" ({n} media files purged during the backup were skipped)"),
    };
    println!(
        "backup complete: {} files, {} bytes in {}{skipped}",
        s.files,
        s.bytes,
        dest.display()
    );
    Ok(())
}

/// Takes the backup into `dest`, which must not exist or be empty. Blocking.
pub fn run(cfg: &Config, dest: &Path) -> anyhow::Result<Summary> {
    ensure_empty_dir(dest)?;
    let mut files = Vec::new();

    let db_dst = dest.join(DB_FILE);
    let mut bar = Progress::new("database");
    crate::store::sqlite::snapshot::online_backup(&cfg.database.path, &db_dst, |d, t| {
        bar.update(d, t)
    })
    .map_err(|e| anyhow::anyhow!("database: {e}"))?;
    bar.finish();
    files.push(entry_for(dest, DB_FILE)?);

    let media = cfg.media_dir();
    let mut list = Vec::new();
    if media.exists() {
        walk(&media, &mut list)?;
    }
    let total: u64 = list.iter().map(|(_, n)| n).sum();
    let (mut done, mut skipped) = (0u64, 0usize);
    let mut bar = Progress::new("media");
    for (path, size) in list {
        let rel = path.strip_prefix(&cfg.data_dir).unwrap_or(&path);
        match copy_hashed(&path, &dest.join(rel)) {
            Ok((bytes, sha256)) => files.push(FileEntry {
                path: slash_path(rel)?,
                bytes,
                sha256,
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => skipped += 1,
            Err(e) => anyhow::bail!("{}: {e}", path.display()),
        }
        done += size;
        bar.update(done, total);
    }
    bar.update(total, total);
    bar.finish();

    for key in KEY_FILES {
        let src = cfg.data_dir.join(key);
        if src.exists() {
            let (bytes, sha256) =
                copy_hashed(&src, &dest.join(key)).map_err(|e| anyhow::anyhow!("{key}: {e}"))?;
            set_private(&dest.join(key))?;
            files.push(FileEntry {
                path: (*key).to_owned(),
                bytes,
                sha256,
            });
        }
    }

    let manifest = Manifest {
        format: FORMAT,
        server_name: cfg.server_name.clone(),
        handover_version: env!("CARGO_PKG_VERSION").to_owned(),
        created_ms: now_ms(),
        files,
    };
    write_synced(&dest.join(MANIFEST), &serde_json::to_vec_pretty(&manifest)?)?;
    sync_dir(dest)?;
    let summary = Summary {
        files: manifest.files.len(),
        bytes: manifest.files.iter().map(|f| f.bytes).sum(),
        skipped,
    };
    // The marker `handover doctor` reads; written last, so it never claims a failed backup.
    let marker = serde_json::json!({
        "completed_ms": manifest.created_ms,
        "destination": dest.display().to_string(),
        "files": summary.files,
        "bytes": summary.bytes,
    });
    write_synced(
        &cfg.data_dir.join(super::BACKUP_MARKER),
        &serde_json::to_vec_pretty(&marker)?,
    )?;
    Ok(summary)
}

/// Refuses a destination that holds anything: a backup never overwrites or mixes.
pub fn ensure_empty_dir(dir: &Path) -> anyhow::Result<()> {
    if dir.exists() {
        if !dir.is_dir() {
            anyhow::bail!("{} exists and is not a directory", dir.display());
        }
        if std::fs::read_dir(dir)?.next().is_some() {
            anyhow::bail!("{} is not empty: refusing to write into it", dir.display());
        }
    }
    std::fs::create_dir_all(dir).map_err(|e| anyhow::anyhow!("{}: {e}", dir.display()))?;
    Ok(())
}

/// Every regular file under `dir`, with its size.
fn walk(dir: &Path, out: &mut Vec<(PathBuf, u64)>) -> anyhow::Result<()> {
    let mut entries: Vec<_> = std::fs::read_dir(dir)?.collect::<Result<_, _>>()?;
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        let ty = e.file_type()?;
        if ty.is_dir() {
            walk(&e.path(), out)?;
        } else if ty.is_file() {
            // The readiness probe's scratch file is not data.
            if e.file_name().to_string_lossy().starts_with(".ready-probe") {
                continue;
            }
            out.push((e.path(), e.metadata()?.len()));
        }
    }
    Ok(())
}

fn slash_path(rel: &Path) -> anyhow::Result<String> {
    let parts: Vec<&str> = rel
        .components()
        .map(|c| c.as_os_str().to_str())
        .collect::<Option<_>>()
        .ok_or_else(|| anyhow::anyhow!("{}: not a UTF-8 path", rel.display()))?;
    Ok(parts.join("/"))
}

/// The manifest entry of a file already in the backup.
fn entry_for(dest: &Path, rel: &str) -> anyhow::Result<FileEntry> {
    let (bytes, sha256) = hash_file(&dest.join(rel))?;
    Ok(FileEntry {
        path: rel.to_owned(),
        bytes,
        sha256,
    })
}

pub fn hash_file(path: &Path) -> std::io::Result<(u64, String)> {
    let mut f = std::fs::File::open(path)?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 256 * 1024];
    let mut n = 0u64;
    loop {
        let k = f.read(&mut buf)?;
        if k == 0 {
            break;
        }
        h.update(&buf[..k]);
        n += k as u64;
    }
    Ok((n, hex(&h.finalize())))
}

/// Copies `src` to `dst` (parents made, new file only), syncs it, returns (bytes, sha256).
pub fn copy_hashed(src: &Path, dst: &Path) -> std::io::Result<(u64, String)> {
    let mut from = std::fs::File::open(src)?;
    if let Some(p) = dst.parent() {
        std::fs::create_dir_all(p)?;
    }
    let mut to = std::fs::File::create_new(dst)?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 256 * 1024];
    let mut n = 0u64;
    loop {
        let k = from.read(&mut buf)?;
        if k == 0 {
            break;
        }
        h.update(&buf[..k]);
        to.write_all(&buf[..k])?;
        n += k as u64;
    }
    to.sync_all()?;
    Ok((n, hex(&h.finalize())))
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

pub fn write_synced(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let tmp = path.with_extension("tmp");
    let mut f = std::fs::File::create(&tmp)?;
    f.write_all(bytes)?;
    f.sync_all()?;
    std::fs::rename(&tmp, path)?;
    Ok(())
}

pub fn sync_dir(dir: &Path) -> anyhow::Result<()> {
    std::fs::File::open(dir)?.sync_all()?;
    Ok(())
}

/// Key files are readable by their owner only.
pub fn set_private(path: &Path) -> anyhow::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    }
    let _ = path;
    Ok(())
}
