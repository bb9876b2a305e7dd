//! Escaping for the server-rendered pages (console, SAR summary, evidence report): every value
//! that reaches HTML goes through `escape`, so a display name or reason cannot inject markup.

/// Escapes text for use in HTML element content and double-quoted attribute values.
pub fn escape(s: &str) -> String {
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

/// The one stylesheet of every page Handover renders (console, SAR summary, evidence report):
/// inline, no external assets; system fonts; dark text on white and a blue that passes WCAG AA
/// contrast (#005eb8 on white is 6.1:1); visible focus.
pub const STYLE: &str = "body{font-family:Arial,Helvetica,sans-serif;color:#212b32;\
background:#fff;margin:0;line-height:1.5}\
header{background:#005eb8;color:#fff;padding:.75rem 1.5rem}header a{color:#fff}\
header h1{margin:0;font-size:1.4rem}nav ul{list-style:none;padding:0;margin:.5rem 0 0;\
display:flex;flex-wrap:wrap;gap:1rem}main{padding:1rem 1.5rem;max-width:72rem}\
a{color:#005eb8}a:focus,button:focus,input:focus,select:focus{outline:3px solid #ffb81c;\
outline-offset:1px}table{border-collapse:collapse;margin:.5rem 0 1.5rem;width:100%}\
th,td{border:1px solid #aeb7bd;padding:.3rem .5rem;text-align:left;vertical-align:top}\
th{background:#e8edee}caption{text-align:left;font-weight:bold;padding:.3rem 0}\
code{font-size:.95em;word-break:break-all}\
.ok{color:#00703c;font-weight:bold}.bad{color:#b10e1e;font-weight:bold}\
.note{background:#fff9c4;border-left:4px solid #ffb81c;padding:.5rem 1rem}\
form.inline{display:inline}label{display:block;font-weight:bold;margin-top:.5rem}\
input,select{font-size:1rem;padding:.3rem;border:2px solid #4c6272}\
button{font-size:1rem;padding:.4rem 1rem;margin-top:.5rem;background:#005eb8;color:#fff;\
border:0;border-radius:4px;cursor:pointer}button.danger{background:#b10e1e}\
header button{background:#fff;color:#005eb8}\
.visually-hidden{position:absolute;width:1px;height:1px;overflow:hidden;clip:rect(0 0 0 0)}";

#[cfg(test)]
mod tests {
    #[test]
    fn markup_is_neutralised() {
        assert_eq!(
            super::escape(r#"<script>"a" & 'b'</script>"#),
            "&lt;script&gt;&quot;a&quot; &amp; &#39;b&#39;&lt;/script&gt;"
        );
    }
}
