//! Real etcd processes for tests: one member, or a cluster of members on loopback, each
//! in its own temporary data directory, killed when dropped. The binary is `$ETCD_BIN`
//! or `etcd` on the PATH (the README's test command installs Debian's etcd-server).
//! `Etcd::start_tls` serves clients on https only and requires a client certificate
//! signed by the test CA (`--client-cert-auth`), as production etcd clusters do; the
//! CA, server and client credentials are generated per cluster (`tls.rs`).

use crate::tls::TlsFiles;
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn etcd_bin() -> PathBuf {
    std::env::var("ETCD_BIN").map(PathBuf::from).unwrap_or_else(|_| PathBuf::from("etcd"))
}

/// Whether an etcd binary can be run here.
pub fn available() -> bool {
    Command::new(etcd_bin())
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr").port()
}

/// One member of a test cluster.
pub struct Member {
    pub name: String,
    pub client_port: u16,
    pub peer_port: u16,
    child: Option<Child>,
    dir: PathBuf,
    initial_cluster: String,
    tls: Option<TlsFiles>,
}

impl Member {
    pub fn client_url(&self) -> String {
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        format!("{scheme}://127.0.0.1:{}", self.client_port)
    }

    fn spawn(&mut self, state: &str) {
        let peer = format!("http://127.0.0.1:{}", self.peer_port);
        let client = self.client_url();
        let mut cmd = Command::new(etcd_bin());
        cmd.arg("--name")
            .arg(&self.name)
            .arg("--data-dir")
            .arg(&self.dir)
            .args(["--listen-client-urls", &client, "--advertise-client-urls", &client])
            .args(["--listen-peer-urls", &peer, "--initial-advertise-peer-urls", &peer])
            .args(["--initial-cluster", &self.initial_cluster])
            .args(["--initial-cluster-state", state, "--initial-cluster-token", "kapi-test"])
            .args(["--heartbeat-interval", "50", "--election-timeout", "500"])
            .args(["--log-level", "error", "--logger", "zap"])
            .args(self.tls.as_ref().map(TlsFiles::etcd_server_args).unwrap_or_default())
            .stdout(Stdio::null())
            .stderr(self.log_file());
        self.child = Some(cmd.spawn().expect("spawn etcd"));
    }

    /// etcd's error log, next to its data directory (appended across restarts).
    fn log_path(&self) -> PathBuf {
        self.dir.with_extension("log")
    }

    fn log_file(&self) -> Stdio {
        let file = std::fs::OpenOptions::new().create(true).append(true).open(self.log_path());
        file.map(Stdio::from).unwrap_or_else(|_| Stdio::null())
    }

    /// Wait until the member accepts connections; panics with its log after 30 s.
    fn wait_listening(&self) {
        if !wait_for_port(self.client_port) {
            let log = std::fs::read_to_string(self.log_path()).unwrap_or_default();
            panic!("etcd {} did not listen on {} within 30 s:\n{log}", self.name, self.client_port);
        }
    }

    /// SIGKILL the member (its data stays).
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Start the member again on its data.
    pub fn restart(&mut self) {
        self.kill();
        self.spawn("existing");
        self.wait_listening();
    }
}

impl Drop for Member {
    fn drop(&mut self) {
        self.kill();
    }
}

/// An etcd cluster of `n` members on loopback.
pub struct Etcd {
    pub members: Vec<Member>,
    /// The credentials when clients must use TLS with a client certificate.
    pub tls: Option<TlsFiles>,
    _dir: tempfile::TempDir,
}

impl Etcd {
    /// One member.
    pub fn start() -> Etcd {
        Self::cluster(1)
    }

    /// One member serving clients on https://127.0.0.1 only, requiring a client
    /// certificate signed by `tls.ca` (peers stay on plain http on loopback).
    pub fn start_tls() -> Etcd {
        let dir = tempfile::tempdir().expect("tempdir");
        let tls = TlsFiles::generate(&dir.path().join("pki"));
        Self::build(1, dir, Some(tls))
    }

    pub fn cluster(n: usize) -> Etcd {
        Self::build(n, tempfile::tempdir().expect("tempdir"), None)
    }

    fn build(n: usize, dir: tempfile::TempDir, tls: Option<TlsFiles>) -> Etcd {
        let ports: Vec<(u16, u16)> = (0..n).map(|_| (free_port(), free_port())).collect();
        let initial_cluster = ports
            .iter()
            .enumerate()
            .map(|(i, (_, peer))| format!("m{i}=http://127.0.0.1:{peer}"))
            .collect::<Vec<_>>()
            .join(",");
        let mut members: Vec<Member> = ports
            .iter()
            .enumerate()
            .map(|(i, (client, peer))| Member {
                name: format!("m{i}"),
                client_port: *client,
                peer_port: *peer,
                child: None,
                dir: dir.path().join(format!("m{i}")),
                initial_cluster: initial_cluster.clone(),
                tls: tls.clone(),
            })
            .collect();
        for m in &mut members {
            m.spawn("new");
        }
        for m in &members {
            m.wait_listening();
        }
        Etcd { members, tls, _dir: dir }
    }

    /// Client URLs, comma-separated (`--etcd-servers`).
    pub fn endpoints(&self) -> String {
        self.members.iter().map(Member::client_url).collect::<Vec<_>>().join(",")
    }

    pub fn endpoint_list(&self) -> Vec<String> {
        self.members.iter().map(Member::client_url).collect()
    }
}

fn wait_for_port(port: u16) -> bool {
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}
