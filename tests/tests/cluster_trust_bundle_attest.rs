//! ClusterTrustBundleAttest through kubectl (issue #18): with
//! `certificates.k8s.io/v1beta1` served, a ClusterTrustBundle naming a signer may be
//! created or changed only by a user RBAC allows to `attest` on that signer (or its
//! domain wildcard); a bundle without a signer needs nothing more. Upstream's message.
//! And the bundle itself (upstream's validation): PEM CERTIFICATE blocks of CA
//! certificates only, no headers, at least one. Runs on both backends.

use kapi_e2e::{Server, ServerOptions};
use std::process::Output;

const ALICE: &str = "alice-token-0123456789";

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn with_alice() -> Server {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("tokens.csv");
    std::fs::write(&file, format!("{ALICE},alice,uid-a\n")).expect("token file");
    let extra_args = vec![
        "--token-auth-file".into(),
        file.display().to_string(),
        "--runtime-config=certificates.k8s.io/v1beta1=true".into(),
    ];
    let s = Server::start_with(ServerOptions { extra_args, ..Default::default() });
    std::mem::forget(dir); // the server reads the file at start
    s
}

/// The command succeeded (else its stderr is the failure).
fn ok(out: Output) {
    assert!(out.status.success(), "{}", stderr(&out));
}

fn apply(s: &Server, yaml: &str) {
    ok(s.kubectl_stdin(&["apply", "-f", "-"], yaml));
}

/// A self-signed CA certificate's PEM, indented for a YAML block scalar.
fn ca_pem() -> String {
    cert_pem(true)
}

/// A self-signed certificate's PEM (a CA's or a leaf's), indented for a YAML block scalar.
fn cert_pem(ca: bool) -> String {
    let key = rcgen::KeyPair::generate().expect("key");
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("params");
    if ca {
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    }
    let pem = params.self_signed(&key).expect("cert").pem();
    indent(&pem)
}

fn indent(text: &str) -> String {
    text.lines().map(|l| format!("    {l}\n")).collect()
}

fn bundle(name: &str, signer: Option<&str>, pem: &str) -> String {
    let signer = signer.map(|s| format!("  signerName: {s}\n")).unwrap_or_default();
    format!(
        "apiVersion: certificates.k8s.io/v1beta1\nkind: ClusterTrustBundle\nmetadata: {{name: \"{name}\"}}\nspec:\n{signer}  trustBundle: |\n{pem}"
    )
}

/// Alice may write ClusterTrustBundles (and nothing about signers).
const WRITER: &str = r#"
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: ctb-writer}
rules:
- apiGroups: [certificates.k8s.io]
  resources: [clustertrustbundles]
  verbs: [create, get, list, update, patch]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: ctb-writer}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: ctb-writer}
subjects: [{kind: User, name: alice}]
"#;

/// Alice may attest for every signer of `example.com`.
const ATTEST: &str = r#"
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: example-attester}
rules:
- apiGroups: [certificates.k8s.io]
  resources: [signers]
  resourceNames: ["example.com/*"]
  verbs: [attest]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: example-attester}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: example-attester}
subjects: [{kind: User, name: alice}]
"#;

#[test]
fn bundles_naming_a_signer_need_the_attest_permission() {
    let s = with_alice();
    apply(&s, WRITER);
    let pem = ca_pem();
    let create = |yaml: &str| s.kubectl_token(ALICE, &["create", "-f", "-"], Some(yaml));

    // Without a signer name there is nothing to attest.
    ok(create(&bundle("plain", None, &pem)));

    let signed = bundle("example.com:signer:one", Some("example.com/signer"), &pem);
    let out = create(&signed);
    assert!(!out.status.success(), "created without attest");
    let err = stderr(&out);
    assert!(
        err.contains(
            r#"clustertrustbundles.certificates.k8s.io "example.com:signer:one" is forbidden: user not permitted to attest for signerName "example.com/signer""#
        ),
        "{err}"
    );

    // The admin (system:masters) may; alice still may not change it.
    ok(s.kubectl_stdin(&["create", "-f", "-"], &signed));
    let label = ["label", "clustertrustbundle", "example.com:signer:one", "team=a"];
    let out = s.kubectl_token(ALICE, &label, None);
    assert!(stderr(&out).contains("user not permitted to attest"), "{}", stderr(&out));

    // The domain wildcard grants attesting every signer of the domain.
    apply(&s, ATTEST);
    ok(s.kubectl_token(ALICE, &label, None));
    ok(create(&bundle("example.com:other:two", Some("example.com/other"), &pem)));
}

#[test]
fn trust_bundles_hold_only_ca_certificates() {
    let s = with_alice();
    let create =
        |name: &str, pem: &str| s.kubectl_stdin(&["create", "-f", "-"], &bundle(name, None, pem));
    let refused = |out: Output, detail: &str| {
        assert!(!out.status.success(), "accepted, expected {detail:?}");
        let want = format!("spec.trustBundle: Invalid value: \"<value omitted>\": {detail}");
        assert!(stderr(&out).contains(&want), "want {want:?} in {}", stderr(&out));
    };
    let key = indent("-----BEGIN PRIVATE KEY-----\naGk=\n-----END PRIVATE KEY-----\n");
    refused(
        create("key", &format!("{}{key}", ca_pem())),
        "entry 1 has bad block type: PRIVATE KEY",
    );
    refused(create("leaf", &cert_pem(false)), "entry 0 does not have the CA bit set");
    let junk = indent("-----BEGIN CERTIFICATE-----\naGVsbG8=\n-----END CERTIFICATE-----\n");
    refused(create("junk", &junk), "entry 0 does not parse as X.509");
    refused(
        create("none", &indent("no certificates here")),
        "at least one trust anchor must be provided",
    );
    let pem = ca_pem();
    refused(create("twice", &format!("{pem}{pem}")), "duplicate trust anchor (indices [0 1])");

    // A good bundle, and changing it to a bad one is refused too.
    ok(create("good", &pem));
    let patch = r#"{"spec":{"trustBundle":"not PEM"}}"#;
    let out = s.kubectl(&["patch", "clustertrustbundle", "good", "--type=merge", "-p", patch]);
    refused(out, "at least one trust anchor must be provided");
}
