//! Finding NHS numbers in free text.
//!
//! An NHS number is 10 digits whose last is a modulus-11 check digit (NHS Data Dictionary): the
//! first nine are weighted 10..2, `check = 11 - (sum mod 11)`, 11 means 0 and 10 means the number
//! is invalid. Written `9434765919` or grouped 3-3-4 (`943 476 5919`, `943-476-5919`). A match
//! must not be part of a longer run of digits (phone numbers, ids, long references).
//! Scotland's CHI and Northern Ireland's H&C numbers use the same format and are caught too.

/// A 10-digit string with a valid NHS modulus-11 check digit.
pub fn is_valid_nhs_number(digits: &[u8; 10]) -> bool {
    let sum: u32 = digits[..9]
        .iter()
        .zip((2..=10u32).rev())
        .map(|(d, w)| u32::from(*d) * w)
        .sum();
    match 11 - sum % 11 {
        11 => digits[9] == 0,
        10 => false,
        check => u32::from(digits[9]) == check,
    }
}

/// Byte ranges of the NHS numbers in `text`. Scans ASCII bytes only: UTF-8 continuation bytes
/// are never ASCII, so the ranges are always on character boundaries.
pub fn find_nhs_numbers(text: &str) -> Vec<std::ops::Range<usize>> {
    let b = text.as_bytes();
    let mut found = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let starts_run = b[i].is_ascii_digit() && (i == 0 || !b[i - 1].is_ascii_digit());
        if starts_run && let Some(end) = match_at(b, i) {
            found.push(i..end);
            i = end;
            continue;
        }
        i += 1;
    }
    found
}

/// Whether `text` holds at least one NHS number.
pub fn contains_nhs_number(text: &str) -> bool {
    !find_nhs_numbers(text).is_empty()
}

/// The end of an NHS number starting at `start` (a digit after a non-digit), if there is one.
fn match_at(b: &[u8], start: usize) -> Option<usize> {
    // Plain: exactly ten digits. Grouped: 3, separator, 3, separator, 4.
    const LAYOUTS: [&[usize]; 2] = [&[10], &[3, 3, 4]];
    'layout: for groups in LAYOUTS {
        let mut digits = [0u8; 10];
        let mut n = 0;
        let mut pos = start;
        for (g, &len) in groups.iter().enumerate() {
            if g > 0 {
                if !matches!(b.get(pos), Some(b' ' | b'-')) {
                    continue 'layout;
                }
                pos += 1;
            }
            for _ in 0..len {
                match b.get(pos) {
                    Some(d) if d.is_ascii_digit() => {
                        digits[n] = d - b'0';
                        n += 1;
                        pos += 1;
                    }
                    _ => continue 'layout,
                }
            }
        }
        let ends_run = !b.get(pos).is_some_and(u8::is_ascii_digit);
        if ends_run && is_valid_nhs_number(&digits) {
            return Some(pos);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn digits(s: &str) -> [u8; 10] {
        let v: Vec<u8> = s.bytes().map(|b| b - b'0').collect();
        v.try_into().unwrap()
    }

    #[test]
    fn check_digit() {
        assert!(is_valid_nhs_number(&digits("9434765919")));
        assert!(is_valid_nhs_number(&digits("4010232137")));
        assert!(!is_valid_nhs_number(&digits("9434765918")));
        // 1*3 + 4*2 = 11: remainder 0, check 11 -> 0.
        assert!(is_valid_nhs_number(&digits("0000000140")));
        assert!(!is_valid_nhs_number(&digits("0000000141")));
        // 6*2 = 12: remainder 1, check 10 -> no last digit makes this valid.
        for last in 0..10 {
            let mut d = digits("0000000060");
            d[9] = last;
            assert!(!is_valid_nhs_number(&d), "{last}");
        }
    }

    #[test]
    fn finds_plain_and_grouped_numbers() {
        for text in [
            "9434765919",
            "Bed 4 9434765919",
            "943 476 5919",
            "943-476-5919",
            "943 476-5919",
            "pt (9434765919), bay 2",
            "NHS no: 943 476 5919.",
            "né 943 476 5919 ✓",
        ] {
            assert_eq!(find_nhs_numbers(text).len(), 1, "{text}");
        }
        let text = "a 943 476 5919 b 4010232137";
        let ranges = find_nhs_numbers(text);
        assert_eq!(ranges.len(), 2);
        assert_eq!(&text[ranges[0].clone()], "943 476 5919");
        assert_eq!(&text[ranges[1].clone()], "4010232137");
    }

    #[test]
    fn ignores_invalid_and_longer_runs() {
        for text in [
            "",
            "9434765918",
            "943 476 5918",
            "94347659190",
            "19434765919",
            "01619434765919",
            "943 476 59190",
            "943  476 5919",
            "943_476_5919",
            "9434 76 5919",
            "943 4765919",
            "phone 01619434765",
            "123456789",
        ] {
            assert!(!contains_nhs_number(text), "{text}");
        }
    }
}
