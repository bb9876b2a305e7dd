//! Staff identifiers ↔ Matrix users. The EPR knows staff by their identifiers (the SDS user id
//! of their smartcard, `https://fhir.nhs.uk/Id/sds-user-id`; a CIS2 UUID; an ESR number) and
//! their email; Handover by Matrix user id. The mapping is configured, never guessed:
//! - a CSV `system,value,user_id` (from the trust's identity or ESR feed), both directions;
//! - a Practitioner email at a listed domain is `@<local part>:<server_name>` (how NHSmail
//!   accounts are provisioned when sign-in uses the email's local part).

use std::collections::HashMap;
use std::path::Path;

/// An identifier `(system, value)`.
pub type Identifier = (String, String);

#[derive(Debug, Default, Clone)]
pub struct StaffMap {
    by_identifier: HashMap<Identifier, String>,
    by_user: HashMap<String, Vec<Identifier>>,
    email_domains: Vec<String>,
    server_name: String,
}

impl StaffMap {
    pub fn new(server_name: &str, email_domains: &[String]) -> Self {
        Self {
            server_name: server_name.to_owned(),
            email_domains: email_domains
                .iter()
                .map(|d| d.to_ascii_lowercase())
                .collect(),
            ..Default::default()
        }
    }

    /// Reads the CSV (header `system,value,user_id`); errors name the line.
    pub fn load_csv(&mut self, path: &Path) -> Result<(), String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("configuration error: staff.csv {}: {e}", path.display()))?;
        self.add_csv(&text)
    }

    pub fn add_csv(&mut self, text: &str) -> Result<(), String> {
        let mut rd = csv::ReaderBuilder::new()
            .trim(csv::Trim::All)
            .from_reader(text.as_bytes());
        let headers = rd.headers().map_err(|e| format!("staff.csv: {e}"))?.clone();
        if headers.iter().collect::<Vec<_>>() != ["system", "value", "user_id"] {
            return Err("staff.csv: the header must be system,value,user_id".into());
        }
        for (i, rec) in rd.records().enumerate() {
            let line = i + 2;
            let rec = rec.map_err(|e| format!("staff.csv line {line}: {e}"))?;
            let (sys, val, user) = (&rec[0], &rec[1], &rec[2]);
            if sys.is_empty() || val.is_empty() {
                return Err(format!(
                    "staff.csv line {line}: system and value are required"
                ));
            }
            if !user.starts_with('@') || !user.contains(':') {
                return Err(format!(
                    "staff.csv line {line}: user_id must be @user:server"
                ));
            }
            let id = (sys.to_owned(), val.to_owned());
            self.by_identifier.insert(id.clone(), user.to_owned());
            self.by_user.entry(user.to_owned()).or_default().push(id);
        }
        Ok(())
    }

    /// The local user a Practitioner is, by identifier first, then email.
    pub fn user_for(&self, identifiers: &[Identifier], emails: &[String]) -> Option<String> {
        identifiers
            .iter()
            .find_map(|i| self.by_identifier.get(i).cloned())
            .or_else(|| emails.iter().find_map(|e| self.user_for_email(e)))
    }

    fn user_for_email(&self, email: &str) -> Option<String> {
        let (local, domain) = email.trim().rsplit_once('@')?;
        let domain = domain.to_ascii_lowercase();
        let local = local.to_ascii_lowercase();
        let valid = !local.is_empty()
            && local
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"._=-/".contains(&b));
        (valid && self.email_domains.contains(&domain))
            .then(|| format!("@{local}:{}", self.server_name))
    }

    /// The identifiers a user is known by in the EPR (to find their Practitioner).
    pub fn identifiers_of(&self, user_id: &str) -> &[Identifier] {
        self.by_user.get(user_id).map(Vec::as_slice).unwrap_or(&[])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SDS: &str = "https://fhir.nhs.uk/Id/sds-user-id";

    #[test]
    fn csv_both_ways_and_email_domains() {
        let mut m = StaffMap::new("trust.nhs.uk", &["NHS.net".into()]);
        m.add_csv(&format!(
            "system,value,user_id\n{SDS}, 555555555555 ,@carol:trust.nhs.uk\n"
        ))
        .unwrap();
        let id = (SDS.to_owned(), "555555555555".to_owned());
        assert_eq!(
            m.user_for(std::slice::from_ref(&id), &[]).as_deref(),
            Some("@carol:trust.nhs.uk")
        );
        assert_eq!(m.identifiers_of("@carol:trust.nhs.uk"), [id]);
        assert!(m.identifiers_of("@nobody:x").is_empty());
        assert_eq!(
            m.user_for(&[], &["Dave.Smith@nhs.net".into()]).as_deref(),
            Some("@dave.smith:trust.nhs.uk")
        );
        assert_eq!(m.user_for(&[], &["dave@gmail.com".into()]), None);
        assert_eq!(m.user_for(&[], &["d a@nhs.net".into()]), None);
    }

    #[test]
    fn bad_csv_names_the_line() {
        let mut m = StaffMap::new("x", &[]);
        assert!(m.add_csv("a,b,c\n").unwrap_err().contains("header"));
        let e = m
            .add_csv("system,value,user_id\ns,v,@a:x\ns,,@b:x\n")
            .unwrap_err();
        assert!(e.contains("line 3"), "{e}");
        let e = m.add_csv("system,value,user_id\ns,v,bob\n").unwrap_err();
        assert!(e.contains("line 2") && e.contains("@user:server"), "{e}");
    }
}
