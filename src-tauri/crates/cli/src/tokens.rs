//! `comfyfleet tokens list|set|remove`: Hugging Face and CivitAI tokens for downloads, in the OS keychain.

use comfyfleet_core::tokens::{TokenHost, TokenStatus, Tokens};

use crate::{CliError, Outcome};

#[derive(clap::Subcommand)]
pub enum TokensCmd {
    /// Which tokens are set (never their values).
    List {
        #[arg(long)]
        json: bool,
    },
    /// Store a token; it is read from stdin or a hidden prompt, never from arguments.
    Set {
        /// huggingface (hf) or civitai.
        host: String,
    },
    /// Remove a token from the keychain.
    Remove { host: String },
}

fn host(s: &str) -> Result<TokenHost, CliError> {
    TokenHost::parse(s).ok_or_else(|| {
        CliError(format!(
            "'{s}' is not a model host with a token: use huggingface (or hf) or civitai"
        ))
    })
}

fn line(t: &TokenStatus) -> String {
    format!("{}: {}", t.label, if t.set { "set" } else { "not set" })
}

pub async fn run(cmd: TokensCmd) -> Result<Outcome, CliError> {
    let tokens = Tokens::default();
    match cmd {
        TokensCmd::List { json } => {
            let all = tokens.list().await?;
            if json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&all).map_err(|e| CliError(e.to_string()))?
                );
            } else {
                for t in &all {
                    println!("{}", line(t));
                    if !t.set {
                        println!("  {}", t.hint);
                    }
                }
            }
        }
        TokensCmd::Set { host: h } => {
            let h = host(&h)?;
            let secret = crate::servers::read_secret(&format!("{} token", h.label()))?;
            let st = tokens.set(h, &secret).await?;
            println!("{} (kept in the system keychain)", line(&st));
        }
        TokensCmd::Remove { host: h } => {
            let st = tokens.remove(host(&h)?).await?;
            println!("{}", line(&st));
        }
    }
    Ok(Outcome::Ok)
}
