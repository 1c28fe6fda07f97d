//! The server list's types and the pure checks on what a user typed.

use serde::{Deserialize, Serialize};

use super::address::{normalize_url, plain_http_warning, UrlProblem};
use crate::secrets::Secret;

pub const NAME_MAX_CHARS: usize = 64;
pub const DEFAULT_TIMEOUT_MS: u32 = 10_000;
pub const MIN_TIMEOUT_MS: u32 = 500;
pub const MAX_TIMEOUT_MS: u32 = 300_000;
pub const MAX_QUEUE_LIMIT: u32 = 100_000;
pub const MAX_TAGS: usize = 20;
pub const TAG_MAX_CHARS: usize = 32;
pub const NOTES_MAX_CHARS: usize = 4_000;

/// What is behind a server entry. Later capabilities add RunPod serverless endpoints and pods.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[serde(rename_all = "snake_case")]
pub enum ServerKind {
    #[default]
    Comfyui,
}

impl ServerKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ServerKind::Comfyui => "comfyui",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "comfyui" => Some(ServerKind::Comfyui),
            _ => None,
        }
    }
}

/// How requests to a server authenticate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[serde(rename_all = "snake_case")]
pub enum AuthKind {
    #[default]
    None,
    /// User + password (HTTP Basic), e.g. a reverse proxy in front of ComfyUI.
    Basic,
    /// `Authorization: Bearer <token>`.
    Bearer,
    /// A custom header name + value, e.g. `X-API-Key`.
    ApiKey,
    /// The ComfyUI-Login plugin's token, sent as `Authorization: Bearer <token>`.
    ComfyuiLogin,
}

impl AuthKind {
    pub const ALL: [AuthKind; 5] = [
        AuthKind::None,
        AuthKind::Basic,
        AuthKind::Bearer,
        AuthKind::ApiKey,
        AuthKind::ComfyuiLogin,
    ];
    pub fn as_str(self) -> &'static str {
        match self {
            AuthKind::None => "none",
            AuthKind::Basic => "basic",
            AuthKind::Bearer => "bearer",
            AuthKind::ApiKey => "api_key",
            AuthKind::ComfyuiLogin => "comfyui_login",
        }
    }
    /// Accepts the stored form and the CLI's spelling (`api-key`, `comfyui-login`).
    pub fn parse(s: &str) -> Option<Self> {
        let s = s.trim().to_ascii_lowercase().replace('-', "_");
        AuthKind::ALL.into_iter().find(|k| k.as_str() == s)
    }
    pub fn needs_secret(self) -> bool {
        self != AuthKind::None
    }
    pub fn label(self) -> &'static str {
        match self {
            AuthKind::None => "no authentication",
            AuthKind::Basic => "a password",
            AuthKind::Bearer => "a bearer token",
            AuthKind::ApiKey => "an API key",
            AuthKind::ComfyuiLogin => "a ComfyUI-Login token",
        }
    }
}

/// Authentication as everyone outside the keychain sees it: never the secret, only whether it is set.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
pub struct AuthView {
    pub kind: AuthKind,
    pub user: Option<String>,
    pub header: Option<String>,
}

/// Authentication as typed in a form or the CLI. `secret: None` keeps the stored one when editing.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Default)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
pub struct AuthInput {
    pub kind: AuthKind,
    pub user: Option<String>,
    pub header: Option<String>,
    pub secret: Option<Secret>,
}

/// A server as typed in the Add/Edit form or given to `servers add/edit`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Default)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
pub struct ServerInput {
    pub name: String,
    pub url: String,
    pub auth: AuthInput,
    pub tags: Vec<String>,
    pub timeout_ms: Option<u32>,
    pub max_queue: Option<u32>,
    pub notes: String,
}

