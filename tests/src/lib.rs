//! Harness for the end-to-end tests: starts the real `kapi` binary on a free loopback
//! port with a fresh data directory, waits until it is ready, and runs kubectl against it
//! with the admin kubeconfig it wrote. Servers are stopped (SIGTERM) when dropped.
//!
//! The binary is `$KAPI_BIN` or `target/debug/kapi` (built on demand).

pub mod apf;
pub mod etcd;
pub mod openssl;
pub mod policy;
pub mod raw;
pub mod tls;
pub mod upstream;
pub mod webhook;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// Path of the kapi binary under test.
pub fn kapi_bin() -> PathBuf {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        if let Ok(p) = std::env::var("KAPI_BIN") {
            return PathBuf::from(p);
        }
        let root =
            Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("workspace root").to_path_buf();
        let target = std::env::var("CARGO_TARGET_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|_| root.join("target"));
        let bin = target.join("debug").join("kapi");
        let status = Command::new(env!("CARGO"))
            .args(["build", "-q", "-p", "kapi"])
            .current_dir(&root)
            .status()
            .expect("cargo build -p kapi");
        assert!(status.success(), "building kapi failed");
        bin
    })
    .clone()
}

fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr").port()
}

/// The storage backend the end-to-end suite runs on: `KAPI_E2E_BACKEND=etcd` gives every
/// server its own etcd process; anything else is the embedded store.
pub fn backend_is_etcd() -> bool {
    std::env::var("KAPI_E2E_BACKEND").is_ok_and(|b| b == "etcd")
}

/// Options of a test server.
#[derive(Debug, Clone, Default)]
pub struct ServerOptions {
    /// Keep fsync on (crash tests); off by default for speed.
    pub fsync: bool,
    pub extra_args: Vec<String>,
    /// etcd endpoints to use (comma-separated); None: the suite's backend decides.
    pub etcd_servers: Option<String>,
    /// Address to serve on (default 127.0.0.1; replicas of one cluster use 127.0.0.N).
    pub bind_address: Option<String>,
}

/// A running kapi process.
pub struct Server {
    child: Option<Child>,
    pub dir: tempfile::TempDir,
    pub port: u16,
    opts: ServerOptions,
    /// The server's own etcd when the suite runs on etcd.
    pub etcd: Option<etcd::Etcd>,
}

impl Server {
    pub fn start() -> Server {
        Self::start_with(ServerOptions::default())
    }

    pub fn start_with(opts: ServerOptions) -> Server {
        let dir = tempfile::tempdir().expect("tempdir");
        let own_etcd = (opts.etcd_servers.is_none() && backend_is_etcd()).then(etcd::Etcd::start);
        let mut s = Server { child: None, dir, port: free_port(), opts, etcd: own_etcd };
        s.spawn();
        s
    }

    /// Start a server that may fail to become ready: the reason when it exits or stays
    /// unready for 60 s (it is killed then).
    pub fn try_start_with(opts: ServerOptions) -> Result<Server, String> {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut s = Server { child: None, dir, port: free_port(), opts, etcd: None };
        s.try_spawn()?;
        Ok(s)
    }

    fn spawn(&mut self) {
        if let Err(e) = self.try_spawn() {
            panic!("{e}");
        }
    }

