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

/// What is behind a server entry. RunPod pods are ComfyUI servers (tagged `cloud`); serverless endpoints speak
/// RunPod's job API instead of ComfyUI's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[serde(rename_all = "snake_case")]
pub enum ServerKind {
    #[default]
    Comfyui,
    RunpodServerless,
}

impl ServerKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ServerKind::Comfyui => "comfyui",
            ServerKind::RunpodServerless => "runpod_serverless",
        }
    }
    /// Accepts the stored form and the CLI's spelling (`runpod-serverless`).
    pub fn parse(s: &str) -> Option<Self> {
        match s.trim().to_ascii_lowercase().replace('-', "_").as_str() {
            "comfyui" => Some(ServerKind::Comfyui),
            "runpod_serverless" => Some(ServerKind::RunpodServerless),
            _ => None,
        }
    }
    pub fn is_cloud(self) -> bool {
        self != ServerKind::Comfyui
    }
}

/// The worker-comfyui image an endpoint runs (`runpod/worker-comfyui:<version>-<flavour>`): it decides which models
/// the endpoint has.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[serde(rename_all = "kebab-case")]
pub enum Flavour {
    /// No models baked in (bring them on a network volume).
    #[default]
    Base,
    Sdxl,
    Sd3,
    Flux1Schnell,
    Flux1Dev,
}

impl Flavour {
    pub const ALL: [Flavour; 5] = [
        Flavour::Base,
        Flavour::Sdxl,
        Flavour::Sd3,
        Flavour::Flux1Schnell,
        Flavour::Flux1Dev,
    ];
    pub fn as_str(self) -> &'static str {
        match self {
            Flavour::Base => "base",
            Flavour::Sdxl => "sdxl",
            Flavour::Sd3 => "sd3",
            Flavour::Flux1Schnell => "flux1-schnell",
            Flavour::Flux1Dev => "flux1-dev",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        let s = s.trim().to_ascii_lowercase().replace('_', "-");
        Flavour::ALL.into_iter().find(|f| f.as_str() == s)
    }
    /// The model files the image ships, as `(folder, file)` (worker-comfyui's Dockerfile).
    pub fn models(self) -> &'static [(&'static str, &'static str)] {
        const FLUX_SHARED: [(&str, &str); 3] = [
            ("clip", "clip_l.safetensors"),
            ("clip", "t5xxl_fp8_e4m3fn.safetensors"),
            ("vae", "ae.safetensors"),
        ];
        match self {
            Flavour::Base => &[],
            Flavour::Sdxl => &[
                ("checkpoints", "sd_xl_base_1.0.safetensors"),
                ("vae", "sdxl_vae.safetensors"),
                ("vae", "sdxl-vae-fp16-fix.safetensors"),
            ],
            Flavour::Sd3 => &[("checkpoints", "sd3_medium_incl_clips_t5xxlfp8.safetensors")],
            Flavour::Flux1Schnell => &[
                ("unet", "flux1-schnell.safetensors"),
                FLUX_SHARED[0],
                FLUX_SHARED[1],
                FLUX_SHARED[2],
            ],
            Flavour::Flux1Dev => &[
                ("unet", "flux1-dev.safetensors"),
                FLUX_SHARED[0],
                FLUX_SHARED[1],
                FLUX_SHARED[2],
            ],
        }
    }
}

/// A RunPod serverless endpoint running worker-comfyui.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
pub struct RunpodEndpoint {
    pub endpoint_id: String,
    /// The GPU class its workers use (prices differ per class), e.g. `ADA_24` or `NVIDIA GeForce RTX 4090`.
    pub gpu_class: String,
    pub flavour: Flavour,
    /// Models it has beyond its flavour's (e.g. on a network volume), as `folder/file`.
    #[serde(default)]
    pub extra_models: Vec<String>,
}

impl RunpodEndpoint {
    /// Model files per folder, as the router compares them. ComfyUI's folder aliases are listed under both names.
    pub fn inventory(&self) -> std::collections::BTreeMap<String, Vec<String>> {
        let mut inv: std::collections::BTreeMap<String, Vec<String>> = Default::default();
        let extra = self.extra_models.iter().filter_map(|m| m.split_once('/'));
        for (folder, file) in self.flavour.models().iter().copied().chain(extra) {
            let aliases: &[&str] = match folder {
                "unet" | "diffusion_models" => &["unet", "diffusion_models"],
                "clip" | "text_encoders" => &["clip", "text_encoders"],
                other => &[other][..],
            };
            for alias in aliases {
                inv.entry(alias.to_string())
                    .or_default()
                    .push(file.to_string());
            }
        }
        inv
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
    /// Ignored for RunPod endpoints (their address follows from the endpoint id).
    #[serde(default)]
    pub url: String,
    #[serde(default)]
    pub kind: ServerKind,
    /// Required for RunPod serverless endpoints.
    #[serde(default)]
    pub runpod: Option<RunpodEndpoint>,
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
    /// Set for RunPod serverless endpoints.
    pub runpod: Option<RunpodEndpoint>,
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
    /// Runs in the cloud (paid by the second): a RunPod endpoint, or a server tagged `cloud` (e.g. a pod).
    pub fn is_cloud(&self) -> bool {
        self.kind.is_cloud() || self.has_tag("cloud")
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
    #[error("A RunPod serverless endpoint needs its endpoint id (shown in the RunPod console under Serverless, e.g. 'abc123xyz').")]
    MissingEndpoint,
    #[error("'{id}' is not a RunPod endpoint id: use the id shown in the RunPod console (letters, digits, '-' and '_', at most 64).")]
    BadEndpoint { id: String },
    #[error("Give the GPU class the endpoint's workers use (e.g. ADA_24 or NVIDIA GeForce RTX 4090); prices depend on it.")]
    MissingGpuClass,
    #[error(
        "The GPU class is too long or contains control characters; keep it under 64 characters."
    )]
    BadGpuClass,
    #[error(
        "'{model}' is not a model entry: write folder/file, e.g. checkpoints/my_model.safetensors."
    )]
    BadModel { model: String },
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
    pub runpod: Option<RunpodEndpoint>,
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
    let (url, runpod) = match input.kind {
        ServerKind::Comfyui => (normalize_url(&input.url)?, None),
        ServerKind::RunpodServerless => {
            let ep = validate_endpoint(input.runpod.as_ref())?;
            // Shown as RunPod's address; the client follows `RUNPOD_ENDPOINT_BASE_URL` when set.
            let url = format!("{}/{}", crate::runpod::SERVERLESS_URL, ep.endpoint_id);
            (url, Some(ep))
        }
    };

    // RunPod endpoints use the account's API key, never a per-server secret.
    let kind = match input.kind {
        ServerKind::Comfyui => input.auth.kind,
        ServerKind::RunpodServerless => AuthKind::None,
    };
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
        kind: input.kind,
        runpod,
        auth: AuthView { kind, user, header },
        secret,
        tags,
        timeout_ms,
        max_queue: input.max_queue,
        notes: input.notes.trim().to_string(),
    })
}

