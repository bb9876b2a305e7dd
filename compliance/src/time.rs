//! Timestamps for export ranges: RFC 3339 (`2025-01-31T09:00:00Z`, `...+01:00`, fractions) or a
//! plain date (`2025-01-31`, midnight UTC), or Unix milliseconds. Small and self-contained: the
//! dependency tree's `time` crate is built without its parser, and this is all we need.

/// Parses `s` as Unix milliseconds (all digits) or RFC 3339; returns Unix milliseconds.
pub fn parse_time(s: &str) -> Result<i64, String> {
    let s = s.trim();
    if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
        return s.parse().map_err(|_| format!("`{s}`: number out of range"));
    }
    parse_rfc3339(s).ok_or_else(|| {
        format!("`{s}`: expected RFC 3339 (2025-01-31T09:00:00Z), a date, or Unix milliseconds")
    })
}

fn num(s: &str, range: std::ops::RangeInclusive<i64>) -> Option<i64> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok().filter(|n| range.contains(n))
}

fn is_leap(y: i64) -> bool {
    (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
}

fn days_in_month(y: i64, m: i64) -> i64 {
    match m {
        2 if is_leap(y) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 (H. Hinnant's algorithm; proleptic Gregorian).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let doy = (153 * ((m + 9) % 12) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = if z >= 0 { z } else { z - 146_096 } / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

fn parse_rfc3339(s: &str) -> Option<i64> {
    if !s.is_ascii() || s.len() < 10 {
        return None;
    }
    let (date, rest) = s.split_at(10);
    let b = date.as_bytes();
    if b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    let y = num(&date[0..4], 0..=9999)?;
    let mo = num(&date[5..7], 1..=12)?;
    let d = num(&date[8..10], 1..=days_in_month(y, mo))?;
    let days = days_from_civil(y, mo, d);
    if rest.is_empty() {
        return Some(days * 86_400_000);
    }
    let rest = rest.strip_prefix(['T', 't', ' '])?;
    if rest.len() < 8 || rest.as_bytes()[2] != b':' || rest.as_bytes()[5] != b':' {
        return None;
    }
    let h = num(&rest[0..2], 0..=23)?;
    let mi = num(&rest[3..5], 0..=59)?;
    // 60 is a leap second; it is folded into the next second.
    let sec = num(&rest[6..8], 0..=60)?;
    let mut rest = &rest[8..];
    let mut ms = 0;
    if let Some(frac) = rest.strip_prefix('.') {
        let n = frac.bytes().take_while(u8::is_ascii_digit).count();
        if n == 0 {
            return None;
        }
        let digits = &frac[..n];
        ms = num(&format!("{:0<3}", &digits[..n.min(3)]), 0..=999)?;
        rest = &frac[n..];
    }
    let offset_min = match rest {
        "Z" | "z" => 0,
        _ if rest.len() == 6 && rest.as_bytes()[3] == b':' => {
            let sign = match rest.as_bytes()[0] {
                b'+' => 1,
                b'-' => -1,
                _ => return None,
            };
            sign * (num(&rest[1..3], 0..=23)? * 60 + num(&rest[4..6], 0..=59)?)
        }
        _ => return None,
    };
    let secs = days * 86_400 + h * 3600 + mi * 60 + sec - offset_min * 60;
    Some(secs * 1000 + ms)
}

/// Unix milliseconds as RFC 3339 UTC with milliseconds, e.g. `2025-01-31T09:00:00.000Z`.
pub fn format_rfc3339(ms: i64) -> String {
    let (days, rem) = (ms.div_euclid(86_400_000), ms.rem_euclid(86_400_000));
    let (y, m, d) = civil_from_days(days);
    let (h, mi, s, frac) = (
        rem / 3_600_000,
        rem / 60_000 % 60,
        rem / 1000 % 60,
        rem % 1000,
    );
    format!("{y:04}-{m:02}-{d:02}T{h:02}:{mi:02}:{s:02}.{frac:03}Z")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_rfc3339_variants() {
        assert_eq!(parse_time("1970-01-01T00:00:00Z"), Ok(0));
        assert_eq!(parse_time("2025-01-31T09:00:00Z"), Ok(1_738_314_000_000));
        assert_eq!(parse_time("2025-01-31t09:00:00z"), Ok(1_738_314_000_000));
        assert_eq!(parse_time("2025-01-31 09:00:00Z"), Ok(1_738_314_000_000));
        assert_eq!(
            parse_time("2025-01-31T10:00:00+01:00"),
            Ok(1_738_314_000_000)
        );
        assert_eq!(
            parse_time("2025-01-31T08:30:00-00:30"),
            Ok(1_738_314_000_000)
        );
        assert_eq!(parse_time("2025-01-31T09:00:00.5Z"), Ok(1_738_314_000_500));
        assert_eq!(
            parse_time("2025-01-31T09:00:00.123456Z"),
            Ok(1_738_314_000_123)
        );
        assert_eq!(parse_time("2025-01-31"), Ok(1_738_281_600_000));
        assert_eq!(parse_time("2024-02-29T00:00:00Z"), Ok(1_709_164_800_000));
        assert_eq!(parse_time("1969-12-31T23:59:59Z"), Ok(-1000));
    }

    #[test]
    fn parses_unix_millis() {
        assert_eq!(parse_time("1738314000000"), Ok(1_738_314_000_000));
        assert_eq!(parse_time(" 0 "), Ok(0));
    }

    #[test]
    fn rejects_malformed() {
        for bad in [
            "",
            "yesterday",
            "2025-13-01T00:00:00Z",
            "2025-02-29T00:00:00Z",
            "2025-01-32",
            "2025-01-31T24:00:00Z",
            "2025-01-31T09:00:00",
            "2025-01-31T09:00Z",
            "2025-01-31T09:00:00.Z",
            "2025-01-31T09:00:00+0100",
            "-1738314000000",
            "2025-1-31",
        ] {
            assert!(parse_time(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn formats_and_round_trips() {
        assert_eq!(format_rfc3339(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(format_rfc3339(-1000), "1969-12-31T23:59:59.000Z");
        assert_eq!(
            format_rfc3339(1_709_164_800_123),
            "2024-02-29T00:00:00.123Z"
        );
        for ms in [0, 951_782_400_000, 1_738_314_000_500, 4_102_444_799_999] {
            assert_eq!(parse_time(&format_rfc3339(ms)), Ok(ms));
        }
    }
}
