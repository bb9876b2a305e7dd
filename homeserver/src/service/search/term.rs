//! The user's search term as an FTS5 query. Every word is quoted (so no FTS5 syntax from the
//! user is ever interpreted) and matched as a prefix, `"double quoted"` parts as phrases; all
//! must match. `highlights` are the words themselves, lower-cased as the index folds them.

use crate::error::{Error, Result};

/// Words (and phrases) taken from one term: a bound on the query's cost.
const MAX_PARTS: usize = 20;

#[derive(Debug, PartialEq, Eq)]
pub struct Term {
    pub fts: String,
    pub highlights: Vec<String>,
}

fn quote(s: &str) -> String {
    format!("\"{}\"", s.replace('"', "\"\""))
}

/// The alphanumeric runs of `s`, lower-cased: what the index's tokenizer makes of it.
fn words(s: &str) -> impl Iterator<Item = String> + '_ {
    s.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
}

pub fn parse(term: &str) -> Result<Term> {
    let mut parts = Vec::new();
    let mut highlights: Vec<String> = Vec::new();
    // Odd-numbered pieces between double quotes are phrases; the rest are single words.
    for (i, piece) in term.split('"').enumerate() {
        let chunks: Vec<&str> = if i % 2 == 1 {
            vec![piece]
        } else {
            piece.split_whitespace().collect()
        };
        for chunk in chunks {
            let ws: Vec<String> = words(chunk).collect();
            if ws.is_empty() {
                continue;
            }
            let phrase = ws.join(" ");
            parts.push(if i % 2 == 1 {
                quote(&phrase)
            } else {
                format!("{}*", quote(&phrase))
            });
            for w in ws {
                if !highlights.contains(&w) {
                    highlights.push(w);
                }
            }
        }
    }
    if parts.is_empty() {
        return Err(Error::invalid_param(
            "search_term has no words to search for",
        ));
    }
    if parts.len() > MAX_PARTS {
        return Err(Error::invalid_param(format!(
            "search_term has more than {MAX_PARTS} words"
        )));
    }
    Ok(Term {
        fts: parts.join(" "),
        highlights,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_are_quoted_prefixes_and_phrases_stay_whole() {
        let t = parse(r#"Ward 7 "bed three" handover"#).unwrap();
        assert_eq!(t.fts, r#""ward"* "7"* "bed three" "handover"*"#);
        assert_eq!(t.highlights, ["ward", "7", "bed", "three", "handover"]);
    }

    #[test]
    fn fts_syntax_from_the_user_is_never_interpreted() {
        let t = parse(r#"NEAR(a b) OR x* -y bed-3 col:umn"#).unwrap();
        assert_eq!(
            t.fts,
            r#""near a"* "b"* "or"* "x"* "y"* "bed 3"* "col umn"*"#
        );
        assert!(parse("  !!! ** ").is_err());
        assert!(parse("").is_err());
        let long = "w ".repeat(MAX_PARTS + 1);
        assert!(parse(&long).is_err());
    }
}
