//! NHS numbers as the EPR launch gives them: ten digits (spaces or hyphens allowed between the
//! 3-3-4 groups), valid under the modulus-11 check — the server's own check
//! (`handover_policy::nhs_number`), so the bridge and the server's guard agree.

use handover_policy::nhs_number::is_valid_nhs_number;

/// The FHIR identifier system of NHS numbers.
pub const NHS_NUMBER_SYSTEM: &str = "https://fhir.nhs.uk/Id/nhs-number";

/// The ten digits of a valid NHS number, or why it is not one (never repeating it).
pub fn parse(input: &str) -> Result<String, &'static str> {
    let digits: String = input.chars().filter(|c| !matches!(c, ' ' | '-')).collect();
    if digits.len() != 10 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err("an NHS number is 10 digits");
    }
    let mut d = [0u8; 10];
    for (i, b) in digits.bytes().enumerate() {
        d[i] = b - b'0';
    }
    if !is_valid_nhs_number(&d) {
        return Err("the NHS number's check digit is wrong (modulus 11)");
    }
    Ok(digits)
}

/// `943 476 5919`, as it is printed for people.
pub fn display(digits: &str) -> String {
    if digits.len() == 10 {
        format!("{} {} {}", &digits[..3], &digits[3..6], &digits[6..])
    } else {
        digits.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn valid_grouped_and_invalid_numbers() {
        assert_eq!(parse("9434765919").unwrap(), "9434765919");
        assert_eq!(parse("943 476 5919").unwrap(), "9434765919");
        assert_eq!(parse("943-476-5919").unwrap(), "9434765919");
        assert!(parse("9434765918").unwrap_err().contains("check digit"));
        assert!(parse("943476591").unwrap_err().contains("10 digits"));
        assert!(parse("94347659x9").is_err());
        assert!(parse("").is_err());
        assert_eq!(display("9434765919"), "943 476 5919");
    }
}
