//! The server side: the listener, the acceptor that deals connections out to worker threads (each with its own
//! event loop), the connection limit (`max_connections`), TLS termination, the request-head clock
//! (`header_timeout`), and the drain at shutdown. What happens to a request once it is read is [`super::Gateway::handle`].

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use http::StatusCode;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;

use super::forward::Peer;
use super::{head_clock, Gateway};

/// Serves `gateway` on `listener` until `shutdown` resolves, then stops accepting, lets in-flight requests finish
/// (up to the configured drain timeout) and returns. HTTP/1.1 with keep-alive and upgrades, and HTTP/2 (h2c) from
/// clients.
///
/// With `[server] workers` above 1 (the default is one per CPU), each worker is a thread with its own
/// single-threaded event loop and its own upstream pool, and the calling task deals the accepted connections out to
/// them in turn: a connection and everything it needs stays on one thread, as in nginx's worker processes.
///
/// ```no_run
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let config = railbridge::Config::load(None, |name| std::env::var(name).ok())?;
/// let listener = tokio::net::TcpListener::bind(config.listen()).await?;
/// let gateway = railbridge::Gateway::new(config);
/// railbridge::serve(gateway, listener, async { let _ = tokio::signal::ctrl_c().await; }).await?;
/// # Ok(()) }
/// ```
pub async fn serve(
    gateway: Gateway,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send,
) -> std::io::Result<()> {
    let upkeep = {
        let handle = gateway.shared.metrics.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(2));
            loop {
                tick.tick().await;
                handle.run_upkeep();
            }
        })
    };
    // The plain-HTTP listener beside TLS (health checks, redirects to https), on this thread's event loop.
    let plain = match gateway.config().server.http_listen {
        Some(addr) => {
            let plain = TcpListener::bind(addr).await?;
            tracing::info!(addr = %plain.local_addr()?, "plain HTTP listener: health checks and redirects to https");
            let https_port = listener.local_addr()?.port();
            Some(tokio::spawn(super::plain::serve_plain(gateway.clone(), plain, https_port)))
        }
        None => None,
    };
    let workers = gateway.config().server.workers;
    let result = if workers <= 1 {
        gateway.register_runtime();
        let permits = gateway.shared.connections.clone();
        serve_on(gateway, Connections::Listener(listener, permits), shutdown).await
    } else {
        serve_on_workers(gateway, listener, shutdown, workers).await
    };
    upkeep.abort();
    if let Some(plain) = plain {
        plain.abort();
    }
    result
}

async fn serve_on_workers(
    gateway: Gateway,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send,
    workers: usize,
) -> std::io::Result<()> {
    let mut handoffs = Vec::with_capacity(workers);
    let mut threads = Vec::with_capacity(workers);
    for i in 0..workers {
        let (handoff, connections) = tokio::sync::mpsc::unbounded_channel();
        let gateway = gateway.clone();
        let spawned = std::thread::Builder::new().name(format!("railbridge-worker-{i}")).spawn(
            move || -> std::io::Result<()> {
                let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
                runtime.block_on(async { gateway.register_runtime() });
                runtime.block_on(serve_on(
                    gateway,
                    Connections::Handoff(connections),
                    std::future::pending(),
                ))
            },
        );
        match spawned {
            Ok(thread) => {
                threads.push(thread);
                handoffs.push(handoff);
            }
            Err(e) => {
                drop(handoffs);
                join(threads).await?;
                return Err(e);
            }
        }
    }
    // One acceptor deals the connections out in turn, so every worker gets its share of a burst of new clients
    // (several threads accepting on one socket split them unevenly, and keep-alive makes that last).
    tokio::pin!(shutdown);
    let mut next = 0;
    let permits = gateway.shared.connections.clone();
    loop {
        tokio::select! {
            accepted = accept_permitted(&listener, &permits) => {
                let Some((stream, peer, permit)) = accepted else { continue };
                let stream = match stream.into_std() {
                    Ok(stream) => stream,
                    Err(e) => {
                        tracing::warn!(error = %e, "cannot hand an accepted connection over");
                        continue;
                    }
                };
                let mut connection = Some((stream, peer, permit));
                for _ in 0..handoffs.len() {
                    let handoff = &handoffs[next % handoffs.len()];
                    next = next.wrapping_add(1);
                    match connection.take().map(|c| handoff.send(c)) {
                        Some(Err(tokio::sync::mpsc::error::SendError(back))) => connection = Some(back),
                        _ => break,
                    }
                }
                if connection.is_some() {
                    tracing::error!("no worker thread is running; closing the connection");
                }
            }
            () = &mut shutdown => break,
        }
    }
    drop(listener);
    // The workers see their hand-off close, stop taking connections and drain.
    drop(handoffs);
    join(threads).await
}

