//! The tokio bridge: etcd-client needs a tokio runtime, kapi's cores run monoio. One
//! dedicated thread runs a current-thread tokio runtime; callers on any thread hand it
//! a future (tokio's own cross-thread spawn queue) and await the answer on a oneshot
//! channel, which wakes the caller's executor from the bridge thread.
//!
//! Invariants: every call resolves, with `Closed` once the bridge has stopped; every
//! call is bounded by the request timeout (`Unavailable` after it).

use crate::error::StorageError;
use futures_channel::oneshot;
use futures_util::future::BoxFuture;
use parking_lot::Mutex;
use std::future::Future;
use std::time::Duration;

#[derive(Debug)]
pub struct Bridge {
    handle: tokio::runtime::Handle,
    stop: Mutex<Option<oneshot::Sender<()>>>,
    thread: Mutex<Option<std::thread::JoinHandle<()>>>,
    timeout: Duration,
}

impl Bridge {
    /// Start the bridge thread; `timeout` bounds every call.
    pub fn start(timeout: Duration) -> Result<Bridge, StorageError> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| StorageError::Io(format!("starting the etcd bridge runtime: {e}")))?;
        let handle = runtime.handle().clone();
        let (stop_tx, stop_rx) = oneshot::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("kapi-etcd".into())
            .spawn(move || {
                runtime.block_on(async move {
                    let _ = stop_rx.await;
                });
                runtime.shutdown_timeout(Duration::from_secs(1));
            })
            .map_err(|e| StorageError::Io(format!("starting the etcd bridge thread: {e}")))?;
        Ok(Bridge {
            handle,
            stop: Mutex::new(Some(stop_tx)),
            thread: Mutex::new(Some(thread)),
            timeout,
        })
    }

    /// Run `fut` on the bridge, bounded by the request timeout.
    pub fn call<T, F>(&self, fut: F) -> BoxFuture<'static, Result<T, StorageError>>
    where
        T: Send + 'static,
        F: Future<Output = Result<T, StorageError>> + Send + 'static,
    {
        let (tx, rx) = oneshot::channel();
        let timeout = self.timeout;
        self.handle.spawn(async move {
            let out = match tokio::time::timeout(timeout, fut).await {
                Ok(out) => out,
                Err(_) => Err(StorageError::Unavailable(format!(
                    "etcd request timed out after {} ms",
                    timeout.as_millis()
                ))),
            };
            let _ = tx.send(out);
        });
        Box::pin(async move { rx.await.unwrap_or(Err(StorageError::Closed)) })
    }

    /// Run `fut` on the bridge with no timeout and no answer (watch loops, batchers).
    pub fn spawn<F>(&self, fut: F)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        self.handle.spawn(fut);
    }

    /// Stop the runtime: tasks are dropped, pending calls resolve with `Closed`.
    pub fn stop(&self) {
        if let Some(tx) = self.stop.lock().take() {
            let _ = tx.send(());
        }
        let thread = self.thread.lock().take();
        if let Some(t) = thread.filter(|t| t.thread().id() != std::thread::current().id()) {
            let _ = t.join();
        }
    }
}

impl Drop for Bridge {
    fn drop(&mut self) {
        self.stop();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calls_resolve_and_time_out() {
        let bridge = Bridge::start(Duration::from_millis(50)).unwrap();
        let ok = futures_executor::block_on(bridge.call(async { Ok(7) }));
        assert_eq!(ok, Ok(7));
        let slow = bridge.call(async {
            tokio::time::sleep(Duration::from_secs(5)).await;
            Ok(())
        });
        assert!(matches!(futures_executor::block_on(slow), Err(StorageError::Unavailable(_))));
    }

    #[test]
    fn calls_after_stop_are_closed() {
        let bridge = Bridge::start(Duration::from_secs(1)).unwrap();
        bridge.stop();
        let out = futures_executor::block_on(bridge.call(async { Ok(1) }));
        assert_eq!(out, Err(StorageError::Closed));
    }
}
