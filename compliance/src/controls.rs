//! The governance controls of docs/GOVERNANCE.md, each mapped to the configuration key that
//! governs it, the guidance it serves and the end-to-end test that proves it. The evidence
//! report (`handover compliance report`) renders this table with the values in force; a test
//! checks every rule id of the document is here, so a new rule cannot be left out.

/// One control (a rule id of docs/GOVERNANCE.md, or a named control without a rule id).
#[derive(Debug, Clone, Copy)]
pub struct Control {
    pub id: &'static str,
    /// Dotted config key(s) whose value decides it (empty: always on).
    pub config_keys: &'static [&'static str],
    /// What it does, briefly.
    pub what: &'static str,
    pub guidance: &'static str,
    /// End-to-end tests (`module::name` in tests/e2e) that prove it; empty: unit tests only.
    pub tests: &'static [&'static str],
}

const fn c(
    id: &'static str,
    config_keys: &'static [&'static str],
    what: &'static str,
    guidance: &'static str,
    tests: &'static [&'static str],
) -> Control {
    Control {
        id,
        config_keys,
        what,
        guidance,
        tests,
    }
}

pub const CONTROLS: &[Control] = &[
    c(
        "nhs_number_in_metadata",
        &["policy.rules"],
        "NHS numbers refused in room names, topics, aliases and display names",
        "Caldicott principles 2-4; DSPT standard 1",
        &["governance::nhs_numbers_are_refused_in_unencrypted_metadata"],
    ),
    c(
        "nhs_number_in_message",
        &["policy.nhs_number_in_messages"],
        "NHS numbers refused in unencrypted message bodies and edits (when on)",
        "Caldicott principles 3, 7; DSPT standard 1",
        &["governance::nhs_numbers_in_unencrypted_messages_and_their_edits_when_configured"],
    ),
    c(
        "federation_not_listed",
        &["federation.list_file", "federation.list_signing_key"],
        "no federation exchange with a server not on the NHS federation list",
        "DSPT standard 9 (IT protection)",
        &[
            "federation_policy::unlisted_origin_is_refused_at_every_endpoint",
            "federation_policy::unlisted_handover_gets_403_and_is_never_contacted",
            "federation_policy::tampered_list_is_refused_and_last_good_list_stays",
        ],
    ),
    c(
        "federation_no_list",
        &["federation.list_file"],
        "no list, no federation",
        "DSPT standard 9",
        &["federation_policy::unlisted_handover_cannot_invite_join_or_receive"],
    ),
    c(
        "public_rooms_not_federated",
        &["federation.serve_public_rooms"],
        "public room directories not exchanged with other servers",
        "DSPT standard 1",
        &[],
    ),
    c(
        "invite_outside_organisation",
        &["invites.allowed_servers"],
        "invites only within the organisation and listed partners",
        "Caldicott principle 4; DSPT standard 1",
        &[
            "governance::invites_stay_inside_the_organisation_and_honour_the_invitees_config",
            "federation_dm::refused_remote_invitees_fail_create_room_naming_the_rule",
        ],
    ),
    c(
        "invite_blocked_by_invitee",
        &[],
        "the invitee's own invite permission config (MSC4155) is honoured",
        "staff control who can pull them into conversations",
        &["governance::invites_stay_inside_the_organisation_and_honour_the_invitees_config"],
    ),
    c(
        "patient_context_room",
        &[],
        "patient-context rooms stay invite-only, joined-history, encrypted, unpublished",
        "Caldicott principles 2-4; DSPT standard 1",
        &["governance::patient_context_rooms_stay_private"],
    ),
    c(
        "display_name_locked",
        &["policy.lock_display_names"],
        "users cannot change their display name (admins set it)",
        "names match the staff record (ESR / smartcard)",
        &["governance::display_names_are_set_by_admins_when_locked"],
    ),
    c(
        "encryption_irreversible",
        &["rooms.encrypt_by_default"],
        "room encryption cannot be removed or downgraded; private rooms start encrypted",
        "DSPT standard 9; Caldicott principle 4",
        &["governance::encryption_cannot_be_removed_or_changed"],
    ),
    c(
        "email_domain_not_allowed",
        &["registration.allowed_email_domains"],
        "self-registration only with a proven NHS email address",
        "DSPT standards 4, 5",
        &[
            "email_registration::only_a_validated_nhs_address_registers_and_becomes_the_accounts_3pid",
        ],
    ),
    c(
        "media_type_not_allowed",
        &["clinical_media.allowed_types"],
        "uploads limited to an allowlist of file types",
        "DSPT standard 9; NCSC content filtering",
        &["clinical_media::uploads_pass_the_allowlist_magic_bytes_caps_scanner_and_stripping"],
    ),
    c(
        "media_type_mismatch",
        &["clinical_media.allowed_types"],
        "a file's bytes must match its declared type",
        "DSPT standard 9",
        &["clinical_media::uploads_pass_the_allowlist_magic_bytes_caps_scanner_and_stripping"],
    ),
    c(
        "media_too_large",
        &["clinical_media.max_bytes_by_type", "media.max_upload_bytes"],
        "per-type size caps",
        "DSPT standard 9; UK GDPR Art. 5(1)(c)",
        &[
            "clinical_media::uploads_pass_the_allowlist_magic_bytes_caps_scanner_and_stripping",
            "media::media_config_and_upload_limit",
        ],
    ),
    c(
        "metadata_stripping",
        &["clinical_media.strip_image_metadata"],
        "EXIF (GPS, device serials) stripped from images before storage",
        "Caldicott principle 3; UK GDPR Art. 5(1)(c); ICO guidance on photographs",
        &["clinical_media::uploads_pass_the_allowlist_magic_bytes_caps_scanner_and_stripping"],
    ),
    c(
        "media_not_in_your_rooms",
        &["clinical_media.unbound_attachments_to_room_mates"],
        "files served only to current members of the room they were sent in",
        "Caldicott principle 4; DSPT standard 4",
        &["clinical_media::files_are_served_only_to_members_of_the_room_they_were_sent_in"],
    ),
    c(
        "url_previews_off",
        &[],
        "the server never fetches web pages for users",
        "DSPT standard 9",
        &["clinical_media::uploads_pass_the_allowlist_magic_bytes_caps_scanner_and_stripping"],
    ),
    c(
        "media_quarantined",
        &["clinical_media.scanner_command"],
        "files the malware scanner flags are kept, never served, audited",
        "DSPT standards 6, 9",
        &["clinical_media::uploads_pass_the_allowlist_magic_bytes_caps_scanner_and_stripping"],
    ),
    c(
        "audit_trail",
        &[
            "audit.checkpoint_every",
            "audit.checkpoint_interval",
            "audit.checkpoint_file",
        ],
        "hash-chained, signed-checkpoint audit trail; verify names the first broken entry",
        "DSPT standards 4, 6, 9",
        &[
            "audit::verify_and_export_record_metadata_and_catch_tampering",
            "audit::deleting_an_entry_is_named_by_verify",
            "audit::signed_checkpoints_catch_a_rewritten_and_rehashed_trail",
        ],
    ),
    c(
        "retention_purge",
        &[
            "retention.default_lifetime",
            "retention.min_lifetime",
            "retention.max_lifetime",
            "retention.purge_interval",
        ],
        "expired content deleted from the database files and disk",
        "UK GDPR Art. 5(1)(e); NHS Records Management Code of Practice",
        &[
            "retention::expired_messages_and_their_files_are_purged_by_the_admin_command",
            "retention::redacted_originals_wait_for_the_rooms_min_lifetime",
            "retention::a_file_still_shared_in_another_room_survives_the_purge",
        ],
    ),
    c(
        "legal_hold",
        &[],
        "held rooms and users are never purged",
        "litigation and inquiry holds (Records Management Code)",
        &[
            "retention::a_legal_hold_keeps_a_room_until_released",
            "console::console_in_chromium_holds_audit_sessions_sar_csrf_and_refusals",
        ],
    ),
    c(
        "room_blocked",
        &[],
        "no join, invite or knock of a room an admin blocked, locally or over federation",
        "DSPT standard 1",
        &["admin_rooms::messages_block_and_delete_v2_with_shutdown_follow_synapse"],
    ),
    c(
        "access_tokens",
        &["sessions.access_token_lifetime"],
        "tokens only in the Authorization header; optional expiry with refresh",
        "DSPT standard 4",
        &[
            "tokens::query_string_access_token_is_refused",
            "tokens::expired_token_soft_logout_and_single_use_refresh",
        ],
    ),
    c(
        "remote_wipe",
        &[],
        "an admin ends every session of an account from the console (leaver, lost device)",
        "DSPT standard 4 (leavers' access removed)",
        &["console::console_in_chromium_holds_audit_sessions_sar_csrf_and_refusals"],
    ),
    c(
        "subject_access_request",
        &[],
        "a ZIP of everything held about a person, audited",
        "UK GDPR Art. 15",
        &[
            "sar::sar_export_holds_the_persons_data_and_no_secrets_then_erasure_is_recorded",
            "console::console_in_chromium_holds_audit_sessions_sar_csrf_and_refusals",
        ],
    ),
    c(
        "erasure",
        &[],
        "erasure on request with the records-management exemption recorded",
        "UK GDPR Art. 17",
        &["sar::sar_export_holds_the_persons_data_and_no_secrets_then_erasure_is_recorded"],
    ),
    c(
        "durable_writes",
        &[],
        "an acknowledged message survives a crash; a full disk loses nothing acknowledged",
        "DCB0129 hazard: message lost",
        &[
            "crash::every_acknowledged_event_survives_sigkill",
            "disk_full::a_full_disk_gives_clear_errors_and_the_server_recovers",
        ],
    ),
    c(
        "patient_room_not_knockable",
        &[],
        "a knock on a patient-context room is refused before its join rule is read",
        "Caldicott principle 4 (need-to-know access)",
        &["knocking::patient_context_rooms_are_never_knockable"],
    ),
    c(
        "patient_cannot_create_room",
        &["identity.providers.account_kind"],
        "patient accounts cannot create rooms",
        "DSPT standard 4 (managing data access)",
        &["patients::patient_accounts_are_confined_to_the_rooms_staff_invite_them_to"],
    ),
    c(
        "patient_cannot_invite",
        &["identity.providers.account_kind"],
        "patient accounts cannot invite anyone",
        "DSPT standard 4 (managing data access)",
        &["patients::patient_accounts_are_confined_to_the_rooms_staff_invite_them_to"],
    ),
    c(
        "patient_join_needs_staff_invite",
        &["identity.providers.account_kind"],
        "patient accounts join only rooms staff invited them to",
        "Caldicott principle 4; DSPT standard 4",
        &["patients::patient_accounts_are_confined_to_the_rooms_staff_invite_them_to"],
    ),
    c(
        "patient_no_public_directory",
        &["identity.providers.account_kind"],
        "patient accounts neither read nor publish to the public room directory",
        "Caldicott principle 4; DSPT standard 4",
        &["patients::patient_accounts_are_confined_to_the_rooms_staff_invite_them_to"],
    ),
    c(
        "patient_profile_confined",
        &["identity.providers.account_kind"],
        "patient accounts see the profiles and directory entries of their room-mates only",
        "Caldicott principle 4; UK GDPR Art. 5(1)(c) data minimisation",
        &["patients::patient_accounts_are_confined_to_the_rooms_staff_invite_them_to"],
    ),
    c(
        "identity_assurance_too_low",
        &[
            "identity.providers.min_acr",
            "identity.providers.acr_values",
        ],
        "a sign-in whose acr is weaker than the provider's min_acr is refused",
        "DSPT standard 4; NHS CIS2 authentication assurance levels",
        &["oauth::bad_oauth_and_sign_in_input_gets_clear_errors_and_creates_nothing"],
    ),
    c(
        "fhir_resource_invalid",
        &[],
        "MSC4302 FHIR resource events without a valid R4 resource (or file) are refused as bad JSON",
        "DCB0129 hazard: corrupt clinical data; DSPT standard 1",
        &["epr::msc4302_fhir_resource_events_are_validated_by_the_server"],
    ),
    c(
        "identity_required_claim_missing",
        &["identity.providers.required_claims"],
        "a sign-in whose claims (ID token, else userinfo) lack a value the provider's \
         required_claims asks for is refused",
        "DSPT standard 4; NHS CIS2 national RBAC",
        &["oauth_account::required_claims_read_from_userinfo_gate_the_sign_in"],
    ),
];

