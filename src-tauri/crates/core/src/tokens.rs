//! Access tokens for model hosts (Hugging Face, CivitAI), kept only in the OS keychain. Downloads send each
//! one only to its own host; the app and the CLI only ever see whether it is set.

use serde::{Deserialize, Serialize};

use crate::downloads::{CIVITAI_ACCOUNT, HUGGINGFACE_ACCOUNT};
use crate::secrets::{Secret, Secrets, SecretsError};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[serde(rename_all = "snake_case")]
pub enum TokenHost {
    Huggingface,
    Civitai,
}

impl TokenHost {
    pub const ALL: [TokenHost; 2] = [TokenHost::Huggingface, TokenHost::Civitai];

    fn account(self) -> &'static str {
        match self {
            TokenHost::Huggingface => HUGGINGFACE_ACCOUNT,
            TokenHost::Civitai => CIVITAI_ACCOUNT,
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            TokenHost::Huggingface => "Hugging Face",
            TokenHost::Civitai => "CivitAI",
        }
    }

    /// Where to create one.
    pub fn hint(self) -> &'static str {
        match self {
            TokenHost::Huggingface => "Create a read token at https://huggingface.co/settings/tokens (gated models also need their licence accepted on the model page).",
            TokenHost::Civitai => "Create an API key at https://civitai.com/user/account (API Keys).",
        }
    }

    /// "huggingface", "hf", "civitai" (any case).
    pub fn parse(s: &str) -> Option<TokenHost> {
        match s.trim().to_ascii_lowercase().as_str() {
            "huggingface" | "hugging-face" | "hf" => Some(TokenHost::Huggingface),
            "civitai" => Some(TokenHost::Civitai),
            _ => None,
        }
    }
}

/// What the UI and the CLI see of a token: never its value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
pub struct TokenStatus {
    pub host: TokenHost,
    pub label: String,
    pub set: bool,
    pub hint: String,
}

#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("The {0} token is empty. Paste the token itself.")]
    Empty(&'static str),
    #[error("The {0} token contains spaces or control characters. Paste it again, without anything around it.")]
    BadChars(&'static str),
    #[error("{0}")]
    Secrets(#[from] SecretsError),
}

impl crate::HasErrorInfo for TokenError {
    fn code(&self) -> &'static str {
        match self {
            TokenError::Empty(_) => "tokens.empty",
            TokenError::BadChars(_) => "tokens.bad_chars",
            TokenError::Secrets(e) => e.code(),
        }
    }
}

/// A pasted token, trimmed, or why it cannot be one. Pure.
pub fn check_token(host: TokenHost, raw: &str) -> Result<Secret, TokenError> {
    let t = raw.trim();
    if t.is_empty() {
        return Err(TokenError::Empty(host.label()));
    }
    if t.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(TokenError::BadChars(host.label()));
    }
    Ok(Secret::new(t))
}

#[derive(Clone, Default)]
pub struct Tokens {
    secrets: Secrets,
}

impl Tokens {
    pub fn new(secrets: Secrets) -> Tokens {
        Tokens { secrets }
    }

    pub async fn status(&self, host: TokenHost) -> Result<TokenStatus, TokenError> {
        Ok(TokenStatus {
            host,
            label: host.label().into(),
            set: self.secrets.get(host.account()).await?.is_some(),
            hint: host.hint().into(),
        })
    }

    pub async fn list(&self) -> Result<Vec<TokenStatus>, TokenError> {
        let mut out = Vec::new();
        for host in TokenHost::ALL {
            out.push(self.status(host).await?);
        }
        Ok(out)
    }

    pub async fn set(&self, host: TokenHost, raw: &Secret) -> Result<TokenStatus, TokenError> {
        let token = check_token(host, raw.expose())?;
        self.secrets.set(host.account(), &token).await?;
        self.status(host).await
    }

    pub async fn remove(&self, host: TokenHost) -> Result<TokenStatus, TokenError> {
        self.secrets.delete(host.account()).await?;
        self.status(host).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_trimmed_and_refused_when_empty_or_with_spaces() {
        let hf = TokenHost::Huggingface;
        assert_eq!(check_token(hf, "  hf_abc\n").unwrap().expose(), "hf_abc");
        assert!(matches!(check_token(hf, " \n"), Err(TokenError::Empty(_))));
        assert!(matches!(
            check_token(hf, "hf_a b"),
            Err(TokenError::BadChars(_))
        ));
        assert_eq!(TokenHost::parse("HF"), Some(hf));
        assert_eq!(TokenHost::parse("civitai"), Some(TokenHost::Civitai));
        assert_eq!(TokenHost::parse("github"), None);
    }
}
