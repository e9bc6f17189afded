//! What the admission policy suites (validating, mutating, the `authorizer` library)
//! share: servers with the policy plugins and token users, applying manifests, and
//! writes retried until a policy is in force (a policy's watch cache is a moment
//! behind its write, as upstream's informers are).

use crate::{Server, ServerOptions, eventually};
use serde_json::Value;
use std::process::Output;
use std::time::Duration;

/// Alice's bearer token in [`start`]'s token file.
pub const ALICE: &str = "alice-token-0123456789";
/// Bob's bearer token in [`start`]'s token file.
pub const BOB: &str = "bob-token-0123456789";

/// What a policy server serves on top of the defaults.
#[derive(Debug, Clone, Copy, Default)]
pub struct Setup {
    /// Serve `admissionregistration.k8s.io/v1beta1` and enable MutatingAdmissionPolicy.
    pub mutating: bool,
    /// Authenticate alice ([`ALICE`]) and bob ([`BOB`]) by token.
    pub users: bool,
}

/// A server set up as `setup` says.
pub fn start(setup: Setup) -> Server {
    let mut extra_args = Vec::new();
    if setup.mutating {
        extra_args.push("--runtime-config=admissionregistration.k8s.io/v1beta1=true".into());
        extra_args.push("--enable-admission-plugins=MutatingAdmissionPolicy".into());
    }
    let dir = tempfile::tempdir().expect("tempdir");
    if setup.users {
        let file = dir.path().join("tokens.csv");
        std::fs::write(&file, format!("{ALICE},alice,uid-a\n{BOB},bob,uid-b\n")).expect("tokens");
        extra_args.push("--token-auth-file".into());
        extra_args.push(file.display().to_string());
    }
    let s = Server::start_with(ServerOptions { extra_args, ..Default::default() });
    std::mem::forget(dir); // the server reads the token file at start
    s
}

/// kubectl's standard error.
pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// kubectl `args` with `yaml` on stdin, which must succeed.
pub fn stdin_ok(s: &Server, args: &[&str], yaml: &str) {
    let out = s.kubectl_stdin(args, yaml);
    assert!(out.status.success(), "kubectl {args:?}: {}", stderr(&out));
}

/// `kubectl apply -f -` of `yaml`, which must succeed.
pub fn apply(s: &Server, yaml: &str) {
    stdin_ok(s, &["apply", "-f", "-"], yaml);
}

/// kubectl `args` with `-o json`, parsed.
pub fn get(s: &Server, args: &[&str]) -> Value {
    let mut all = args.to_vec();
    all.extend(["-o", "json"]);
    serde_json::from_str(&s.kubectl_ok(&all)).expect("json")
}

/// Create namespace `ns` labelled `label` (`key=value`).
pub fn labelled_namespace(s: &Server, ns: &str, label: &str) {
    s.kubectl_ok(&["create", "namespace", ns]);
    s.kubectl_ok(&["label", "namespace", ns, label]);
}

/// Create `yaml`, retrying while the policy may not be in force yet; the first
/// refusal, or the last answer.
pub fn create_until_refused(s: &Server, yaml: &str) -> Output {
    let mut last = None;
    eventually(Duration::from_secs(20), || {
        let out = s.kubectl_stdin(&["create", "-f", "-"], yaml);
        let refused = !out.status.success();
        if !refused {
            let _ = s.kubectl_stdin(&["delete", "-f", "-", "--wait=false"], yaml);
        }
        last = Some(out);
        refused
    });
    last.expect("one attempt")
}

/// Create `yaml` until the object comes back with the label `key` (the mutating
/// policy is in force); the stored object, as `kubectl get` with `args` shows it.
pub fn create_until_labelled(s: &Server, yaml: &str, args: &[&str], key: &str) -> Value {
    let mut last = Value::Null;
    let ok = eventually(Duration::from_secs(20), || {
        let out = s.kubectl_stdin(&["create", "-o", "json", "-f", "-"], yaml);
        if !out.status.success() {
            return false;
        }
        let obj: Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
        if obj["metadata"]["labels"].get(key).is_some() {
            last = get(s, args);
            return true;
        }
        let _ = s.kubectl_stdin(&["delete", "-f", "-", "--wait=false"], yaml);
        false
    });
    assert!(ok, "the policy never mutated the object");
    last
}
