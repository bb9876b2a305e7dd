//! Media bytes on disk. Originals live at `<media_dir>/ab/cd/<media_id>` (a two-level fan-out
//! keeps directories small), thumbnails at `<media_dir>/thumbnails/ab/cd/<media_id>/<key>`.
//!
//! Every write goes to a temp file in `<media_dir>/tmp`, is fsync'ed, renamed into place and the
//! directory fsync'ed, so a file that exists is complete and an acknowledged upload survives a
//! crash. Callers must pass validated media ids (see `is_valid_media_id`): they become paths.
//!
//! All functions block; call them through `service::blocking`.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// Media ids are `[A-Za-z0-9_-]`, as the spec requires servers to enforce (no path traversal).
pub fn is_valid_media_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 255
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

pub struct FileStore {
    root: PathBuf,
    tmp: PathBuf,
}

impl FileStore {
    /// Creates the directories and removes temp files a crash may have left behind.
    pub fn open(root: &Path) -> io::Result<Self> {
        let tmp = root.join("tmp");
        ensure_dir(&tmp)?;
        for entry in fs::read_dir(&tmp)? {
            let _ = fs::remove_file(entry?.path());
        }
        Ok(Self {
            root: root.to_owned(),
            tmp,
        })
    }

    /// Where uploads are streamed to before they are vetted (see `staged.rs`).
    pub fn tmp_dir(&self) -> &Path {
        &self.tmp
    }

    pub fn original_path(&self, media_id: &str) -> PathBuf {
        fan_out(&self.root, media_id).join(media_id)
    }

    pub fn thumbnail_path(&self, media_id: &str, key: &str) -> PathBuf {
        fan_out(&self.root.join("thumbnails"), media_id)
            .join(media_id)
            .join(key)
    }

    /// Writes `bytes` to `path` atomically and durably.
    pub fn write(&self, path: &Path, bytes: &[u8]) -> io::Result<()> {
        let dir = path.parent().expect("media paths have a parent");
        ensure_dir(dir)?;
        let tmp = self
            .tmp
            .join(format!("{:032x}.part", rand::random::<u128>()));
        let res = (|| {
            let mut f = private_file().write(true).create_new(true).open(&tmp)?;
            f.write_all(bytes)?;
            f.sync_all()?;
            drop(f);
            fs::rename(&tmp, path)?;
            sync_dir(dir)
        })();
        if res.is_err() {
            let _ = fs::remove_file(&tmp);
        }
        res
    }

    /// The file's bytes, or `Ok(None)` if it does not exist.
    pub fn read(&self, path: &Path) -> io::Result<Option<Vec<u8>>> {
        match fs::read(path) {
            Ok(b) => Ok(Some(b)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Deletes the original and every thumbnail of `media_id`; true if anything existed.
    pub fn delete_all(&self, media_id: &str) -> io::Result<bool> {
        let mut found = false;
        match fs::remove_file(self.original_path(media_id)) {
            Ok(()) => found = true,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        let thumbs = fan_out(&self.root.join("thumbnails"), media_id).join(media_id);
        match fs::remove_dir_all(&thumbs) {
            Ok(()) => found = true,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        Ok(found)
    }

    /// Best-effort removal (used to undo a write whose metadata could not be committed).
    pub fn remove(&self, path: &Path) {
        let _ = fs::remove_file(path);
    }
}

fn fan_out(base: &Path, media_id: &str) -> PathBuf {
    // Ids are at least 1 char; pad short ones (not ours, but valid) so the layout stays uniform.
    let padded = format!("{media_id:_<4}");
    base.join(&padded[0..2]).join(&padded[2..4])
}

/// Creates missing directories, fsyncing each parent so the new entries are durable too.
pub(super) fn ensure_dir(dir: &Path) -> io::Result<()> {
    // "" is the parent of a relative path's first component: the current directory.
    if dir.as_os_str().is_empty() || dir.is_dir() {
        return Ok(());
    }
    if let Some(parent) = dir.parent() {
        ensure_dir(parent)?;
    }
    match private_dir().create(dir) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => return Ok(()),
        Err(e) => return Err(e),
    }
    match dir.parent() {
        Some(p) if !p.as_os_str().is_empty() => sync_dir(p),
        _ => Ok(()),
    }
}

fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Uploads may be clinical documents: only the server's own user may read them.
fn private_file() -> OpenOptions {
    let mut o = OpenOptions::new();
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        o.mode(0o600);
    }
    o
}

fn private_dir() -> fs::DirBuilder {
    let mut b = fs::DirBuilder::new();
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        b.mode(0o700);
    }
    b
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn media_ids_are_sanitised() {
        assert!(is_valid_media_id("AbC_12-xyz"));
        for bad in ["", "../etc", "a/b", "a.b", "a%2e", "é", &"a".repeat(256)] {
            assert!(!is_valid_media_id(bad), "{bad:?} accepted");
        }
    }

    #[test]
    fn write_read_and_layout() {
        let dir = tempfile::tempdir().unwrap();
        let fs = FileStore::open(dir.path()).unwrap();
        let p = fs.original_path("abcdefgh");
        assert_eq!(p, dir.path().join("ab/cd/abcdefgh"));
        assert_eq!(fs.read(&p).unwrap(), None);
        fs.write(&p, b"hello").unwrap();
        assert_eq!(fs.read(&p).unwrap().as_deref(), Some(&b"hello"[..]));
        // The temp file was renamed away, not left behind.
        assert_eq!(
            std::fs::read_dir(dir.path().join("tmp")).unwrap().count(),
            0
        );
        assert_eq!(
            fs.thumbnail_path("x", "32x32-crop"),
            dir.path().join("thumbnails/x_/__/x/32x32-crop")
        );
    }

    #[test]
    fn relative_root_whose_first_component_is_missing() {
        // The default `data_dir` is relative ("data"); creating it walks up to the empty path.
        let holder = tempfile::Builder::new()
            .prefix("media-test-")
            .tempdir_in(".")
            .unwrap();
        let rel = PathBuf::from(holder.path().file_name().unwrap());
        std::fs::remove_dir(&rel).unwrap();
        let fs = FileStore::open(&rel.join("media")).unwrap();
        fs.write(&fs.original_path("abcd"), b"x").unwrap();
        assert!(rel.join("media/ab/cd/abcd").is_file());
    }

    #[test]
    fn open_clears_stale_temp_files() {
        let dir = tempfile::tempdir().unwrap();
        FileStore::open(dir.path()).unwrap();
        std::fs::write(dir.path().join("tmp/dead.part"), b"half").unwrap();
        FileStore::open(dir.path()).unwrap();
        assert_eq!(
            std::fs::read_dir(dir.path().join("tmp")).unwrap().count(),
            0
        );
    }
}
