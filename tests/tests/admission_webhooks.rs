//! MutatingAdmissionWebhook and ValidatingAdmissionWebhook against the real kapi binary
//! with kubectl (issue #18), with real HTTPS webhook servers started by the test
//! (`kapi_e2e::webhook`, trusted through the configurations' `caBundle`, reached by
//! `url`). Shown on creates (the write the admission chain runs on for every backend
//! today): a validating webhook's refusal in upstream's words, with its namespace
//! selector, match condition, warning and the review's fields; a mutating webhook's
//! JSON patch; failurePolicy Fail and Ignore with the webhook down; a webhook timing
//! out; reinvocation of an `IfNeeded` webhook after a later one changed the object; a
//! server-side dry run reaching a `NoneOnDryRun` webhook; configurations defaulted and
//! validated as upstream's (compared with upstream's answers). Runs on both backends.
//!
//! A configuration reaches the webhook plugins through their watch cache, so each test
//! retries its first request (with fresh names) until the configuration is in effect.

use kapi_e2e::webhook::{WebhookServer, admission_answer};
use kapi_e2e::{Server, eventually};
use serde_json::{Value, json};
use std::process::Output;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Run `attempt(n)` with n = 0, 1, ... until `done` accepts its output (20 s at most);
/// the last output.
fn until(mut attempt: impl FnMut(usize) -> Output, done: impl Fn(&Output) -> bool) -> Output {
    let deadline = Instant::now() + Duration::from_secs(20);
    for n in 0.. {
        let out = attempt(n);
        if done(&out) || Instant::now() > deadline {
            return out;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    unreachable!()
}

/// One webhook entry of a configuration.
fn webhook(name: &str, url: &str, ca: &str, extra: Value) -> Value {
    let mut w = json!({
        "name": name,
        "clientConfig": {"url": url, "caBundle": ca},
        "rules": [{"operations": ["CREATE"], "apiGroups": [""], "apiVersions": ["v1"],
                   "resources": ["configmaps"]}],
        "sideEffects": "None",
        "admissionReviewVersions": ["v1"],
    });
    for (k, v) in extra.as_object().into_iter().flatten() {
        w[k] = v.clone();
    }
    w
}

fn configure(server: &Server, kind: &str, name: &str, webhooks: Vec<Value>) {
    let config = json!({
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": kind,
        "metadata": {"name": name},
        "webhooks": webhooks,
    });
    let out = server.kubectl_stdin(&["create", "-f", "-"], &config.to_string());
    assert!(out.status.success(), "creating {kind} {name}: {}", stderr(&out));
}

fn namespace(server: &Server, name: &str, label: Option<&str>) {
    server.kubectl_ok(&["create", "namespace", name]);
    if let Some(l) = label {
        server.kubectl_ok(&["label", "namespace", name, l]);
    }
}

fn create_cm(server: &Server, ns: &str, name: &str) -> Output {
    server.kubectl(&["create", "configmap", name, "-n", ns, "--from-literal=k=v"])
}

fn labels(server: &Server, ns: &str, name: &str) -> Value {
    let out = server.kubectl_ok(&["get", "configmap", name, "-n", ns, "-o", "json"]);
    let cm: Value = serde_json::from_str(&out).unwrap();
    cm["metadata"]["labels"].clone()
}

/// A validating webhook refuses ConfigMaps named `bad-*` with a message of its own and
/// warns on the ones it allows; it is consulted only in namespaces its selector picks,
/// not for objects its match condition excludes; the review carries upstream's fields.
#[test]
fn a_validating_webhook_denies_with_upstreams_message() {
    let server = Server::start();
    let hook = WebhookServer::start(|r| {
        let review: Value = serde_json::from_slice(&r.body).unwrap_or_default();
        let name = review["request"]["name"].as_str().unwrap_or("");
        let response = if name.starts_with("bad-") {
            json!({"allowed": false, "status": {"code": 403, "message": "bad names are not allowed"}})
        } else {
            json!({"allowed": true, "warnings": ["checked by the test webhook"]})
        };
        admission_answer(&r.body, response)
    });
    namespace(&server, "guarded", Some("webhooks=on"));
    namespace(&server, "open", None);
    configure(
        &server,
        "ValidatingWebhookConfiguration",
        "deny-bad",
        vec![webhook(
            "deny.example.com",
            &hook.url("/validate"),
            &hook.ca_bundle(),
            json!({
                "namespaceSelector": {"matchLabels": {"webhooks": "on"}},
                "matchConditions": [{"name": "not-skipped", "expression": "object.metadata.name != 'bad-skipped'"}],
            }),
        )],
    );
    let denied =
        until(|n| create_cm(&server, "guarded", &format!("bad-{n}")), |o| !o.status.success());
    let err = stderr(&denied);
    assert!(
        err.contains(r#"is forbidden: admission webhook "deny.example.com" denied the request: bad names are not allowed"#)
            && err.contains(r#"configmaps "bad-"#),
        "{err}"
    );
    let allowed = create_cm(&server, "guarded", "good");
    assert!(allowed.status.success(), "{}", stderr(&allowed));
    assert!(
        stderr(&allowed).contains("Warning: checked by the test webhook"),
        "{}",
        stderr(&allowed)
    );
    let skipped = create_cm(&server, "guarded", "bad-skipped");
    assert!(skipped.status.success(), "the match condition excludes it: {}", stderr(&skipped));
    let elsewhere = create_cm(&server, "open", "bad-open");
    assert!(elsewhere.status.success(), "not selected: {}", stderr(&elsewhere));
    let reviews = hook.received_json();
    let names: Vec<&str> = reviews.iter().filter_map(|r| r["request"]["name"].as_str()).collect();
    assert!(!names.contains(&"bad-skipped") && !names.contains(&"bad-open"), "{names:?}");
    let good = reviews.iter().find(|r| r["request"]["name"] == "good").expect("the review of good");
    assert_eq!(good["apiVersion"], "admission.k8s.io/v1");
    let req = &good["request"];
    assert_eq!(req["kind"], json!({"group": "", "version": "v1", "kind": "ConfigMap"}));
    assert_eq!(req["resource"], json!({"group": "", "version": "v1", "resource": "configmaps"}));
    assert_eq!(req["requestResource"], req["resource"]);
    assert_eq!(
        (req["namespace"].clone(), req["operation"].clone()),
        (json!("guarded"), json!("CREATE"))
    );
    assert_eq!(req["dryRun"], false);
    assert_eq!(req["object"]["data"], json!({"k": "v"}));
    assert_eq!(req["oldObject"], Value::Null);
    assert_eq!(req["options"]["kind"], "CreateOptions");
    assert!(req["userInfo"]["username"].is_string(), "{req}");
    assert!(req["uid"].as_str().is_some_and(|u| !u.is_empty()));
}

/// A mutating webhook's JSONPatch is applied to the object stored.
#[test]
fn a_mutating_webhook_adds_a_label_by_json_patch() {
    let server = Server::start();
    let hook = WebhookServer::start(|r| {
        use base64::Engine;
        let patch =
            r#"[{"op":"add","path":"/metadata/labels","value":{"mutated-by":"test-webhook"}}]"#;
        let patch = base64::engine::general_purpose::STANDARD.encode(patch);
        admission_answer(
            &r.body,
            json!({"allowed": true, "patchType": "JSONPatch", "patch": patch}),
        )
    });
    namespace(&server, "m", None);
    let hooks =
        vec![webhook("label.example.com", &hook.url("/mutate"), &hook.ca_bundle(), json!({}))];
    configure(&server, "MutatingWebhookConfiguration", "add-label", hooks);
    let (mut n, mut last) = (0, String::new());
    eventually(Duration::from_secs(20), || {
        last = format!("cm-{n}");
        n += 1;
        create_cm(&server, "m", &last).status.success()
            && labels(&server, "m", &last) != Value::Null
    });
    assert_eq!(labels(&server, "m", &last), json!({"mutated-by": "test-webhook"}));
}

/// With the webhook unreachable, failurePolicy Fail refuses the write with upstream's
/// internal error and Ignore lets it through.
#[test]
fn failure_policy_fail_refuses_and_ignore_admits_when_the_webhook_is_down() {
    let server = Server::start();
    let down = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("https://127.0.0.1:{}/down", down.local_addr().unwrap().port());
    drop(down);
    let ca =
        WebhookServer::start(|r| admission_answer(&r.body, json!({"allowed": true}))).ca_bundle();
    namespace(&server, "fail", Some("policy=fail"));
    namespace(&server, "ignore", Some("policy=ignore"));
    let select = |p: &str| json!({"namespaceSelector": {"matchLabels": {"policy": p}}});
    let fail = json!({"failurePolicy": "Fail"});
    let mut fail_hook = webhook("down-fail.example.com", &url, &ca, select("fail"));
    fail_hook["failurePolicy"] = fail["failurePolicy"].clone();
    let mut ignore_hook = webhook("down-ignore.example.com", &url, &ca, select("ignore"));
    ignore_hook["failurePolicy"] = json!("Ignore");
    configure(&server, "ValidatingWebhookConfiguration", "down", vec![fail_hook, ignore_hook]);
    let refused = until(|n| create_cm(&server, "fail", &format!("f-{n}")), |o| !o.status.success());
    let err = stderr(&refused);
    let expected = format!(
        r#"Internal error occurred: failed calling webhook "down-fail.example.com": failed to call webhook: Post "{url}?timeout=10s": "#
    );
    assert!(err.contains(&expected), "{err}");
    let admitted = create_cm(&server, "ignore", "i-0");
    assert!(admitted.status.success(), "{}", stderr(&admitted));
}

/// A webhook slower than its timeoutSeconds fails the call (Fail: the write is
/// refused with upstream's deadline error and the `timeout` the webhook was told).
#[test]
fn a_webhook_slower_than_its_timeout_fails_the_call() {
    let server = Server::start();
    let hook = WebhookServer::start(|r| {
        std::thread::sleep(Duration::from_secs(4));
        admission_answer(&r.body, json!({"allowed": true}))
    });
    namespace(&server, "slow", None);
    let url = hook.url("/slow");
    let hooks =
        vec![webhook("slow.example.com", &url, &hook.ca_bundle(), json!({"timeoutSeconds": 1}))];
    configure(&server, "ValidatingWebhookConfiguration", "slow", hooks);
    let refused = until(|n| create_cm(&server, "slow", &format!("s-{n}")), |o| !o.status.success());
    let err = stderr(&refused);
    let expected = format!(
        r#"Internal error occurred: failed calling webhook "slow.example.com": failed to call webhook: Post "{url}?timeout=1s": context deadline exceeded"#
    );
    assert!(err.contains(&expected), "{err}");
}

/// Two mutating webhooks (configurations `a-first`, `b-second`): the second's change
/// makes the first (reinvocationPolicy IfNeeded) run again, and it sees that change.
#[test]
fn an_if_needed_webhook_is_reinvoked_after_a_later_change() {
    use base64::Engine;
    let server = Server::start();
    let encode = |p: Value| base64::engine::general_purpose::STANDARD.encode(p.to_string());
    let first_calls = Arc::new(AtomicUsize::new(0));
    let calls = first_calls.clone();
    let first = WebhookServer::start(move |r| {
        let review: Value = serde_json::from_slice(&r.body).unwrap_or_default();
        let labels = &review["request"]["object"]["metadata"]["labels"];
        if review["request"]["name"].as_str().is_some_and(|n| n.starts_with("r-")) {
            calls.fetch_add(1, Ordering::SeqCst);
        }
        let patch = if labels.is_null() {
            json!([{"op": "add", "path": "/metadata/labels", "value": {"first": "yes"}}])
        } else if labels.get("second").is_some() && labels.get("first-saw-second").is_none() {
            json!([{"op": "add", "path": "/metadata/labels/first-saw-second", "value": "yes"}])
        } else {
            json!([])
        };
        admission_answer(
            &r.body,
            json!({"allowed": true, "patchType": "JSONPatch", "patch": encode(patch)}),
        )
    });
    let second = WebhookServer::start(move |r| {
        let patch = json!([{"op": "add", "path": "/metadata/labels/second", "value": "yes"}]);
        let patch = base64::engine::general_purpose::STANDARD.encode(patch.to_string());
        admission_answer(
            &r.body,
            json!({"allowed": true, "patchType": "JSONPatch", "patch": patch}),
        )
    });
    namespace(&server, "re", None);
    let if_needed = json!({"reinvocationPolicy": "IfNeeded"});
    let a = webhook("first.example.com", &first.url("/first"), &first.ca_bundle(), if_needed);
    let b = webhook("second.example.com", &second.url("/second"), &second.ca_bundle(), json!({}));
    configure(&server, "MutatingWebhookConfiguration", "b-second", vec![b]);
    configure(&server, "MutatingWebhookConfiguration", "a-first", vec![a]);
    let (mut n, mut last) = (0, String::new());
    eventually(Duration::from_secs(20), || {
        last = format!("r-{n}");
        n += 1;
        if !create_cm(&server, "re", &last).status.success() {
            return false;
        }
        let l = labels(&server, "re", &last);
        l.get("first").is_some() && l.get("second").is_some()
    });
    assert_eq!(
        labels(&server, "re", &last),
        json!({"first": "yes", "second": "yes", "first-saw-second": "yes"})
    );
    let reviews = first.received_json();
    let of_last = reviews.iter().filter(|r| r["request"]["name"] == last.as_str()).count();
    assert_eq!(of_last, 2, "the first webhook ran twice for {last}");
    assert!(first_calls.load(Ordering::SeqCst) >= 2);
}

/// A server-side dry run reaches a webhook that declares `sideEffects: NoneOnDryRun`,
/// with `dryRun: true` in its review, and nothing is stored. (A webhook with side effects,
/// `Unknown` or `Some`, can no longer be configured in v1: see
/// `webhook_configurations_are_defaulted_and_validated_as_upstream`.)
#[test]
fn a_dry_run_reaches_a_webhook_without_side_effects_on_dry_run() {
    let server = Server::start();
    let hook = WebhookServer::start(|r| admission_answer(&r.body, json!({"allowed": true})));
    namespace(&server, "dry", None);
    let hooks = vec![webhook(
        "effects.example.com",
        &hook.url("/effects"),
        &hook.ca_bundle(),
        json!({"sideEffects": "NoneOnDryRun"}),
    )];
    configure(&server, "ValidatingWebhookConfiguration", "effects", hooks);
    let dry = until(
        |n| {
            server.kubectl(&[
                "create",
                "configmap",
                &format!("d-{n}"),
                "-n",
                "dry",
                "--dry-run=server",
            ])
        },
        |_| hook.received_json().iter().any(|r| r["request"]["dryRun"] == true),
    );
    assert!(dry.status.success(), "{}", stderr(&dry));
    let listed = server.kubectl_ok(&["get", "configmaps", "-n", "dry", "-o", "name"]);
    assert!(!listed.contains("configmap/d-"), "a dry run stored nothing: {listed}");
    let real = create_cm(&server, "dry", "d-real");
    assert!(real.status.success(), "{}", stderr(&real));
}

/// Configurations that upstream refuses, each with one mistake (v1.21's rules, which
/// v1.35 keeps), and one it accepts.
fn webhook_configuration_cases() -> Vec<(&'static str, Value)> {
    let base =
        |extra: Value| webhook("check.example.com", "https://hooks.example.com/check", "", extra);
    let cases = vec![
        ("short-name", vec![webhook("short.name", "https://a.example.com", "", json!({}))]),
        ("side-effects", vec![base(json!({"sideEffects": "Unknown"}))]),
        (
            "no-side-effects",
            vec![{
                let mut w = base(json!({}));
                w.as_object_mut().unwrap().remove("sideEffects");
                w
            }],
        ),
        ("http", vec![base(json!({"clientConfig": {"url": "http://a.example.com/x?y=1"}}))]),
        (
            "both",
            vec![base(json!({"clientConfig": {
            "url": "https://a.example.com", "service": {"namespace": "n", "name": "s"}}}))],
        ),
        (
            "port",
            vec![base(json!({"clientConfig": {"service": {
            "namespace": "n", "name": "s", "port": 70000, "path": "no-slash"}}}))],
        ),
        ("timeout", vec![base(json!({"timeoutSeconds": 31, "failurePolicy": "Maybe"}))]),
        ("versions", vec![base(json!({"admissionReviewVersions": ["v2", "v2"]}))]),
        (
            "rules",
            vec![base(json!({"rules": [{"operations": ["*", "CREATE"],
            "apiGroups": [""], "apiVersions": ["v1"], "resources": ["pods/*", "pods/status"],
            "scope": "Everywhere"}]}))],
        ),
        ("twice", vec![base(json!({})), base(json!({}))]),
        ("good", vec![base(json!({"clientConfig": {"service": {"namespace": "n", "name": "s"}}}))]),
    ];
    cases
        .into_iter()
        .map(|(name, hooks)| {
            let config = json!({
                "apiVersion": "admissionregistration.k8s.io/v1",
                "kind": "ValidatingWebhookConfiguration",
                "metadata": {"name": name},
                "webhooks": hooks,
            });
            (name, config)
        })
        .collect()
}

/// Each case's answer (success and stderr), then the accepted one as stored (its
/// webhook without the fields the test set itself).
fn webhook_configuration_answers(
    kubectl: &dyn Fn(&[&str], &str) -> Output,
) -> (Vec<(bool, String)>, Value) {
    let answers = webhook_configuration_cases()
        .into_iter()
        .map(|(_, config)| {
            let out = kubectl(&["create", "--validate=false", "-f", "-"], &config.to_string());
            (out.status.success(), stderr(&out))
        })
        .collect();
    let out = kubectl(&["get", "validatingwebhookconfiguration", "good", "-o", "json"], "");
    let stored: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    (answers, stored["webhooks"][0].clone())
}

/// Regression (webhook configurations were stored as sent): a Validating- or
/// MutatingWebhookConfiguration is defaulted as upstream's v1 (failurePolicy Fail,
/// matchPolicy Equivalent, empty selectors, timeoutSeconds 10, rule scope `*`, service
/// port 443) and refused with 422 and upstream's messages when a webhook is wrong (name
/// not fully qualified, side effects other than None/NoneOnDryRun, a non-https url,
/// both url and service, a bad port or path, timeout out of 1..30, unknown enums,
/// review versions, rule wildcards, a name twice). Compared answer by answer with
/// upstream's when `../shared/upstream` is present.
#[test]
fn webhook_configurations_are_defaulted_and_validated_as_upstream() {
    let server = Server::start();
    let (got, stored) = webhook_configuration_answers(&|a, input| server.kubectl_stdin(a, input));
    let cases = webhook_configuration_cases();
    for ((name, _), (ok, err)) in cases.iter().zip(&got) {
        if *name == "good" {
            assert!(ok, "the good configuration is accepted: {err}");
        } else {
            assert!(!ok && err.contains("is invalid"), "{name} is refused as Invalid: {err}");
        }
    }
    assert!(got[1].1.contains(
        r#"webhooks[0].sideEffects: Unsupported value: "Unknown": supported values: "None", "NoneOnDryRun""#
    ), "{}", got[1].1);
    assert_eq!(stored["failurePolicy"], "Fail");
    assert_eq!(stored["matchPolicy"], "Equivalent");
    assert_eq!(stored["timeoutSeconds"], 10);
    assert_eq!(stored["namespaceSelector"], json!({}));
    assert_eq!(stored["rules"][0]["scope"], "*");
    assert_eq!(stored["clientConfig"]["service"]["port"], 443);
    if kapi_e2e::upstream::upstream_dir().is_none() {
        eprintln!("not compared: ../shared/upstream is absent");
        return;
    }
    let up = kapi_e2e::upstream::Apiserver::start("AlwaysAllow");
    let upstream_kubectl = |args: &[&str], input: &str| up.kubectl_stdin(args, input);
    let (want, want_stored) = webhook_configuration_answers(&upstream_kubectl);
    for (((name, _), g), w) in cases.iter().zip(&got).zip(&want) {
        assert_eq!(g, w, "{name}: kapi (left) and upstream (right) answer alike");
    }
    assert_eq!(stored, want_stored, "kapi (left) and upstream (right) store the same defaults");
}
