//! User directory search.

use ruma::OwnedMxcUri;
use ruma::api::client::user_directory::search_users;

use crate::api::ruma::Ruma;
use crate::error::Result;
use crate::service::Services;

pub async fn search_users(
    s: Services,
    req: Ruma<search_users::v3::Request>,
) -> Result<search_users::v3::Response> {
    let limit = usize::try_from(u64::from(req.limit)).unwrap_or(usize::MAX);
    let (found, limited) = s
        .users
        .search_directory(req.user_id(), &req.search_term, limit)
        .await?;
    let results = found
        .into_iter()
        .map(|u| {
            let mut user = search_users::v3::User::new(u.user_id);
            user.display_name = u.displayname;
            user.avatar_url = u.avatar_url.map(OwnedMxcUri::from);
            user
        })
        .collect();
    Ok(search_users::v3::Response::new(results, limited))
}
