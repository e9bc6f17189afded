//! Upstream's own artefacts in `../shared`: the v1.35 `.proto` files (decoded with
//! `protoc`, independent of kapi's codec and of k8s-pb) and the v1.21 binaries. Tests
//! that need them skip with a message when `../shared` is absent.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// The `../shared` folder beside the workspace, when present.
pub fn shared_dir() -> Option<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent()?;
    let shared = root.parent()?.join("shared");
    shared.is_dir().then_some(shared)
}

/// Upstream's `.proto` root (`../shared/spec/protos`), when present.
pub fn protos_dir() -> Option<PathBuf> {
    let p = shared_dir()?.join("spec/protos");
    p.is_dir().then_some(p)
}

/// The `.proto` file that defines a message of package `pkg` (e.g.
/// `k8s.io.api.core.v1` -> `k8s.io/api/core/v1/generated.proto`).
fn proto_file(message: &str) -> String {
    let pkg = &message[..message.rfind('.').expect("qualified message name")];
    let path =
        pkg.strip_prefix("k8s.io.").expect("a k8s.io message").replace('.', "/").replace('_', "-");
    format!("k8s.io/{path}/generated.proto")
}

/// `protoc --decode=MESSAGE` of `bytes` with upstream's protos: the text format.
pub fn protoc_decode(message: &str, bytes: &[u8]) -> String {
    let protos = protos_dir().expect("../shared/spec/protos");
    let mut child = Command::new("protoc")
        .arg(format!("--decode={message}"))
        .arg("-I")
        .arg(&protos)
        .arg(proto_file(message))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("protoc (Debian protobuf-compiler)");
    child.stdin.take().unwrap().write_all(bytes).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "protoc cannot read the bytes as {message}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// The value of the first top-level-or-nested `field: "..."` line of protoc's text format,
/// unescaped to bytes.
pub fn text_field(text: &str, field: &str) -> Option<Vec<u8>> {
    let prefix = format!("{field}: \"");
    text.lines().find_map(|l| {
        let l = l.trim_start();
        let rest = l.strip_prefix(&prefix)?;
        Some(unescape(rest.strip_suffix('"')?))
    })
}

/// The text format's C escapes (`\NNN` octal, `\xHH`, `\n`, `\"`, ...) back to bytes.
fn unescape(s: &str) -> Vec<u8> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] != b'\\' {
            out.push(b[i]);
            i += 1;
            continue;
        }
        let c = b[i + 1];
        i += 2;
        match c {
            b'0'..=b'7' => {
                let mut v = u32::from(c - b'0');
                for _ in 0..2 {
                    if i < b.len() && (b'0'..=b'7').contains(&b[i]) {
                        v = v * 8 + u32::from(b[i] - b'0');
                        i += 1;
                    }
                }
                out.push(v as u8);
            }
            b'x' => {
                let hex = std::str::from_utf8(&b[i..i + 2]).unwrap();
                out.push(u8::from_str_radix(hex, 16).unwrap());
                i += 2;
            }
            b'n' => out.push(b'\n'),
            b'r' => out.push(b'\r'),
            b't' => out.push(b'\t'),
            b'a' => out.push(7),
            b'b' => out.push(8),
            b'f' => out.push(12),
            b'v' => out.push(11),
            other => out.push(other),
        }
    }
    out
}

/// The proto package of a built-in group/version (`apps/v1` -> `k8s.io.api.apps.v1`).
pub fn proto_package(api_version: &str) -> String {
    let (group, version) = api_version.rsplit_once('/').unwrap_or(("", api_version));
    match group {
        "" => format!("k8s.io.api.core.{version}"),
        "apiextensions.k8s.io" => {
            format!("k8s.io.apiextensions_apiserver.pkg.apis.apiextensions.{version}")
        }
        "apiregistration.k8s.io" => {
            format!("k8s.io.kube_aggregator.pkg.apis.apiregistration.{version}")
        }
        g => format!("k8s.io.api.{}.{version}", g.split('.').next().unwrap_or(g)),
    }
}

/// Reads one `k8s\0` document as client-go does, with upstream's protos: the
/// `runtime.Unknown` envelope, then its `raw` as `message`. Returns (apiVersion, kind,
/// the object's text format).
pub fn decode_document(doc: &[u8], message: &str) -> (String, String, String) {
    let body = doc.strip_prefix(b"k8s\0").expect("a k8s\\0 document");
    let unknown = protoc_decode("k8s.io.apimachinery.pkg.runtime.Unknown", body);
    let s = |f| String::from_utf8(text_field(&unknown, f).unwrap_or_default()).unwrap();
    let raw = text_field(&unknown, "raw").expect("Unknown.raw");
    (s("apiVersion"), s("kind"), protoc_decode(message, &raw))
}

/// Upstream's binaries and scripts (`../shared/upstream`), when present.
pub fn upstream_dir() -> Option<PathBuf> {
    let p = shared_dir()?.join("upstream");
    p.join("ctrl.sh").is_file().then_some(p)
}

/// Upstream's kube-controller-manager and kube-scheduler (v1.21) running against a
/// server through `ctrl.sh`; stopped with `ctrl-down.sh` when dropped.
pub struct ControlPlane {
    dir: PathBuf,
    script_dir: PathBuf,
}

