//! `comfyfleet servers …`: list, add, edit, remove, activate, test, export, import.

use std::io::{IsTerminal, Read};
use std::path::PathBuf;

use clap::{Args, Subcommand};
use comfyfleet_core::health::{ServerStatus, Status};
use comfyfleet_core::secrets::Secret;
use comfyfleet_core::servers::{
    AuthInput, AuthKind, Flavour, RunpodEndpoint, Server, ServerInput, ServerKind,
};
use comfyfleet_core::Fleet;
use serde_json::json;

use crate::{CliError, Outcome};

#[derive(Subcommand)]
pub enum ServersCmd {
    /// List servers in order; the active one is marked with *.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Add a server. A secret (password, token, key) is read from stdin or a prompt, never from arguments.
    Add(AddArgs),
    /// Edit a server (by name or id). Only the options given change.
    Edit(EditArgs),
    /// Remove a server and its stored secret.
    #[command(alias = "rm", alias = "delete")]
    Remove { server: String },
    /// Make a server the active one (or none with --none).
    Activate {
        #[arg(required_unless_present = "none")]
        server: Option<String>,
        #[arg(long, conflicts_with = "server")]
        none: bool,
    },
    /// Test one server, or all of them in parallel. Exits 1 when a tested server is not connected.
    Test {
        #[arg(required_unless_present = "all")]
        server: Option<String>,
        #[arg(long, conflicts_with = "server")]
        all: bool,
        /// Reuse results younger than 30 s instead of probing again.
        #[arg(long)]
        cached: bool,
        #[arg(long)]
        json: bool,
    },
    /// Write the list (without secrets) to a JSON file.
    Export { file: PathBuf },
    /// Read servers from a ComfyFleet export or the legacy single-server settings file.
    Import { file: PathBuf },
}

/// A RunPod serverless endpoint's settings (with `--kind runpod-serverless`).
#[derive(Args)]
pub struct EndpointArgs {
    /// The endpoint id from the RunPod console (Serverless).
    #[arg(long)]
    endpoint: Option<String>,
    /// The GPU class its workers use, for prices (e.g. ADA_24).
    #[arg(long)]
    gpu: Option<String>,
    /// The worker-comfyui image: base | sdxl | sd3 | flux1-schnell | flux1-dev.
    #[arg(long, value_parser = parse_flavour)]
    flavour: Option<Flavour>,
    /// A model it has beyond its flavour's, as folder/file; repeat for several.
    #[arg(long = "model")]
    models: Vec<String>,
}

#[derive(Args)]
pub struct AddArgs {
    #[arg(long)]
    name: String,
    /// The ComfyUI address (not used for RunPod endpoints).
    #[arg(long, required_unless_present = "endpoint")]
    url: Option<String>,
    /// comfyui | runpod-serverless (a RunPod endpoint running worker-comfyui; uses the RunPod API key).
    #[arg(long, default_value = "comfyui", value_parser = parse_kind)]
    kind: ServerKind,
    #[command(flatten)]
    endpoint: EndpointArgs,
    /// none | basic | bearer | api-key | comfyui-login
    #[arg(long, default_value = "none", value_parser = parse_auth)]
    auth: AuthKind,
    /// User name for basic auth.
    #[arg(long)]
    user: Option<String>,
    /// Header name for api-key auth, e.g. X-API-Key.
    #[arg(long)]
    header: Option<String>,
    /// A tag (group); repeat for several, e.g. --tag local.
    #[arg(long = "tag")]
    tags: Vec<String>,
    /// Request timeout in seconds (default 10).
    #[arg(long)]
    timeout: Option<f64>,
    #[arg(long)]
    max_queue: Option<u32>,
    #[arg(long)]
    notes: Option<String>,
}

#[derive(Args)]
pub struct EditArgs {
    /// The server's name or id.
    server: String,
    #[arg(long)]
    name: Option<String>,
    #[arg(long)]
    url: Option<String>,
    #[arg(long, value_parser = parse_auth)]
    auth: Option<AuthKind>,
    #[arg(long)]
    user: Option<String>,
    #[arg(long)]
    header: Option<String>,
    /// Replace the tags (repeat for several).
    #[arg(long = "tag")]
    tags: Vec<String>,
    /// Remove every tag.
    #[arg(long, conflicts_with = "tags")]
    clear_tags: bool,
    #[arg(long)]
    timeout: Option<f64>,
    #[arg(long)]
    max_queue: Option<u32>,
    #[arg(long)]
    notes: Option<String>,
    /// Read a new secret from stdin or a prompt.
    #[arg(long)]
    secret: bool,
    #[command(flatten)]
    endpoint: EndpointArgs,
}

