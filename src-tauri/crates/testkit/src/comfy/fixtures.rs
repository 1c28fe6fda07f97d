//! The recorded ComfyUI 0.3.64 responses the fake serves, embedded from `fixtures/` (see its README).

use std::sync::OnceLock;

use crate::pyjson::OrderedJson;

/// `GET /features`, as recorded.
pub const FEATURES: &str = include_str!("../../fixtures/features.json");
/// `GET /users` in single-user mode, as recorded.
pub const USERS: &str = include_str!("../../fixtures/users.json");
/// `GET /settings`, as recorded.
pub const SETTINGS: &str = include_str!("../../fixtures/settings.json");
/// `GET /extensions`, as recorded.
pub const EXTENSIONS: &str = include_str!("../../fixtures/extensions.json");
/// The 401 body of ComfyUI-Login.
pub const AUTH_REQUIRED: &str = include_str!("../../fixtures/auth_required.json");
/// Eight node classes of the recorded `/object_info` (pretty-printed; the fake re-encodes them).
const OBJECT_INFO_SELECTED: &str = include_str!("../../fixtures/object_info_selected.json");

/// The body aiohttp sends for an unhandled exception (and the fake for `Fault::Http500`).
pub const SERVER_ERROR_TEXT: &str = "500 Internal Server Error\n\nServer got itself in trouble";

/// The selected node classes, in recorded order. Parsed once; the fixture is a compile-time constant.
pub fn object_info() -> &'static [(String, OrderedJson)] {
    static PARSED: OnceLock<Vec<(String, OrderedJson)>> = OnceLock::new();
    PARSED.get_or_init(
        || match OrderedJson::parse(OBJECT_INFO_SELECTED.as_bytes()) {
            Ok(OrderedJson::Object(classes)) => classes,
            // A test (fixtures_object_info_parses) keeps this branch unreachable.
            _ => Vec::new(),
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixtures_object_info_parses() {
        let names: Vec<&str> = object_info()
            .iter()
            .map(|(name, _)| name.as_str())
            .collect();
        assert_eq!(
            names,
            [
                "EmptyImage",
                "SaveImage",
                "PreviewImage",
                "ImageInvert",
                "LoadImage",
                "SaveImageWebsocket",
                "CheckpointLoaderSimple",
                "KSampler"
            ]
        );
    }
}
