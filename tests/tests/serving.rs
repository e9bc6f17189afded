//! How the server takes its port, and how it stops. Regression: a second kapi started on the port of a
//! running one joined its SO_REUSEPORT listeners and silently took half its connections
//! (clients saw certificates of another CA); it must refuse to start, as upstream does.

use kapi_e2e::{Server, kapi_bin};
use std::process::{Command, Stdio};

#[test]
fn a_second_server_on_a_port_in_use_refuses_to_start() {
    let s = Server::start();
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(kapi_bin())
        .arg("--data-dir")
        .arg(dir.path())
        .args(["--secure-port", &s.port.to_string(), "--unsafe-no-fsync"])
        .stdin(Stdio::null())
        .output()
        .expect("kapi");
    assert!(!out.status.success(), "the second server must exit");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("Address already in use"), "{err}");
    // The first one still answers everything.
    for _ in 0..8 {
        s.kubectl_ok(&["get", "namespaces"]);
    }
}

/// Regression: "ready" was printed before SIGTERM was taken over, so a SIGTERM right after
/// it (as a supervisor or this suite sends) found the default action and killed the
/// process instead of stopping it gracefully (CI's `disk_full` failure).
#[test]
fn a_sigterm_right_after_ready_stops_gracefully() {
    for _ in 0..3 {
        let mut s = Server::start();
        assert!(s.stop(), "SIGTERM right after ready must be a graceful stop (exit 0)");
    }
}
