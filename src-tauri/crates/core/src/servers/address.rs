//! Server URLs: what is accepted, how it is normalised, and when credentials would travel in clear text. Pure.

use url::{Host, Url};

/// Why a URL was refused; the message says what is wrong and what to type instead.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UrlProblem {
    #[error("Enter the server's URL, for example http://127.0.0.1:8188.")]
    Empty,
    #[error("'{raw}' has no http:// or https:// in front. Did you mean http://{raw}?")]
    MissingScheme { raw: String },
    #[error("'{scheme}:' URLs are not supported: a ComfyUI server is reached over http:// or https://, for example http://127.0.0.1:8188.")]
    UnsupportedScheme { scheme: String },
    #[error("'{raw}' has no host name. Write the address with a host, for example http://127.0.0.1:8188.")]
    NoHost { raw: String },
    #[error("'{raw}' is not a valid URL ({reason}). Write it like http://192.168.1.20:8188.")]
    Invalid { raw: String, reason: String },
    #[error("Don't put a user name or password in the URL: they would be stored in clear text. Choose Basic authentication instead; the password is kept in your system keychain.")]
    CredentialsInUrl,
    #[error("Remove the '?…' or '#…' part from the URL: give only the server address and, if it is behind a proxy, its path prefix.")]
    QueryOrFragment,
    #[error("The URL contains spaces. Remove them.")]
    Whitespace,
}

/// Parse and normalise a server URL: http or https, a host, an optional port and path prefix.
/// Returns e.g. `http://127.0.0.1:8188` or `https://gpu.example.com/comfy` (no trailing slash).
pub fn normalize_url(raw: &str) -> Result<String, UrlProblem> {
    let raw = raw.trim();
    if raw.is_empty() {
        return Err(UrlProblem::Empty);
    }
    if raw.chars().any(char::is_whitespace) {
        return Err(UrlProblem::Whitespace);
    }
    let has_authority_marker = raw.contains("://");
    let url = match Url::parse(raw) {
        Ok(u) => u,
        Err(url::ParseError::RelativeUrlWithoutBase) => {
            return Err(UrlProblem::MissingScheme { raw: raw.into() })
        }
        Err(url::ParseError::EmptyHost) => return Err(UrlProblem::NoHost { raw: raw.into() }),
        Err(e) => {
            return Err(UrlProblem::Invalid {
                raw: raw.into(),
                reason: e.to_string(),
            })
        }
    };
    match url.scheme() {
        "http" | "https" => {}
        // `localhost:8188` parses as scheme "localhost": the user forgot the scheme.
        _ if !has_authority_marker && looks_like_host_port(raw) => {
            return Err(UrlProblem::MissingScheme { raw: raw.into() })
        }
        other => {
            return Err(UrlProblem::UnsupportedScheme {
                scheme: other.to_string(),
            })
        }
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(UrlProblem::NoHost { raw: raw.into() });
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(UrlProblem::CredentialsInUrl);
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(UrlProblem::QueryOrFragment);
    }
    let mut out = format!("{}://{}", url.scheme(), url.host_str().unwrap_or_default());
    if let Some(port) = url.port() {
        out.push_str(&format!(":{port}"));
    }
    out.push_str(url.path().trim_end_matches('/'));
    Ok(out)
}

fn looks_like_host_port(raw: &str) -> bool {
    match raw.rsplit_once(':') {
        Some((host, port)) => {
            !host.is_empty()
                && !port.is_empty()
                && port
                    .split('/')
                    .next()
                    .is_some_and(|p| p.chars().all(|c| c.is_ascii_digit()) && !p.is_empty())
        }
        None => false,
    }
}

