//! /threads: the room's thread roots (events that `m.thread` relations point at), most recently
//! active first, each with its `m.thread` bundled aggregation.

use ruma::RoomId;
use serde_json::{Value, json};

use super::RoomService;
use super::format::{Viewer, client_event};
use super::read::token;
use crate::error::Result;
use crate::service::blocking;

const DEFAULT_LIMIT: usize = 20;
const MAX_LIMIT: usize = 100;

#[derive(Debug)]
pub struct ThreadsPage {
    pub chunk: Vec<Value>,
    pub next_batch: Option<String>,
}

impl RoomService {
    /// Thread roots visible to the viewer. `from` is the latest-reply position of the last
    /// root of the previous page; `participated` keeps threads the viewer started or replied in.
    pub async fn threads(
        &self,
        room_id: &RoomId,
        viewer: Viewer<'_>,
        participated: bool,
        from: Option<i64>,
        limit: Option<usize>,
    ) -> Result<ThreadsPage> {
        let vis = self.visible_to(room_id, viewer.user_id).await?;
        let upto = vis.upper().unwrap_or(0).min(self.current_pos());
        let limit = limit.unwrap_or(DEFAULT_LIMIT).clamp(1, MAX_LIMIT);
        let rules = self.rules(room_id).await?;
        let participant = participated.then(|| viewer.user_id.to_string());
        let mut before = from.unwrap_or(i64::MAX);
        let mut chunk = Vec::new();
        let mut next_batch = None;
        'pages: loop {
            let batch = (limit * 2).clamp(20, 200);
            let store = self.store.clone();
            let (r, part) = (room_id.to_owned(), participant.clone());
            let roots = blocking(move || {
                Ok(store.thread_roots(r.as_str(), before, upto, part.as_deref(), batch)?)
            })
            .await?;
            let exhausted = roots.len() < batch;
            for (root_id, latest) in roots {
                before = latest;
                let store = self.store.clone();
                let user = viewer.user_id.to_owned();
                let (root, summary) = blocking(move || {
                    let root = store.get_event(root_id.as_str())?;
                    let summary = store.thread_summary(root_id.as_str(), user.as_str(), upto)?;
                    Ok((root, summary))
                })
                .await?;
                // A root in another room, or outside what the viewer may see, is not listed.
                let Some(root) =
                    root.filter(|e| e.room_id == room_id && e.pos.is_some_and(|p| vis.contains(p)))
                else {
                    continue;
                };
                let mut ev = client_event(&root, &rules, Some(viewer), true);
                if let Some(latest) = summary
                    .latest
                    .filter(|l| l.pos.is_some_and(|p| vis.contains(p)))
                {
                    ev["unsigned"]["m.relations"]["m.thread"] = json!({
                        "latest_event": client_event(&latest, &rules, Some(viewer), true),
                        "count": summary.count,
                        "current_user_participated":
                            root.sender == viewer.user_id || summary.user_replied,
                    });
                }
                chunk.push(ev);
                if chunk.len() >= limit {
                    next_batch = Some(token(latest));
                    break 'pages;
                }
            }
            if exhausted {
                break;
            }
        }
        Ok(ThreadsPage { chunk, next_batch })
    }
}
