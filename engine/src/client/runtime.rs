//! The one thread outbound HTTPS calls run on (`kapi-client`): a current-thread tokio
//! runtime started at first use. Serving cores never block on a remote server: they
//! hand a task to this runtime (tokio's cross-thread spawn queue) and await its answer
//! on a oneshot channel.
//!
//! Invariant: at most one such thread per process; it lives as long as the process.

use std::sync::OnceLock;

static HANDLE: OnceLock<tokio::runtime::Handle> = OnceLock::new();

/// The runtime's handle (the thread is started on the first call).
pub fn handle() -> std::io::Result<tokio::runtime::Handle> {
    if let Some(h) = HANDLE.get() {
        return Ok(h.clone());
    }
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let handle = runtime.handle().clone();
    // Two first calls racing: the loser's runtime is dropped before it runs anything.
    if HANDLE.set(handle).is_err() {
        return Ok(HANDLE.get().cloned().expect("set"));
    }
    std::thread::Builder::new().name("kapi-client".into()).spawn(move || {
        runtime.block_on(std::future::pending::<()>());
    })?;
    Ok(HANDLE.get().cloned().expect("set"))
}
