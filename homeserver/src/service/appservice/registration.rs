//! Appservice registration files (YAML, the format Synapse reads) and their namespaces.
//!
//! The file is ruma's `Registration` plus the two unstable keys bridges set: MSC2409
//! (`de.sorunome.msc2409.push_ephemeral`, ephemeral events in transactions) and MSC3202
//! (`org.matrix.msc3202`, device lists and masquerading as a device). Namespace regexes match
//! from the start of the id, as Synapse's `re.match` does (so registrations written for Synapse
//! mean the same here); write `$` to anchor the end too.

use std::path::Path;

use regex::Regex;
use ruma::api::appservice::{Namespace, Registration};
use ruma::{OwnedUserId, RoomAliasId, RoomId, UserId};
use serde::Deserialize;

/// One registration file as written on disk.
#[derive(Deserialize)]
struct RegistrationFile {
    #[serde(flatten)]
    registration: Registration,
    /// MSC2409's name for `receive_ephemeral` (mautrix and hookshot write this one).
    #[serde(rename = "de.sorunome.msc2409.push_ephemeral", default)]
    push_ephemeral: Option<bool>,
    #[serde(rename = "org.matrix.msc3202", default)]
    msc3202: bool,
}

/// A compiled namespace entry.
#[derive(Debug)]
struct Pattern {
    regex: Regex,
    exclusive: bool,
}

impl Pattern {
    fn compile(ns: &Namespace, what: &str) -> Result<Self, String> {
        let regex = Regex::new(&format!("^(?:{})", ns.regex))
            .map_err(|e| format!("{what} namespace regex {:?} is invalid: {e}", ns.regex))?;
        Ok(Self {
            regex,
            exclusive: ns.exclusive,
        })
    }
}

fn compile_all(list: &[Namespace], what: &str) -> Result<Vec<Pattern>, String> {
    list.iter().map(|ns| Pattern::compile(ns, what)).collect()
}

/// How an id relates to one appservice's namespaces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Claim {
    None,
    /// In a shared namespace: others may use it too.
    Shared,
    /// In an exclusive namespace: only this appservice may create or act as it.
    Exclusive,
}

fn claim_of(patterns: &[Pattern], id: &str) -> Claim {
    let mut claim = Claim::None;
    for p in patterns.iter().filter(|p| p.regex.is_match(id)) {
        if p.exclusive {
            return Claim::Exclusive;
        }
        claim = Claim::Shared;
    }
    claim
}

/// A loaded, validated appservice registration.
#[derive(Debug)]
pub struct Appservice {
    pub registration: Registration,
    /// `@sender_localpart:server`: the appservice's own user.
    pub sender: OwnedUserId,
    /// Ephemeral events (receipts, typing, presence) go into its transactions.
    pub receive_ephemeral: bool,
    /// MSC3202: device lists and key counts in transactions, `device_id` masquerading.
    pub msc3202: bool,
    users: Vec<Pattern>,
    aliases: Vec<Pattern>,
    rooms: Vec<Pattern>,
}

impl Appservice {
    /// Parses and validates one registration (YAML text) for `server_name`.
    pub fn parse(yaml: &str, server_name: &str) -> Result<Self, String> {
        let file: RegistrationFile =
            serde_yaml_ng::from_str(yaml).map_err(|e| format!("not a valid registration: {e}"))?;
        let r = file.registration;
        if r.id.trim().is_empty() {
            return Err("`id` is empty".into());
        }
        if r.as_token.trim().is_empty() || r.hs_token.trim().is_empty() {
            return Err("`as_token` and `hs_token` must not be empty".into());
        }
        if r.as_token == r.hs_token {
            return Err("`as_token` and `hs_token` must differ".into());
        }
        if let Some(url) = &r.url {
            let ok = url.starts_with("http://") || url.starts_with("https://");
            if !ok || url.parse::<http::Uri>().is_err() {
                return Err(format!("`url` {url:?} is not an http(s) URL"));
            }
        }
        let sender = UserId::parse(format!("@{}:{server_name}", r.sender_localpart))
            .map_err(|e| format!("`sender_localpart` is not a valid localpart: {e}"))?;
        let users = compile_all(&r.namespaces.users, "users")?;
        let aliases = compile_all(&r.namespaces.aliases, "aliases")?;
        let rooms = compile_all(&r.namespaces.rooms, "rooms")?;
        Ok(Self {
            receive_ephemeral: r.receive_ephemeral || file.push_ephemeral.unwrap_or(false),
            msc3202: file.msc3202,
            registration: r,
            sender,
            users,
            aliases,
            rooms,
        })
    }

    pub fn id(&self) -> &str {
        &self.registration.id
    }

    /// The appservice's base URL; `None`: it receives nothing (a "send-only" appservice).
    pub fn url(&self) -> Option<&str> {
        self.registration.url.as_deref().filter(|u| !u.is_empty())
    }

    /// Rate limits apply unless the registration says `rate_limited: false` (Synapse's default
    /// is to limit).
    pub fn rate_limited(&self) -> bool {
        self.registration.rate_limited.unwrap_or(true)
    }

    pub fn user_claim(&self, user: &UserId) -> Claim {
        claim_of(&self.users, user.as_str())
    }

    /// The appservice may act as this user: its sender or a user in its user namespaces.
    pub fn controls_user(&self, user: &UserId) -> bool {
        user == self.sender || self.user_claim(user) != Claim::None
    }

    pub fn alias_claim(&self, alias: &RoomAliasId) -> Claim {
        claim_of(&self.aliases, alias.as_str())
    }

    pub fn room_claim(&self, room: &RoomId) -> Claim {
        claim_of(&self.rooms, room.as_str())
    }

    /// Whether the appservice's user namespaces (or sender) match this user.
    pub fn interested_in_user(&self, user: &UserId) -> bool {
        self.controls_user(user)
    }

    /// The protocols it serves for the third-party lookup endpoints.
    pub fn protocols(&self) -> &[String] {
        self.registration.protocols.as_deref().unwrap_or_default()
    }
}

/// Loads every registration file; the first bad file, or two registrations sharing an id, an
/// `as_token` or an `hs_token`, is an error naming the file and what is wrong.
pub fn load_files(paths: &[impl AsRef<Path>], server_name: &str) -> Result<Vec<Appservice>, String> {
    let mut out: Vec<Appservice> = Vec::new();
    for path in paths {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("appservice registration {}: {e}", path.display()))?;
        let a = Appservice::parse(&text, server_name)
            .map_err(|e| format!("appservice registration {}: {e}", path.display()))?;
        check_unique(&out, &a).map_err(|e| format!("appservice registration {}: {e}", path.display()))?;
        out.push(a);
    }
    Ok(out)
}

/// Ids and tokens must be unique: a token names exactly one appservice.
pub fn check_unique(existing: &[Appservice], a: &Appservice) -> Result<(), String> {
    let tokens = |x: &Appservice| [x.registration.as_token.clone(), x.registration.hs_token.clone()];
    for other in existing {
        if other.id() == a.id() {
            return Err(format!("id {:?} is used by another registration", a.id()));
        }
        let mine = tokens(a);
        if tokens(other).iter().any(|t| mine.contains(t)) {
            return Err(format!(
                "a token of {:?} is also a token of {:?}; every as_token and hs_token must be unique",
                a.id(),
                other.id()
            ));
        }
        if other.sender == a.sender {
            return Err(format!("sender_localpart is also the sender of {:?}", other.id()));
        }
    }
    Ok(())
}
