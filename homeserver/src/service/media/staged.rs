//! An upload's bytes before they are vetted and stored: in memory (another server's file, fetched
//! whole) or in a temp file that a client's body is streamed into as it arrives, so many large
//! uploads at once never hold their bodies in memory (issue 9, item 15). Encrypted attachments
//! (octet-stream, no transform) go from the temp file into place by a rename, never read back.
//!
//! A temp file that is not persisted is removed when dropped (refused, failed or abandoned
//! uploads); the ones a crash leaves behind go when `FileStore::open` clears `<media>/tmp`.

use std::io;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;

/// Bytes of the start of the file kept in memory for the policy's sniffing.
pub const HEAD_BYTES: usize = 1024;

/// A client's body being written to `<media>/tmp/<random>.upload`.
pub struct TempUpload {
    path: PathBuf,
    file: Option<tokio::fs::File>,
    len: u64,
    head: Vec<u8>,
    hasher: Sha256,
    /// Set once renamed into place: nothing left to remove.
    persisted: bool,
}

impl TempUpload {
    pub(super) async fn create(dir: &Path) -> io::Result<Self> {
        let path = dir.join(format!("{:032x}.upload", rand::random::<u128>()));
        let mut options = tokio::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        options.mode(0o600);
        let file = options.open(&path).await?;
        Ok(Self {
            path,
            file: Some(file),
            len: 0,
            head: Vec::new(),
            hasher: Sha256::new(),
            persisted: false,
        })
    }

    /// Appends a chunk of the body.
    pub async fn write(&mut self, chunk: &[u8]) -> io::Result<()> {
        let file = self.file.as_mut().ok_or_else(finished)?;
        file.write_all(chunk).await?;
        let room = HEAD_BYTES.saturating_sub(self.head.len());
        self.head.extend_from_slice(&chunk[..chunk.len().min(room)]);
        self.hasher.update(chunk);
        self.len += chunk.len() as u64;
        Ok(())
    }

    /// The whole body has arrived: flush it to disk (an acknowledged upload survives a crash).
    pub async fn finish(&mut self) -> io::Result<()> {
        let mut file = self.file.take().ok_or_else(finished)?;
        file.flush().await?;
        file.sync_all().await
    }

    pub fn len(&self) -> u64 {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub(super) fn path(&self) -> &Path {
        &self.path
    }

    /// Moves the file to `dest` (same file system: `<media>/tmp` is inside the media directory)
    /// and makes the new name durable.
    pub(super) fn persist(mut self, dest: &Path) -> io::Result<()> {
        let dir = dest.parent().expect("media paths have a parent");
        super::files::ensure_dir(dir)?;
        std::fs::rename(&self.path, dest)?;
        self.persisted = true;
        std::fs::File::open(dir)?.sync_all()
    }
}

impl Drop for TempUpload {
    fn drop(&mut self) {
        if !self.persisted {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

fn finished() -> io::Error {
    io::Error::other("upload already finished")
}

/// An upload's bytes, wherever they are.
pub enum Staged {
    Bytes(Vec<u8>),
    File(Box<TempUpload>),
}

impl From<Vec<u8>> for Staged {
    fn from(b: Vec<u8>) -> Self {
        Staged::Bytes(b)
    }
}

impl From<TempUpload> for Staged {
    fn from(t: TempUpload) -> Self {
        Staged::File(Box::new(t))
    }
}

impl Staged {
    pub fn len(&self) -> u64 {
        match self {
            Staged::Bytes(b) => b.len() as u64,
            Staged::File(t) => t.len,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The first bytes, for sniffing.
    pub fn head(&self) -> &[u8] {
        match self {
            Staged::Bytes(b) => &b[..b.len().min(HEAD_BYTES)],
            Staged::File(t) => &t.head,
        }
    }

    /// The SHA-256 of the content, lower-case hex.
    pub fn sha256_hex(&self) -> String {
        let digest = match self {
            Staged::Bytes(b) => Sha256::digest(b),
            Staged::File(t) => t.hasher.clone().finalize(),
        };
        digest.iter().map(|b| format!("{b:02x}")).collect()
    }

    /// The bytes in memory: only for what must decode the whole file (metadata stripping) or
    /// another server's file. Blocks on a file: call through `blocking`.
    pub fn into_bytes(self) -> io::Result<Vec<u8>> {
        match self {
            Staged::Bytes(b) => Ok(b),
            Staged::File(t) => std::fs::read(&t.path),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn streamed_bytes_hash_and_head_match_and_drop_removes_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let mut t = TempUpload::create(dir.path()).await.unwrap();
        let body: Vec<u8> = (0..5000u32).map(|i| (i % 251) as u8).collect();
        for chunk in body.chunks(700) {
            t.write(chunk).await.unwrap();
        }
        t.finish().await.unwrap();
        let path = t.path().to_owned();
        assert_eq!(std::fs::read(&path).unwrap(), body);
        let staged = Staged::from(t);
        let whole = Staged::from(body.clone());
        assert_eq!(staged.len(), 5000);
        assert_eq!(staged.head(), whole.head());
        assert_eq!(staged.sha256_hex(), whole.sha256_hex());
        drop(staged);
        assert!(
            !path.exists(),
            "an unpersisted upload must not stay on disk"
        );
    }

    #[tokio::test]
    async fn persisted_upload_moves_into_place() {
        let dir = tempfile::tempdir().unwrap();
        let mut t = TempUpload::create(dir.path()).await.unwrap();
        t.write(b"ciphertext").await.unwrap();
        t.finish().await.unwrap();
        let src = t.path().to_owned();
        let dest = dir.path().join("ab/cd/abcd1234");
        t.persist(&dest).unwrap();
        assert_eq!(std::fs::read(&dest).unwrap(), b"ciphertext");
        assert!(!src.exists());
    }
}
