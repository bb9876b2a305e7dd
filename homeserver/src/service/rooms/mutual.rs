//! `GET /_matrix/client/v1/mutual_rooms` (MSC2666 as in the spec): rooms both users are joined
//! to. Only the intersection is returned, so nothing about the other user's other rooms leaks.

use ruma::UserId;

use super::RoomService;
use crate::error::{Error, Result};

/// Room ids per page.
const PAGE: usize = 100;

#[derive(Debug)]
pub struct MutualRooms {
    pub joined: Vec<ruma::OwnedRoomId>,
    /// All mutual rooms, whatever the page.
    pub count: usize,
    pub next_batch: Option<String>,
}

impl RoomService {
    pub async fn mutual_rooms(
        &self,
        me: &UserId,
        other: &UserId,
        from: Option<&str>,
    ) -> Result<MutualRooms> {
        if me == other {
            return Err(Error::invalid_param(
                "user_id is your own user ID: ask about another user",
            ));
        }
        if other.validate_strict().is_err() {
            return Err(Error::invalid_param("The user ID provided was invalid"));
        }
        let start = match from {
            None => 0,
            Some(t) => t
                .strip_prefix('m')
                .and_then(|n| n.parse::<usize>().ok())
                .ok_or_else(|| Error::invalid_param("Unknown pagination token"))?,
        };
        let theirs = self.joined_rooms(other).await?;
        let mut both: Vec<_> = self
            .joined_rooms(me)
            .await?
            .into_iter()
            .filter(|r| theirs.contains(r))
            .collect();
        // A stable order, so offsets page consistently.
        both.sort();
        let count = both.len();
        let joined: Vec<_> = both.into_iter().skip(start).take(PAGE).collect();
        let next = start + joined.len();
        Ok(MutualRooms {
            next_batch: (next < count).then(|| format!("m{next}")),
            joined,
            count,
        })
    }
}

#[cfg(test)]
mod tests {
    use ruma::api::error::ErrorKind;

    use crate::service::test_services;
    use crate::service::test_util::{join, room, user};

    #[tokio::test]
    async fn only_rooms_both_are_joined_to() {
        let (s, _d) = test_services();
        let a = user(&s, "alice").await;
        let b = user(&s, "bob").await;
        let shared = room(&s, &a, "Shared", false).await;
        let _alone = room(&s, &a, "Alone", false).await;
        let invited = room(&s, &a, "Invited", false).await;
        join(&s, &shared, &a, &b).await;
        s.rooms.invite(&invited, &a, &b, None, false).await.unwrap();
        let m = s.rooms.mutual_rooms(&a, &b, None).await.unwrap();
        assert_eq!(m.joined, vec![shared.clone()]);
        assert_eq!((m.count, m.next_batch), (1, None));
        let m = s.rooms.mutual_rooms(&b, &a, None).await.unwrap();
        assert_eq!(m.joined, vec![shared]);

        let err = s.rooms.mutual_rooms(&a, &a, None).await.unwrap_err();
        assert!(matches!(err.kind(), Some(ErrorKind::InvalidParam)));
        let err = s.rooms.mutual_rooms(&a, &b, Some("x")).await.unwrap_err();
        assert!(matches!(err.kind(), Some(ErrorKind::InvalidParam)));
        let nobody: ruma::OwnedUserId = "@nobody:localhost".parse().unwrap();
        let m = s.rooms.mutual_rooms(&a, &nobody, None).await.unwrap();
        assert!(m.joined.is_empty() && m.count == 0);
    }
}
