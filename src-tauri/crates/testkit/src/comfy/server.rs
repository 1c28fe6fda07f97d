//! A fake's life on its port: binding, accepting, serving HTTP/1.1 (with WebSocket upgrades), hanging
//! connections for `Fault::Hang`, closing the port for `Fault::Refuse` and reopening the same one, its worker,
//! crashes (`kill`) and restarts, and shutdown.

use std::future::poll_fn;
use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;
use tokio::io::AsyncReadExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::runtime::Handle;
use tokio::sync::{watch, Notify};
use tokio::task::{JoinHandle, JoinSet};

use super::config::{FakeComfyConfig, Fault};
use super::routes;
use super::state::{ComfyState, RecordedRequest};
use super::worker;

/// Where the fake is in its life. Connections and sockets end when the generation changes (the port was closed)
/// or the fake shuts down.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Lifecycle {
    pub generation: u64,
    pub listening: bool,
    pub shut_down: bool,
}

impl Lifecycle {
    pub fn ends(&self, generation: u64) -> bool {
        self.shut_down || self.generation != generation
    }
}

/// Resolves once the connections of `generation` must end.
pub(crate) async fn generation_ended(lifecycle: &mut watch::Receiver<Lifecycle>, generation: u64) {
    // An error means the fake is gone, which ends the generation too.
    let _ = lifecycle.wait_for(|l| l.ends(generation)).await.map(|_| ());
}

/// What the handle, the accept loop and the routes share.
pub(crate) struct Shared {
    state: Mutex<ComfyState>,
    lifecycle: watch::Sender<Lifecycle>,
    /// Taken out (closing the port at once) for `Fault::Refuse`, `kill()` and shutdown.
    listener: Mutex<Option<TcpListener>>,
    /// Woken on state changes: the worker waits on it for prompts, `wait_idle` for the queue to empty.
    changed: Arc<Notify>,
    /// Bumped by `drop_websockets()`: every open socket closes.
    socket_drops: watch::Sender<u64>,
    /// Between `kill()` and `restart()`: the port stays closed whatever the config says.
    killed: AtomicBool,
    /// The task running prompts, replaced on restart.
    worker: Mutex<Option<JoinHandle<()>>>,
}

impl Shared {
    /// The state; a panic elsewhere while it was held does not make it unusable.
    pub fn lock(&self) -> MutexGuard<'_, ComfyState> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub fn lifecycle(&self) -> watch::Receiver<Lifecycle> {
        self.lifecycle.subscribe()
    }

    /// Changes when every WebSocket must close (`drop_websockets`).
    pub fn socket_drops(&self) -> watch::Receiver<u64> {
        self.socket_drops.subscribe()
    }

    fn worker_slot(&self) -> MutexGuard<'_, Option<JoinHandle<()>>> {
        self.worker
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Starts the worker of the current boot (stopping an older one).
    fn spawn_worker(self: &Arc<Self>, runtime: &Handle) {
        let boot = self.lock().boot();
        let task = runtime.spawn(worker::run(self.clone(), boot));
        if let Some(old) = self.worker_slot().replace(task) {
            old.abort();
        }
    }

    fn stop_worker(&self) {
        if let Some(task) = self.worker_slot().take() {
            task.abort();
        }
    }

    /// A crash: the port closes, every connection and socket drops, the running prompt stops where it is, and the
    /// queue, history and cache are gone.
    fn kill(&self) {
        {
            let mut slot = self.listener_slot();
            if self.lifecycle.borrow().shut_down {
                return;
            }
            self.killed.store(true, Ordering::SeqCst);
            slot.take();
        }
        self.stop_worker();
        self.lock().reboot();
        self.lifecycle.send_modify(|l| {
            l.generation += 1;
            l.listening = false;
        });
    }

    /// Listens again (unless the config says `Fault::Refuse`) with a fresh state and worker.
    fn restart(self: &Arc<Self>, addr: SocketAddr, runtime: &Handle) {
        if self.lifecycle.borrow().shut_down {
            return;
        }
        if !self.killed.load(Ordering::SeqCst) {
            self.kill();
        }
        self.killed.store(false, Ordering::SeqCst);
        self.spawn_worker(runtime);
        let listen = self.lock().config().fault != Fault::Refuse;
        self.set_listening(listen, addr, runtime);
    }

    fn listener_slot(&self) -> MutexGuard<'_, Option<TcpListener>> {
        self.listener
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn poll_accept(&self, cx: &mut Context<'_>) -> Poll<io::Result<(TcpStream, SocketAddr)>> {
        match self.listener_slot().as_ref() {
            Some(listener) => listener.poll_accept(cx),
            // Woken through the lifecycle when a listener comes back.
            None => Poll::Pending,
        }
    }

    /// Opens or closes the port synchronously, so a test's next connect sees the change.
    fn set_listening(&self, listen: bool, addr: SocketAddr, runtime: &Handle) {
        let mut slot = self.listener_slot();
        let killed = self.killed.load(Ordering::SeqCst);
        if self.lifecycle.borrow().shut_down || listen == slot.is_some() || (listen && killed) {
            return;
        }
        if listen {
            match bind(addr, runtime) {
                Ok(listener) => *slot = Some(listener),
                Err(error) => {
                    eprintln!("fake ComfyUI: cannot listen on {addr} again ({error}); it keeps refusing connections");
                    return;
                }
            }
        } else {
            *slot = None;
        }
        drop(slot);
        self.lifecycle.send_modify(|l| {
            l.generation += 1;
            l.listening = listen;
        });
    }

    fn shut_down(&self) {
        self.stop_worker();
        self.listener_slot().take();
        self.lifecycle.send_modify(|l| {
            l.shut_down = true;
            l.listening = false;
        });
    }
}

