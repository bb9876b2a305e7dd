//! Push rules run for this server's members on every event, including one another server sent:
//! a message from another trust notifies our members (it once evaluated the sender's server's
//! users instead, so nobody here was notified of messages from other organisations).

use super::tests::{REMOTE, joined_room, message, setup_with_store};

#[tokio::test]
async fn a_message_from_another_server_notifies_our_members() {
    let (s, r, _store, _d) = setup_with_store();
    let (room, _join) = joined_room(&s, &r).await;
    // `joined_room` made @alice, the room's creator.
    let alice: ruma::OwnedUserId = format!("@alice:{}", s.rooms.server_name())
        .try_into()
        .unwrap();
    let state = s.rooms.current_state(&room).await.unwrap();
    let (id, raw) = r.sign(message(
        &room,
        &state.extremities[0],
        &state,
        "obs due bed 4",
    ));
    let origin = <&ruma::ServerName>::try_from(REMOTE).unwrap();
    let (got, res) = s.rooms.receive_pdu(origin, &raw).await;
    res.unwrap();
    assert_eq!(got, Some(id));
    let pos = s.rooms.current_pos();
    let counts = s.push.unread_counts(&room, &alice, pos).await.unwrap();
    assert_eq!(
        counts.notifications, 1,
        "alice was not notified of bob's message"
    );
    // The sender's server's users are not ours to evaluate: nothing stored for bob.
    let bob = <&ruma::UserId>::try_from("@bob:b.nhs.uk").unwrap();
    let bob_counts = s.push.unread_counts(&room, bob, pos).await.unwrap();
    assert_eq!(bob_counts.notifications, 0);
}
