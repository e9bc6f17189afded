//! Webhook configuration defaults and validation, with upstream's messages.

use super::*;

fn hook(extra: Value) -> Value {
    let mut w = json!({
        "name": "check.example.com",
        "clientConfig": {"url": "https://hooks.example.com/check"},
        "rules": [{"operations": ["CREATE"], "apiGroups": [""], "apiVersions": ["v1"],
                   "resources": ["configmaps"]}],
        "sideEffects": "None",
        "admissionReviewVersions": ["v1"],
    });
    for (k, v) in extra.as_object().into_iter().flatten() {
        if v.is_null() {
            w.as_object_mut().unwrap().remove(k);
        } else {
            w[k] = v.clone();
        }
    }
    w
}

fn config(hooks: Vec<Value>) -> Value {
    json!({"metadata": {"name": "c"}, "webhooks": hooks})
}

fn messages(errs: Vec<FieldError>) -> Vec<String> {
    errs.into_iter().map(|e| e.message).collect()
}

fn validating(hooks: Vec<Value>) -> Vec<String> {
    messages(ValidatingWebhookConfigurations.validate(&config(hooks)))
}

fn mutating(hooks: Vec<Value>) -> Vec<String> {
    messages(MutatingWebhookConfigurations.validate(&config(hooks)))
}

#[test]
fn a_webhook_is_defaulted_as_upstreams_v1() {
    let mut obj = config(vec![hook(json!({
        "clientConfig": {"service": {"namespace": "ns", "name": "svc"}}
    }))]);
    MutatingWebhookConfigurations.default(&mut obj);
    let w = &obj["webhooks"][0];
    assert_eq!(w["failurePolicy"], "Fail");
    assert_eq!(w["matchPolicy"], "Equivalent");
    assert_eq!(w["namespaceSelector"], json!({}));
    assert_eq!(w["objectSelector"], json!({}));
    assert_eq!(w["timeoutSeconds"], 10);
    assert_eq!(w["reinvocationPolicy"], "Never");
    assert_eq!(w["rules"][0]["scope"], "*");
    assert_eq!(w["clientConfig"]["service"]["port"], 443);
    let mut obj = config(vec![hook(json!({}))]);
    ValidatingWebhookConfigurations.default(&mut obj);
    assert!(obj["webhooks"][0].get("reinvocationPolicy").is_none());
    assert!(validating(vec![obj["webhooks"][0].clone()]).is_empty());
}

#[test]
fn side_effects_must_be_none_or_none_on_dry_run() {
    assert_eq!(
        validating(vec![hook(json!({"sideEffects": null}))]),
        ["webhooks[0].sideEffects: Required value: must specify one of None, NoneOnDryRun"]
    );
    assert_eq!(
        validating(vec![hook(json!({"sideEffects": "Unknown"}))]),
        [
            "webhooks[0].sideEffects: Unsupported value: \"Unknown\": supported values: \"None\", \"NoneOnDryRun\""
        ]
    );
    assert!(validating(vec![hook(json!({"sideEffects": "NoneOnDryRun"}))]).is_empty());
}

#[test]
fn names_are_fully_qualified_and_unique() {
    let errs = validating(vec![hook(json!({"name": "short.name"})), hook(json!({}))]);
    assert_eq!(
        errs,
        [
            "webhooks[0].name: Invalid value: \"short.name\": should be a domain with at least three segments separated by dots"
        ]
    );
    let errs = validating(vec![hook(json!({})), hook(json!({}))]);
    assert_eq!(errs, ["webhooks[1].name: Duplicate value: \"check.example.com\""]);
    let errs = validating(vec![hook(json!({"name": null}))]);
    assert_eq!(errs, ["webhooks[0].name: Required value"]);
}