impl ControlPlane {
    /// Start both against the server of `kubeconfig` (keys from `pki/` beside it). The
    /// v1.21 scheduler's CSIStorageCapacity informer asks for storage.k8s.io/v1beta1,
    /// which v1.35 no longer serves (upstream v1.35 answers 404 too) and the scheduler
    /// would wait for it forever, so that feature gate is off.
    pub fn start(kubeconfig: &Path, dir: &Path) -> ControlPlane {
        ControlPlane::start_with(kubeconfig, dir, "")
    }

    /// As [`ControlPlane::start`], with extra controller manager flags (`KCM_EXTRA`).
    pub fn start_with(kubeconfig: &Path, dir: &Path, kcm_extra: &str) -> ControlPlane {
        let script_dir = upstream_dir().expect("../shared/upstream");
        let out = Command::new(script_dir.join("ctrl.sh"))
            .arg(kubeconfig)
            .arg(dir)
            .env("KCM_EXTRA", kcm_extra)
            .env("SCHED_EXTRA", "--feature-gates=CSIStorageCapacity=false")
            .stdin(Stdio::null())
            .output()
            .expect("ctrl.sh");
        assert!(
            out.status.success(),
            "ctrl.sh failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        ControlPlane { dir: dir.to_path_buf(), script_dir }
    }

    /// The tail of one component's log (`kube-controller-manager` or `kube-scheduler`).
    pub fn log_tail(&self, component: &str, lines: usize) -> String {
        let text =
            std::fs::read_to_string(self.dir.join(format!("{component}.log"))).unwrap_or_default();
        let all: Vec<&str> = text.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }

    /// Lines of one component's log that contain `needle`.
    pub fn log_lines(&self, component: &str, needle: &str) -> Vec<String> {
        let text =
            std::fs::read_to_string(self.dir.join(format!("{component}.log"))).unwrap_or_default();
        text.lines().filter(|l| l.contains(needle)).map(String::from).collect()
    }
}

impl Drop for ControlPlane {
    fn drop(&mut self) {
        let _ = Command::new(self.script_dir.join("ctrl-down.sh"))
            .arg(&self.dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

/// Upstream kube-apiserver (v1.21) on its own fresh etcd, started by `up.sh`; stopped
/// with `down.sh` when dropped.
pub struct Apiserver {
    pub dir: tempfile::TempDir,
    /// `DIR/up.env` as key-value pairs (KUBECONFIG, ETCD_ENDPOINT, SERVER, ...).
    pub env: std::collections::HashMap<String, String>,
    script_dir: PathBuf,
}

impl Apiserver {
    /// Start upstream on a free port (`AUTHZ` as `up.sh` takes it: `Node,RBAC` or
    /// `AlwaysAllow`).
    pub fn start(authz: &str) -> Apiserver {
        let script_dir = upstream_dir().expect("../shared/upstream");
        let dir = tempfile::tempdir().expect("tempdir");
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let out = Command::new(script_dir.join("up.sh"))
            .arg(dir.path())
            .arg(port.to_string())
            .env("AUTHZ", authz)
            .env("ADVERTISE_ADDRESS", "127.0.0.1")
            .stdin(Stdio::null())
            .output()
            .expect("up.sh");
        assert!(
            out.status.success(),
            "up.sh failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let text = std::fs::read_to_string(dir.path().join("up.env")).expect("up.env");
        let env = text
            .lines()
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Apiserver { dir, env, script_dir }
    }

    pub fn kubeconfig(&self) -> PathBuf {
        PathBuf::from(&self.env["KUBECONFIG"])
    }

    pub fn etcd_endpoint(&self) -> &str {
        &self.env["ETCD_ENDPOINT"]
    }

    /// Run kubectl against upstream.
    pub fn kubectl(&self, args: &[&str]) -> std::process::Output {
        Command::new("kubectl")
            .arg("--kubeconfig")
            .arg(self.kubeconfig())
            .args(args)
            .stdin(Stdio::null())
            .output()
            .expect("kubectl")
    }

    /// Run kubectl against upstream with `input` on its stdin.
    pub fn kubectl_stdin(&self, args: &[&str], input: &str) -> std::process::Output {
        use std::io::Write;
        let mut child = Command::new("kubectl")
            .arg("--kubeconfig")
            .arg(self.kubeconfig())
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("kubectl");
        child.stdin.take().expect("stdin").write_all(input.as_bytes()).expect("stdin");
        child.wait_with_output().expect("kubectl")
    }

    /// kubectl against upstream that must succeed; returns stdout.
    pub fn kubectl_ok(&self, args: &[&str]) -> String {
        let out = self.kubectl(args);
        assert!(
            out.status.success(),
            "kubectl (upstream) {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

impl Drop for Apiserver {
    fn drop(&mut self) {
        let _ = Command::new(self.script_dir.join("down.sh"))
            .arg(self.dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_format_escapes_round_trip() {
        assert_eq!(unescape(r#"k8s\000\n\016a\"\\\x7f"#), b"k8s\0\n\x0ea\"\\\x7f");
        assert_eq!(
            proto_file("k8s.io.apimachinery.pkg.apis.meta.v1.WatchEvent"),
            "k8s.io/apimachinery/pkg/apis/meta/v1/generated.proto"
        );
        assert_eq!(
            proto_file("k8s.io.apiextensions_apiserver.pkg.apis.apiextensions.v1.X"),
            "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1/generated.proto"
        );
        assert_eq!(proto_package("rbac.authorization.k8s.io/v1"), "k8s.io.api.rbac.v1");
        assert_eq!(proto_package("v1"), "k8s.io.api.core.v1");
    }
}