    fn try_spawn(&mut self) -> Result<(), String> {
        let mut cmd = Command::new(kapi_bin());
        cmd.arg("--data-dir").arg(self.dir.path().join("data"));
        cmd.args(["--secure-port", &self.port.to_string(), "--v", "0"]);
        // Two serving threads unless the test asks for its own number.
        if !self.opts.extra_args.iter().any(|a| a == "--workers") {
            cmd.args(["--workers", "2"]);
        }
        if !self.opts.fsync {
            cmd.arg("--unsafe-no-fsync");
        }
        let endpoints =
            self.opts.etcd_servers.clone().or(self.etcd.as_ref().map(|e| e.endpoints()));
        if let Some(endpoints) = endpoints {
            cmd.args(["--etcd-servers", &endpoints]);
        }
        if let Some(addr) = &self.opts.bind_address {
            cmd.args(["--bind-address", addr]);
        }
        cmd.args(&self.opts.extra_args);
        cmd.stdout(Stdio::piped()).stderr(Stdio::inherit()).stdin(Stdio::null());
        let mut child = cmd.spawn().expect("spawn kapi");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut ready_sent = false;
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if line.trim() == "ready" && !ready_sent {
                    ready_sent = true;
                    let _ = tx.send(());
                }
            }
        });
        if let Err(e) = rx.recv_timeout(Duration::from_secs(60)) {
            let _ = child.kill();
            let status = child.wait().map(|s| s.to_string()).unwrap_or_default();
            return Err(match e {
                std::sync::mpsc::RecvTimeoutError::Timeout => {
                    "kapi did not become ready within 60 s".to_string()
                }
                _ => format!("kapi exited before it was ready ({status})"),
            });
        }
        self.child = Some(child);
        Ok(())
    }

    pub fn kubeconfig(&self) -> PathBuf {
        self.dir.path().join("data").join("admin.kubeconfig")
    }

    pub fn url(&self) -> String {
        let host = self.opts.bind_address.as_deref().unwrap_or("127.0.0.1");
        format!("https://{host}:{}", self.port)
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Run kubectl with this server's kubeconfig.
    pub fn kubectl(&self, args: &[&str]) -> Output {
        Command::new("kubectl")
            .arg("--kubeconfig")
            .arg(self.kubeconfig())
            .args(args)
            .stdin(Stdio::null())
            .output()
            .expect("run kubectl")
    }

    /// Run kubectl with `stdin` as standard input.
    pub fn kubectl_stdin(&self, args: &[&str], stdin: &str) -> Output {
        use std::io::Write;
        let mut child = Command::new("kubectl")
            .arg("--kubeconfig")
            .arg(self.kubeconfig())
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run kubectl");
        child.stdin.take().expect("stdin").write_all(stdin.as_bytes()).expect("write stdin");
        child.wait_with_output().expect("kubectl output")
    }

    /// kubectl with a bearer token (no client certificate), optionally with `stdin`.
    pub fn kubectl_token(&self, token: &str, args: &[&str], stdin: Option<&str>) -> Output {
        use std::io::Write;
        let ca = self.dir.path().join("data/pki/ca.crt");
        let mut child = Command::new("kubectl")
            .args(["--kubeconfig", "/dev/null", "--server", &self.url(), "--token", token])
            .arg("--certificate-authority")
            .arg(ca)
            .args(args)
            .stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run kubectl");
        if let Some(input) = stdin {
            child.stdin.take().expect("stdin").write_all(input.as_bytes()).expect("write stdin");
        }
        child.wait_with_output().expect("kubectl output")
    }

    /// The server's data directory (certificates, admin kubeconfig, store).
    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// kubectl that must succeed; returns stdout.
    pub fn kubectl_ok(&self, args: &[&str]) -> String {
        let out = self.kubectl(args);
        assert!(
            out.status.success(),
            "kubectl {args:?} failed: {}\n{}",
            String::from_utf8_lossy(&out.stderr),
            String::from_utf8_lossy(&out.stdout)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// SIGTERM and wait (graceful shutdown). Returns the exit status success.
    pub fn stop(&mut self) -> bool {
        let Some(mut child) = self.child.take() else { return true };
        // SAFETY: plain kill(2) on our own child's pid.
        unsafe { libc_kill(child.id() as i32, 15) };
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                return status.success();
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                return false;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGKILL (crash) and reap.
    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Start again on the same data directory and port.
    pub fn restart(&mut self) {
        self.stop();
        self.spawn();
    }

    /// Start again after a crash (the process is already gone).
    pub fn start_again(&mut self) {
        self.spawn();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

unsafe extern "C" {
    #[link_name = "kill"]
    fn libc_kill(pid: i32, sig: i32) -> i32;
}

/// Poll `f` until it returns true or `timeout` passes.
pub fn eventually(timeout: Duration, mut f: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    f()
}
