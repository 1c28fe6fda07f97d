//! The server list as a versioned JSON document (never holding secrets), and the legacy single-server format. Pure.

use serde::{Deserialize, Serialize};

use super::model::{AuthInput, AuthKind, AuthView, RunpodEndpoint, ServerInput, ServerKind};
use crate::secrets::Secret;

/// Identifies our documents; anything else is refused.
pub const FORMAT: &str = "comfyfleet-servers";
/// The document version this build writes and reads.
pub const VERSION: u32 = 1;
/// Larger files are refused before they are read: a real list is a few kilobytes.
pub const MAX_IMPORT_BYTES: u64 = 5 * 1024 * 1024;
/// The name the legacy single-server settings become.
pub const LEGACY_NAME: &str = "Default Server";

#[derive(Debug, Serialize, Deserialize)]
pub struct Document {
    pub format: String,
    pub version: u32,
    #[serde(default)]
    pub exported_at_ms: Option<i64>,
    pub servers: Vec<ExportedServer>,
}

/// One server in a document. There is deliberately no field for a secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExportedServer {
    pub name: String,
    pub url: String,
    #[serde(default)]
    pub kind: ServerKind,
    /// RunPod endpoints: their id, GPU class and flavour (the API key stays in the keychain).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runpod: Option<RunpodEndpoint>,
    #[serde(default)]
    pub auth: AuthView,
    #[serde(default)]
    pub tags: Vec<String>,
    #[serde(default)]
    pub timeout_ms: Option<u32>,
    #[serde(default)]
    pub max_queue: Option<u32>,
    #[serde(default)]
    pub notes: String,
    #[serde(default)]
    pub active: bool,
}