fn validate_endpoint(ep: Option<&RunpodEndpoint>) -> Result<RunpodEndpoint, InputProblem> {
    let ep = ep.ok_or(InputProblem::MissingEndpoint)?;
    let id = ep.endpoint_id.trim();
    if id.is_empty() {
        return Err(InputProblem::MissingEndpoint);
    }
    if id.len() > 64
        || !id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        return Err(InputProblem::BadEndpoint { id: id.into() });
    }
    let gpu = ep.gpu_class.trim();
    if gpu.is_empty() {
        return Err(InputProblem::MissingGpuClass);
    }
    if gpu.chars().count() > 64 || gpu.chars().any(char::is_control) {
        return Err(InputProblem::BadGpuClass);
    }
    let mut extra_models = Vec::new();
    for m in ep
        .extra_models
        .iter()
        .map(|m| m.trim())
        .filter(|m| !m.is_empty())
    {
        let ok = m
            .split_once('/')
            .is_some_and(|(f, n)| !f.is_empty() && !n.is_empty() && !m.contains(".."))
            && !m.chars().any(char::is_control);
        if !ok {
            return Err(InputProblem::BadModel { model: m.into() });
        }
        extra_models.push(m.to_string());
    }
    Ok(RunpodEndpoint {
        endpoint_id: id.to_string(),
        gpu_class: gpu.to_string(),
        flavour: ep.flavour,
        extra_models,
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
    fn validate_builds_a_runpod_endpoint_from_its_id_and_refuses_a_bad_one() {
        let mut i = input("Cloud SDXL", "ignored");
        i.kind = ServerKind::RunpodServerless;
        assert_eq!(
            validate(&i, &[]).unwrap_err(),
            InputProblem::MissingEndpoint
        );
        i.runpod = Some(RunpodEndpoint {
            endpoint_id: " abc123 ".into(),
            gpu_class: "ADA_24".into(),
            flavour: Flavour::Sdxl,
            extra_models: vec!["loras/x.safetensors".into(), " ".into()],
        });
        i.auth.kind = AuthKind::Bearer;
        i.auth.secret = Some(Secret::new("stray"));
        let v = validate(&i, &[]).unwrap();
        assert_eq!(v.url, "https://api.runpod.ai/v2/abc123");
        assert_eq!(v.kind, ServerKind::RunpodServerless);
        // The account key is used; a per-server secret is never kept.
        assert_eq!((v.auth.kind, v.secret), (AuthKind::None, None));
        let ep = v.runpod.unwrap();
        assert_eq!(ep.endpoint_id, "abc123");
        assert_eq!(ep.extra_models, vec!["loras/x.safetensors".to_string()]);

        let bad = |f: &dyn Fn(&mut RunpodEndpoint)| {
            let mut j = i.clone();
            f(j.runpod.as_mut().unwrap());
            validate(&j, &[]).unwrap_err()
        };
        assert!(matches!(
            bad(&|e| e.endpoint_id = "a/../b".into()),
            InputProblem::BadEndpoint { .. }
        ));
        assert_eq!(
            bad(&|e| e.gpu_class = " ".into()),
            InputProblem::MissingGpuClass
        );
        assert!(matches!(
            bad(&|e| e.extra_models = vec!["model.safetensors".into()]),
            InputProblem::BadModel { .. }
        ));
    }

    #[test]
    fn runpod_flavours_list_their_models_under_comfyui_folder_aliases() {
        let ep = RunpodEndpoint {
            flavour: Flavour::Flux1Schnell,
            extra_models: vec!["loras/style.safetensors".into()],
            ..Default::default()
        };
        let inv = ep.inventory();
        assert_eq!(inv["unet"], vec!["flux1-schnell.safetensors".to_string()]);
        assert_eq!(inv["diffusion_models"], inv["unet"]);
        assert!(inv["text_encoders"].contains(&"t5xxl_fp8_e4m3fn.safetensors".to_string()));
        assert_eq!(inv["loras"], vec!["style.safetensors".to_string()]);
        assert!(!inv.contains_key("checkpoints"));
        assert_eq!(Flavour::parse("FLUX1_schnell"), Some(Flavour::Flux1Schnell));
        assert_eq!(
            ServerKind::parse("runpod-serverless"),
            Some(ServerKind::RunpodServerless)
        );
        assert!(RunpodEndpoint::default().inventory().is_empty());
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