/// The last recorded result of each test, parsed from `cargo test` output
/// (`test module::name ... ok` / `FAILED` / `ignored`).
pub fn parse_test_results(text: &str) -> std::collections::BTreeMap<String, String> {
    let mut out = std::collections::BTreeMap::new();
    for line in text.lines() {
        let Some(rest) = line.trim().strip_prefix("test ") else {
            continue;
        };
        let Some((name, result)) = rest.split_once(" ... ") else {
            continue;
        };
        let result = (result.split_whitespace().next().unwrap_or_default()).trim_end_matches(',');
        if matches!(result, "ok" | "FAILED" | "ignored") {
            out.insert(name.trim().to_owned(), result.to_owned());
        }
    }
    out
}

/// The rule ids of a governance document: the first cell of its rule tables' rows
/// (`| \`rule_id\` | ...` with a config column). Used to check `CONTROLS` covers them.
pub fn rule_ids_in(doc: &str) -> Vec<String> {
    let mut ids = Vec::new();
    let mut in_rule_table = false;
    for line in doc.lines() {
        if line.starts_with("| rule id |") {
            in_rule_table = true;
            continue;
        }
        if !line.starts_with('|') {
            in_rule_table = false;
            continue;
        }
        if !in_rule_table {
            continue;
        }
        let first = line
            .trim_start_matches('|')
            .split('|')
            .next()
            .unwrap_or_default();
        if let Some(id) = first
            .trim()
            .strip_prefix('`')
            .and_then(|s| s.split('`').next())
            && id.chars().all(|c| c.is_ascii_lowercase() || c == '_')
        {
            ids.push(id.to_owned());
        }
    }
    ids
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_rule_of_the_governance_document_is_a_control() {
        let doc = include_str!("../../docs/GOVERNANCE.md");
        let ids = rule_ids_in(doc);
        assert!(ids.len() >= 15, "rule tables not found: {ids:?}");
        for id in ids {
            assert!(
                CONTROLS.iter().any(|c| c.id == id),
                "rule `{id}` has no control entry"
            );
        }
    }

    #[test]
    fn test_results_are_read_from_cargo_output() {
        let r = parse_test_results(
            "test audit::a ... ok\ntest sar::b ... FAILED\nrunning 2 tests\ntest c ... ignored, slow\n",
        );
        assert_eq!(r["audit::a"], "ok");
        assert_eq!(r["sar::b"], "FAILED");
        assert_eq!(r["c"], "ignored");
        assert_eq!(r.len(), 3);
    }
}
