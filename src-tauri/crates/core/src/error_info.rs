//! The shape errors take when they cross to the UI or the CLI: a stable code, a human message, optional details.

use serde::Serialize;

/// An error as the UI sees it: match on `code`, show `message` (which names the thing and the fix).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
pub struct ErrorInfo {
    pub code: String,
    pub message: String,
    pub details: Option<String>,
}

/// Implemented by every core error enum, so hosts can turn any of them into an [`ErrorInfo`].
pub trait HasErrorInfo: std::fmt::Display {
    /// A stable, machine-readable code such as `servers.duplicate_name`.
    fn code(&self) -> &'static str;
    /// Optional extra detail (never a secret).
    fn details(&self) -> Option<String> {
        None
    }
    fn to_info(&self) -> ErrorInfo {
        ErrorInfo {
            code: self.code().to_string(),
            message: self.to_string(),
            details: self.details(),
        }
    }
}