/// A server in the list, as the UI and the CLI see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
pub struct Server {
    pub id: String,
    pub name: String,
    pub url: String,
    pub kind: ServerKind,
    pub auth: AuthView,
    pub tags: Vec<String>,
    pub timeout_ms: u32,
    pub max_queue: Option<u32>,
    pub notes: String,
    pub active: bool,
    pub has_secret: bool,
    /// The auth kind needs a secret and none is stored (e.g. after an import).
    pub needs_credentials: bool,
    /// Set when credentials would be sent over plain HTTP to another machine.
    pub plain_http_warning: Option<String>,
    /// When the server last answered a test (ms since the epoch).
    pub last_connected_ms: Option<i64>,
}

impl Server {
    pub fn has_tag(&self, tag: &str) -> bool {
        self.tags.iter().any(|t| t.eq_ignore_ascii_case(tag))
    }
}

/// Why a server entry was refused. Every message names the field and the fix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InputProblem {
    #[error("Give the server a name.")]
    EmptyName,
    #[error("The name is {len} characters long; keep it to {NAME_MAX_CHARS} or fewer.")]
    NameTooLong { len: usize },
    #[error("The name contains control characters. Use letters, digits, spaces and punctuation.")]
    NameControlChars,
    #[error("A server named '{existing}' already exists (names are compared without case). Choose another name.")]
    DuplicateName { existing: String },
    #[error("{0}")]
    Url(#[from] UrlProblem),
    #[error("Basic authentication needs a user name.")]
    MissingUser,
    #[error("API key authentication needs a header name, for example X-API-Key.")]
    MissingHeader,
    #[error("'{header}' cannot be used as the API key header name: use letters, digits and '-' only, and not a standard header such as Host or Content-Length.")]
    BadHeader { header: String },
    #[error("{kind} needs {what}. Enter it (it is stored in your system keychain).", kind = kind_title(*.kind), what = .kind.label())]
    MissingSecret { kind: AuthKind },
    #[error("The secret contains a line break or control character; paste it again without them.")]
    BadSecret,
    #[error("The request timeout must be between {} and {} seconds.", MIN_TIMEOUT_MS / 1000, MAX_TIMEOUT_MS / 1000)]
    BadTimeout,
    #[error("The maximum queue size must be between 1 and {MAX_QUEUE_LIMIT}.")]
    BadMaxQueue,
    #[error("Use at most {MAX_TAGS} tags.")]
    TooManyTags,
    #[error("The tag '{tag}' is too long; keep tags to {TAG_MAX_CHARS} characters.")]
    TagTooLong { tag: String },
    #[error("Tags cannot contain commas or control characters ('{tag}').")]
    BadTag { tag: String },
    #[error("The notes are too long; keep them under {NOTES_MAX_CHARS} characters.")]
    NotesTooLong,
}

fn kind_title(kind: AuthKind) -> &'static str {
    match kind {
        AuthKind::None => "No authentication",
        AuthKind::Basic => "Basic authentication",
        AuthKind::Bearer => "Bearer token authentication",
        AuthKind::ApiKey => "API key authentication",
        AuthKind::ComfyuiLogin => "ComfyUI-Login authentication",
    }
}

/// A checked, normalised server entry, ready to store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidServer {
    pub name: String,
    pub name_key: String,
    pub url: String,
    pub kind: ServerKind,
    pub auth: AuthView,
    pub secret: Option<Secret>,
    pub tags: Vec<String>,
    pub timeout_ms: u32,
    pub max_queue: Option<u32>,
    pub notes: String,
}

/// The case-insensitive key that makes names unique.
pub fn name_key(name: &str) -> String {
    name.trim().to_lowercase()
}

const RESERVED_HEADERS: &[&str] = &[
    "host",
    "content-length",
    "content-type",
    "transfer-encoding",
    "connection",
    "upgrade",
    "origin",
    "cookie",
    "te",
    "trailer",
];

