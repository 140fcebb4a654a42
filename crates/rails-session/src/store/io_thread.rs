//! A thread of its own for a client's connections. A service may run several tokio runtimes (the gateway runs one
//! per worker thread), and a socket belongs to the runtime that opened it: a pool shared between runtimes would make
//! one worker's requests wait for another worker's event loop, and break when that runtime ends. Operations are
//! handed to this runtime, bounded by a timeout there, and awaited from any other runtime (or none: the awaiting
//! side needs no timer). The thread ends when the `IoThread` is dropped.

use std::future::Future;
use std::time::Duration;

/// Why an operation handed to the thread did not finish.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum IoError {
    /// It ran out of time (the server is down or slow).
    #[error("timed out after {0:?}")]
    TimedOut(Duration),
    /// The thread could not start, or has ended.
    #[error("the I/O thread ended")]
    Ended,
}

/// A current-thread tokio runtime on a thread of its own, for clients whose connections must not belong to any one of
/// a service's runtimes (see the module docs). Shared by the session stores, the Rails 8 authentication reader, and
/// the gateway's token store.
pub struct IoThread {
    handle: tokio::runtime::Handle,
    _stop: tokio::sync::oneshot::Sender<()>,
}

impl std::fmt::Debug for IoThread {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IoThread").finish_non_exhaustive()
    }
}

impl IoThread {
    /// Starts the thread, named `name`.
    pub fn start(name: &str) -> std::io::Result<IoThread> {
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let (ready, handle) = std::sync::mpsc::channel();
        std::thread::Builder::new().name(name.into()).spawn(move || {
            match tokio::runtime::Builder::new_current_thread().enable_all().build() {
                Ok(rt) => {
                    let _ = ready.send(Ok(rt.handle().clone()));
                    // Runs (and drives the connections) until the owner goes away.
                    rt.block_on(async {
                        let _ = stopped.await;
                    });
                }
                Err(e) => {
                    let _ = ready.send(Err(e));
                }
            }
        })?;
        let handle = handle.recv().map_err(|_| std::io::Error::other("the I/O thread ended"))??;
        Ok(IoThread { handle, _stop: stop })
    }

    /// The runtime's handle (to build clients on it).
    pub fn handle(&self) -> &tokio::runtime::Handle {
        &self.handle
    }

    /// Runs `work` on the thread, for at most `timeout`.
    pub async fn run<T: Send + 'static>(
        &self,
        timeout: Duration,
        work: impl Future<Output = T> + Send + 'static,
    ) -> Result<T, IoError> {
        let task = self.handle.spawn(async move { tokio::time::timeout(timeout, work).await });
        match task.await {
            Ok(Ok(out)) => Ok(out),
            Ok(Err(_)) => Err(IoError::TimedOut(timeout)),
            Err(_) => Err(IoError::Ended),
        }
    }
}