/// Waits for the worker threads (off the async threads) and returns the first error.
async fn join(threads: Vec<std::thread::JoinHandle<std::io::Result<()>>>) -> std::io::Result<()> {
    tokio::task::spawn_blocking(move || {
        let mut result = Ok(());
        for thread in threads {
            let outcome = thread
                .join()
                .unwrap_or_else(|_| Err(std::io::Error::other("a worker thread panicked")));
            if let (Err(e), Ok(())) = (outcome, &result) {
                result = Err(e);
            }
        }
        result
    })
    .await
    .map_err(std::io::Error::other)?
}

/// A connection handed from the acceptor to a worker, with its permit.
type Handed = (std::net::TcpStream, SocketAddr, tokio::sync::OwnedSemaphorePermit);

/// Where an event loop's connections come from: its own listener (with the connection permits), or the acceptor's
/// hand-off.
enum Connections {
    Listener(TcpListener, Arc<tokio::sync::Semaphore>),
    Handoff(tokio::sync::mpsc::UnboundedReceiver<Handed>),
}

impl Connections {
    /// The next connection and its permit; `None` once the acceptor has stopped.
    async fn next(
        &mut self,
    ) -> Option<(tokio::net::TcpStream, SocketAddr, tokio::sync::OwnedSemaphorePermit)> {
        loop {
            match self {
                Connections::Listener(listener, permits) => {
                    if let Some(accepted) = accept_permitted(listener, permits).await {
                        return Some(accepted);
                    }
                }
                Connections::Handoff(handoff) => {
                    let (stream, peer, permit) = handoff.recv().await?;
                    match tokio::net::TcpStream::from_std(stream) {
                        Ok(stream) => return Some((stream, peer, permit)),
                        Err(e) => {
                            tracing::warn!(error = %e, "cannot take over an accepted connection")
                        }
                    }
                }
            }
        }
    }
}

/// Waits for a connection permit, then accepts: at `max_connections`, new clients wait in the kernel's listen backlog
/// (not in the gateway's memory, not as open file descriptors) until a connection ends.
pub(super) async fn accept_permitted(
    listener: &TcpListener,
    permits: &Arc<tokio::sync::Semaphore>,
) -> Option<(tokio::net::TcpStream, SocketAddr, tokio::sync::OwnedSemaphorePermit)> {
    let permit = permits.clone().acquire_owned().await.ok()?;
    let (stream, peer) = accept(listener).await?;
    Some((stream, peer, permit))
}

/// Accepts a connection; on failure (EMFILE and friends) logs it and backs off instead of spinning.
async fn accept(listener: &TcpListener) -> Option<(tokio::net::TcpStream, SocketAddr)> {
    match listener.accept().await {
        Ok(accepted) => Some(accepted),
        Err(e) => {
            tracing::warn!(error = %e, "accept failed");
            tokio::time::sleep(Duration::from_millis(50)).await;
            None
        }
    }
}

/// What a client connection holds while it lives: its turn under `max_connections` and its place in the count of
/// open connections. Shared with a WebSocket tunnel made from the connection, which outlives hyper's connection task,
/// so that upgraded connections count against the limit too.
pub(crate) struct ConnectionHold {
    _permit: tokio::sync::OwnedSemaphorePermit,
    _open: super::OpenConnection,
}

