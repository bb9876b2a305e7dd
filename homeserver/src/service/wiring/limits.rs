//! Per-request body limits, decided by the route before the body is read (`api/ruma.rs`).

/// Per-request body limits, by kind of endpoint.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    pub max_request_bytes: usize,
    pub max_upload_bytes: usize,
}

impl Limits {
    /// The body limit of a request: the upload limit for media uploads only (`POST /upload`,
    /// `PUT /upload/{serverName}/{mediaId}`, any version), the JSON limit for everything else,
    /// downloads and thumbnails included (they have no body).
    pub fn body_limit_for(&self, method: &http::Method, path: &str) -> usize {
        if is_upload(method, path) {
            self.max_upload_bytes
        } else {
            self.max_request_bytes
        }
    }
}

/// A media upload route: its body is streamed to a temp file, not buffered (see `Ruma`).
pub fn is_upload(method: &http::Method, path: &str) -> bool {
    matches!(*method, http::Method::POST | http::Method::PUT)
        && path
            .strip_prefix("/_matrix/media/")
            .is_some_and(|rest| rest.split('/').take(3).any(|seg| seg == "upload"))
}

#[cfg(test)]
#[test]
fn upload_limit_applies_to_upload_routes_only() {
    use http::Method;
    let l = Limits {
        max_request_bytes: 1,
        max_upload_bytes: 50,
    };
    for (m, p) in [
        (Method::POST, "/_matrix/media/v3/upload"),
        (Method::POST, "/_matrix/media/r0/upload"),
        (Method::PUT, "/_matrix/media/v3/upload/localhost/abc"),
        (
            Method::PUT,
            "/_matrix/media/unstable/fi.mau.msc2246/upload/l/abc",
        ),
    ] {
        assert_eq!(l.body_limit_for(&m, p), 50, "{m} {p}");
    }
    for (m, p) in [
        (Method::GET, "/_matrix/media/v3/upload"),
        (
            Method::GET,
            "/_matrix/client/v1/media/download/localhost/abc",
        ),
        (
            Method::POST,
            "/_matrix/client/v1/media/download/localhost/upload",
        ),
        (Method::POST, "/_matrix/media/v1/create"),
        (
            Method::PUT,
            "/_matrix/client/v3/rooms/!r/send/m.room.message/media",
        ),
        (
            Method::POST,
            "/_matrix/client/v3/user/@u/filter/media/upload",
        ),
    ] {
        assert_eq!(l.body_limit_for(&m, p), 1, "{m} {p}");
    }
}
