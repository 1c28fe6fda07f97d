//! One WebSocket per server, shared by every prompt this process follows there and split by prompt
//! id, so following a job costs no handshake and a server sees one client instead of one per job.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use futures::StreamExt;
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;

use super::messages::{parse_binary, parse_text, ComfyEvent};
use super::ComfyClient;

/// What a subscriber receives.
#[derive(Debug)]
pub enum FeedItem {
    Event(ComfyEvent),
    /// The socket closed: nothing more will come through this subscription.
    Lost,
}

/// A server's shared WebSocket. Cheap to clone; the socket closes when the last clone is dropped.
#[derive(Clone)]
pub struct Feed {
    shared: Arc<Shared>,
}

struct Shared {
    client: ComfyClient,
    client_id: String,
    routes: Mutex<Routes>,
    /// Held while connecting, so concurrent subscribers open one socket, not several.
    connecting: tokio::sync::Mutex<()>,
}

#[derive(Default)]
struct Routes {
    up: bool,
    subscribers: HashMap<String, mpsc::UnboundedSender<FeedItem>>,
    /// The prompt executing now: previews without a prompt id (binary type 1) belong to it.
    current: Option<String>,
    reader: Option<tokio::task::AbortHandle>,
}

impl Drop for Shared {
    fn drop(&mut self) {
        if let Some(reader) = lock(&self.routes).reader.take() {
            reader.abort();
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Open `/ws?clientId=…` with the server's authentication headers.
async fn connect(client: &ComfyClient, client_id: &str, timeout: Duration) -> Option<Ws> {
    let mut req = client.ws_url(client_id).into_client_request().ok()?;
    for (k, v) in client.auth_header_map() {
        if k != reqwest::header::ACCEPT {
            req.headers_mut().insert(k.clone(), v.clone());
        }
    }
    match tokio::time::timeout(timeout, tokio_tungstenite::connect_async(req)).await {
        Ok(Ok((ws, _))) => Some(ws),
        _ => None,
    }
}

impl Feed {
    pub fn new(client: ComfyClient) -> Self {
        Self {
            shared: Arc::new(Shared {
                client,
                client_id: format!("comfyfleet-{}", uuid::Uuid::new_v4()),
                routes: Mutex::new(Routes::default()),
                connecting: tokio::sync::Mutex::new(()),
            }),
        }
    }

    pub fn client(&self) -> &ComfyClient {
        &self.shared.client
    }

    /// The client id prompts must be sent with for their messages to arrive here.
    pub fn client_id(&self) -> &str {
        &self.shared.client_id
    }

    /// Receive the messages of `prompt_id`, opening the socket if it is not up. Subscribe before
    /// sending the prompt so nothing is missed. `None` when the socket cannot be opened.
    pub async fn subscribe(&self, prompt_id: &str, timeout: Duration) -> Option<Subscription> {
        if !self.ensure_up(timeout).await {
            return None;
        }
        let (tx, rx) = mpsc::unbounded_channel();
        let mut routes = lock(&self.shared.routes);
        if !routes.up {
            return None; // closed again in the meantime
        }
        routes.subscribers.insert(prompt_id.to_string(), tx);
        Some(Subscription {
            rx,
            prompt_id: prompt_id.to_string(),
            shared: Arc::downgrade(&self.shared),
        })
    }

    async fn ensure_up(&self, timeout: Duration) -> bool {
        if lock(&self.shared.routes).up {
            return true;
        }
        let _connecting = self.shared.connecting.lock().await;
        if lock(&self.shared.routes).up {
            return true;
        }
        let Some(ws) = connect(&self.shared.client, &self.shared.client_id, timeout).await else {
            return false;
        };
        let reader = tokio::spawn(read(ws, Arc::downgrade(&self.shared)));
        let mut routes = lock(&self.shared.routes);
        routes.up = true;
        routes.reader = Some(reader.abort_handle());
        true
    }
}

/// Which prompt a message belongs to, updating the executing prompt. Pure apart from `current`.
fn route(event: &ComfyEvent, current: &mut Option<String>) -> Option<String> {
    use ComfyEvent::*;
    match event {
        ExecutionStart { prompt_id } => {
            *current = Some(prompt_id.clone());
            Some(prompt_id.clone())
        }
        Cached { prompt_id, .. }
        | ProgressState { prompt_id, .. }
        | Executed { prompt_id, .. }
        | Success { prompt_id }
        | Error { prompt_id, .. }
        | Interrupted { prompt_id, .. } => Some(prompt_id.clone()),
        Executing { prompt_id, .. } | Progress { prompt_id, .. } | Preview { prompt_id, .. } => {
            prompt_id.clone().or_else(|| current.clone())
        }
        Status { .. } | Text { .. } | Other { .. } => None,
    }
}

async fn read(mut ws: Ws, shared: Weak<Shared>) {
    while let Some(msg) = ws.next().await {
        let event = match msg {
            Ok(Message::Text(t)) => parse_text(t.as_str()),
            Ok(Message::Binary(b)) => parse_binary(&b),
            Ok(Message::Close(_)) | Err(_) => break,
            Ok(_) => None,
        };
        let Some(event) = event else { continue };
        let Some(shared) = shared.upgrade() else {
            return;
        };
        let mut routes = lock(&shared.routes);
        if let Some(to) = route(&event, &mut routes.current) {
            if let Some(tx) = routes.subscribers.get(&to) {
                let _ = tx.send(FeedItem::Event(event));
            }
        }
    }
    if let Some(shared) = shared.upgrade() {
        let mut routes = lock(&shared.routes);
        routes.up = false;
        routes.current = None;
        routes.reader = None;
        for (_, tx) in routes.subscribers.drain() {
            let _ = tx.send(FeedItem::Lost);
        }
    }
}

/// The messages of one prompt. Dropping it unsubscribes.
pub struct Subscription {
    rx: mpsc::UnboundedReceiver<FeedItem>,
    prompt_id: String,
    shared: Weak<Shared>,
}

impl Subscription {
    pub async fn next(&mut self) -> FeedItem {
        self.rx.recv().await.unwrap_or(FeedItem::Lost)
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        if let Some(shared) = self.shared.upgrade() {
            lock(&shared.routes).subscribers.remove(&self.prompt_id);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn feed_routes_previews_without_an_id_to_the_executing_prompt() {
        let mut current = None;
        let start = ComfyEvent::ExecutionStart {
            prompt_id: "a".into(),
        };
        assert_eq!(route(&start, &mut current).as_deref(), Some("a"));
        let preview = ComfyEvent::Preview {
            prompt_id: None,
            node: None,
            mime: "image/jpeg",
            bytes: vec![],
        };
        assert_eq!(route(&preview, &mut current).as_deref(), Some("a"));
        let tagged = ComfyEvent::Preview {
            prompt_id: Some("b".into()),
            node: None,
            mime: "image/png",
            bytes: vec![],
        };
        assert_eq!(route(&tagged, &mut current).as_deref(), Some("b"));
        let end = ComfyEvent::Executing {
            prompt_id: Some("a".into()),
            node: None,
        };
        assert_eq!(route(&end, &mut current).as_deref(), Some("a"));
        assert_eq!(
            route(&ComfyEvent::Status { queue_remaining: 0 }, &mut current),
            None
        );
    }
}