fn parse_kind(s: &str) -> Result<ServerKind, String> {
    ServerKind::parse(s)
        .ok_or_else(|| format!("unknown kind '{s}': use comfyui or runpod-serverless"))
}

fn parse_flavour(s: &str) -> Result<Flavour, String> {
    Flavour::parse(s).ok_or_else(|| {
        format!("unknown flavour '{s}': use base, sdxl, sd3, flux1-schnell or flux1-dev")
    })
}

impl EndpointArgs {
    fn given(&self) -> bool {
        self.endpoint.is_some()
            || self.gpu.is_some()
            || self.flavour.is_some()
            || !self.models.is_empty()
    }

    /// These settings over `current` (an edit keeps what is not given).
    fn apply(self, current: Option<RunpodEndpoint>) -> RunpodEndpoint {
        let cur = current.unwrap_or_default();
        RunpodEndpoint {
            endpoint_id: self.endpoint.unwrap_or(cur.endpoint_id),
            gpu_class: self.gpu.unwrap_or(cur.gpu_class),
            flavour: self.flavour.unwrap_or(cur.flavour),
            extra_models: if self.models.is_empty() {
                cur.extra_models
            } else {
                self.models
            },
        }
    }
}

fn parse_auth(s: &str) -> Result<AuthKind, String> {
    AuthKind::parse(s).ok_or_else(|| {
        format!("unknown auth '{s}': use none, basic, bearer, api-key or comfyui-login")
    })
}

fn timeout_ms(secs: Option<f64>) -> Result<Option<u32>, CliError> {
    match secs {
        None => Ok(None),
        Some(s) if s.is_finite() && s > 0.0 && s <= 3600.0 => Ok(Some((s * 1000.0).round() as u32)),
        Some(s) => Err(CliError(format!(
            "--timeout {s} is not a number of seconds between 0.5 and 300"
        ))),
    }
}

/// Read a secret: from a prompt when stdin is a terminal, else the whole of stdin (one trailing newline dropped).
pub fn read_secret(what: &str) -> Result<Secret, CliError> {
    let value = if std::io::stdin().is_terminal() {
        rpassword::prompt_password(format!("{what}: "))
            .map_err(|e| CliError(format!("could not read {what}: {e}")))?
    } else {
        let mut s = String::new();
        std::io::stdin()
            .take(64 * 1024)
            .read_to_string(&mut s)
            .map_err(|e| CliError(format!("could not read {what} from stdin: {e}")))?;
        s.strip_suffix("\r\n")
            .or_else(|| s.strip_suffix('\n'))
            .unwrap_or(&s)
            .to_string()
    };
    if value.is_empty() {
        return Err(CliError(format!("{what} is empty: pipe it on stdin (e.g. `printf %s \"$TOKEN\" | comfyfleet servers add …`) or type it at the prompt")));
    }
    Ok(Secret::new(value))
}

fn secret_label(kind: AuthKind) -> &'static str {
    match kind {
        AuthKind::Basic => "Password",
        AuthKind::ApiKey => "API key",
        _ => "Token",
    }
}