/// Check and normalise an entry. `others` are the names of the *other* servers in the list.
pub fn validate(input: &ServerInput, others: &[String]) -> Result<ValidServer, InputProblem> {
    let name = input.name.trim().to_string();
    if name.is_empty() {
        return Err(InputProblem::EmptyName);
    }
    let len = name.chars().count();
    if len > NAME_MAX_CHARS {
        return Err(InputProblem::NameTooLong { len });
    }
    if name.chars().any(char::is_control) {
        return Err(InputProblem::NameControlChars);
    }
    let key = name_key(&name);
    if let Some(existing) = others.iter().find(|o| name_key(o) == key) {
        return Err(InputProblem::DuplicateName {
            existing: existing.clone(),
        });
    }
    let url = normalize_url(&input.url)?;

    let kind = input.auth.kind;
    let clean = |s: &Option<String>| {
        s.as_deref()
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
    };
    let user = match kind {
        AuthKind::Basic => Some(clean(&input.auth.user).ok_or(InputProblem::MissingUser)?),
        _ => None,
    };
    let header = match kind {
        AuthKind::ApiKey => {
            let h = clean(&input.auth.header).ok_or(InputProblem::MissingHeader)?;
            let valid = h
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
                && !RESERVED_HEADERS.contains(&h.to_ascii_lowercase().as_str());
            if !valid {
                return Err(InputProblem::BadHeader { header: h });
            }
            Some(h)
        }
        _ => None,
    };
    let secret = match (&input.auth.secret, kind) {
        (_, AuthKind::None) => None,
        (Some(s), _) if s.is_empty() => None,
        (Some(s), _) => {
            if s.expose().chars().any(char::is_control) {
                return Err(InputProblem::BadSecret);
            }
            Some(s.clone())
        }
        (None, _) => None,
    };

    let timeout_ms = input.timeout_ms.unwrap_or(DEFAULT_TIMEOUT_MS);
    if !(MIN_TIMEOUT_MS..=MAX_TIMEOUT_MS).contains(&timeout_ms) {
        return Err(InputProblem::BadTimeout);
    }
    if let Some(q) = input.max_queue {
        if q == 0 || q > MAX_QUEUE_LIMIT {
            return Err(InputProblem::BadMaxQueue);
        }
    }
    let tags = clean_tags(&input.tags)?;
    if input.notes.chars().count() > NOTES_MAX_CHARS {
        return Err(InputProblem::NotesTooLong);
    }
    Ok(ValidServer {
        name,
        name_key: key,
        url,
        kind: ServerKind::Comfyui,
        auth: AuthView { kind, user, header },
        secret,
        tags,
        timeout_ms,
        max_queue: input.max_queue,
        notes: input.notes.trim().to_string(),
    })
}

fn clean_tags(tags: &[String]) -> Result<Vec<String>, InputProblem> {
    let mut out: Vec<String> = Vec::new();
    for tag in tags.iter().map(|t| t.trim()).filter(|t| !t.is_empty()) {
        if tag.chars().count() > TAG_MAX_CHARS {
            return Err(InputProblem::TagTooLong { tag: tag.into() });
        }
        if tag.contains(',') || tag.chars().any(char::is_control) {
            return Err(InputProblem::BadTag { tag: tag.into() });
        }
        if !out.iter().any(|t| t.eq_ignore_ascii_case(tag)) {
            out.push(tag.to_string());
        }
    }
    if out.len() > MAX_TAGS {
        return Err(InputProblem::TooManyTags);
    }
    Ok(out)
}

