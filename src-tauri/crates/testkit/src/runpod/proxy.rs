//! The pod proxy, `https://{podId}-{port}.proxy.runpod.net` (Cloudflare in front of the pod's HTTP port), at
//! `/proxy/{podId}-{port}/...`: 404 for an unknown pod, 502 while the pod is not RUNNING, 524 when the pod takes
//! longer than the proxy timeout to answer, otherwise the request (WebSocket upgrades included) goes to the pod's
//! fake ComfyUI with the prefix removed.

use std::sync::Arc;
use std::time::Instant;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, Response, StatusCode, Uri};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

use super::config::PodComfy;
use super::pods::PodStatus;
use super::server::Shared;

/// Cloudflare's error page, short.
fn cloudflare(status: StatusCode, title: &str) -> Response<Body> {
    let code = status.as_u16();
    let body = format!(
        "<!DOCTYPE html>\n<html><head><title>{host} | {code}: {title}</title></head><body><h1>Error {code}</h1><p>{title}</p><p>Cloudflare Ray ID: 8f0000000000fake</p></body></html>\n",
        host = "proxy.runpod.net",
    );
    let mut r = Response::new(Body::from(body));
    *r.status_mut() = status;
    let headers = r.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=UTF-8"),
    );
    headers.insert(header::SERVER, HeaderValue::from_static("cloudflare"));
    headers.insert("cf-ray", HeaderValue::from_static("8f0000000000fake-AMS"));
    r
}

/// Where a RUNNING pod's port goes, or the answer instead.
// The refusal is the answer itself; handlers return it as is.
#[allow(clippy::result_large_err)]
fn target(shared: &Shared, slug: &str) -> Result<String, Response<Body>> {
    let not_found = || cloudflare(StatusCode::NOT_FOUND, "Not Found");
    let (pod_id, port) = slug.rsplit_once('-').ok_or_else(not_found)?;
    let state = shared.lock();
    let pod = state
        .pods
        .get(pod_id, Instant::now(), state.timings())
        .ok_or_else(not_found)?;
    if pod.status == PodStatus::Terminated {
        return Err(not_found());
    }
    let exposed = pod.ports.iter().any(|p| *p == format!("{port}/http"));
    if pod.status != PodStatus::Running || !exposed || port != "8188" {
        return Err(cloudflare(StatusCode::BAD_GATEWAY, "Bad gateway"));
    }
    match &state.config.pod_comfy {
        PodComfy::At(url) => Ok(url.clone()),
        PodComfy::Start(_) => state
            .comfies
            .get(pod_id)
            .map(|c| c.url())
            .ok_or_else(|| cloudflare(StatusCode::BAD_GATEWAY, "Bad gateway")),
    }
}

pub(crate) async fn forward(
    State(shared): State<Arc<Shared>>,
    mut request: Request,
) -> Response<Body> {
    let path = request.uri().path().to_string();
    let rest = path.strip_prefix("/proxy/").unwrap_or("");
    let (slug, tail) = match rest.split_once('/') {
        Some((slug, tail)) => (slug.to_string(), format!("/{tail}")),
        None => (rest.to_string(), "/".to_string()),
    };
    let base = match target(&shared, &slug) {
        Ok(base) => base,
        Err(answer) => return answer,
    };
    let timeout = shared.lock().config.proxy_timeout;
    let authority = base
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_string();
    let path_and_query = match request.uri().query() {
        Some(q) => format!("{tail}?{q}"),
        None => tail,
    };
    let Ok(uri) = path_and_query.parse::<Uri>() else {
        return cloudflare(StatusCode::BAD_REQUEST, "Bad request");
    };
    *request.uri_mut() = uri;
    if let Ok(host) = HeaderValue::from_str(&authority) {
        request.headers_mut().insert(header::HOST, host);
    }
    let downstream = request
        .extensions_mut()
        .remove::<hyper::upgrade::OnUpgrade>();
    let Ok(stream) = TcpStream::connect(&authority).await else {
        return cloudflare(StatusCode::BAD_GATEWAY, "Bad gateway");
    };
    let Ok((mut sender, conn)) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await
    else {
        return cloudflare(StatusCode::BAD_GATEWAY, "Bad gateway");
    };
    tokio::spawn(conn.with_upgrades());
    let mut response = match tokio::time::timeout(timeout, sender.send_request(request)).await {
        Ok(Ok(response)) => response,
        Ok(Err(_)) => return cloudflare(StatusCode::BAD_GATEWAY, "Bad gateway"),
        Err(_) => {
            return cloudflare(
                StatusCode::from_u16(524).unwrap_or(StatusCode::GATEWAY_TIMEOUT),
                "A timeout occurred",
            )
        }
    };
    if response.status() == StatusCode::SWITCHING_PROTOCOLS {
        if let Some(downstream) = downstream {
            let upstream = hyper::upgrade::on(&mut response);
            tokio::spawn(async move {
                if let (Ok(down), Ok(up)) = tokio::join!(downstream, upstream) {
                    let _ = tokio::io::copy_bidirectional(
                        &mut TokioIo::new(down),
                        &mut TokioIo::new(up),
                    )
                    .await;
                }
            });
        }
    }
    response.map(Body::new)
}
