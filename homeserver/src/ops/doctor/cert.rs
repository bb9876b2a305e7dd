//! A certificate's expiry (`notAfter`), read from the first certificate of a PEM file. Only
//! the few DER elements before the validity are walked (RFC 5280 §4.1): no X.509 crate is in
//! the tree, and the doctor needs no more than this date.

use std::path::Path;

use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;

/// Unix seconds at which the first certificate in the PEM file `path` expires.
pub fn not_after(path: &Path) -> Result<i64, String> {
    let cert = CertificateDer::pem_file_iter(path)
        .map_err(|e| format!("cannot read the certificate: {e}"))?
        .next()
        .ok_or("no certificate in the file")?
        .map_err(|e| format!("bad PEM: {e}"))?;
    not_after_der(&cert).ok_or_else(|| "the certificate's validity cannot be read".to_owned())
}

/// One DER element at the start of `b`: (tag, contents, rest).
fn element(b: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, b) = b.split_first()?;
    let (&first, mut b) = b.split_first()?;
    let len = if first < 0x80 {
        usize::from(first)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 || b.len() < n {
            return None;
        }
        let len = b[..n]
            .iter()
            .fold(0usize, |acc, &x| acc << 8 | usize::from(x));
        b = &b[n..];
        len
    };
    (b.len() >= len).then(|| (tag, &b[..len], &b[len..]))
}

fn not_after_der(der: &[u8]) -> Option<i64> {
    const SEQUENCE: u8 = 0x30;
    let (SEQUENCE, cert, _) = element(der)? else {
        return None;
    };
    let (SEQUENCE, tbs, _) = element(cert)? else {
        return None;
    };
    let mut rest = tbs;
    // version [0] EXPLICIT (absent in v1 certificates)
    if rest.first() == Some(&0xa0) {
        rest = element(rest)?.2;
    }
    // serialNumber, signature, issuer
    for _ in 0..3 {
        rest = element(rest)?.2;
    }
    let (SEQUENCE, validity, _) = element(rest)? else {
        return None;
    };
    let (_, _, after) = element(validity)?; // notBefore
    let (tag, time, _) = element(after)?;
    let time = std::str::from_utf8(time).ok()?;
    // UTCTime YYMMDDHHMMSSZ (years 1950-2049) or GeneralizedTime YYYYMMDDHHMMSSZ.
    let full = match tag {
        0x17 if time.len() == 13 => {
            let yy: u32 = time[..2].parse().ok()?;
            let century = if yy >= 50 { "19" } else { "20" };
            format!("{century}{time}")
        }
        0x18 if time.len() == 15 => time.to_owned(),
        _ => return None,
    };
    let rfc3339 = format!(
        "{}-{}-{}T{}:{}:{}Z",
        &full[..4],
        &full[4..6],
        &full[6..8],
        &full[8..10],
        &full[10..12],
        &full[12..14]
    );
    handover_compliance::time::parse_time(&rfc3339)
        .ok()
        .map(|ms| ms / 1000)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_not_after_of_an_openssl_certificate() {
        let dir = tempfile::tempdir().unwrap();
        let (key, cert) = (dir.path().join("k.pem"), dir.path().join("c.pem"));
        let ok = std::process::Command::new("openssl")
            .args([
                "req",
                "-x509",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:P-256",
            ])
            .args(["-nodes", "-subj", "/CN=doctor.test", "-days", "10"])
            .arg("-keyout")
            .arg(&key)
            .arg("-out")
            .arg(&cert)
            .output()
            .expect("openssl (scripts/test.sh installs it)");
        assert!(
            ok.status.success(),
            "{}",
            String::from_utf8_lossy(&ok.stderr)
        );
        let enddate = std::process::Command::new("openssl")
            .args(["x509", "-noout", "-enddate", "-dateopt", "iso_8601", "-in"])
            .arg(&cert)
            .output()
            .unwrap();
        // notAfter=2026-12-14 09:00:00Z
        let text = String::from_utf8(enddate.stdout).unwrap();
        let iso = text
            .trim()
            .trim_start_matches("notAfter=")
            .replace(' ', "T");
        let want = handover_compliance::time::parse_time(&iso).unwrap() / 1000;
        assert_eq!(not_after(&cert).unwrap(), want);
        std::fs::write(&key, "not a certificate").unwrap();
        assert!(not_after(&key).is_err());
        assert!(not_after_der(&[0x30, 0x03, 0x30, 0x01]).is_none());
    }
}
