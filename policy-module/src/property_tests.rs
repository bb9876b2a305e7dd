//! Property tests (proptest) on the parsers that take outside input: NHS-number detection in
//! any text, media sniffing of any bytes, federation list and server-pattern parsing. None may
//! panic, and what they are for must hold on generated input, not only on the examples.

use proptest::prelude::*;

use crate::federation::{FederationList, ServerPattern, canonical_json};
use crate::media::sniff;
use crate::nhs_number::{find_nhs_numbers, is_valid_nhs_number};

/// Nine digits and their modulus-11 check digit, when one exists (a remainder of 10 has none).
fn with_check_digit(nine: [u8; 9]) -> Option<[u8; 10]> {
    let sum: u32 = nine
        .iter()
        .zip((2..=10u32).rev())
        .map(|(d, w)| u32::from(*d) * w)
        .sum();
    let check = match 11 - sum % 11 {
        11 => 0,
        10 => return None,
        c => c as u8,
    };
    let mut all = [0u8; 10];
    all[..9].copy_from_slice(&nine);
    all[9] = check;
    Some(all)
}

fn text(digits: &[u8]) -> String {
    digits.iter().map(|d| char::from(b'0' + d)).collect()
}

/// Text that neither starts nor ends with a digit (so a number beside it is not part of a run).
fn surround() -> impl Strategy<Value = String> {
    "[a-zA-Z ,.:;()é€\\n]{0,12}"
}

/// A DNS label: letters, digits and `-`.
fn label() -> impl Strategy<Value = String> {
    "[a-z][a-z0-9-]{0,10}[a-z0-9]"
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn nhs_search_never_panics_and_finds_only_valid_numbers(s in any::<String>()) {
        for r in find_nhs_numbers(&s) {
            prop_assert!(s.is_char_boundary(r.start) && s.is_char_boundary(r.end));
            let digits: Vec<u8> = s[r.clone()].bytes().filter(u8::is_ascii_digit).map(|b| b - b'0').collect();
            let arr: [u8; 10] = digits.try_into().expect("ten digits in a match");
            prop_assert!(is_valid_nhs_number(&arr), "{}", &s[r]);
        }
    }

    #[test]
    fn a_valid_nhs_number_in_any_layout_is_found(
        nine in prop::array::uniform9(0u8..10),
        before in surround(),
        after in surround(),
        sep in prop::sample::select(vec!["", " ", "-"]),
    ) {
        let Some(n) = with_check_digit(nine) else { return Ok(()) };
        let written = if sep.is_empty() {
            text(&n)
        } else {
            format!("{}{sep}{}{sep}{}", text(&n[..3]), text(&n[3..6]), text(&n[6..]))
        };
        let s = format!("{before}{written}{after}");
        let found = find_nhs_numbers(&s);
        prop_assert_eq!(found.len(), 1, "{}", s);
        prop_assert_eq!(&s[found[0].clone()], written.as_str());
    }

    #[test]
    fn a_wrong_check_digit_or_a_longer_run_is_not_an_nhs_number(
        nine in prop::array::uniform9(0u8..10),
        delta in 1u8..10,
        extra in 0u8..10,
    ) {
        let Some(n) = with_check_digit(nine) else { return Ok(()) };
        let mut wrong = n;
        wrong[9] = (n[9] + delta) % 10;
        prop_assert!(find_nhs_numbers(&text(&wrong)).is_empty());
        // Eleven digits: a phone number or a reference, not an NHS number.
        let (longer, earlier) = (format!("{}{extra}", text(&n)), format!("{extra}{}", text(&n)));
        prop_assert!(find_nhs_numbers(&longer).is_empty());
        prop_assert!(find_nhs_numbers(&earlier).is_empty());
    }

    #[test]
    fn sniff_never_panics_and_knows_every_magic_number(
        tail in prop::collection::vec(any::<u8>(), 0..64),
        junk in prop::collection::vec(any::<u8>(), 0..2048),
    ) {
        let _ = sniff(&junk);
        let magic: [(&[u8], &str); 5] = [
            (b"\x89PNG\r\n\x1a\n", "image/png"),
            (b"\xff\xd8\xff", "image/jpeg"),
            (b"GIF89a", "image/gif"),
            (b"GIF87a", "image/gif"),
            (b"OggS", "audio/ogg"),
        ];
        for (m, want) in magic {
            let bytes = [m, &tail[..]].concat();
            prop_assert_eq!(sniff(&bytes), Some(want));
        }
        let webp = [b"RIFF".as_slice(), &[0, 0, 0, 0], b"WEBP", &tail[..]].concat();
        prop_assert_eq!(sniff(&webp), Some("image/webp"));
    }

    #[test]
    fn list_and_pattern_parsing_never_panic(s in any::<String>(), b in prop::collection::vec(any::<u8>(), 0..256)) {
        let _ = ServerPattern::parse(&s);
        let _ = FederationList::parse(s.as_bytes(), None, None);
        let _ = FederationList::parse(&b, Some(&b), None);
        // Pattern-like input, where the interesting branches are.
        for prefix in ["*.", "[", "*.[", ""] {
            let _ = ServerPattern::parse(&format!("{prefix}{s}"));
            let _ = ServerPattern::parse(&format!("{prefix}{s}]"));
            let _ = ServerPattern::parse(&format!("{prefix}{s}]:8448"));
        }
    }

    #[test]
    fn a_listed_server_matches_and_a_wildcard_is_anchored(
        labels in prop::collection::vec(label(), 2..5),
        sub in label(),
        port in prop::option::of(1u16..),
    ) {
        let host = labels.join(".");
        let name = match port { Some(p) => format!("{host}:{p}"), None => host.clone() };
        let exact = ServerPattern::parse(&name).unwrap();
        prop_assert!(exact.matches(&name));
        prop_assert!(exact.matches(&name.to_ascii_uppercase()));
        let deeper = format!("{sub}.{name}");
        prop_assert!(!exact.matches(&deeper));
        let wild = ServerPattern::parse(&format!("*.{name}")).unwrap();
        let with_port = |h: String| match port { Some(p) => format!("{h}:{p}"), None => h };
        let (under, glued, after) = (
            with_port(format!("{sub}.{host}")),
            with_port(format!("{sub}{host}")),
            with_port(format!("{host}.{sub}")),
        );
        prop_assert!(wild.matches(&under));
        prop_assert!(!wild.matches(&name), "a wildcard never matches its own base");
        prop_assert!(!wild.matches(&glued), "label boundary");
        prop_assert!(!wild.matches(&after), "suffix only");
    }

    #[test]
    fn a_generated_list_round_trips_through_canonical_json(
        servers in prop::collection::vec(prop::collection::vec(label(), 2..4), 1..4),
        serial in any::<u32>(),
    ) {
        let names: Vec<String> = servers.iter().map(|l| l.join(".")).collect();
        let doc = serde_json::json!({
            "serial": serial,
            "organisations": [{ "ods_code": "RRK", "name": "A trust", "servers": names }],
        });
        let canon = canonical_json(&doc).unwrap();
        let list = FederationList::parse(canon.as_bytes(), None, None).unwrap();
        prop_assert_eq!(list.serial, u64::from(serial));
        for n in &names {
            prop_assert!(list.find(n).is_some(), "{} listed", n);
        }
        let again: serde_json::Value = serde_json::from_str(&canon).unwrap();
        prop_assert_eq!(canonical_json(&again).unwrap(), canon);
    }
}
