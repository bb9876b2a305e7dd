//! argon2id password hashes (PHC strings, parameters embedded so they can be raised later).

use argon2::Argon2;
use argon2::password_hash::{PasswordHasher, PasswordVerifier, phc::PasswordHash};

use crate::error::{Error, Result};

/// Each argon2id hash takes 19 MiB and a core for tens of milliseconds; running more at once
/// than there are cores only multiplies memory (a login burst once peaked at 700 MiB) without
/// finishing sooner. This bounds concurrent hashes to the core count.
struct HashSlots {
    free: std::sync::Mutex<usize>,
    cv: std::sync::Condvar,
}

static SLOTS: std::sync::LazyLock<HashSlots> = std::sync::LazyLock::new(|| HashSlots {
    free: std::sync::Mutex::new(std::thread::available_parallelism().map_or(2, |n| n.get())),
    cv: std::sync::Condvar::new(),
});

fn with_slot<T>(f: impl FnOnce() -> T) -> T {
    let mut free = SLOTS
        .cv
        .wait_while(SLOTS.free.lock().expect("hash slots"), |n| *n == 0)
        .expect("hash slots");
    *free -= 1;
    drop(free);
    let out = f();
    *SLOTS.free.lock().expect("hash slots") += 1;
    SLOTS.cv.notify_one();
    out
}

pub fn hash_password(password: &str) -> Result<String> {
    with_slot(|| hash_password_now(password))
}

fn hash_password_now(password: &str) -> Result<String> {
    Argon2::default()
        .hash_password(password.as_bytes())
        .map(|h| h.to_string())
        .map_err(|e| Error::internal(format!("password hashing failed: {e}")))
}

pub fn verify_password(password: &str, phc: &str) -> bool {
    with_slot(|| verify_password_now(password, phc))
}

fn verify_password_now(password: &str, phc: &str) -> bool {
    match PasswordHash::new(phc) {
        Ok(h) => Argon2::default()
            .verify_password(password.as_bytes(), &h)
            .is_ok(),
        Err(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let h = hash_password("correct horse").unwrap();
        assert!(h.starts_with("$argon2id$"));
        assert!(verify_password("correct horse", &h));
        assert!(!verify_password("wrong horse", &h));
        assert!(!verify_password("correct horse", "not a hash"));
    }
}
