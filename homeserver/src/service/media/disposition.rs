//! The `Content-Type` and `Content-Disposition` we serve media with (spec: "Serving inline
//! content"). The uploader chooses the content type; browsers render it only from the
//! allow-list below inline, everything else (HTML, SVG, PDF…) is forced to download.

use ruma::http_headers::{ContentDisposition, ContentDispositionType};

/// The spec's list of types that are safe to serve with `Content-Disposition: inline`.
const INLINE_SAFE: &[&str] = &[
    "text/css",
    "text/plain",
    "text/csv",
    "application/json",
    "application/ld+json",
    "image/jpeg",
    "image/gif",
    "image/png",
    "image/apng",
    "image/webp",
    "image/avif",
    "video/mp4",
    "video/webm",
    "video/ogg",
    "video/quicktime",
    "audio/mp4",
    "audio/webm",
    "audio/aac",
    "audio/mpeg",
    "audio/ogg",
    "audio/wave",
    "audio/wav",
    "audio/x-wav",
    "audio/x-pn-wav",
    "audio/flac",
    "audio/x-flac",
];

/// What the spec says to send when the upload had no content type.
pub const DEFAULT_CONTENT_TYPE: &str = "application/octet-stream";

/// `inline` for allow-listed types (ignoring parameters such as `; charset=`), else `attachment`.
pub fn disposition_for(content_type: &str, filename: Option<String>) -> ContentDisposition {
    let essence = content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    let kind = if INLINE_SAFE.contains(&essence.as_str()) {
        ContentDispositionType::Inline
    } else {
        ContentDispositionType::Attachment
    };
    // ruma quotes the name and escapes control characters when it renders the header.
    ContentDisposition::new(kind).with_filename(filename)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inline_only_for_safe_types() {
        let d = disposition_for("image/PNG", Some("a.png".into()));
        assert_eq!(d.to_string(), "inline; filename=a.png");
        let d = disposition_for("text/plain; charset=utf-8", None);
        assert_eq!(d.to_string(), "inline");
        for risky in [
            "text/html",
            "image/svg+xml",
            "application/pdf",
            DEFAULT_CONTENT_TYPE,
        ] {
            let d = disposition_for(risky, Some("x \"y\".html".into()));
            assert_eq!(
                d.disposition_type,
                ContentDispositionType::Attachment,
                "{risky}"
            );
        }
        assert_eq!(
            disposition_for("text/html", Some("x \"y\".html".into())).to_string(),
            "attachment; filename=\"x \\\"y\\\".html\""
        );
    }
}