#[test]
fn the_client_config_needs_exactly_one_https_url_or_service() {
    let both = hook(json!({"clientConfig": {
        "url": "https://a.example.com", "service": {"namespace": "n", "name": "s"}}}));
    assert_eq!(
        validating(vec![both]),
        ["webhooks[0].clientConfig: Required value: exactly one of url or service is required"]
    );
    let plain = hook(json!({"clientConfig": {"url": "http://a.example.com/x?y=1#z"}}));
    assert_eq!(
        validating(vec![plain]),
        [
            "webhooks[0].clientConfig.url: Invalid value: \"http\": 'https' is the only allowed URL scheme; desired format: https://host[/path]",
            "webhooks[0].clientConfig.url: Invalid value: \"z\": fragments are not permitted in the URL",
            "webhooks[0].clientConfig.url: Invalid value: \"y=1\": query parameters are not permitted in the URL",
        ]
    );
    let service = hook(json!({"clientConfig": {"service": {
        "namespace": "n", "name": "s", "port": 70000, "path": "no-slash//x"}}}));
    let errs = validating(vec![service]);
    assert!(errs.contains(&"webhooks[0].clientConfig.service.port: Invalid value: 70000: port is not valid: must be between 1 and 65535, inclusive".to_string()), "{errs:?}");
    assert!(errs.contains(&"webhooks[0].clientConfig.service.path: Invalid value: \"no-slash//x\": must start with a '/'".to_string()), "{errs:?}");
    assert!(errs.iter().any(|e| e.contains("segment[1] may not be empty")), "{errs:?}");
}

#[test]
fn rules_follow_upstreams_wildcard_rules() {
    let r = json!({"rules": [{"operations": ["*", "CREATE"], "apiGroups": [],
        "apiVersions": ["v1"], "resources": ["*", "pods"], "scope": "Everywhere"}]});
    let errs = validating(vec![hook(r)]);
    assert_eq!(
        errs,
        [
            "webhooks[0].rules[0].operations: Invalid value: []admissionregistration.OperationType{\"*\", \"CREATE\"}: if '*' is present, must not specify other operations",
            "webhooks[0].rules[0].apiGroups: Required value",
            "webhooks[0].rules[0].resources: Invalid value: []string{\"*\", \"pods\"}: if '*' is present, must not specify other resources without subresources",
            "webhooks[0].rules[0].scope: Unsupported value: \"Everywhere\": supported values: \"*\", \"Cluster\", \"Namespaced\"",
        ]
    );
    let subs = json!({"rules": [{"operations": ["UPDATE"], "apiGroups": [""],
        "apiVersions": ["v1"], "resources": ["pods/*", "pods/status"]}]});
    assert_eq!(
        validating(vec![hook(subs)]),
        [
            "webhooks[0].rules[0].resources[1]: Invalid value: \"pods/status\": if 'pods/*' is present, must not specify pods/status"
        ]
    );
}

#[test]
fn enums_timeouts_and_review_versions_are_checked() {
    let errs = mutating(vec![hook(json!({
        "failurePolicy": "Maybe", "timeoutSeconds": 31, "reinvocationPolicy": "Always",
        "admissionReviewVersions": ["v2", "v2"],
    }))]);
    assert_eq!(
        errs,
        [
            "webhooks[0].failurePolicy: Unsupported value: \"Maybe\": supported values: \"Fail\", \"Ignore\"",
            "webhooks[0].timeoutSeconds: Invalid value: 31: the timeout value must be between 1 and 30 seconds",
            "webhooks[0].reinvocationPolicy: Unsupported value: \"Always\": supported values: \"IfNeeded\", \"Never\"",
            "webhooks[0].admissionReviewVersions[1]: Invalid value: \"v2\": duplicate version",
            "webhooks[0].admissionReviewVersions: Invalid value: []string{\"v2\", \"v2\"}: must include at least one of v1, v1beta1",
        ]
    );
    assert_eq!(
        validating(vec![hook(json!({"admissionReviewVersions": []}))]),
        ["webhooks[0].admissionReviewVersions: Required value: must specify one of v1, v1beta1"]
    );
}

#[test]
fn match_conditions_must_compile_to_a_bool() {
    let errs = validating(vec![hook(json!({"matchConditions": [
        {"name": "ok", "expression": "request.userInfo.username != 'x'"},
        {"name": "ok", "expression": "object.metadata.name"},
        {"name": "broken", "expression": "object.metadata.name =="},
        {"name": "auth", "expression": "authorizer.group('').resource('pods').check('get').allowed()"},
    ]}))]);
    assert_eq!(errs.len(), 2, "{errs:?}");
    assert_eq!(errs[0], "webhooks[0].matchConditions[1].name: Duplicate value: \"ok\"");
    assert!(
        errs[1].starts_with(
            "webhooks[0].matchConditions[2].expression: Invalid value: \"object.metadata.name ==\": compilation failed: "
        ),
        "{errs:?}"
    );
}