/// The view of a stored server; `plain_http_warning` and `needs_credentials` are derived, never stored.
pub(crate) fn derive_flags(url: &str, auth: &AuthView, has_secret: bool) -> (bool, Option<String>) {
    let needs_credentials = auth.kind.needs_secret() && !has_secret;
    let warning = plain_http_warning(url, auth.kind.needs_secret());
    (needs_credentials, warning)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input(name: &str, url: &str) -> ServerInput {
        ServerInput {
            name: name.into(),
            url: url.into(),
            ..Default::default()
        }
    }

    #[test]
    fn validate_accepts_a_plain_server_with_defaults() {
        let v = validate(&input("  GPU box ", "http://127.0.0.1:8188/"), &[]).unwrap();
        assert_eq!(v.name, "GPU box");
        assert_eq!(v.url, "http://127.0.0.1:8188");
        assert_eq!(v.timeout_ms, DEFAULT_TIMEOUT_MS);
        assert_eq!(v.auth.kind, AuthKind::None);
    }

    #[test]
    fn validate_refuses_empty_long_and_duplicate_names() {
        assert_eq!(
            validate(&input("  ", "http://a"), &[]).unwrap_err(),
            InputProblem::EmptyName
        );
        let long = "x".repeat(65);
        assert_eq!(
            validate(&input(&long, "http://a"), &[]).unwrap_err(),
            InputProblem::NameTooLong { len: 65 }
        );
        assert!(validate(&input(&"é".repeat(64), "http://a"), &[]).is_ok());
        let e = validate(&input("gpu BOX", "http://a"), &["GPU box".into()]).unwrap_err();
        assert_eq!(
            e,
            InputProblem::DuplicateName {
                existing: "GPU box".into()
            }
        );
        assert!(e.to_string().contains("already exists"));
    }

    #[test]
    fn validate_reports_the_url_problem() {
        let e = validate(&input("a", "localhost:8188"), &[]).unwrap_err();
        assert!(matches!(
            e,
            InputProblem::Url(UrlProblem::MissingScheme { .. })
        ));
    }

    #[test]
    fn validate_checks_each_auth_kind() {
        let mut i = input("a", "https://h");
        i.auth.kind = AuthKind::Basic;
        assert_eq!(validate(&i, &[]).unwrap_err(), InputProblem::MissingUser);
        i.auth.user = Some("bob".into());
        i.auth.secret = Some(Secret::new("pw"));
        let v = validate(&i, &[]).unwrap();
        assert_eq!(v.auth.user.as_deref(), Some("bob"));
        assert!(v.secret.is_some());

        let mut i = input("a", "https://h");
        i.auth.kind = AuthKind::ApiKey;
        assert_eq!(validate(&i, &[]).unwrap_err(), InputProblem::MissingHeader);
        i.auth.header = Some("Host".into());
        assert!(matches!(
            validate(&i, &[]).unwrap_err(),
            InputProblem::BadHeader { .. }
        ));
        i.auth.header = Some("X-API-Key".into());
        assert_eq!(
            validate(&i, &[]).unwrap().auth.header.as_deref(),
            Some("X-API-Key")
        );

        let mut i = input("a", "https://h");
        i.auth.kind = AuthKind::Bearer;
        i.auth.secret = Some(Secret::new("tok\nen"));
        assert_eq!(validate(&i, &[]).unwrap_err(), InputProblem::BadSecret);

        // A secret given with "none" is dropped, never stored.
        let mut i = input("a", "https://h");
        i.auth.secret = Some(Secret::new("stray"));
        assert_eq!(validate(&i, &[]).unwrap().secret, None);
    }

    #[test]
    fn validate_checks_advanced_settings_and_tags() {
        let mut i = input("a", "http://h");
        i.timeout_ms = Some(100);
        assert_eq!(validate(&i, &[]).unwrap_err(), InputProblem::BadTimeout);
        i.timeout_ms = Some(2_000);
        i.max_queue = Some(0);
        assert_eq!(validate(&i, &[]).unwrap_err(), InputProblem::BadMaxQueue);
        i.max_queue = Some(10);
        i.tags = vec![" local ".into(), "LOCAL".into(), "".into(), "studio".into()];
        let v = validate(&i, &[]).unwrap();
        assert_eq!(v.tags, vec!["local".to_string(), "studio".to_string()]);
        assert_eq!((v.timeout_ms, v.max_queue), (2_000, Some(10)));
    }

    #[test]
    fn auth_kind_parses_cli_spellings() {
        assert_eq!(AuthKind::parse("api-key"), Some(AuthKind::ApiKey));
        assert_eq!(
            AuthKind::parse("comfyui-login"),
            Some(AuthKind::ComfyuiLogin)
        );
        assert_eq!(AuthKind::parse("Basic"), Some(AuthKind::Basic));
        assert_eq!(AuthKind::parse("oauth"), None);
    }
}