impl std::fmt::Debug for ConnectionHold {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ConnectionHold")
    }
}

/// How long a client may take to complete the TLS handshake.
const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Serves one client connection (plain or TLS) until it ends, drained with the others at shutdown.
async fn serve_io<I>(
    builder: auto::Builder<TokioExecutor>,
    watcher: hyper_util::server::graceful::Watcher,
    io: TokioIo<I>,
    gateway: Gateway,
    client: Peer,
) -> Result<(), Box<dyn std::error::Error + Send + Sync>>
where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let state = head_clock::HeadState::new();
    let header_timeout = gateway.config().server.header_timeout;
    let io =
        TokioIo::new(head_clock::HeadClock::new(io.into_inner(), state.clone(), header_timeout));
    let service = hyper::service::service_fn(move |req| {
        let (gw, client, state) = (gateway.clone(), client.clone(), state.clone());
        async move {
            state.request_started();
            let response = gw.handle(req, &client).await;
            // An upgraded connection (WebSocket) is no longer HTTP: its bytes never start the header clock.
            if response.status() != StatusCode::SWITCHING_PROTOCOLS {
                state.request_done();
            }
            Ok::<_, Infallible>(response)
        }
    });
    let conn = builder.serve_connection_with_upgrades(io, service).into_owned();
    watcher.watch(conn).await
}

/// One event loop: takes connections until `shutdown` (or until the acceptor stops), then drains its own.
async fn serve_on(
    gateway: Gateway,
    mut connections: Connections,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    let config = gateway.config();
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .keep_alive(true)
        .header_read_timeout(config.server.idle_timeout)
        .max_buf_size(64 * 1024);
    builder
        .http2()
        .timer(TokioTimer::new())
        .keep_alive_interval(Some(config.server.idle_timeout / 2))
        .keep_alive_timeout(Duration::from_secs(20))
        .max_concurrent_streams(256);
    let graceful = GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            accepted = connections.next() => {
                let Some((stream, peer, permit)) = accepted else { break };
                let _ = stream.set_nodelay(true);
                let gw = gateway.clone();
                // The TLS settings of the configuration in force when the connection arrived (SIGHUP renews them).
                let tls = gateway.shared.state.load().config.server.tls.clone();
                let (builder, watcher) = (builder.clone(), graceful.watcher());
                // The connection's permit and its count, held as long as the connection or a WebSocket tunnel
                // made from it lives.
                let hold = Arc::new(ConnectionHold { _permit: permit, _open: gateway.connection_opened() });
                tokio::spawn(async move {
                    let ended = match tls {
                        None => {
                            let client = Peer::new(peer).holding(hold);
                            serve_io(builder, watcher, TokioIo::new(stream), gw, client).await
                        }
                        Some(tls) => {
                            let handshake = tokio_rustls::TlsAcceptor::from(tls).accept(stream);
                            match tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, handshake).await {
                                Ok(Ok(stream)) => {
                                    let client = Peer::new(peer).over_tls().holding(hold);
                                    serve_io(builder, watcher, TokioIo::new(stream), gw, client).await
                                }
                                Ok(Err(e)) => Err(Box::new(e).into()),
                                Err(_) => Err("the TLS handshake timed out".into()),
                            }
                        }
                    };
                    if let Err(e) = ended {
                        tracing::debug!(peer = %peer, error = %e, "connection ended with an error");
                    }
                });
            }
            () = &mut shutdown => break,
        }
    }
    drop(connections);
    gateway.set_draining();
    let in_flight = graceful.count();
    tracing::info!(connections = in_flight, "shutting down: draining in-flight requests");
    let drain = gateway.config().server.drain_timeout;
    tokio::select! {
        () = graceful.shutdown() => tracing::info!("drained"),
        () = tokio::time::sleep(drain) => tracing::warn!(timeout = ?drain, "drain timeout: closing the remaining connections"),
    }
    Ok(())
}
