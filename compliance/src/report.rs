//! The evidence report (`handover compliance report`): every control with its configuration in
//! force, its default, the guidance it serves and the test that proves it (with the test's last
//! result when a results file is given), the audit chain's status, retention statistics and the
//! hazard log. Pure: the caller gathers the inputs; one self-contained HTML page comes out.

use std::collections::BTreeMap;
use std::fmt::Write;

use crate::controls::Control;
use crate::html::{STYLE, escape};
use crate::time::format_rfc3339;

/// A control with the values of its config keys: (key, in force, default).
pub struct ControlRow {
    pub control: &'static Control,
    pub values: Vec<(String, String, String)>,
}

pub struct ReportInput<'a> {
    pub generated_ts: i64,
    pub server_name: String,
    pub version: String,
    pub controls: Vec<ControlRow>,
    /// Test name -> `ok` / `FAILED` / `ignored`, and where they came from; `None`: not run.
    pub results: Option<(String, BTreeMap<String, String>)>,
    /// The chain check's one-line outcome and whether it is intact.
    pub chain: (bool, String),
    pub retention: Vec<(String, String)>,
    /// docs/HAZARDS.md.
    pub hazards: &'a str,
}

fn result_of(input: &ReportInput<'_>, test: &str) -> String {
    let name = test.split_whitespace().next().unwrap_or_default();
    match &input.results {
        None => "<span>not run</span>".into(),
        Some((_, r)) => match r.get(name).map(String::as_str) {
            Some("ok") => "<span class=\"ok\">passed</span>".into(),
            Some("FAILED") => "<span class=\"bad\">FAILED</span>".into(),
            Some(other) => escape(other),
            None => "not in results".into(),
        },
    }
}

fn th(o: &mut String, cols: &[&str]) {
    o.push_str("<tr>");
    for c in cols {
        let _ = write!(o, "<th scope=\"col\">{}</th>", escape(c));
    }
    o.push_str("</tr>");
}

/// The rows of a markdown table (cells trimmed), skipping its header and separator.
fn markdown_rows(md: &str) -> Vec<Vec<String>> {
    let rows: Vec<Vec<String>> = (md.lines())
        .filter(|l| l.starts_with('|'))
        .map(|l| {
            let inner = l.trim().trim_start_matches('|').trim_end_matches('|');
            inner.split('|').map(|c| c.trim().to_owned()).collect()
        })
        .collect();
    rows.into_iter()
        .skip(1)
        .filter(|r| !r.iter().all(|c| c.chars().all(|ch| ch == '-' || ch == ':')))
        .collect()
}

pub fn render(input: &ReportInput<'_>) -> String {
    let mut o = String::new();
    let results = match &input.results {
        Some((src, r)) => format!("from <code>{}</code> ({} tests)", escape(src), r.len()),
        None => "none given: every test shows \"not run\"".into(),
    };
    let _ = write!(
        o,
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <title>Handover evidence report: {server}</title><style>{STYLE}\
         @media print{{header{{-webkit-print-color-adjust:exact;print-color-adjust:exact}}}}</style></head><body>\
         <header><h1>Handover evidence report</h1></header><main>\
         <p>Server <strong>{server}</strong>, Handover {version}, generated {when} (UTC). \
         Test results: {results}.</p>",
        server = escape(&input.server_name),
        version = escape(&input.version),
        when = format_rfc3339(input.generated_ts),
    );
    let (intact, line) = &input.chain;
    let _ = write!(
        o,
        "<h2>Audit chain</h2><p class=\"{}\">{}</p>",
        if *intact { "ok" } else { "bad" },
        escape(line)
    );
    o.push_str("<h2>Retention</h2><table><caption>Retention statistics</caption>");
    th(&mut o, &["Measure", "Value"]);
    for (k, v) in &input.retention {
        let _ = write!(o, "<tr><td>{}</td><td>{}</td></tr>", escape(k), escape(v));
    }
    o.push_str(
        "</table><h2>Controls</h2><table><caption>Every control of docs/GOVERNANCE.md</caption>",
    );
    th(
        &mut o,
        &[
            "Control",
            "What",
            "Configuration in force (default)",
            "Guidance",
            "End-to-end test",
            "Last result",
        ],
    );
    for row in &input.controls {
        let c = row.control;
        let config = match row.values.is_empty() {
            true => "always on".to_owned(),
            false => (row.values.iter())
                .map(|(k, v, d)| {
                    format!("<code>{}</code> = {} ({})", escape(k), escape(v), escape(d))
                })
                .collect::<Vec<_>>()
                .join("<br>"),
        };
        let tests = match c.tests.is_empty() {
            true => "unit tests only".to_owned(),
            false => (c.tests.iter())
                .map(|t| format!("<code>{}</code>", escape(t)))
                .collect::<Vec<_>>()
                .join("<br>"),
        };
        let res = (c.tests.iter())
            .map(|t| result_of(input, t))
            .collect::<Vec<_>>()
            .join("<br>");
        let _ = write!(
            o,
            "<tr><td><code>{}</code></td><td>{}</td><td>{config}</td><td>{}</td><td>{tests}</td><td>{}</td></tr>",
            escape(c.id),
            escape(c.what),
            escape(c.guidance),
            if res.is_empty() { "—".into() } else { res }
        );
    }
    o.push_str("</table><h2>Hazard log (DCB0129)</h2><table><caption>docs/HAZARDS.md</caption>");
    th(
        &mut o,
        &[
            "Id",
            "Hazard",
            "Cause",
            "Effect",
            "Control",
            "Test",
            "Last result",
            "Initial",
            "Residual",
        ],
    );
    for r in markdown_rows(input.hazards) {
        if r.len() < 8 {
            continue;
        }
        let _ = write!(
            o,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td><code>{}</code></td>\
             <td><code>{}</code></td><td>{}</td><td>{}</td><td>{}</td></tr>",
            escape(&r[0]),
            escape(&r[1]),
            escape(&r[2]),
            escape(&r[3]),
            escape(&r[4]),
            escape(&r[5]),
            result_of(input, &r[5]),
            escape(&r[6]),
            escape(&r[7])
        );
    }
    o.push_str("</table></main></body></html>");
    o
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hazard_rows_and_results_are_rendered() {
        let md = "| id | hazard | c | e | control | test | i | r |\n|---|---|---|---|---|---|---|---|\n\
                  | H01 | Message <lost> | x | y | durable_writes | crash::a | 4 | 2 |\n";
        let mut r = BTreeMap::new();
        r.insert("crash::a".to_owned(), "ok".to_owned());
        let input = ReportInput {
            generated_ts: 0,
            server_name: "trust.nhs.uk".into(),
            version: "0.1.0".into(),
            controls: vec![ControlRow {
                control: &crate::controls::CONTROLS[0],
                values: vec![],
            }],
            results: Some(("ci.txt".into(), r)),
            chain: (true, "intact".into()),
            retention: vec![],
            hazards: md,
        };
        let html = render(&input);
        assert!(html.contains("H01") && html.contains("Message &lt;lost&gt;"));
        assert!(html.contains("<span class=\"ok\">passed</span>"));
        assert!(html.contains("nhs_number_in_metadata") && html.contains("not in results"));
    }
}
