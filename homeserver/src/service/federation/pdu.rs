//! Checks on a PDU received from another server before anything else looks at it: its format,
//! the signature of the sender's server (keys from the cache or fetched, gated by the federation
//! list), and its content hash. An event whose content hash fails is kept in its redacted form,
//! as the spec says; one whose signature fails is refused.

use ruma::canonical_json::redact;
use ruma::room_version_rules::RoomVersionRules;
use ruma::serde::Base64;
use ruma::signatures::{PublicKeyMap, Verified, reference_hash, verify_event};
use ruma::{
    CanonicalJsonObject, CanonicalJsonValue, EventId, OwnedEventId, OwnedServerName, ServerName,
};
use serde_json::value::RawValue as RawJsonValue;

use super::FederationService;
use crate::error::{Error, Result};
use crate::store::now_ms;

/// A PDU that passed the checks: its id, its JSON as it will be stored, and the object.
#[derive(Debug, Clone)]
pub struct CheckedPdu {
    pub event_id: OwnedEventId,
    pub object: CanonicalJsonObject,
    pub json: String,
    /// The content hash failed: `object` is the redacted form.
    pub redacted: bool,
}

/// Parses a PDU into canonical JSON and computes its event id (reference hash).
pub fn parse_pdu(
    raw: &RawJsonValue,
    rules: &RoomVersionRules,
) -> Result<(OwnedEventId, CanonicalJsonObject)> {
    let mut obj: CanonicalJsonObject = serde_json::from_str(raw.get())
        .map_err(|e| Error::bad_json(format!("PDU is not canonical JSON: {e}")))?;
    // Data other servers add for their own clients is not part of the event.
    obj.remove("unsigned");
    let hash = reference_hash(&obj, rules)
        .map_err(|e| Error::bad_json(format!("PDU cannot be hashed: {e}")))?;
    let event_id = EventId::new_v2_or_v3(&hash).map_err(Error::internal)?;
    Ok((event_id, obj))
}

/// The server that must have signed the event: the sender's.
pub fn sender_server(obj: &CanonicalJsonObject) -> Result<OwnedServerName> {
    let Some(CanonicalJsonValue::String(sender)) = obj.get("sender") else {
        return Err(Error::bad_json("PDU without a sender"));
    };
    let user: ruma::OwnedUserId = sender
        .parse()
        .map_err(|e| Error::bad_json(format!("PDU sender {sender}: {e}")))?;
    Ok(user.server_name().to_owned())
}

impl FederationService {
    /// Verifies a parsed PDU's signatures and hashes; see the module comment.
    pub async fn check_pdu(
        &self,
        event_id: OwnedEventId,
        mut obj: CanonicalJsonObject,
        rules: &RoomVersionRules,
    ) -> Result<CheckedPdu> {
        let mut servers = vec![sender_server(&obj)?];
        // Invites are also signed by the invitee's server (which may be us).
        if let Some(CanonicalJsonValue::Object(sigs)) = obj.get("signatures") {
            for s in sigs.keys() {
                if let Ok(name) = OwnedServerName::try_from(s.as_str())
                    && !servers.contains(&name)
                    && name == self.server_name
                {
                    servers.push(name);
                }
            }
        }
        let mut map = PublicKeyMap::new();
        for server in &servers {
            let needed: Vec<String> = match obj.get("signatures") {
                Some(CanonicalJsonValue::Object(sigs)) => match sigs.get(server.as_str()) {
                    Some(CanonicalJsonValue::Object(by_key)) => by_key.keys().cloned().collect(),
                    _ => vec![],
                },
                _ => vec![],
            };
            let ts = match obj.get("origin_server_ts") {
                Some(CanonicalJsonValue::Integer(t)) => i64::from(*t),
                _ => 0,
            };
            map.insert(
                server.to_string(),
                self.event_keys(server, &needed, ts).await?,
            );
        }
        let verified = verify_event(&map, &obj, rules).map_err(|e| {
            Error::forbidden(format!("Event {event_id} failed signature checks: {e}"))
        })?;
        let redacted = verified == Verified::Signatures;
        if redacted {
            obj = redact(obj, &rules.redaction, None).map_err(|e| {
                Error::bad_json(format!("Event {event_id} cannot be redacted: {e}"))
            })?;
        }
        let json = serde_json::to_string(&obj).map_err(Error::internal)?;
        Ok(CheckedPdu {
            event_id,
            object: obj,
            json,
            redacted,
        })
    }

    /// The keys of `server` that may check a signature made at `ts` (an event's
    /// `origin_server_ts`): a current key whose `valid_until_ts` is not before it, or an old
    /// key (`old_verify_keys`) that had not yet expired then. Fetched again, at most once per
    /// `REFETCH_INTERVAL_MS` per server, when none of the key ids in `needed` (those that
    /// signed the event) is cached as valid at `ts` -- even while other keys are cached, so a
    /// rotated-in key is learnt at once.
    pub async fn event_keys(
        &self,
        server: &ServerName,
        needed: &[String],
        ts: i64,
    ) -> Result<std::collections::BTreeMap<String, Base64>> {
        if server == self.server_name {
            return Ok([(
                self.keys.key_id(),
                Base64::new(self.keys.keypair.public_key().to_vec()),
            )]
            .into_iter()
            .collect());
        }
        let usable = |k: &crate::store::server_keys::CachedKey| match k.expired_ts {
            Some(expired) => ts < expired,
            None => k.valid_until_ts >= ts,
        };
        let now = now_ms();
        let mut keys = self.cached_keys(server).await?;
        let covered = |keys: &[crate::store::server_keys::CachedKey]| {
            keys.iter().any(|k| needed.contains(&k.key_id) && usable(k))
        };
        if !covered(&keys) && self.may_fetch(server, now) {
            keys = self.fetch_keys(server, "event_keys").await.map_err(|e| {
                Error::forbidden(format!("Cannot obtain the keys of {server}: {e}"))
            })?;
        }
        let map: std::collections::BTreeMap<String, Base64> = keys
            .into_iter()
            .filter(|k| usable(k))
            .filter_map(|k| Some((k.key_id, Base64::parse(&k.public_key).ok()?)))
            .collect();
        if map.is_empty() {
            return Err(Error::forbidden(format!(
                "No key of {server} valid at the event's time"
            )));
        }
        Ok(map)
    }
}