pub async fn run(fleet: &Fleet, cmd: ServersCmd) -> Result<Outcome, CliError> {
    match cmd {
        ServersCmd::List { json } => {
            let servers = fleet.servers.list().await?;
            if json {
                let items: Vec<_> = servers.iter().map(list_json).collect();
                println!(
                    "{}",
                    serde_json::to_string_pretty(&items).unwrap_or_default()
                );
            } else if servers.is_empty() {
                println!("No servers yet. Add one: comfyfleet servers add --name \"Local\" --url http://127.0.0.1:8188");
            } else {
                for s in &servers {
                    let mark = if s.active { "*" } else { " " };
                    let tags = if s.tags.is_empty() {
                        String::new()
                    } else {
                        format!("  [{}]", s.tags.join(", "))
                    };
                    let creds = if s.needs_credentials {
                        "  (needs credentials)"
                    } else {
                        ""
                    };
                    let how = match &s.runpod {
                        Some(ep) => format!("runpod {} on {}", ep.flavour.as_str(), ep.gpu_class),
                        None => s.auth.kind.as_str().to_string(),
                    };
                    println!("{mark} {:<24} {:<40} {how}{tags}{creds}", s.name, s.url);
                    if let Some(w) = &s.plain_http_warning {
                        println!("    warning: {w}");
                    }
                }
            }
            Ok(Outcome::Ok)
        }
        ServersCmd::Add(a) => {
            let cloud = a.kind == ServerKind::RunpodServerless;
            if !cloud && a.endpoint.given() {
                return Err(CliError(
                    "--endpoint, --gpu, --flavour and --model are for RunPod endpoints: add --kind runpod-serverless".into(),
                ));
            }
            let secret = if a.auth.needs_secret() && !cloud {
                Some(read_secret(secret_label(a.auth))?)
            } else {
                None
            };
            let input = ServerInput {
                name: a.name,
                url: a.url.unwrap_or_default(),
                kind: a.kind,
                runpod: cloud.then(|| a.endpoint.apply(None)),
                auth: AuthInput {
                    kind: a.auth,
                    user: a.user,
                    header: a.header,
                    secret,
                },
                tags: a.tags,
                timeout_ms: timeout_ms(a.timeout)?,
                max_queue: a.max_queue,
                notes: a.notes.unwrap_or_default(),
            };
            let s = fleet.servers.add(input).await?;
            println!("Added '{}' ({}).", s.name, s.url);
            if cloud && !fleet.runpod_account().status().await?.set {
                eprintln!("note: no RunPod API key is set yet; add it with `comfyfleet runpod key set` before running jobs there.");
            }
            if let Some(w) = &s.plain_http_warning {
                eprintln!("warning: {w}");
            }
            Ok(Outcome::Ok)
        }
        ServersCmd::Edit(e) => {
            let cur = fleet.servers.find(&e.server).await?;
            let kind = e.auth.unwrap_or(cur.auth.kind);
            let needs_new = e.secret || (kind.needs_secret() && !cur.auth.kind.needs_secret());
            let secret = if needs_new && kind.needs_secret() {
                Some(read_secret(secret_label(kind))?)
            } else {
                None
            };
            if cur.kind != ServerKind::RunpodServerless && e.endpoint.given() {
                return Err(CliError(format!(
                    "'{}' is a ComfyUI server; --endpoint, --gpu, --flavour and --model are for RunPod endpoints",
                    cur.name
                )));
            }
            let input = ServerInput {
                name: e.name.unwrap_or(cur.name.clone()),
                url: e.url.unwrap_or(cur.url.clone()),
                kind: cur.kind,
                runpod: (cur.kind == ServerKind::RunpodServerless)
                    .then(|| e.endpoint.apply(cur.runpod.clone())),
                auth: AuthInput {
                    kind,
                    user: e.user.or(cur.auth.user.clone()),
                    header: e.header.or(cur.auth.header.clone()),
                    secret,
                },
                tags: if e.clear_tags {
                    vec![]
                } else if e.tags.is_empty() {
                    cur.tags.clone()
                } else {
                    e.tags
                },
                timeout_ms: timeout_ms(e.timeout)?.or(Some(cur.timeout_ms)),
                max_queue: e.max_queue.or(cur.max_queue),
                notes: e.notes.unwrap_or(cur.notes.clone()),
            };
            let s = fleet.servers.update(&cur.id, input).await?;
            println!("Saved '{}' ({}).", s.name, s.url);
            if let Some(w) = &s.plain_http_warning {
                eprintln!("warning: {w}");
            }
            Ok(Outcome::Ok)
        }
        ServersCmd::Remove { server } => {
            let out = fleet.servers.delete(&server).await?;
            println!("{}", out.message);
            Ok(Outcome::Ok)
        }
        ServersCmd::Activate { server, none } => {
            let _ = none;
            match fleet.servers.activate(server.as_deref()).await? {
                Some(s) => println!("'{}' is now the active server.", s.name),
                None => println!("No server is active now."),
            }
            Ok(Outcome::Ok)
        }
        ServersCmd::Test {
            server,
            all,
            cached,
            json,
        } => {
            let servers = fleet.servers.list().await?;
            let results = if all {
                fleet.health.test_all(!cached).await?
            } else {
                let q = server.unwrap_or_default();
                vec![fleet.health.test(&q, !cached).await?]
            };
            if json {
                let items: Vec<_> = results.iter().map(|r| test_json(r, &servers)).collect();
                println!(
                    "{}",
                    serde_json::to_string_pretty(&items).unwrap_or_default()
                );
            } else {
                if results.is_empty() {
                    println!("No servers to test. Add one with: comfyfleet servers add --name NAME --url URL");
                }
                for r in &results {
                    println!("{}", human_status(r, &servers));
                }
            }
            let all_ok = results.iter().all(|r| r.status == Status::Connected);
            Ok(if all_ok { Outcome::Ok } else { Outcome::Failed })
        }
        ServersCmd::Export { file } => {
            let r = fleet.servers.export_to(&file).await?;
            println!(
                "Exported {} server(s) to {} (no secrets included).",
                r.count, r.path
            );
            Ok(Outcome::Ok)
        }
        ServersCmd::Import { file } => {
            let r = fleet.servers.import_from(&file).await?;
            println!("Imported {} server(s).", r.added.len());
            for s in &r.skipped {
                println!("Skipped '{}': {}.", s.name, s.reason);
            }
            for n in &r.needs_credentials {
                println!("'{n}' needs credentials: comfyfleet servers edit \"{n}\" --secret");
            }
            if let Some(a) = &r.activated {
                println!("'{a}' is now the active server.");
            }
            Ok(Outcome::Ok)
        }
    }
}