/// True when the URL's host is this machine (credentials never leave it).
pub fn is_loopback(url: &str) -> bool {
    let Ok(u) = Url::parse(url) else { return false };
    match u.host() {
        Some(Host::Domain(d)) => {
            let d = d.to_ascii_lowercase();
            d == "localhost" || d.ends_with(".localhost")
        }
        Some(Host::Ipv4(ip)) => ip.is_loopback(),
        Some(Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

/// The warning to show when credentials would go over plain HTTP to another machine.
pub fn plain_http_warning(url: &str, sends_credentials: bool) -> Option<String> {
    if !sends_credentials || !url.starts_with("http://") || is_loopback(url) {
        return None;
    }
    let host = Url::parse(url)
        .ok()
        .and_then(|u| u.host_str().map(str::to_string))
        .unwrap_or_default();
    Some(format!(
        "Credentials will be sent unencrypted over plain HTTP to {host}: anyone on the network can read them. Use https:// (for example behind a reverse proxy) or a VPN."
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn address_normalizes_valid_urls() {
        assert_eq!(
            normalize_url("http://127.0.0.1:8188").unwrap(),
            "http://127.0.0.1:8188"
        );
        assert_eq!(
            normalize_url(" http://127.0.0.1:8188/ ").unwrap(),
            "http://127.0.0.1:8188"
        );
        assert_eq!(
            normalize_url("HTTPS://GPU.Example.com/comfy/").unwrap(),
            "https://gpu.example.com/comfy"
        );
        assert_eq!(
            normalize_url("http://[::1]:8188").unwrap(),
            "http://[::1]:8188"
        );
        assert_eq!(
            normalize_url("https://abc-8188.proxy.runpod.net").unwrap(),
            "https://abc-8188.proxy.runpod.net"
        );
    }

    #[test]
    fn address_refuses_a_missing_scheme_and_suggests_one() {
        let e = normalize_url("localhost:8188").unwrap_err();
        assert_eq!(
            e,
            UrlProblem::MissingScheme {
                raw: "localhost:8188".into()
            }
        );
        assert!(e.to_string().contains("http://localhost:8188"));
        assert!(matches!(
            normalize_url("192.168.1.20:8188"),
            Err(UrlProblem::MissingScheme { .. })
        ));
        assert!(matches!(
            normalize_url("gpu-box"),
            Err(UrlProblem::MissingScheme { .. })
        ));
    }

    #[test]
    fn address_refuses_other_schemes() {
        let e = normalize_url("ftp://x").unwrap_err();
        assert_eq!(
            e,
            UrlProblem::UnsupportedScheme {
                scheme: "ftp".into()
            }
        );
        assert!(e.to_string().contains("http://"));
        assert!(matches!(
            normalize_url("javascript:alert(1)"),
            Err(UrlProblem::UnsupportedScheme { .. })
        ));
        assert!(matches!(
            normalize_url("file:///etc/passwd"),
            Err(UrlProblem::UnsupportedScheme { .. })
        ));
    }

    #[test]
    fn address_refuses_urls_without_a_host() {
        assert!(matches!(
            normalize_url("http://"),
            Err(UrlProblem::NoHost { .. })
        ));
        assert!(matches!(
            normalize_url("https://"),
            Err(UrlProblem::NoHost { .. })
        ));
        assert!(matches!(normalize_url(""), Err(UrlProblem::Empty)));
        assert!(matches!(normalize_url("   "), Err(UrlProblem::Empty)));
    }

    #[test]
    fn address_refuses_credentials_queries_and_spaces() {
        assert_eq!(
            normalize_url("http://bob:pw@host:8188").unwrap_err(),
            UrlProblem::CredentialsInUrl
        );
        assert_eq!(
            normalize_url("http://host:8188/?token=x").unwrap_err(),
            UrlProblem::QueryOrFragment
        );
        assert_eq!(
            normalize_url("http://host:8188/#a").unwrap_err(),
            UrlProblem::QueryOrFragment
        );
        assert_eq!(
            normalize_url("http://ho st:8188").unwrap_err(),
            UrlProblem::Whitespace
        );
        assert!(matches!(
            normalize_url("http://host:99999"),
            Err(UrlProblem::Invalid { .. })
        ));
    }

    #[test]
    fn address_warns_only_for_credentials_over_plain_http_to_other_hosts() {
        assert!(plain_http_warning("http://192.168.1.20:8188", true)
            .unwrap()
            .contains("192.168.1.20"));
        assert!(plain_http_warning("http://gpu.lan:8188", true).is_some());
        assert_eq!(plain_http_warning("http://192.168.1.20:8188", false), None);
        assert_eq!(plain_http_warning("https://192.168.1.20:8188", true), None);
        assert_eq!(plain_http_warning("http://127.0.0.1:8188", true), None);
        assert_eq!(plain_http_warning("http://127.8.9.1:8188", true), None);
        assert_eq!(plain_http_warning("http://localhost:8188", true), None);
        assert_eq!(plain_http_warning("http://[::1]:8188", true), None);
    }
}
