//! `comfyfleet runpod key set|test|remove|status`: the RunPod API key, in the OS keychain only.

use comfyfleet_core::runpod::account::RunpodAccount;
use comfyfleet_core::runpod::RunpodUrls;
use comfyfleet_core::secrets::Secrets;

use crate::{CliError, Outcome};

#[derive(clap::Subcommand)]
pub enum RunpodCmd {
    /// The RunPod API key.
    #[command(subcommand)]
    Key(KeyCmd),
}

#[derive(clap::Subcommand)]
pub enum KeyCmd {
    /// Store the key; it is read from stdin or a hidden prompt, never from arguments.
    Set,
    /// Check the key with one cheap authenticated call.
    Test {
        #[arg(long)]
        json: bool,
    },
    /// Remove the key from the keychain.
    Remove,
    /// Whether a key is set (never its value).
    Status {
        #[arg(long)]
        json: bool,
    },
}

pub async fn run(cmd: RunpodCmd) -> Result<Outcome, CliError> {
    let account = RunpodAccount::new(Secrets::default(), RunpodUrls::from_env());
    let RunpodCmd::Key(cmd) = cmd;
    match cmd {
        KeyCmd::Set => {
            let key = crate::servers::read_secret("RunPod API key")?;
            account.set(&key).await?;
            println!("RunPod API key: set (kept in the system keychain). Check it with `comfyfleet runpod key test`.");
        }
        KeyCmd::Test { json } => {
            let t = account.test().await?;
            if json {
                println!(
                    "{}",
                    serde_json::to_string(&t).map_err(|e| CliError(e.to_string()))?
                );
            } else {
                println!("{} ({} ms)", t.message, t.latency_ms);
            }
            return Ok(if t.ok { Outcome::Ok } else { Outcome::Failed });
        }
        KeyCmd::Remove => {
            account.remove().await?;
            println!("RunPod API key: not set");
        }
        KeyCmd::Status { json } => {
            let s = account.status().await?;
            if json {
                println!(
                    "{}",
                    serde_json::to_string(&s).map_err(|e| CliError(e.to_string()))?
                );
            } else {
                println!("RunPod API key: {}", if s.set { "set" } else { "not set" });
            }
        }
    }
    Ok(Outcome::Ok)
}
