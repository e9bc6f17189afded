//! PodSecurity admission through kubectl against the real binary (both backends): the
//! namespace labels' enforce mode refuses with upstream's message, the warn mode's
//! warnings reach kubectl, workload templates are warned about and never refused, and
//! invalid labels are refused on namespace create.

use kapi_e2e::Server;
use std::process::Output;

fn namespace(s: &Server, name: &str, labels: &[(&str, &str)]) {
    let mut yaml = format!("apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {name}\n");
    if !labels.is_empty() {
        yaml.push_str("  labels:\n");
        for (k, v) in labels {
            yaml.push_str(&format!("    pod-security.kubernetes.io/{k}: \"{v}\"\n"));
        }
    }
    let out = s.kubectl_stdin(&["create", "-f", "-"], &yaml);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

/// A pod with one privileged container `c`.
fn privileged_pod(name: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: {name}\nspec:\n  containers:\n  - name: c\n    \
         image: nginx\n    securityContext:\n      privileged: true\n"
    )
}

/// A pod that meets the restricted standard.
const COMPLIANT_POD: &str = r#"apiVersion: v1
kind: Pod
metadata:
  name: good
spec:
  securityContext:
    runAsNonRoot: true
    seccompProfile:
      type: RuntimeDefault
  containers:
  - name: c
    image: nginx
    securityContext:
      allowPrivilegeEscalation: false
      capabilities:
        drop: ["ALL"]
"#;

const RESTRICTED_DETAIL: &str = "privileged (container \"c\" must not set \
    securityContext.privileged=true), allowPrivilegeEscalation != false (container \"c\" must \
    set securityContext.allowPrivilegeEscalation=false), unrestricted capabilities (container \
    \"c\" must set securityContext.capabilities.drop=[\"ALL\"]), runAsNonRoot != true (pod or \
    container \"c\" must set securityContext.runAsNonRoot=true), seccompProfile (pod or \
    container \"c\" must set securityContext.seccompProfile.type to \"RuntimeDefault\" or \
    \"Localhost\")";

fn create(s: &Server, ns: &str, yaml: &str) -> Output {
    s.kubectl_stdin(&["-n", ns, "create", "-f", "-"], yaml)
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn enforce_restricted_refuses_a_privileged_pod_with_upstreams_message() {
    let s = Server::start();
    namespace(&s, "locked", &[("enforce", "restricted")]);
    let out = create(&s, "locked", &privileged_pod("x"));
    assert!(!out.status.success());
    let err = stderr(&out);
    let expected = format!(
        "Error from server (Forbidden): error when creating \"STDIN\": pods \"x\" is forbidden: \
         violates PodSecurity \"restricted:latest\": {RESTRICTED_DETAIL}"
    );
    assert!(err.contains(&expected), "{err}");
    assert!(!s.kubectl(&["-n", "locked", "get", "pod", "x"]).status.success(), "not stored");

    // A compliant pod is admitted without a warning.
    let out = create(&s, "locked", COMPLIANT_POD);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(!stderr(&out).contains("Warning"), "{}", stderr(&out));

    // Baseline enforcement names only the baseline violations.
    namespace(&s, "base", &[("enforce", "baseline"), ("enforce-version", "v1.30")]);
    let err = stderr(&create(&s, "base", &privileged_pod("pinned")));
    assert!(
        err.contains(
            "pods \"pinned\" is forbidden: violates PodSecurity \"baseline:v1.30\": privileged \
             (container \"c\" must not set securityContext.privileged=true)"
        ),
        "{err}"
    );
    assert!(!err.contains("allowPrivilegeEscalation"), "{err}");
}

#[test]
fn warn_restricted_accepts_with_upstreams_warning() {
    let s = Server::start();
    namespace(&s, "watched", &[("warn", "restricted"), ("audit", "restricted")]);
    let out = create(&s, "watched", &privileged_pod("x"));
    assert!(out.status.success(), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains(&format!(
            "Warning: would violate PodSecurity \"restricted:latest\": {RESTRICTED_DETAIL}"
        )),
        "{err}"
    );
    s.kubectl_ok(&["-n", "watched", "get", "pod", "x"]);

    // Unlabeled namespaces are privileged: no warning.
    let out = create(&s, "default", &privileged_pod("free"));
    assert!(out.status.success() && !stderr(&out).contains("Warning"), "{}", stderr(&out));
}

#[test]
fn workloads_in_an_enforce_namespace_are_accepted_with_a_warning() {
    let s = Server::start();
    namespace(&s, "locked", &[("enforce", "restricted")]);
    let deployment = r#"apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
      - name: c
        image: nginx
        securityContext:
          privileged: true
"#;
    let out = create(&s, "locked", deployment);
    assert!(out.status.success(), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains(&format!(
            "Warning: would violate PodSecurity \"restricted:latest\": {RESTRICTED_DETAIL}"
        )),
        "{err}"
    );
    s.kubectl_ok(&["-n", "locked", "get", "deployment", "web"]);

    let cronjob = r#"apiVersion: batch/v1
kind: CronJob
metadata:
  name: tick
spec:
  schedule: "* * * * *"
  jobTemplate:
    spec:
      template:
        spec:
          restartPolicy: Never
          hostNetwork: true
          containers:
          - name: c
            image: busybox
"#;
    let out = create(&s, "locked", cronjob);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stderr(&out).contains("host namespaces (hostNetwork)"), "{}", stderr(&out));
}

#[test]
fn invalid_pod_security_labels_are_refused_on_namespace_create() {
    let s = Server::start();
    let yaml = "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: odd\n  labels:\n    \
                pod-security.kubernetes.io/enforce: strict\n";
    let out = s.kubectl_stdin(&["create", "-f", "-"], yaml);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(
        err.contains(
            "Namespace \"odd\" is invalid: metadata.labels[pod-security.kubernetes.io/enforce]: \
             Invalid value: \"strict\": must be one of privileged, baseline, restricted"
        ),
        "{err}"
    );
}

/// Labeling a namespace restricted warns about the pods already there (a namespace
/// update passes the admission chain like every write).
#[test]
fn labeling_a_namespace_restricted_warns_about_existing_pods() {
    let s = Server::start();
    namespace(&s, "team", &[]);
    assert!(create(&s, "team", &privileged_pod("old")).status.success());
    let out =
        s.kubectl(&["label", "namespace", "team", "pod-security.kubernetes.io/enforce=restricted"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains(
            "Warning: existing pods in namespace \"team\" violate the new PodSecurity enforce \
             level \"restricted:latest\""
        ),
        "{err}"
    );
    assert!(
        err.contains(
            "Warning: old: privileged, allowPrivilegeEscalation != false, unrestricted \
             capabilities, runAsNonRoot != true, seccompProfile"
        ),
        "{err}"
    );
}
