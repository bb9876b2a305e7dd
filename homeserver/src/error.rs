//! The one error type services return. It carries the Matrix `errcode` (ruma's `ErrorKind`), the
//! HTTP status and a human message; `api::ruma` turns it into the spec's JSON exactly once.

use http::StatusCode;
use ruma::api::client::uiaa::UiaaInfo;
use ruma::api::error::ErrorKind;

use crate::store::StoreError;

#[derive(Debug)]
pub enum Error {
    Matrix {
        status: StatusCode,
        kind: ErrorKind,
        message: String,
    },
    /// User-interactive auth: 401 with the flows and the session.
    Uiaa(Box<UiaaInfo>),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn new(status: StatusCode, kind: ErrorKind, message: impl Into<String>) -> Self {
        Error::Matrix {
            status,
            kind,
            message: message.into(),
        }
    }
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, ErrorKind::Forbidden, message)
    }
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, ErrorKind::NotFound, message)
    }
    pub fn bad_json(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, ErrorKind::BadJson, message)
    }
    pub fn invalid_param(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, ErrorKind::InvalidParam, message)
    }
    pub fn missing_param(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, ErrorKind::MissingParam, message)
    }
    pub fn unknown_token(message: impl Into<String>) -> Self {
        use ruma::api::error::UnknownTokenErrorData;
        Self::new(
            StatusCode::UNAUTHORIZED,
            ErrorKind::UnknownToken(UnknownTokenErrorData::new()),
            message,
        )
    }
    pub fn too_large(message: impl Into<String>) -> Self {
        Self::new(StatusCode::PAYLOAD_TOO_LARGE, ErrorKind::TooLarge, message)
    }
    pub fn unrecognized(status: StatusCode, message: impl Into<String>) -> Self {
        Self::new(status, ErrorKind::Unrecognized, message)
    }
    pub fn limit_exceeded(retry_after: std::time::Duration) -> Self {
        use ruma::api::error::{LimitExceededErrorData, RetryAfter};
        let mut data = LimitExceededErrorData::new();
        data.retry_after = Some(RetryAfter::Delay(retry_after));
        Self::new(
            StatusCode::TOO_MANY_REQUESTS,
            ErrorKind::LimitExceeded(data),
            "Too many requests; slow down",
        )
    }
    /// A denial by the governance policy: always names the rule.
    pub fn policy(denial: &handover_policy::Denial) -> Self {
        // Structured and countable; names the rule, never the content that triggered it.
        tracing::warn!(target: "handover::policy", rule = %denial.rule, "policy denial");
        let message = format!("Denied by policy rule `{}`: {}", denial.rule, denial.reason);
        if denial.malformed {
            // Malformed for the rule (a FHIR event that is not one): bad input, not forbidden.
            Self::bad_json(message)
        } else {
            Self::forbidden(message)
        }
    }
    pub fn internal(message: impl std::fmt::Display) -> Self {
        // The detail goes to the log, never to the client.
        tracing::error!(error = %message, "internal error");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            ErrorKind::Unknown,
            "Internal server error",
        )
    }

    /// The human message (for logs; never contains secrets).
    pub fn message(&self) -> &str {
        match self {
            Error::Matrix { message, .. } => message,
            Error::Uiaa(_) => "user-interactive authentication required",
        }
    }

    /// Whether this is a governance policy denial (see `Error::policy`).
    pub fn is_policy(&self) -> bool {
        self.message().starts_with("Denied by policy rule `")
    }

    /// A 404 `M_NOT_FOUND`.
    pub fn is_not_found(&self) -> bool {
        self.kind() == Some(&ErrorKind::NotFound)
    }

    pub fn kind(&self) -> Option<&ErrorKind> {
        match self {
            Error::Matrix { kind, .. } => Some(kind),
            Error::Uiaa(_) => None,
        }
    }
}

impl From<StoreError> for Error {
    fn from(e: StoreError) -> Self {
        // Storage trouble is the operator's to fix and passes: say so, and that nothing was
        // written, so clients retry later instead of reporting a server bug.
        match e {
            StoreError::Full => Error::new(
                StatusCode::SERVICE_UNAVAILABLE,
                ErrorKind::Unknown,
                "The server's storage is full, so nothing was written; try again later",
            ),
            StoreError::ReadOnly => Error::new(
                StatusCode::SERVICE_UNAVAILABLE,
                ErrorKind::Unknown,
                "The server's database is read-only, so nothing was written; try again later",
            ),
            e => Error::internal(e),
        }
    }
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Error::Matrix { kind, message, .. } => write!(f, "{kind:?}: {message}"),
            Error::Uiaa(_) => write!(f, "user-interactive authentication required"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sqlite(code: i32) -> rusqlite::Error {
        rusqlite::Error::SqliteFailure(rusqlite::ffi::Error::new(code), None)
    }

    /// A full or read-only database is the operator's problem, told plainly: 503, nothing
    /// written; any other database error stays an internal error.
    #[test]
    fn storage_trouble_is_a_clear_503() {
        for (code, want) in [
            (rusqlite::ffi::SQLITE_FULL, "storage is full"),
            (rusqlite::ffi::SQLITE_READONLY, "read-only"),
        ] {
            let e = Error::from(StoreError::from(sqlite(code)));
            let Error::Matrix {
                status, message, ..
            } = &e
            else {
                panic!("{e}");
            };
            assert_eq!(*status, StatusCode::SERVICE_UNAVAILABLE);
            assert!(
                message.contains(want) && message.contains("nothing was written"),
                "{message}"
            );
        }
        let e = Error::from(StoreError::from(sqlite(rusqlite::ffi::SQLITE_CORRUPT)));
        assert!(
            matches!(e, Error::Matrix { status, .. } if status == StatusCode::INTERNAL_SERVER_ERROR)
        );
    }
}
