//! End-to-end tests: each test starts its own `handover` process (see `handover_e2e`).
//!
//! One test binary (faster to link than one per file); one module per area.

mod admin_api;
mod audit;
mod bad_input;
mod clinical_media;
mod crash;
mod disk_full;
mod edits_redactions;
mod email_registration;
mod encryption;
mod federation;
mod federation_dm;
mod federation_e2ee;
mod federation_policy;
mod federation_synapse;
mod governance;
mod http_limits;
mod knocking;
mod media;
mod messaging;
mod openid;
mod pagination;
mod profile_fields;
mod push;
mod rate_limit;
mod receipts_typing;
mod registration;
mod restart;
mod retention;
mod room_creation;
mod room_summary;
mod room_upgrade;
mod search;
mod sliding_sync;
mod spaces;
mod tokens;
mod visibility;
mod voip;
