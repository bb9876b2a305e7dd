//! Email address syntax: what `requestToken` accepts, normalised to lower case (one account
//! per mailbox, whatever the case it is typed in). Deliberately narrower than RFC 5321: no
//! quoted local parts, comments or IP literals, nothing that could break a mail header or a
//! command line.

/// The normalised address, or why it is not one.
pub fn normalise_email(s: &str) -> Result<String, &'static str> {
    let s = s.trim();
    if s.len() > 254 {
        return Err("longer than 254 characters");
    }
    let Some((local, domain)) = s.rsplit_once('@') else {
        return Err("no @");
    };
    if local.is_empty() || local.len() > 64 {
        return Err("the part before @ must be 1 to 64 characters");
    }
    // RFC 5322 atext and dots, not starting with `-` (it could read as a command option).
    let atext = |b: u8| b.is_ascii_alphanumeric() || b"!#$%&'*+/=?^_`{|}~-.".contains(&b);
    if !local.bytes().all(atext)
        || local.starts_with(['.', '-'])
        || local.ends_with('.')
        || local.contains("..")
    {
        return Err("unsupported characters before @");
    }
    let labels: Vec<&str> = domain.split('.').collect();
    let label_ok = |l: &&str| {
        !l.is_empty()
            && l.len() <= 63
            && !l.starts_with('-')
            && !l.ends_with('-')
            && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
    };
    if labels.len() < 2 || !labels.iter().all(label_ok) {
        return Err("the domain is not a valid domain name");
    }
    Ok(s.to_ascii_lowercase())
}

/// The domain of a normalised address (for audit entries: the domain, not the person).
pub fn domain_of(address: &str) -> &str {
    address.rsplit_once('@').map_or("", |(_, d)| d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_are_checked_and_lower_cased() {
        assert_eq!(
            normalise_email(" A.Smith@NHS.net ").unwrap(),
            "a.smith@nhs.net"
        );
        assert_eq!(
            normalise_email("first.last+tag@trust.nhs.uk").unwrap(),
            "first.last+tag@trust.nhs.uk"
        );
        for bad in [
            "",
            "nhs.net",
            "@nhs.net",
            "a@",
            "a@nhs",
            "a@@nhs.net",
            "a b@nhs.net",
            "a@nhs..net",
            "a@-nhs.net",
            ".a@nhs.net",
            "a..b@nhs.net",
            "-oX@nhs.net",
            "a@nhs.net\r\nBcc: x@evil.example",
            "\"quoted\"@nhs.net",
            "a@[127.0.0.1]",
        ] {
            assert!(normalise_email(bad).is_err(), "{bad:?}");
        }
        assert_eq!(domain_of("a@nhs.net"), "nhs.net");
    }
}
