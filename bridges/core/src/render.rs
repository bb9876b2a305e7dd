//! Message content both bots post: plain notices, HTML-escaped formatted text, replies.

use serde_json::{Value, json};

/// Escapes text for an HTML `formatted_body`.
pub fn escape_html(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A notice from the bot (command replies, status lines).
pub fn notice(text: &str) -> Value {
    json!({"msgtype": "m.notice", "body": text})
}

/// A notice answering `event_id` (a rich reply: clients show the message it answers).
pub fn notice_reply(text: &str, event_id: &str) -> Value {
    let mut c = notice(text);
    c["m.relates_to"] = json!({"m.in_reply_to": {"event_id": event_id}});
    c
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_and_replies() {
        assert_eq!(
            escape_html("<a href='x'>&\"</a>"),
            "&lt;a href=&#39;x&#39;&gt;&amp;&quot;&lt;/a&gt;"
        );
        let r = notice_reply("Filed", "$e");
        assert_eq!(r["msgtype"], "m.notice");
        assert_eq!(r["m.relates_to"]["m.in_reply_to"]["event_id"], "$e");
    }
}