fn bind(addr: SocketAddr, runtime: &Handle) -> io::Result<TcpListener> {
    // std sets SO_REUSEADDR on Unix, so the port can be taken again while closed connections linger in TIME_WAIT.
    let listener = std::net::TcpListener::bind(addr)?;
    listener.set_nonblocking(true)?;
    let _entered = runtime.enter();
    TcpListener::from_std(listener)
}

/// A fake ComfyUI 0.3.64 on `127.0.0.1`, answering as the recorded real one does. Dropping it shuts it down too.
pub struct FakeComfy {
    shared: Arc<Shared>,
    addr: SocketAddr,
    runtime: Handle,
    accept_task: Option<JoinHandle<()>>,
}

impl FakeComfy {
    /// Starts on a free port of 127.0.0.1. Panics only if the OS has no free loopback port.
    pub async fn start(config: FakeComfyConfig) -> FakeComfy {
        match FakeComfy::start_on(0, config).await {
            Ok(fake) => fake,
            Err(error) => panic!("fake ComfyUI: cannot bind 127.0.0.1:0: {error}"),
        }
    }

    /// Starts on `127.0.0.1:port` (0 picks a free one). With `Fault::Refuse` the port is checked, then closed.
    pub async fn start_on(port: u16, config: FakeComfyConfig) -> io::Result<FakeComfy> {
        let runtime = Handle::current();
        let listener = bind(SocketAddr::from((Ipv4Addr::LOCALHOST, port)), &runtime)?;
        let addr = listener.local_addr()?;
        let listening = config.fault != Fault::Refuse;
        let (lifecycle, _) = watch::channel(Lifecycle {
            generation: 0,
            listening,
            shut_down: false,
        });
        let state = ComfyState::new(config, addr.port());
        let (socket_drops, _) = watch::channel(0);
        let shared = Arc::new(Shared {
            changed: state.changed(),
            state: Mutex::new(state),
            lifecycle,
            listener: Mutex::new(listening.then_some(listener)),
            socket_drops,
            killed: AtomicBool::new(false),
            worker: Mutex::new(None),
        });
        shared.spawn_worker(&runtime);
        let router = routes::router(shared.clone());
        // Subscribed here, not in the task: a shutdown before the task first runs must still be seen.
        let lifecycle = shared.lifecycle();
        let accept_task = tokio::spawn(accept_loop(shared.clone(), router, lifecycle));
        Ok(FakeComfy {
            shared,
            addr,
            runtime,
            accept_task: Some(accept_task),
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// `http://127.0.0.1:PORT`, without a trailing slash.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// `ws://127.0.0.1:PORT/ws?clientId=<client_id>`.
    pub fn ws_url(&self, client_id: &str) -> String {
        format!("ws://{}/ws?clientId={client_id}", self.addr)
    }

    /// A copy of the current config.
    pub fn config(&self) -> FakeComfyConfig {
        self.shared.lock().config().clone()
    }

    /// Changes anything live. Switching to or from `Fault::Refuse` closes or reopens the same port before this
    /// returns (closing also drops open connections, as a killed server would; the queue and history stay); a
    /// changed queue depth is broadcast to WebSocket clients as `status`. After `kill()` the port stays closed until
    /// `restart()`.
    pub fn set_config(&self, f: impl FnOnce(&mut FakeComfyConfig)) {
        let listen = {
            let mut state = self.shared.lock();
            state.change_config(f);
            state.config().fault != Fault::Refuse
        };
        self.shared.set_listening(listen, self.addr, &self.runtime);
    }

    /// Every request received so far (the last 10,000), oldest first.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.shared.lock().requests()
    }

    pub fn clear_requests(&self) {
        self.shared.lock().clear_requests();
    }

    /// Crashes the fake, as a killed ComfyUI process: the port closes (connections are refused) and every open HTTP
    /// and WebSocket connection is dropped at once, without a close frame; the running prompt stops where it is, and
    /// the queue, history and node cache are lost. Input and output files stay (they are on disk), temp files
    /// go. Nothing listens again until [`FakeComfy::restart`].
    pub fn kill(&self) {
        self.shared.kill();
    }

    /// Starts the fake again on the same port, as a restarted ComfyUI: empty queue and history, counter at 0, cold
    /// cache, the same config and files. Restarting a fake that was not killed kills it first. With
    /// `Fault::Refuse` configured the port stays closed.
    pub fn restart(&self) {
        self.shared.restart(self.addr, &self.runtime);
    }

    /// Closes every open WebSocket abruptly (the TCP connection ends, no close frame) while the queue and the running
    /// prompt go on, as a network drop would; clients must reconnect or fall back to `/history` and `/queue`.
    pub fn drop_websockets(&self) {
        self.shared.socket_drops.send_modify(|drops| *drops += 1);
    }

    /// The ids of the prompts the worker started, in order (including ones that then failed, were interrupted or
    /// were lost in a `kill()`); deleted or cleared prompts never appear.
    pub fn executed_prompts(&self) -> Vec<String> {
        self.shared.lock().executed_prompts()
    }

    /// Waits until no prompt posted to this fake is pending or running. Jobs of other clients
    /// (`queue_running` / `queue_pending`) do not count, but a running one holds the worker: with prompts pending
    /// behind it this waits until the test lowers `queue_running`. Wrap it in a timeout.
    pub async fn wait_idle(&self) {
        let changed = self.shared.changed.clone();
        loop {
            let notified = changed.notified();
            if self.shared.lock().is_idle() {
                return;
            }
            notified.await;
        }
    }

    /// Closes the port and every connection (hung ones included), and waits for the accept loop to finish.
    pub async fn shutdown(mut self) {
        self.shared.shut_down();
        if let Some(task) = self.accept_task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for FakeComfy {
    fn drop(&mut self) {
        // The accept loop and the connections see this and end on their own.
        self.shared.shut_down();
    }
}

impl std::fmt::Debug for FakeComfy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FakeComfy")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

async fn accept_loop(
    shared: Arc<Shared>,
    router: Router,
    mut lifecycle: watch::Receiver<Lifecycle>,
) {
    let mut connections = JoinSet::new();
    while !lifecycle.borrow_and_update().shut_down {
        tokio::select! {
            biased;
            changed = lifecycle.changed() => {
                if changed.is_err() {
                    break;
                }
            }
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
            accepted = poll_fn(|cx| shared.poll_accept(cx)) => match accepted {
                Ok((stream, _)) => {
                    let now = *lifecycle.borrow();
                    if now.listening && !now.shut_down {
                        connections.spawn(serve_connection(shared.clone(), router.clone(), stream, now.generation));
                    }
                }
                // Out of file descriptors and the like: wait a little instead of spinning.
                Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
            },
        }
    }
    while connections.join_next().await.is_some() {}
}

/// Serves one connection until it ends, the port is closed, or the fake shuts down.
async fn serve_connection(shared: Arc<Shared>, router: Router, stream: TcpStream, generation: u64) {
    let mut lifecycle = shared.lifecycle();
    let hang = shared.lock().config().fault == Fault::Hang;
    let work = async {
        if hang {
            hang_connection(&shared, stream).await;
        } else {
            let service = TowerToHyperService::new(router);
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .with_upgrades()
                .await;
        }
    };
    tokio::select! {
        biased;
        _ = generation_ended(&mut lifecycle, generation) => {}
        _ = work => {}
    }
}

/// `Fault::Hang` on a new connection: read (and record) the request, never write, and notice the client leaving.
async fn hang_connection(shared: &Shared, mut stream: TcpStream) {
    let mut head = Vec::new();
    let mut recorded = false;
    let mut chunk = [0u8; 8192];
    loop {
        match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) if !recorded => {
                head.extend_from_slice(&chunk[..n]);
                if let Some(request) = parse_request_head(&head) {
                    shared.lock().record(request);
                    recorded = true;
                    head = Vec::new();
                } else if head.len() > 64 * 1024 {
                    recorded = true;
                    head = Vec::new();
                }
            }
            Ok(_) => {}
        }
    }
}

/// The request line and headers of an HTTP/1 request, once they are complete.
fn parse_request_head(bytes: &[u8]) -> Option<RecordedRequest> {
    let end = bytes.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = String::from_utf8_lossy(&bytes[..end]);
    let mut lines = head.split("\r\n");
    let mut request_line = lines.next()?.split(' ');
    let method = request_line.next()?.to_string();
    let path = request_line.next().unwrap_or("").to_string();
    let headers = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(name, value)| (name.trim().to_ascii_lowercase(), value.trim().to_string()))
        .collect();
    Some(RecordedRequest {
        method,
        path,
        headers,
        body: Vec::new(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_parses_a_request_head_for_the_record() {
        assert_eq!(parse_request_head(b"GET /queue HTTP/1.1\r\nHost: x"), None);
        let request = parse_request_head(
            b"GET /api/queue?x=1 HTTP/1.1\r\nHost: 127.0.0.1:1\r\nX-Api-Key: k\r\n\r\n",
        )
        .expect("complete head");
        assert_eq!(request.method, "GET");
        assert_eq!(request.path, "/api/queue?x=1");
        assert_eq!(request.header("x-api-key"), Some("k"));
        assert_eq!(
            request.headers[0],
            ("host".to_string(), "127.0.0.1:1".to_string())
        );
    }
}
