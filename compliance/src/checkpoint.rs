//! Signed checkpoints: the hash chain alone has no key, so an insider who edits a row and
//! rehashes everything after it leaves a valid chain. A checkpoint is a signature over
//! (last seq, last hash, time) made with a key the database does not hold; a rewritten chain no
//! longer matches the hashes that were signed. Signing and signature checks live in the
//! homeserver (ruma's ed25519); this module is the pure part: the signed payload and the check
//! of checkpoints against the chain, page by page.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use crate::record::AuditRecord;

/// The entity name under `signatures` in a checkpoint's JSON.
pub const SIGNER: &str = "handover-audit";

/// One signed checkpoint, as stored and as written (one JSON line) to the external file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkpoint {
    /// The last entry covered.
    pub seq: i64,
    /// That entry's hash.
    pub hash: String,
    /// When the checkpoint was made (Unix ms).
    pub ts: i64,
    /// `ed25519:<version>` of the audit key that signed it.
    pub key_id: String,
    /// Unpadded base64 ed25519 signature over `signed_object` (without `signatures`).
    pub signature: String,
}

impl Checkpoint {
    /// The object that is signed, without its signature: `{"hash", "seq", "ts"}`.
    pub fn payload(seq: i64, hash: &str, ts: i64) -> Map<String, Value> {
        let Value::Object(m) = json!({ "seq": seq, "hash": hash, "ts": ts }) else {
            unreachable!("a json! object literal is an object")
        };
        m
    }

    /// The Matrix signed-JSON form: the payload plus `signatures.handover-audit.<key_id>`.
    pub fn signed_object(&self) -> Map<String, Value> {
        let mut m = Self::payload(self.seq, &self.hash, self.ts);
        m.insert(
            "signatures".into(),
            json!({ SIGNER: { self.key_id.clone(): self.signature.clone() } }),
        );
        m
    }
}

/// The first checkpoint the chain does not match, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckpointBroken {
    pub seq: i64,
    pub reason: String,
}

impl std::fmt::Display for CheckpointBroken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "audit checkpoint at seq {} fails: {}",
            self.seq, self.reason
        )
    }
}

impl std::error::Error for CheckpointBroken {}

/// Compares checkpoints with the chain as its entries are verified (fed in seq order, after
/// the chain check of each entry passed).
#[derive(Debug, Clone)]
pub struct CheckpointChecker {
    /// Sorted by seq; several checkpoints may name one seq (table and external file).
    checkpoints: Vec<Checkpoint>,
    next: usize,
    last_seq: i64,
}

impl CheckpointChecker {
    pub fn new(mut checkpoints: Vec<Checkpoint>) -> Self {
        checkpoints.sort_by_key(|c| c.seq);
        Self {
            checkpoints,
            next: 0,
            last_seq: 0,
        }
    }

    /// Checks every checkpoint that names this entry.
    pub fn observe(&mut self, r: &AuditRecord) -> Result<(), CheckpointBroken> {
        self.last_seq = r.seq;
        while let Some(c) = self.checkpoints.get(self.next) {
            if c.seq > r.seq {
                break;
            }
            if c.seq < r.seq {
                // Entries are contiguous once the chain check passed; only seq < 1 lands here.
                return Err(CheckpointBroken {
                    seq: c.seq,
                    reason: "names no entry of the chain".into(),
                });
            }
            if c.hash != r.hash {
                return Err(CheckpointBroken {
                    seq: c.seq,
                    reason: format!(
                        "signed hash {} but the stored entry's hash is {} (entries up to \
                         seq {} were rewritten)",
                        c.hash, r.hash, c.seq
                    ),
                });
            }
            self.next += 1;
        }
        Ok(())
    }

    /// After the last entry: a checkpoint past the end means signed entries were removed.
    pub fn finish(&self) -> Result<CheckpointSummary, CheckpointBroken> {
        if let Some(c) = self.checkpoints.get(self.next) {
            return Err(CheckpointBroken {
                seq: c.seq,
                reason: format!(
                    "entries up to seq {} were signed but the chain ends at seq {} (entries \
                     were removed)",
                    c.seq, self.last_seq
                ),
            });
        }
        let last = self.checkpoints.last().map(|c| c.seq).unwrap_or(0);
        Ok(CheckpointSummary {
            checkpoints: self.checkpoints.len(),
            last_checkpoint_seq: last,
            unsigned_tail: self.last_seq - last,
        })
    }
}

/// What a passed checkpoint check covered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckpointSummary {
    pub checkpoints: usize,
    pub last_checkpoint_seq: i64,
    /// Entries after the last checkpoint: only the keyless chain vouches for them.
    pub unsigned_tail: i64,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chain::{GENESIS_HASH, seal};
    use crate::record::{NewEntry, Outcome};

    fn chain(n: i64) -> Vec<AuditRecord> {
        let mut prev = GENESIS_HASH.to_owned();
        (1..=n)
            .map(|seq| {
                let r = seal(
                    NewEntry::new(seq, "@a:x", "login", Outcome::Success),
                    seq,
                    &prev,
                );
                prev = r.hash.clone();
                r
            })
            .collect()
    }

    fn cp(r: &AuditRecord) -> Checkpoint {
        Checkpoint {
            seq: r.seq,
            hash: r.hash.clone(),
            ts: 0,
            key_id: "ed25519:a".into(),
            signature: "s".into(),
        }
    }

    fn run(
        records: &[AuditRecord],
        cps: Vec<Checkpoint>,
    ) -> Result<CheckpointSummary, CheckpointBroken> {
        let mut c = CheckpointChecker::new(cps);
        for r in records {
            c.observe(r)?;
        }
        c.finish()
    }

    #[test]
    fn matching_checkpoints_pass_and_count_the_unsigned_tail() {
        let recs = chain(5);
        let s = run(&recs, vec![cp(&recs[3]), cp(&recs[1]), cp(&recs[3])]).unwrap();
        assert_eq!(s.last_checkpoint_seq, 4);
        assert_eq!(s.unsigned_tail, 1);
    }

    #[test]
    fn a_rewritten_and_rehashed_chain_fails_at_the_checkpoint() {
        let recs = chain(5);
        let cps = vec![cp(&recs[3])];
        // The insider edits entry 2 and rehashes 2..5: a valid chain with other hashes.
        let mut forged = recs[..1].to_vec();
        let mut prev = recs[0].hash.clone();
        for seq in 2..=5 {
            let r = seal(
                NewEntry::new(seq, "@m:x", "login", Outcome::Success),
                seq,
                &prev,
            );
            prev = r.hash.clone();
            forged.push(r);
        }
        assert!(crate::verify(&forged).is_ok());
        let err = run(&forged, cps).unwrap_err();
        assert_eq!(err.seq, 4);
        assert!(err.to_string().contains("checkpoint at seq 4"), "{err}");
    }

    #[test]
    fn truncation_below_a_checkpoint_is_named() {
        let recs = chain(5);
        let err = run(&recs[..2], vec![cp(&recs[3])]).unwrap_err();
        assert_eq!(err.seq, 4);
        assert!(err.reason.contains("removed"), "{err}");
    }

    #[test]
    fn the_payload_is_what_the_signature_covers() {
        let c = cp(&chain(1)[0]);
        let mut o = c.signed_object();
        o.remove("signatures");
        assert_eq!(o, Checkpoint::payload(c.seq, &c.hash, c.ts));
    }
}
