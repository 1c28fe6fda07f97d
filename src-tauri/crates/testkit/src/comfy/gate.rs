//! Everything a request passes before a route: recording, latency, faults, a proxy's auth, ComfyUI's origin check,
//! `OPTIONS`, and the ComfyUI-Login plugin, in the order the real stack runs them. The decisions are pure functions.

use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use base64::Engine;
use futures::StreamExt;

use super::config::{FakeAuth, Fault};
use super::fixtures;
use super::server::Shared;
use super::state::{RecordedRequest, MAX_RECORDED_BODY};

/// aiohttp's `client_max_size` in ComfyUI (`--max-upload-size`, 100 MiB).
const MAX_BODY: usize = 100 * 1024 * 1024;

pub(crate) async fn gate(
    State(shared): State<Arc<Shared>>,
    request: Request,
    next: Next,
) -> Response {
    let (parts, body) = request.into_parts();
    let bytes = match axum::body::to_bytes(body, MAX_BODY).await {
        Ok(bytes) => bytes,
        Err(_) => {
            return text(
                StatusCode::PAYLOAD_TOO_LARGE,
                "413: Request Entity Too Large",
            )
        }
    };
    let path = parts
        .uri
        .path_and_query()
        .map(|pq| pq.as_str())
        .unwrap_or("/")
        .to_string();
    let recorded = RecordedRequest {
        method: parts.method.to_string(),
        path,
        headers: parts
            .headers
            .iter()
            .map(|(n, v)| {
                (
                    n.as_str().to_string(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect(),
        body: bytes[..bytes.len().min(MAX_RECORDED_BODY)].to_vec(),
    };
    let config = {
        let mut state = shared.lock();
        state.record(recorded);
        state.config().clone()
    };
    if !config.latency.is_zero() {
        tokio::time::sleep(config.latency).await;
    }
    if let Some(response) = fault_response(&config.fault).await {
        return response;
    }
    let query = parts.uri.query();
    // A proxy in front checks its credentials before ComfyUI sees the request.
    if let Some(auth) = config
        .auth
        .as_ref()
        .filter(|a| !matches!(a, FakeAuth::ComfyuiLogin { .. }))
    {
        if let Some(response) =
            auth_response(check_auth(auth, parts.uri.path(), query, &parts.headers))
        {
            return response;
        }
    }
    match check_origin(
        header_str(&parts.headers, header::HOST),
        header_str(&parts.headers, header::ORIGIN),
    ) {
        OriginCheck::Allowed => {}
        OriginCheck::Forbidden => return StatusCode::FORBIDDEN.into_response(),
        OriginCheck::PythonError => return server_error(),
    }
    if parts.method == Method::OPTIONS {
        return StatusCode::OK.into_response();
    }
    if let Some(auth @ FakeAuth::ComfyuiLogin { .. }) = &config.auth {
        if let Some(response) =
            auth_response(check_auth(auth, parts.uri.path(), query, &parts.headers))
        {
            return response;
        }
    }
    next.run(Request::from_parts(parts, Body::from(bytes)))
        .await
}

/// The answer of a fault, or `None` to answer normally.
async fn fault_response(fault: &Fault) -> Option<Response> {
    match fault {
        Fault::None => None,
        // The connection is being dropped (Refuse) or must never be answered (Hang): wait for the server to end
        // the connection.
        Fault::Refuse | Fault::Hang => std::future::pending::<Option<Response>>().await,
        Fault::Http500 => Some(server_error()),
        Fault::NotJson => Some(
            (
                [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
                "<html><head><title>Welcome</title></head><body><h1>It works!</h1><p>This is not comfy.</p></body></html>",
            )
                .into_response(),
        ),
        Fault::EndlessBody => {
            static FILLER: [u8; 16 * 1024] = [b'x'; 16 * 1024];
            let head = futures::stream::once(async { Ok::<Bytes, std::convert::Infallible>(Bytes::from_static(b"{\"system\": {\"os\": \"")) });
            let tail = futures::stream::repeat_with(|| Ok(Bytes::from_static(&FILLER)));
            Some(([(header::CONTENT_TYPE, JSON)], Body::from_stream(head.chain(tail))).into_response())
        }
        Fault::WrongShape => Some(json(StatusCode::OK, r#"{"hello": "world"}"#.to_string())),
    }
}

pub(crate) const JSON: &str = "application/json; charset=utf-8";

pub(crate) fn json(status: StatusCode, body: String) -> Response {
    (status, [(header::CONTENT_TYPE, JSON)], body).into_response()
}

pub(crate) fn text(status: StatusCode, body: &'static str) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        body,
    )
        .into_response()
}

/// aiohttp's answer to an exception in a handler.
pub(crate) fn server_error() -> Response {
    text(
        StatusCode::INTERNAL_SERVER_ERROR,
        fixtures::SERVER_ERROR_TEXT,
    )
}

fn header_str(headers: &HeaderMap, name: header::HeaderName) -> Option<&str> {
    headers.get(name).map(|v| v.to_str().unwrap_or(""))
}

/// The outcome of ComfyUI's `origin_only_middleware`.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum OriginCheck {
    Allowed,
    /// 403, empty body.
    Forbidden,
    /// `urllib` raised (a malformed port): 500.
    PythonError,
}

/// ComfyUI's origin check (server.py `create_origin_only_middleware`): when `Host` is a loopback address, an
/// `Origin` whose host:port differs is refused. An origin without a host (`null`, `file://`) passes; when one side
/// has no port, only host names are compared.
pub(crate) fn check_origin(host: Option<&str>, origin: Option<&str>) -> OriginCheck {
    let (Some(host), Some(origin)) = (host, origin) else {
        return OriginCheck::Allowed;
    };
    let host_domain = host.to_lowercase();
    let origin_netloc = url_netloc(origin).to_lowercase();
    let Some(host_info) = HostInfo::parse(&host_domain) else {
        return OriginCheck::PythonError;
    };
    let Some(origin_info) = HostInfo::parse(&origin_netloc) else {
        return OriginCheck::PythonError;
    };
    let (Ok(origin_port), Ok(host_port)) = (origin_info.port(), host_info.port()) else {
        return OriginCheck::PythonError;
    };
    let loopback = is_loopback(host_info.hostname.as_deref());
    let host_side = if origin_port.is_none() {
        host_info.hostname.clone()
    } else {
        Some(host_domain)
    };
    let origin_side = if host_port.is_none() {
        origin_info.hostname.clone()
    } else {
        Some(origin_netloc)
    };
    match (host_side, origin_side) {
        (Some(h), Some(o)) if loopback && !h.is_empty() && !o.is_empty() && h != o => {
            OriginCheck::Forbidden
        }
        _ => OriginCheck::Allowed,
    }
}

/// `urllib.parse.urlparse(url).netloc` (before lowercasing).
fn url_netloc(url: &str) -> &str {
    // A scheme is letters, digits, `+-.` before the first `:`, starting with a letter.
    let rest = match url.find(':') {
        Some(i)
            if i > 0
                && url[..i].starts_with(|c: char| c.is_ascii_alphabetic())
                && url[..i]
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c)) =>
        {
            &url[i + 1..]
        }
        _ => url,
    };
    match rest.strip_prefix("//") {
        Some(after) => after.split(['/', '?', '#']).next().unwrap_or(""),
        None => "",
    }
}

/// `hostname` and the raw port of a netloc, as `urllib`'s `_hostinfo` splits them.
struct HostInfo {
    hostname: Option<String>,
    raw_port: Option<String>,
}

impl HostInfo {
    /// `None` where `urlsplit` raises ("Invalid IPv6 URL").
    fn parse(netloc: &str) -> Option<HostInfo> {
        if netloc.contains('[') != netloc.contains(']') {
            return None;
        }
        let hostinfo = netloc.rsplit_once('@').map(|(_, h)| h).unwrap_or(netloc);
        let (hostname, port) = match hostinfo.split_once('[') {
            Some((_, bracketed)) => {
                let (name, after) = bracketed.split_once(']').unwrap_or((bracketed, ""));
                (name, after.split_once(':').map(|(_, p)| p).unwrap_or(""))
            }
            None => hostinfo.split_once(':').unwrap_or((hostinfo, "")),
        };
        let hostname = (!hostname.is_empty()).then(|| hostname.to_lowercase());
        let raw_port = (!port.is_empty()).then(|| port.to_string());
        Some(HostInfo { hostname, raw_port })
    }

    /// `.port`: `Err` where Python raises `ValueError`.
    fn port(&self) -> Result<Option<u16>, ()> {
        match &self.raw_port {
            None => Ok(None),
            Some(p) if p.chars().all(|c| c.is_ascii_digit()) => {
                p.parse::<u16>().map(Some).map_err(|_| ())
            }
            Some(_) => Err(()),
        }
    }
}

/// ComfyUI's `is_loopback`, without DNS: loopback IPs and `localhost`.
fn is_loopback(hostname: Option<&str>) -> bool {
    match hostname {
        None => false,
        Some(h) => match h.parse::<std::net::IpAddr>() {
            Ok(ip) => ip.is_loopback(),
            Err(_) => h == "localhost",
        },
    }
}

/// The outcome of an auth check.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum AuthCheck {
    Allowed,
    /// ComfyUI-Login: 401 `{"error": "Authentication required."}`.
    LoginRequired,
    /// ComfyUI-Login, for a browser (`Accept` has `text/html`): 302 to `/login`.
    RedirectToLogin,
    /// ComfyUI-Login: an `Authorization` header that is not two words makes `split()` raise: 500.
    PythonError,
    /// A proxy's 401, with this `WWW-Authenticate` (if any).
    Unauthorized(Option<&'static str>),
}

/// Whether `auth` lets a request to `path` with `query` and `headers` through.
pub(crate) fn check_auth(
    auth: &FakeAuth,
    path: &str,
    query: Option<&str>,
    headers: &HeaderMap,
) -> AuthCheck {
    let authorization = headers
        .get(header::AUTHORIZATION)
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
    match auth {
        FakeAuth::ComfyuiLogin { token } => {
            if path == "/login"
                || [".js", ".css", ".css.map", ".ico"]
                    .iter()
                    .any(|ext| path.ends_with(ext))
            {
                return AuthCheck::Allowed;
            }
            if let Some(value) = authorization.filter(|v| !v.is_empty()) {
                let words: Vec<&str> = value.split_whitespace().collect();
                let [scheme, given] = words.as_slice() else {
                    return AuthCheck::PythonError;
                };
                if *scheme == "Bearer" && given == token {
                    return AuthCheck::Allowed;
                }
            }
            if query_param(query, "token").as_deref() == Some(token.as_str()) {
                return AuthCheck::Allowed;
            }
            let accept = headers
                .get(header::ACCEPT)
                .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
            if accept.is_some_and(|a| a.contains("text/html")) {
                AuthCheck::RedirectToLogin
            } else {
                AuthCheck::LoginRequired
            }
        }
        FakeAuth::Basic { user, password } => {
            let given = authorization
                .as_deref()
                .and_then(|v| scheme_value(v, "basic"))
                .and_then(|encoded| {
                    base64::engine::general_purpose::STANDARD
                        .decode(encoded.trim())
                        .ok()
                });
            let expected = format!("{user}:{password}");
            if given.as_deref() == Some(expected.as_bytes()) {
                AuthCheck::Allowed
            } else {
                AuthCheck::Unauthorized(Some("Basic realm=\"comfy\""))
            }
        }
        FakeAuth::Bearer { token } => {
            let given = authorization
                .as_deref()
                .and_then(|v| scheme_value(v, "bearer"))
                .map(str::trim);
            if given == Some(token.as_str()) {
                AuthCheck::Allowed
            } else {
                AuthCheck::Unauthorized(Some("Bearer"))
            }
        }
        FakeAuth::ApiKey {
            header: name,
            value,
        } => {
            if headers
                .get(name.as_str())
                .is_some_and(|v| v.as_bytes() == value.as_bytes())
            {
                AuthCheck::Allowed
            } else {
                AuthCheck::Unauthorized(None)
            }
        }
    }
}

/// The rest of an `Authorization` value after `scheme` (case-insensitive) and a space.
fn scheme_value<'a>(value: &'a str, scheme: &str) -> Option<&'a str> {
    let (given_scheme, rest) = value.split_once(' ')?;
    given_scheme.eq_ignore_ascii_case(scheme).then_some(rest)
}

/// The first value of `name` in a query string, decoded as aiohttp decodes it.
pub(crate) fn query_param(query: Option<&str>, name: &str) -> Option<String> {
    form_urlencoded::parse(query?.as_bytes())
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

fn auth_response(check: AuthCheck) -> Option<Response> {
    match check {
        AuthCheck::Allowed => None,
        AuthCheck::LoginRequired => Some(json(
            StatusCode::UNAUTHORIZED,
            fixtures::AUTH_REQUIRED.to_string(),
        )),
        AuthCheck::RedirectToLogin => {
            let mut response = text(StatusCode::FOUND, "302: Found");
            response
                .headers_mut()
                .insert(header::LOCATION, HeaderValue::from_static("/login"));
            Some(response)
        }
        AuthCheck::PythonError => Some(server_error()),
        AuthCheck::Unauthorized(challenge) => {
            let mut response = match challenge {
                Some(c) if c.starts_with("Basic") => (
                    StatusCode::UNAUTHORIZED,
                    [(header::CONTENT_TYPE, "text/html")],
                    "<html>\r\n<head><title>401 Authorization Required</title></head>\r\n<body>\r\n<center><h1>401 Authorization Required</h1></center>\r\n</body>\r\n</html>\r\n",
                )
                    .into_response(),
                _ => text(StatusCode::UNAUTHORIZED, "401 Unauthorized"),
            };
            if let Some(challenge) = challenge {
                response.headers_mut().insert(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static(challenge),
                );
            }
            Some(response)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOST: Option<&str> = Some("127.0.0.1:8188");

    #[test]
    fn gate_origin_check_matches_the_recorded_table() {
        for origin in [
            "http://localhost:8188",
            "tauri://localhost",
            "http://tauri.localhost",
            "http://localhost:1420",
            "http://evil.example",
        ] {
            assert_eq!(
                check_origin(HOST, Some(origin)),
                OriginCheck::Forbidden,
                "{origin}"
            );
        }
        for origin in [
            Some("null"),
            Some("file://"),
            None,
            Some("http://127.0.0.1:8188"),
        ] {
            assert_eq!(
                check_origin(HOST, origin),
                OriginCheck::Allowed,
                "{origin:?}"
            );
        }
    }

    #[test]
    fn gate_origin_check_compares_host_names_when_a_port_is_missing() {
        assert_eq!(
            check_origin(Some("127.0.0.1"), Some("http://127.0.0.1:5173")),
            OriginCheck::Allowed
        );
        assert_eq!(
            check_origin(HOST, Some("http://127.0.0.1")),
            OriginCheck::Allowed
        );
        assert_eq!(
            check_origin(Some("gpu.example:8188"), Some("http://evil.example")),
            OriginCheck::Allowed
        );
        assert_eq!(
            check_origin(HOST, Some("http://127.0.0.1:99999")),
            OriginCheck::PythonError
        );
    }

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (k, v) in pairs {
            map.insert(*k, HeaderValue::from_static(v));
        }
        map
    }

    #[test]
    fn gate_comfyui_login_follows_the_recorded_answers() {
        let auth = FakeAuth::ComfyuiLogin {
            token: "$2b$12$tok".to_string(),
        };
        let check = |path, query, h: &[(&'static str, &'static str)]| {
            check_auth(&auth, path, query, &headers(h))
        };
        assert_eq!(check("/system_stats", None, &[]), AuthCheck::LoginRequired);
        assert_eq!(
            check("/system_stats", None, &[("accept", "text/html")]),
            AuthCheck::RedirectToLogin
        );
        assert_eq!(
            check(
                "/system_stats",
                None,
                &[("authorization", "Bearer $2b$12$tok")]
            ),
            AuthCheck::Allowed
        );
        assert_eq!(
            check("/system_stats", None, &[("authorization", "Bearer nope")]),
            AuthCheck::LoginRequired
        );
        assert_eq!(
            check(
                "/system_stats",
                None,
                &[("authorization", "bearer $2b$12$tok")]
            ),
            AuthCheck::LoginRequired
        );
        assert_eq!(
            check("/system_stats", None, &[("authorization", "$2b$12$tok")]),
            AuthCheck::PythonError
        );
        assert_eq!(
            check("/system_stats", Some("token=%242b%2412%24tok"), &[]),
            AuthCheck::Allowed
        );
        assert_eq!(
            check("/system_stats", Some("token=$2b$12$tok"), &[]),
            AuthCheck::Allowed
        );
        assert_eq!(
            check("/extensions/core/groupNode.js", None, &[]),
            AuthCheck::Allowed
        );
        assert_eq!(check("/login", None, &[]), AuthCheck::Allowed);
    }

    #[test]
    fn gate_proxy_auth_kinds_accept_only_the_right_credentials() {
        let basic = FakeAuth::Basic {
            user: "u".into(),
            password: "p".into(),
        };
        // base64("u:p") = "dTpw"
        assert_eq!(
            check_auth(
                &basic,
                "/",
                None,
                &headers(&[("authorization", "Basic dTpw")])
            ),
            AuthCheck::Allowed
        );
        assert_eq!(
            check_auth(
                &basic,
                "/",
                None,
                &headers(&[("authorization", "Basic dTpx")])
            ),
            AuthCheck::Unauthorized(Some("Basic realm=\"comfy\""))
        );
        let bearer = FakeAuth::Bearer { token: "t".into() };
        assert_eq!(
            check_auth(
                &bearer,
                "/",
                None,
                &headers(&[("authorization", "Bearer t")])
            ),
            AuthCheck::Allowed
        );
        assert_eq!(
            check_auth(&bearer, "/", None, &headers(&[])),
            AuthCheck::Unauthorized(Some("Bearer"))
        );
        let key = FakeAuth::ApiKey {
            header: "X-Api-Key".into(),
            value: "k".into(),
        };
        assert_eq!(
            check_auth(&key, "/", None, &headers(&[("x-api-key", "k")])),
            AuthCheck::Allowed
        );
        assert_eq!(
            check_auth(&key, "/", None, &headers(&[("x-api-key", "K")])),
            AuthCheck::Unauthorized(None)
        );
    }
}