/// A server read from a file, ready for validation. `secret` is only ever set by the legacy format,
/// whose peers stored credentials in clear text: importing moves them into the keychain.
#[derive(Debug, Clone)]
pub struct ImportedServer {
    pub input: ServerInput,
    pub active: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ImportProblem {
    #[error("The file is {size_mb} MB; a server list is at most {} MB. Choose the file exported by ComfyFleet.", MAX_IMPORT_BYTES / 1024 / 1024)]
    TooLarge { size_mb: u64 },
    #[error("The file is empty.")]
    Empty,
    #[error("The file is not valid JSON ({reason}). It may be truncated or not a server list; export it again.")]
    NotJson { reason: String },
    #[error("The file is JSON but not a ComfyFleet server list (no \"format\": \"{FORMAT}\" and no legacy \"comfyui-settings\"). Choose a file exported by ComfyFleet.")]
    UnknownFormat,
    #[error("This server list is version {found}; this ComfyFleet reads version {VERSION}. Update ComfyFleet to import it.")]
    UnsupportedVersion { found: u64 },
    #[error("The server list is malformed: {reason}.")]
    Malformed { reason: String },
    #[error("The legacy settings have no serverUrl.")]
    LegacyNoUrl,
    #[error("The legacy settings use the authentication type '{kind}', which ComfyFleet does not know. Import without it and set the credentials in Servers > Edit.")]
    LegacyAuth { kind: String },
    #[error("The list names '{name}' twice. Each server needs its own name.")]
    DuplicateInFile { name: String },
    #[error("The list has no servers.")]
    NoServers,
    #[error("Server #{index} ('{name}') in the file: {problem}")]
    Invalid {
        index: usize,
        name: String,
        problem: String,
    },
}

/// Serialize servers as a document.
pub fn to_document(servers: Vec<ExportedServer>, now_ms: i64) -> String {
    let doc = Document {
        format: FORMAT.into(),
        version: VERSION,
        exported_at_ms: Some(now_ms),
        servers,
    };
    serde_json::to_string_pretty(&doc).unwrap_or_default()
}

/// Parse a document or the legacy format into servers to import (not yet validated against the list).
pub fn parse(text: &str) -> Result<Vec<ImportedServer>, ImportProblem> {
    if text.trim().is_empty() {
        return Err(ImportProblem::Empty);
    }
    let value: serde_json::Value =
        serde_json::from_str(text).map_err(|e| ImportProblem::NotJson {
            reason: e.to_string(),
        })?;
    let obj = value.as_object().ok_or(ImportProblem::UnknownFormat)?;
    if let Some(legacy) = obj.get("comfyui-settings") {
        return parse_legacy(legacy).map(|s| vec![s]);
    }
    if obj.get("format").and_then(|f| f.as_str()) != Some(FORMAT) {
        return Err(ImportProblem::UnknownFormat);
    }
    match obj.get("version").and_then(|v| v.as_u64()) {
        Some(v) if v == VERSION as u64 => {}
        Some(found) => return Err(ImportProblem::UnsupportedVersion { found }),
        None => {
            return Err(ImportProblem::Malformed {
                reason: "\"version\" is missing or not a number".into(),
            })
        }
    }
    let doc: Document = serde_json::from_value(value).map_err(|e| ImportProblem::Malformed {
        reason: e.to_string(),
    })?;
    if doc.servers.is_empty() {
        return Err(ImportProblem::NoServers);
    }
    let mut seen: Vec<String> = Vec::new();
    let mut out = Vec::new();
    for s in doc.servers {
        let key = super::model::name_key(&s.name);
        if seen.contains(&key) {
            return Err(ImportProblem::DuplicateInFile { name: s.name });
        }
        seen.push(key);
        out.push(ImportedServer {
            active: s.active,
            input: ServerInput {
                name: s.name,
                url: s.url,
                kind: s.kind,
                runpod: s.runpod,
                auth: AuthInput {
                    kind: s.auth.kind,
                    user: s.auth.user,
                    header: s.auth.header,
                    secret: None,
                },
                tags: s.tags,
                timeout_ms: s.timeout_ms,
                max_queue: s.max_queue,
                notes: s.notes,
            },
        });
    }
    Ok(out)
}

/// `{"comfyui-settings": {"serverUrl": "...", "authentication": {"type": "none"}}}` becomes an active
/// server named "Default Server". Clear-text credentials in it move to the keychain.
fn parse_legacy(v: &serde_json::Value) -> Result<ImportedServer, ImportProblem> {
    let url = v
        .get("serverUrl")
        .and_then(|u| u.as_str())
        .filter(|u| !u.trim().is_empty())
        .ok_or(ImportProblem::LegacyNoUrl)?;
    let auth = v.get("authentication");
    let field = |k: &str| {
        auth.and_then(|a| a.get(k))
            .and_then(|x| x.as_str())
            .map(str::to_string)
    };
    let kind_raw = field("type").unwrap_or_else(|| "none".into());
    let (kind, user, header, secret) = match kind_raw.to_ascii_lowercase().as_str() {
        "none" | "" => (AuthKind::None, None, None, None),
        "basic" => (
            AuthKind::Basic,
            field("username").or_else(|| field("user")),
            None,
            field("password"),
        ),
        "bearer" | "token" => (AuthKind::Bearer, None, None, field("token")),
        "apikey" | "api_key" | "api-key" => (
            AuthKind::ApiKey,
            None,
            field("header").or_else(|| field("headerName")),
            field("apiKey")
                .or_else(|| field("key"))
                .or_else(|| field("value")),
        ),
        "comfyui-login" | "comfyui_login" | "login" => {
            (AuthKind::ComfyuiLogin, None, None, field("token"))
        }
        other => {
            return Err(ImportProblem::LegacyAuth {
                kind: other.to_string(),
            })
        }
    };
    Ok(ImportedServer {
        active: true,
        input: ServerInput {
            name: LEGACY_NAME.into(),
            url: url.to_string(),
            auth: AuthInput {
                kind,
                user,
                header,
                secret: secret.filter(|s| !s.is_empty()).map(Secret::new),
            },
            ..Default::default()
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(name: &str) -> ExportedServer {
        ExportedServer {
            name: name.into(),
            url: "http://127.0.0.1:8188".into(),
            kind: ServerKind::Comfyui,
            runpod: None,
            auth: AuthView {
                kind: AuthKind::Basic,
                user: Some("bob".into()),
                header: None,
            },
            tags: vec!["local".into()],
            timeout_ms: Some(5000),
            max_queue: Some(4),
            notes: "n".into(),
            active: true,
        }
    }

    #[test]
    fn transfer_round_trips_a_document() {
        let text = to_document(vec![one("A"), one("B")], 1);
        let parsed = parse(&text).unwrap();
        assert_eq!(parsed.len(), 2);
        assert_eq!(parsed[0].input.name, "A");
        assert_eq!(parsed[0].input.auth.kind, AuthKind::Basic);
        assert_eq!(parsed[0].input.auth.user.as_deref(), Some("bob"));
        assert!(parsed[0].input.auth.secret.is_none());
        assert!(parsed[0].active);
        assert!(!text.to_lowercase().contains("secret"));
    }

    #[test]
    fn transfer_reads_the_legacy_format_as_an_active_default_server() {
        let parsed = parse(r#"{"comfyui-settings": {"serverUrl": "http://127.0.0.1:8188", "authentication": {"type": "none"}}}"#).unwrap();
        assert_eq!(parsed.len(), 1);
        assert_eq!(parsed[0].input.name, LEGACY_NAME);
        assert!(parsed[0].active);
        assert_eq!(parsed[0].input.auth.kind, AuthKind::None);
    }

    #[test]
    fn transfer_moves_legacy_clear_text_credentials_out_of_the_file() {
        let parsed = parse(r#"{"comfyui-settings": {"serverUrl": "http://h:8188", "authentication": {"type": "basic", "username": "u", "password": "pw"}}}"#).unwrap();
        assert_eq!(parsed[0].input.auth.kind, AuthKind::Basic);
        assert_eq!(parsed[0].input.auth.secret.as_ref().unwrap().expose(), "pw");
        assert!(matches!(
            parse(
                r#"{"comfyui-settings": {"serverUrl": "http://h", "authentication": {"type": "kerberos"}}}"#
            ),
            Err(ImportProblem::LegacyAuth { .. })
        ));
        assert_eq!(
            parse(r#"{"comfyui-settings": {}}"#).unwrap_err(),
            ImportProblem::LegacyNoUrl
        );
    }

    #[test]
    fn transfer_refuses_malformed_truncated_and_unknown_documents() {
        assert_eq!(parse("").unwrap_err(), ImportProblem::Empty);
        assert!(matches!(
            parse("not json"),
            Err(ImportProblem::NotJson { .. })
        ));
        let text = to_document(vec![one("A")], 1);
        let truncated = &text[..text.len() / 2];
        assert!(matches!(
            parse(truncated),
            Err(ImportProblem::NotJson { .. })
        ));
        assert_eq!(parse("[1,2]").unwrap_err(), ImportProblem::UnknownFormat);
        assert_eq!(
            parse(r#"{"format":"other","version":1,"servers":[]}"#).unwrap_err(),
            ImportProblem::UnknownFormat
        );
        assert_eq!(
            parse(r#"{"format":"comfyfleet-servers","version":2,"servers":[]}"#).unwrap_err(),
            ImportProblem::UnsupportedVersion { found: 2 }
        );
        assert!(matches!(
            parse(r#"{"format":"comfyfleet-servers","version":1,"servers":[{"url":"http://h"}]}"#),
            Err(ImportProblem::Malformed { .. })
        ));
        assert!(matches!(
            parse(
                r#"{"format":"comfyfleet-servers","version":1,"servers":[{"name":"a","url":"http://h","auth":{"kind":"magic"}}]}"#
            ),
            Err(ImportProblem::Malformed { .. })
        ));
        assert_eq!(
            parse(r#"{"format":"comfyfleet-servers","version":1,"servers":[]}"#).unwrap_err(),
            ImportProblem::NoServers
        );
        let dup = to_document(vec![one("A"), one("a")], 1);
        assert_eq!(
            parse(&dup).unwrap_err(),
            ImportProblem::DuplicateInFile { name: "a".into() }
        );
    }
}