/// The documented shape `{id, name, url, auth, has_secret, active, tags}`; RunPod endpoints add `kind` and `runpod`.
fn list_json(s: &Server) -> serde_json::Value {
    let mut v = json!({
        "id": s.id,
        "name": s.name,
        "url": s.url,
        "auth": s.auth.kind.as_str(),
        "has_secret": s.has_secret,
        "active": s.active,
        "tags": s.tags,
    });
    if let Some(ep) = &s.runpod {
        v["kind"] = json!(s.kind.as_str());
        v["runpod"] = json!(ep);
    }
    v
}

fn test_json(r: &ServerStatus, servers: &[Server]) -> serde_json::Value {
    let s = servers.iter().find(|s| s.id == r.server_id);
    json!({
        "id": r.server_id,
        "name": s.map(|s| s.name.as_str()),
        "url": s.map(|s| s.url.as_str()),
        "status": r.status.as_str(),
        "latency_ms": r.latency_ms,
        "comfyui_version": r.comfyui_version,
        "devices": r.devices.iter().map(|d| json!({"name": d.name, "type": d.kind, "vram_total": d.vram_total, "vram_free": d.vram_free})).collect::<Vec<_>>(),
        "queue": r.queue.map(|q| json!({"running": q.running, "pending": q.pending})),
        "error": r.error,
    })
}

fn gb(bytes: u64) -> String {
    format!("{:.1}", bytes as f64 / 1024f64.powi(3))
}

fn human_status(r: &ServerStatus, servers: &[Server]) -> String {
    let name = servers
        .iter()
        .find(|s| s.id == r.server_id)
        .map(|s| s.name.as_str())
        .unwrap_or("?");
    if r.status != Status::Connected {
        return format!(
            "✗ {name:<24} {:<12} {}",
            r.status.as_str(),
            r.error.as_deref().unwrap_or("")
        );
    }
    let mut parts = vec![format!("✓ {name:<24} connected   ")];
    if let Some(l) = r.latency_ms {
        parts.push(format!("{l} ms"));
    }
    if let Some(v) = &r.comfyui_version {
        parts.push(format!("ComfyUI {v}"));
    }
    if let Some(d) = r.devices.first() {
        parts.push(format!(
            "{}: VRAM {}/{} GB free",
            d.name,
            gb(d.vram_free),
            gb(d.vram_total)
        ));
    }
    if let Some(q) = r.queue {
        parts.push(format!(
            "queue {} running, {} pending",
            q.running, q.pending
        ));
    }
    parts.join("  ")
}
