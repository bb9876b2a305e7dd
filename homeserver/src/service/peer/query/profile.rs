//! Profiles: `GET /_matrix/federation/v1/query/profile` (inbound, local users only) and the
//! client profile endpoints for users of other servers (outbound, cached).

use ruma::UserId;
use ruma::api::federation::query::get_profile_information;
use ruma::profile::ProfileFieldName;

use super::QueryService;
use crate::error::{Error, Result};
use crate::service::federation::client::{FederationError, Sign};
use crate::service::federation::client_error::to_client_error;
use crate::service::users::Profile;

/// Longest display name accepted from another server (as for our own users).
const MAX_REMOTE_DISPLAYNAME_CHARS: usize = 256;

fn not_found() -> Error {
    Error::not_found("Profile not found")
}

impl QueryService {
    /// Any user's profile: ours from the store, another server's by asking it (cached) for a
    /// signed-in `requester`.
    pub async fn profile(&self, requester: Option<&UserId>, user_id: &UserId) -> Result<Profile> {
        // Patient confinement: a patient sees only room-mates' profiles (their own too).
        if let Some(r) = requester
            && r != user_id
            && self.users.account_kind(r).await? == handover_policy::AccountKind::Patient
        {
            let shares_room = self.rooms.shares_room(r, user_id).await?;
            let action = handover_policy::AccountAction::ViewProfile {
                target: user_id.as_str(),
                shares_room,
            };
            self.users
                .check_account_action(r, action, Some(user_id.as_str()))
                .await?;
        }
        if user_id.server_name() == self.server_name {
            return match self.users.get_profile(user_id).await {
                // A user in an appservice's namespace may be created by it when asked.
                Err(e) if e.is_not_found() && self.appservices.query_user(user_id).await => {
                    self.users.get_profile(user_id).await
                }
                other => other,
            };
        }
        if requester.is_none() {
            return Err(super::sign_in_required("users"));
        }
        let key = user_id.to_owned();
        if let Some(hit) = self.profiles.get(&key) {
            return hit.ok_or_else(not_found);
        }
        let res = self
            .client
            .send(
                user_id.server_name(),
                get_profile_information::v1::Request::new(key.clone()),
                "profile",
                Sign::AsRequired,
            )
            .await;
        match res {
            Ok(r) => {
                let text = |f: &str| r.get(f).and_then(|v| v.as_str()).map(str::to_owned);
                let profile = Profile {
                    displayname: text("displayname").filter(|n| {
                        !n.is_empty() && n.chars().count() <= MAX_REMOTE_DISPLAYNAME_CHARS
                    }),
                    // Only a well-formed mxc URI is passed on to clients.
                    avatar_url: text("avatar_url")
                        .filter(|u| ruma::OwnedMxcUri::from(u.as_str()).is_valid()),
                    fields: remote_fields(r.iter()),
                };
                self.profiles.put(key, Some(profile.clone()));
                Ok(profile)
            }
            Err(FederationError::Remote { status: 404, .. }) => {
                self.profiles.put(key, None);
                Err(not_found())
            }
            Err(e) => Err(to_client_error(e)),
        }
    }

    /// Inbound: a local user's public profile, only `field` if one is asked for. Unknown and
    /// other servers' users, and fields we do not keep, are 404 (spec).
    pub async fn answer_profile(
        &self,
        user_id: &UserId,
        field: Option<&ProfileFieldName>,
    ) -> Result<Profile> {
        if user_id.server_name() != self.server_name {
            return Err(Error::not_found("That user is not on this server"));
        }
        let p = self.users.get_profile(user_id).await?;
        Ok(match field {
            None => p,
            Some(ProfileFieldName::DisplayName) => Profile {
                displayname: p.displayname,
                ..Profile::default()
            },
            Some(ProfileFieldName::AvatarUrl) => Profile {
                avatar_url: p.avatar_url,
                ..Profile::default()
            },
            Some(other) => match p.fields.get(other.as_str()) {
                Some(v) => Profile {
                    fields: [(other.as_str().to_owned(), v.clone())].into(),
                    ..Profile::default()
                },
                None => {
                    return Err(Error::not_found(format!(
                        "{user_id} has no profile field {}",
                        other.as_str()
                    )));
                }
            },
        })
    }
}

/// Another server's extended fields, passed on while well-keyed and the whole stays within the
/// spec's profile size (a bigger answer keeps none of them).
fn remote_fields<'a>(
    all: impl Iterator<Item = (&'a String, &'a serde_json::Value)>,
) -> std::collections::BTreeMap<String, serde_json::Value> {
    use crate::service::users::profile_fields::{MAX_PROFILE_BYTES, valid_extended_key};
    let fields: std::collections::BTreeMap<_, _> = all
        .filter(|(k, _)| valid_extended_key(k))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let size: usize = fields
        .iter()
        .map(|(k, v)| k.len() + v.to_string().len())
        .sum();
    if size > MAX_PROFILE_BYTES {
        return Default::default();
    }
    fields
}
