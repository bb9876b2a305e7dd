//! `/.well-known/matrix/support`: the `[support]` configuration as the spec's response.

use ruma::api::client::discovery::discover_support::{Contact, ContactRole, Response};

use crate::config::SupportConfig;
use crate::error::{Error, Result};

/// The configured contacts and support page; `M_NOT_FOUND` when neither is configured (the spec
/// requires at least one of them in a 200 response).
pub fn support_info(config: &SupportConfig) -> Result<Response> {
    let mut contacts = Vec::new();
    for c in &config.contacts {
        let role = ContactRole::from(c.role.as_str());
        let mut contact = match (&c.matrix_id, &c.email_address) {
            (Some(id), _) => Contact::with_matrix_id(
                role,
                // Validated when the configuration was loaded.
                id.as_str().try_into().map_err(Error::internal)?,
            ),
            (None, Some(email)) => Contact::with_email_address(role, email.clone()),
            (None, None) => continue,
        };
        contact.email_address = c.email_address.clone();
        contacts.push(contact);
    }
    if contacts.is_empty() && config.support_page.is_none() {
        return Err(Error::not_found("No support information is configured"));
    }
    let mut res = Response::with_contacts(contacts);
    res.support_page = config.support_page.clone();
    Ok(res)
}

#[cfg(test)]
mod tests {
    use ruma::api::error::ErrorKind;

    use super::*;
    use crate::config::SupportContact;

    #[test]
    fn nothing_configured_is_not_found() {
        let err = support_info(&SupportConfig::default()).unwrap_err();
        assert_eq!(err.kind(), Some(&ErrorKind::NotFound));
    }

    #[test]
    fn contacts_keep_both_ways_to_reach_them() {
        let config = SupportConfig {
            contacts: vec![
                SupportContact {
                    role: "m.role.admin".into(),
                    matrix_id: Some("@admin:localhost".into()),
                    email_address: Some("it@example.nhs.uk".into()),
                },
                SupportContact {
                    role: "m.role.security".into(),
                    matrix_id: None,
                    email_address: Some("security@example.nhs.uk".into()),
                },
            ],
            support_page: None,
        };
        let res = support_info(&config).unwrap();
        let json = serde_json::to_value(&res.contacts).unwrap();
        assert_eq!(
            json,
            serde_json::json!([
                { "role": "m.role.admin", "matrix_id": "@admin:localhost",
                  "email_address": "it@example.nhs.uk" },
                { "role": "m.role.security", "email_address": "security@example.nhs.uk" },
            ])
        );
    }
}
