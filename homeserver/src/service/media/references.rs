//! What still refers to a local file, for retention (`service/retention/media.rs` decides):
//! events (any sender, from `media_refs`), a profile avatar, and the file's room binding.

use super::MediaService;
use crate::error::Result;
use crate::service::blocking;
use crate::store::media::MediaRef;
use crate::store::now_ms;

/// Everything that refers to one local file.
#[derive(Debug, Clone, Default)]
pub struct References {
    /// The uploader, if the file has content.
    pub uploader: Option<String>,
    /// The room the file is bound to (or `profile`).
    pub bound_room: Option<String>,
    /// Stored, unminimised events referring to it, oldest first.
    pub events: Vec<MediaRef>,
    /// Some user's profile avatar is this file.
    pub profile_avatar: bool,
}

impl MediaService {
    pub async fn references(&self, media_id: &str) -> Result<References> {
        let (store, id) = (self.store.clone(), media_id.to_owned());
        let mxc = format!("mxc://{}/{media_id}", self.server_name);
        blocking(move || {
            Ok(References {
                uploader: store.get_media(&id)?.map(|m| m.uploader.to_string()),
                bound_room: store.media_access(&id)?.bound_room,
                events: store.media_refs(&mxc)?,
                profile_avatar: store.is_profile_avatar(&mxc)?,
            })
        })
        .await
    }

    /// Moves a kept file's binding to the room of a live reference, or removes it (`None`):
    /// then only its uploader may fetch it.
    pub async fn rebind(&self, media_id: &str, to: Option<(String, String)>) -> Result<()> {
        let (store, id) = (self.store.clone(), media_id.to_owned());
        blocking(move || {
            let to = to.as_ref().map(|(r, e)| (r.as_str(), e.as_str()));
            Ok(store.rebind_media(&id, to, now_ms())?)
        })
        .await
    }
}
