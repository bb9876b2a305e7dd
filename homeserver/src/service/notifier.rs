//! Wakes waiting /sync long-polls the moment something for their user commits. One `watch`
//! channel per user with a waiting sync; writers bump the counter of every user concerned.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use ruma::{OwnedUserId, UserId};
use tokio::sync::watch;

use super::commit::{BoxFuture, CommitSubscriber, CommittedEvent};

/// Told of every notified user (encrypted appservices: `appservice/crypto.rs`).
pub type NotifyObserver = Arc<dyn Fn(&UserId) + Send + Sync>;

#[derive(Default)]
pub struct Notifier {
    users: Mutex<HashMap<OwnedUserId, watch::Sender<u64>>>,
    observer: std::sync::OnceLock<NotifyObserver>,
}

impl Notifier {
    /// A receiver that changes whenever `user_id` is notified. Subscribe *before* checking for
    /// data so nothing committed in between is missed.
    pub fn subscribe(&self, user_id: &UserId) -> watch::Receiver<u64> {
        let mut users = self.users.lock().expect("notifier lock");
        if users.len() > 1024 {
            users.retain(|_, tx| tx.receiver_count() > 0);
        }
        users
            .entry(user_id.to_owned())
            .or_insert_with(|| watch::channel(0).0)
            .subscribe()
    }

    /// Sync requests (v3 and sliding) now subscribed: in progress or waiting (metrics).
    pub fn waiters(&self) -> usize {
        let users = self.users.lock().expect("notifier lock");
        users.values().map(|tx| tx.receiver_count()).sum()
    }

    /// Sets the observer (once, in the wiring).
    pub fn set_observer(&self, observer: NotifyObserver) {
        let _ = self.observer.set(observer);
    }

    pub fn notify<'a>(&self, user_ids: impl IntoIterator<Item = &'a UserId>) {
        let users = self.users.lock().expect("notifier lock");
        let observer = self.observer.get();
        for u in user_ids {
            if let Some(o) = observer {
                o(u);
            }
            if let Some(tx) = users.get(u) {
                tx.send_modify(|n| *n = n.wrapping_add(1));
            }
        }
    }
}

/// A committed event wakes the syncs it concerns, after the media binder (so recipients can
/// fetch an attachment as soon as they see it).
impl CommitSubscriber for Notifier {
    fn name(&self) -> &'static str {
        "notifier"
    }

    fn committed(&self, ev: Arc<CommittedEvent>) -> BoxFuture<'_> {
        self.notify(ev.wake.iter().map(|u| &**u));
        Box::pin(std::future::ready(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn notify_wakes_only_the_named_user() {
        let n = Notifier::default();
        let (a, b): (OwnedUserId, OwnedUserId) =
            ("@a:x".try_into().unwrap(), "@b:x".try_into().unwrap());
        let mut ra = n.subscribe(&a);
        let mut rb = n.subscribe(&b);
        n.notify([&*a]);
        assert!(ra.has_changed().unwrap());
        assert!(!rb.has_changed().unwrap());
        ra.changed().await.unwrap();
        assert!(
            tokio::time::timeout(std::time::Duration::from_millis(20), rb.changed())
                .await
                .is_err()
        );
        assert_eq!(n.waiters(), 2);
        drop(rb);
        assert_eq!(n.waiters(), 1);
    }
}
