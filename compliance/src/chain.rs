//! The hash chain: each entry commits to its predecessor's hash, so editing, deleting or
//! reordering any stored entry breaks verification at that entry.

use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use crate::record::{AuditRecord, NewEntry};

/// `prev_hash` of the first entry.
pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// Bumped only with a new serialisation; part of every hash so versions cannot be confused.
const FORMAT: &str = "handover-audit-v1";

/// The first entry that fails verification, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokenAt {
    pub seq: i64,
    pub reason: String,
}

impl std::fmt::Display for BrokenAt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "audit chain broken at seq {}: {}", self.seq, self.reason)
    }
}

impl std::error::Error for BrokenAt {}

/// Objects with their keys sorted at every level, so the hash never depends on storage order.
fn canonical(v: &Value) -> Value {
    match v {
        Value::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            let mut out = Map::new();
            for k in keys {
                out.insert(k.clone(), canonical(&m[k]));
            }
            Value::Object(out)
        }
        Value::Array(a) => Value::Array(a.iter().map(canonical).collect()),
        other => other.clone(),
    }
}

/// The bytes that are hashed: a JSON array of every field except `hash`, in a fixed order.
pub fn canonical_bytes(r: &AuditRecord) -> Vec<u8> {
    let arr = serde_json::json!([
        FORMAT,
        r.seq,
        r.ts,
        r.actor,
        r.action,
        r.target,
        r.outcome.as_str(),
        r.rule,
        canonical(&Value::Object(r.details.clone())),
        r.prev_hash,
    ]);
    serde_json::to_vec(&arr).expect("a JSON value always serialises")
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes.iter().fold(String::with_capacity(64), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

pub fn compute_hash(r: &AuditRecord) -> String {
    hex(&Sha256::digest(canonical_bytes(r)))
}

/// Turns `entry` into chain entry `seq` after the entry whose hash is `prev_hash`.
pub fn seal(entry: NewEntry, seq: i64, prev_hash: &str) -> AuditRecord {
    let mut r = AuditRecord {
        seq,
        ts: entry.ts,
        actor: entry.actor,
        action: entry.action,
        target: entry.target,
        outcome: entry.outcome,
        rule: entry.rule,
        details: entry.details,
        prev_hash: prev_hash.to_owned(),
        hash: String::new(),
    };
    r.hash = compute_hash(&r);
    r
}

/// Checks a chain entry by entry, so a long log can be verified page by page.
#[derive(Debug, Clone)]
pub struct Verifier {
    next_seq: i64,
    head: String,
    count: u64,
}

impl Default for Verifier {
    fn default() -> Self {
        Self {
            next_seq: 1,
            head: GENESIS_HASH.to_owned(),
            count: 0,
        }
    }
}

impl Verifier {
    /// Checks the next entry (entries must be given in stored order, from seq 1).
    pub fn push(&mut self, r: &AuditRecord) -> Result<(), BrokenAt> {
        let expected = self.next_seq;
        if r.seq > expected {
            let reason = if r.seq == expected + 1 {
                format!(
                    "entry {expected} is missing (next stored entry is {})",
                    r.seq
                )
            } else {
                format!(
                    "entries {expected}..={} are missing (next stored entry is {})",
                    r.seq - 1,
                    r.seq
                )
            };
            return Err(BrokenAt {
                seq: expected,
                reason,
            });
        }
        if r.seq < expected {
            return Err(BrokenAt {
                seq: r.seq,
                reason: format!(
                    "out of order: seq {} found where {expected} expected",
                    r.seq
                ),
            });
        }
        if r.prev_hash != self.head {
            return Err(BrokenAt {
                seq: r.seq,
                reason: "prev_hash does not match the previous entry's hash \
                         (entry moved, replaced or inserted)"
                    .into(),
            });
        }
        if compute_hash(r) != r.hash {
            return Err(BrokenAt {
                seq: r.seq,
                reason: "hash does not match the entry's contents (entry edited)".into(),
            });
        }
        self.next_seq += 1;
        self.head = r.hash.clone();
        self.count += 1;
        Ok(())
    }

    /// Entries verified so far.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// Hash of the last verified entry: record it elsewhere to detect later truncation.
    pub fn head(&self) -> &str {
        &self.head
    }
}

/// Verifies a whole chain (from seq 1) and names the first broken entry.
pub fn verify(entries: &[AuditRecord]) -> Result<(), BrokenAt> {
    let mut v = Verifier::default();
    for r in entries {
        if let Err(mut e) = v.push(r) {
            // A "missing" entry that is present further on was moved, not deleted.
            if r.seq > e.seq && entries.iter().any(|x| x.seq == e.seq) {
                e.reason = format!("out of order: seq {} found where {} expected", r.seq, e.seq);
            }
            return Err(e);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::Outcome;

    fn chain(n: i64) -> Vec<AuditRecord> {
        let mut out: Vec<AuditRecord> = Vec::new();
        for i in 1..=n {
            let prev = out
                .last()
                .map_or(GENESIS_HASH.to_owned(), |r| r.hash.clone());
            let e = NewEntry::new(1_700_000_000_000 + i, "@alice:x", "login", Outcome::Success)
                .target("@alice:x")
                .detail("ip", format!("10.0.0.{i}"));
            out.push(seal(e, i, &prev));
        }
        out
    }

    #[test]
    fn intact_chain_verifies() {
        assert_eq!(verify(&[]), Ok(()));
        let c = chain(5);
        assert_eq!(c[0].prev_hash, GENESIS_HASH);
        assert_eq!(c[0].hash.len(), 64);
        assert_eq!(c[1].prev_hash, c[0].hash);
        assert_eq!(verify(&c), Ok(()));
    }

    #[test]
    fn edited_row_breaks_at_that_row() {
        for field in 0..5 {
            let mut c = chain(5);
            match field {
                0 => {
                    c[2].details.insert("ip".into(), "6.6.6.6".into());
                }
                1 => c[2].actor = "@mallory:x".into(),
                2 => c[2].outcome = Outcome::Failure,
                3 => c[2].ts += 1,
                _ => c[2].rule = Some("x".into()),
            }
            let err = verify(&c).unwrap_err();
            assert_eq!(err.seq, 3, "field {field}");
            assert!(err.reason.contains("edited"), "{}", err.reason);
        }
    }

    #[test]
    fn recomputed_hash_still_breaks_the_next_row() {
        // An editor who also recomputes the edited row's hash is caught by the next row.
        let mut c = chain(5);
        c[2].actor = "@mallory:x".into();
        c[2].hash = compute_hash(&c[2]);
        let err = verify(&c).unwrap_err();
        assert_eq!(err.seq, 4);
        assert!(err.reason.contains("prev_hash"), "{}", err.reason);
    }

    #[test]
    fn deleted_row_is_named() {
        let mut c = chain(5);
        c.remove(2);
        let err = verify(&c).unwrap_err();
        assert_eq!(err.seq, 3);
        assert!(err.reason.contains("missing"), "{}", err.reason);
        let mut c = chain(5);
        c.remove(0);
        assert_eq!(verify(&c).unwrap_err().seq, 1);
        let mut c = chain(6);
        c.drain(2..4);
        assert!(verify(&c).unwrap_err().reason.contains("3..=4"));
    }

    #[test]
    fn deleted_and_renumbered_rows_break_at_the_gap() {
        // Renumbering the rows after a deletion hides the gap but not the broken link.
        let mut c = chain(5);
        c.remove(2);
        for r in c.iter_mut().skip(2) {
            r.seq -= 1;
        }
        assert_eq!(verify(&c).unwrap_err().seq, 3);
    }

    #[test]
    fn reordered_rows_break_at_the_first_moved_row() {
        let mut c = chain(5);
        c.swap(1, 3);
        let err = verify(&c).unwrap_err();
        assert_eq!(err.seq, 2);
        assert!(err.reason.contains("out of order"), "{}", err.reason);
        // Swapped seq numbers too (as an UPDATE of the seq column would).
        let mut c = chain(5);
        c.swap(1, 3);
        (c[1].seq, c[3].seq) = (2, 4);
        assert_eq!(verify(&c).unwrap_err().seq, 2);
    }

    #[test]
    fn details_key_order_does_not_matter() {
        let e = NewEntry::new(1, "a", "b", Outcome::Success)
            .detail("z", 1)
            .detail("a", 2);
        let r = seal(e, 1, GENESIS_HASH);
        let mut reordered = r.clone();
        reordered.details = serde_json::from_str(r#"{"z":1,"a":2}"#).unwrap();
        assert_eq!(compute_hash(&reordered), r.hash);
    }
}
