//! Logs to a daily file under the app home, with anything credential-shaped scrubbed from log text.

use tracing_subscriber::EnvFilter;

/// Send tracing output to `<home>/logs/<name>.log.<date>`. Keep the guard alive while logging.
pub fn init_file(
    home: &crate::home::AppHome,
    name: &str,
) -> Option<tracing_appender::non_blocking::WorkerGuard> {
    let appender = tracing_appender::rolling::daily(home.logs_dir(), format!("{name}.log"));
    let (writer, guard) = tracing_appender::non_blocking(appender);
    let filter =
        EnvFilter::try_from_env("COMFYFLEET_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer)
        .with_ansi(false)
        .try_init()
        .ok()
        .map(|_| guard)
}

/// Remove credentials from text that is about to be logged or shown: `token=…` query values and
/// `Authorization: …` header values.
pub fn redact(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let lower = text.to_ascii_lowercase();
    let mut i = 0;
    while i < text.len() {
        let rest = &lower[i..];
        let hit = ["token=", "authorization: ", "authorization:"]
            .iter()
            .find(|p| rest.starts_with(**p));
        match hit {
            Some(p) => {
                out.push_str(&text[i..i + p.len()]);
                out.push_str("[redacted]");
                i += p.len();
                while i < text.len() {
                    let c = text[i..].chars().next().unwrap_or(' ');
                    if c == '&'
                        || c == '\n'
                        || c == '"'
                        || c == '\''
                        || (c == ' ' && p.starts_with("token"))
                    {
                        break;
                    }
                    i += c.len_utf8();
                }
            }
            None => {
                let c = text[i..].chars().next().unwrap_or(' ');
                out.push(c);
                i += c.len_utf8();
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::redact;

    #[test]
    fn redact_strips_query_tokens_and_authorization_values() {
        assert_eq!(
            redact("GET /x?token=$2b$12$abc&y=1"),
            "GET /x?token=[redacted]&y=1"
        );
        assert_eq!(
            redact("Authorization: Bearer abc.def\nnext"),
            "Authorization: [redacted]\nnext"
        );
        assert_eq!(redact("nothing here"), "nothing here");
        assert_eq!(redact("TOKEN=é"), "TOKEN=[redacted]");
    }
}
