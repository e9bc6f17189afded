//! Workers: one thread per core, each with its own monoio (io_uring) runtime and its own
//! SO_REUSEPORT listener; a connection lives and dies on the core that accepted it. A
//! core serves at most `--max-connections-per-core` connections; one accepted beyond
//! that is closed at once.

use super::conn;
use crate::app::App;
use std::net::SocketAddr;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

pub struct Workers {
    handles: Vec<JoinHandle<()>>,
}

/// Bind every worker's listener (so errors surface before we announce readiness) and start
/// the worker threads.
pub fn start(
    app: Arc<App>,
    tls: Arc<rustls::ServerConfig>,
    count: usize,
) -> Result<Workers, String> {
    let addr = SocketAddr::new(app.options.bind_address, app.options.secure_port);
    // The workers' listeners share the port through SO_REUSEPORT, which would also let
    // them join another server's listeners on it and split its traffic: bind once
    // without it first, so a port in use is an error as upstream's.
    std::net::TcpListener::bind(addr).map_err(|e| format!("binding {addr}: {e}"))?;
    let mut handles = Vec::with_capacity(count);
    let (ready_tx, ready_rx) = std::sync::mpsc::channel::<Result<(), String>>();
    for i in 0..count {
        let (app, tls, ready) = (app.clone(), tls.clone(), ready_tx.clone());
        let handle = std::thread::Builder::new()
            .name(format!("kapi-worker-{i}"))
            .spawn(move || {
                crate::metrics::io::bind_core(i);
                kapi_flowcontrol::dispatch::set_core(i);
                worker_main(app, tls, addr, ready, i)
            })
            .map_err(|e| e.to_string())?;
        handles.push(handle);
    }
    drop(ready_tx);
    for _ in 0..count {
        ready_rx.recv().map_err(|_| "worker died during start".to_string())??;
    }
    Ok(Workers { handles })
}

/// Wait for the workers to finish their in-flight work, at most `grace`.
pub fn join(workers: Workers, grace: Duration) {
    let deadline = Instant::now() + grace;
    for h in workers.handles {
        while !h.is_finished() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        if h.is_finished() {
            let _ = h.join();
        } else {
            tracing::warn!("a worker did not finish within the shutdown grace period");
        }
    }
}

fn worker_main(
    app: Arc<App>,
    tls: Arc<rustls::ServerConfig>,
    addr: SocketAddr,
    ready: std::sync::mpsc::Sender<Result<(), String>>,
    core: usize,
) {
    let runtime = monoio::RuntimeBuilder::<monoio::FusionDriver>::new().enable_timer().build();
    let mut runtime = match runtime {
        Ok(rt) => rt,
        Err(e) => {
            let _ = ready.send(Err(format!("starting runtime: {e}")));
            return;
        }
    };
    runtime.block_on(async move {
        let opts = monoio::net::ListenerOpts::new().reuse_port(true).reuse_addr(true).backlog(4096);
        let listener = match monoio::net::TcpListener::bind_with_config(addr, &opts) {
            Ok(l) => l,
            Err(e) => {
                let _ = ready.send(Err(format!("binding {addr}: {e}")));
                return;
            }
        };
        let _ = ready.send(Ok(()));
        monoio::spawn(crate::cores::serve(app.cores.register(core)));
        accept_loop(app, tls, listener).await;
    });
}

async fn accept_loop(
    app: Arc<App>,
    tls: Arc<rustls::ServerConfig>,
    listener: monoio::net::TcpListener,
) {
    let acceptor = tokio_rustls::TlsAcceptor::from(tls);
    let tracker = conn::Tracker::default();
    let shutdown = app.shutdown.clone();
    loop {
        monoio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    crate::metrics::io::accepted();
                    if tracker.len() >= app.options.max_connections_per_core {
                        // Over the limit: closed at once (the client sees EOF), so the
                        // connections already open keep their share of the core.
                        tracing::debug!("refusing {peer}: {} connections open", tracker.len());
                        drop(stream);
                        continue;
                    }
                    let _ = stream.set_nodelay(true);
                    monoio::spawn(conn::serve(app.clone(), acceptor.clone(), stream, peer, tracker.clone()));
                }
                Err(e) => {
                    tracing::warn!("accept failed: {e}");
                    monoio::time::sleep(Duration::from_millis(10)).await;
                }
            },
            _ = shutdown.recv_async() => break,
        }
    }
    drop(listener);
    tracker.wait_idle().await;
}
