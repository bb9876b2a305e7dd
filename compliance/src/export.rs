//! JSON-lines export: one record per line, hashes included so the export can be re-verified
//! (`chain::verify`) away from the server. Records hold metadata only, so the file does too.

use std::io::Write;

use serde_json::Value;

use crate::record::AuditRecord;
use crate::time::format_rfc3339;

/// One record as a JSON line (no trailing newline), with a readable `time` beside `ts`.
pub fn to_json_line(r: &AuditRecord) -> String {
    let mut v = serde_json::to_value(r).expect("a record always serialises");
    if let Value::Object(m) = &mut v {
        m.insert("time".into(), format_rfc3339(r.ts).into());
    }
    v.to_string()
}

/// Writes each record as a line; returns how many were written.
pub fn write_json_lines<'a>(
    out: &mut impl Write,
    records: impl IntoIterator<Item = &'a AuditRecord>,
) -> std::io::Result<u64> {
    let mut n = 0;
    for r in records {
        writeln!(out, "{}", to_json_line(r))?;
        n += 1;
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chain::{GENESIS_HASH, seal, verify};
    use crate::record::{NewEntry, Outcome};

    #[test]
    fn lines_parse_back_and_verify() {
        let a = seal(
            NewEntry::new(0, "@a:x", "login", Outcome::Failure).detail("ip", "10.0.0.1"),
            1,
            GENESIS_HASH,
        );
        let b = seal(
            NewEntry::new(1, "@a:x", "policy.denial", Outcome::Denied).rule("r"),
            2,
            &a.hash,
        );
        let mut buf = Vec::new();
        assert_eq!(write_json_lines(&mut buf, [&a, &b]).unwrap(), 2);
        let text = String::from_utf8(buf).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2);
        let first: Value = serde_json::from_str(lines[0]).unwrap();
        assert_eq!(first["time"], "1970-01-01T00:00:00.000Z");
        assert_eq!(first["outcome"], "failure");
        let back: Vec<AuditRecord> = lines
            .iter()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(back, [a, b]);
        assert_eq!(verify(&back), Ok(()));
    }
}
