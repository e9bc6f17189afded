//! ValidatingWebhookConfiguration and MutatingWebhookConfiguration
//! (`admissionregistration.k8s.io/v1`): upstream's v1 defaults (failurePolicy `Fail`,
//! matchPolicy `Equivalent`, empty selectors, timeoutSeconds 10, rule scope `*`, service
//! port 443, reinvocationPolicy `Never` for mutating webhooks) and upstream's validation
//! with its messages and field paths: fully qualified unique webhook names, rules,
//! enums, side effects (`None` or `NoneOnDryRun` only, as v1 requires), the timeout
//! range, selectors, exactly one of url and service, admission review versions, and
//! match conditions compiled as CEL at write time.
//!
//! Invariants: pure functions of the object; match conditions are looked at up to
//! upstream's limit of 64, the rest reported. Updates are held to the create rules
//! (upstream relaxes a few of them for objects stored before they existed; every object
//! kapi stores has passed them).

use super::Strategy;
use super::util::{default, each};
use crate::cel::{Expression, admission_vars};
use crate::error::FieldError;
use crate::validation::{dns1123_subdomain_errors, qualified_name_errors};
use serde_json::{Value, json};
use std::collections::HashSet;

const MAX_MATCH_CONDITIONS: usize = 64;
const OPERATIONS: &[&str] = &["*", "CONNECT", "CREATE", "DELETE", "UPDATE"];
const SCOPES: &[&str] = &["*", "Cluster", "Namespaced"];
const FAILURE_POLICIES: &[&str] = &["Fail", "Ignore"];
const MATCH_POLICIES: &[&str] = &["Equivalent", "Exact"];
const NO_SIDE_EFFECTS: &[&str] = &["None", "NoneOnDryRun"];
const REINVOCATION_POLICIES: &[&str] = &["IfNeeded", "Never"];
const REVIEW_VERSIONS: &[&str] = &["v1", "v1beta1"];
const URL_FORM: &str = "; desired format: https://host[/path]";

/// The ValidatingWebhookConfiguration strategy.
#[derive(Debug, Default)]
pub struct ValidatingWebhookConfigurations;

/// The MutatingWebhookConfiguration strategy.
#[derive(Debug, Default)]
pub struct MutatingWebhookConfigurations;

impl Strategy for ValidatingWebhookConfigurations {
    fn default(&self, obj: &mut Value) {
        default_webhooks(obj, false);
    }

    fn validate(&self, obj: &Value) -> Vec<FieldError> {
        configuration(obj, false)
    }
}

impl Strategy for MutatingWebhookConfigurations {
    fn default(&self, obj: &mut Value) {
        default_webhooks(obj, true);
    }

    fn validate(&self, obj: &Value) -> Vec<FieldError> {
        configuration(obj, true)
    }
}

fn default_webhooks(obj: &mut Value, mutating: bool) {
    let Some(m) = obj.as_object_mut() else { return };
    for hook in each(m, "webhooks") {
        default(hook, "failurePolicy", json!("Fail"));
        default(hook, "matchPolicy", json!("Equivalent"));
        default(hook, "namespaceSelector", json!({}));
        default(hook, "objectSelector", json!({}));
        default(hook, "timeoutSeconds", json!(10));
        if mutating {
            default(hook, "reinvocationPolicy", json!("Never"));
        }
        for rule in each(hook, "rules") {
            default(rule, "scope", json!("*"));
        }
        if let Some(Value::Object(cc)) = hook.get_mut("clientConfig")
            && let Some(Value::Object(service)) = cc.get_mut("service")
        {
            default(service, "port", json!(443));
        }
    }
}

fn items(v: Option<&Value>) -> &[Value] {
    v.and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default()
}

fn text(v: Option<&Value>) -> &str {
    v.and_then(Value::as_str).unwrap_or("")
}

fn configuration(obj: &Value, mutating: bool) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let mut names = HashSet::new();
    for (i, hook) in items(obj.get("webhooks")).iter().enumerate() {
        let at = format!("webhooks[{i}]");
        webhook(hook, &at, mutating, &mut errs);
        review_versions(items(hook.get("admissionReviewVersions")), &at, &mut errs);
        let name = text(hook.get("name"));
        if !name.is_empty() && !names.insert(name) {
            errs.push(FieldError::duplicate(format!("{at}.name"), &json!(name)));
        }
    }
    errs
}

fn webhook(hook: &Value, at: &str, mutating: bool, errs: &mut Vec<FieldError>) {
    fully_qualified_name(text(hook.get("name")), &format!("{at}.name"), errs);
    for (i, r) in items(hook.get("rules")).iter().enumerate() {
        rule(r, &format!("{at}.rules[{i}]"), errs);
    }
    one_of(hook, "failurePolicy", FAILURE_POLICIES, at, errs);
    one_of(hook, "matchPolicy", MATCH_POLICIES, at, errs);
    match hook.get("sideEffects") {
        None | Some(Value::Null) => errs.push(FieldError::required(
            format!("{at}.sideEffects"),
            &format!("must specify one of {}", NO_SIDE_EFFECTS.join(", ")),
        )),
        Some(_) => one_of(hook, "sideEffects", NO_SIDE_EFFECTS, at, errs),
    }
    if let Some(t) = hook.get("timeoutSeconds").filter(|t| !t.is_null())
        && !t.as_i64().is_some_and(|t| (1..=30).contains(&t))
    {
        let detail = "the timeout value must be between 1 and 30 seconds";
        errs.push(FieldError::invalid(format!("{at}.timeoutSeconds"), t, detail));
    }
    for key in ["namespaceSelector", "objectSelector"] {
        if let Some(s) = hook.get(key).filter(|s| !s.is_null())
            && let Err(e) = crate::selector::LabelSelector::from_object(s)
        {
            errs.push(FieldError::invalid(format!("{at}.{key}"), s, &e.to_string()));
        }
    }
    if mutating {
        one_of(hook, "reinvocationPolicy", REINVOCATION_POLICIES, at, errs);
    }
    client_config(hook.get("clientConfig").unwrap_or(&Value::Null), at, errs);
    match_conditions(hook.get("matchConditions"), at, errs);
}

/// `key` of `m`, when set, is one of `allowed` (listed sorted, as upstream's sets are).
fn one_of(m: &Value, key: &str, allowed: &[&str], at: &str, errs: &mut Vec<FieldError>) {
    if let Some(v) = m.get(key).filter(|v| !v.is_null())
        && !v.as_str().is_some_and(|s| allowed.contains(&s))
    {
        errs.push(FieldError::not_supported(format!("{at}.{key}"), v, allowed));
    }
}

/// Upstream's `IsFullyQualifiedName`: a DNS-1123 subdomain of at least three labels.
fn fully_qualified_name(name: &str, at: &str, errs: &mut Vec<FieldError>) {
    if name.is_empty() {
        errs.push(FieldError::required(at, ""));
        return;
    }
    let problems = dns1123_subdomain_errors(name);
    if !problems.is_empty() {
        errs.push(FieldError::invalid(at, &json!(name), &problems.join(",")));
    } else if name.split('.').count() < 3 {
        let detail = "should be a domain with at least three segments separated by dots";
        errs.push(FieldError::invalid(at, &json!(name), detail));
    }
}

fn strings(v: Option<&Value>) -> Vec<&str> {
    items(v).iter().map(|s| s.as_str().unwrap_or("")).collect()
}

fn rule(r: &Value, at: &str, errs: &mut Vec<FieldError>) {
    let ops = strings(r.get("operations"));
    if ops.is_empty() {
        errs.push(FieldError::required(format!("{at}.operations"), ""));
    }
    if ops.len() > 1 && ops.contains(&"*") {
        let detail = "if '*' is present, must not specify other operations";
        let shown = FieldError::go_strings("admissionregistration.OperationType", &ops);
        errs.push(FieldError::invalid_shown(format!("{at}.operations"), &shown, detail));
    }
    for (i, op) in ops.iter().enumerate() {
        if !OPERATIONS.contains(op) {
            errs.push(FieldError::not_supported(
                format!("{at}.operations[{i}]"),
                &json!(op),
                OPERATIONS,
            ));
        }
    }
    let groups = strings(r.get("apiGroups"));
    if groups.is_empty() {
        errs.push(FieldError::required(format!("{at}.apiGroups"), ""));
    }
    if groups.len() > 1 && groups.contains(&"*") {
        let detail = "if '*' is present, must not specify other API groups";
        let shown = FieldError::go_strings("string", &groups);
        errs.push(FieldError::invalid_shown(format!("{at}.apiGroups"), &shown, detail));
    }
    let versions = strings(r.get("apiVersions"));
    if versions.is_empty() {
        errs.push(FieldError::required(format!("{at}.apiVersions"), ""));
    }
    if versions.len() > 1 && versions.contains(&"*") {
        let detail = "if '*' is present, must not specify other API versions";
        let shown = FieldError::go_strings("string", &versions);
        errs.push(FieldError::invalid_shown(format!("{at}.apiVersions"), &shown, detail));
    }
    for (i, v) in versions.iter().enumerate() {
        if v.is_empty() {
            errs.push(FieldError::required(format!("{at}.apiVersions[{i}]"), ""));
        }
    }
    resources(&strings(r.get("resources")), &format!("{at}.resources"), errs);
    one_of(r, "scope", SCOPES, at, errs);
}

/// Upstream's `validateResources`: entries are `resource`, `resource/subresource` or
/// wildcards, and a wildcard excludes what it already covers.
fn resources(list: &[&str], at: &str, errs: &mut Vec<FieldError>) {
    if list.is_empty() {
        errs.push(FieldError::required(at, ""));
    }
    let mut any_sub_of: HashSet<&str> = HashSet::new();
    let mut any_resource_with: HashSet<&str> = HashSet::new();
    let (mut double, mut single, mut plain) = (false, false, false);
    for (i, entry) in list.iter().enumerate() {
        if entry.is_empty() {
            errs.push(FieldError::required(format!("{at}[{i}]"), ""));
            continue;
        }
        double |= *entry == "*/*";
        single |= *entry == "*";
        let Some((res, sub)) = entry.split_once('/') else {
            plain = *entry != "*";
            continue;
        };
        if any_sub_of.contains(res) {
            let detail = format!("if '{res}/*' is present, must not specify {entry}");
            errs.push(FieldError::invalid(format!("{at}[{i}]"), &json!(entry), &detail));
        }
        if any_resource_with.contains(sub) {
            let detail = format!("if '*/{sub}' is present, must not specify {entry}");
            errs.push(FieldError::invalid(format!("{at}[{i}]"), &json!(entry), &detail));
        }
        if sub == "*" {
            any_sub_of.insert(res);
        }
        if res == "*" {
            any_resource_with.insert(sub);
        }
    }
    if list.len() > 1 && double {
        let detail = "if '*/*' is present, must not specify other resources";
        errs.push(FieldError::invalid_shown(at, &FieldError::go_strings("string", list), detail));
    }
    if single && plain {
        let detail = "if '*' is present, must not specify other resources without subresources";
        errs.push(FieldError::invalid_shown(at, &FieldError::go_strings("string", list), detail));
    }
}

fn client_config(cc: &Value, at: &str, errs: &mut Vec<FieldError>) {
    let at = format!("{at}.clientConfig");
    let url = cc.get("url").filter(|u| !u.is_null());
    let service = cc.get("service").filter(|s| !s.is_null());
    match (url, service) {
        (Some(u), None) => webhook_url(text(Some(u)), &format!("{at}.url"), errs),
        (None, Some(s)) => webhook_service(s, &format!("{at}.service"), errs),
        _ => errs.push(FieldError::required(at, "exactly one of url or service is required")),
    }
}

/// Upstream's `ValidateWebhookURL` with https forced.
fn webhook_url(url: &str, at: &str, errs: &mut Vec<FieldError>) {
    let u = match Url::parse(url) {
        Ok(u) => u,
        Err(e) => {
            let detail = format!("url must be a valid URL: {e}{URL_FORM}");
            errs.push(FieldError::required(at, &detail));
            return;
        }
    };
    if u.scheme != "https" {
        let detail = format!("'https' is the only allowed URL scheme{URL_FORM}");
        errs.push(FieldError::invalid(at, &json!(u.scheme), &detail));
    }
    if u.host.is_empty() {
        let detail = format!("host must be specified{URL_FORM}");
        errs.push(FieldError::invalid(at, &json!(u.host), &detail));
    }
    if let Some(user) = u.user {
        let detail = "user information is not permitted in the URL";
        errs.push(FieldError::invalid(at, &json!(user), detail));
    }
    if !u.fragment.is_empty() {
        let detail = "fragments are not permitted in the URL";
        errs.push(FieldError::invalid(at, &json!(u.fragment), detail));
    }
    if !u.query.is_empty() {
        let detail = "query parameters are not permitted in the URL";
        errs.push(FieldError::invalid(at, &json!(u.query), detail));
    }
}

/// The parts of a URL the webhook rules look at, split as Go's `url.Parse` does for
/// absolute URLs (`scheme://[user@]host[/path][?query][#fragment]`).
struct Url<'a> {
    scheme: &'a str,
    user: Option<&'a str>,
    host: &'a str,
    query: &'a str,
    fragment: &'a str,
}

impl<'a> Url<'a> {
    fn parse(s: &'a str) -> Result<Url<'a>, String> {
        if s.bytes().any(|b| b < 0x20 || b == 0x7f) {
            return Err(format!("parse {s:?}: net/url: invalid control character in URL"));
        }
        let (rest, fragment) = s.split_once('#').unwrap_or((s, ""));
        let (rest, query) = rest.split_once('?').unwrap_or((rest, ""));
        let (scheme, rest) = match rest.split_once(':') {
            Some((scheme, rest)) if is_scheme(scheme) => (scheme, rest),
            Some(("", _)) => return Err(format!("parse {s:?}: missing protocol scheme")),
            _ => ("", rest),
        };
        let Some(authority) = rest.strip_prefix("//") else {
            return Ok(Url { scheme, user: None, host: "", query, fragment });
        };
        let authority = authority.split('/').next().unwrap_or("");
        let (user, host) = match authority.rsplit_once('@') {
            Some((user, host)) => (Some(user), host),
            None => (None, authority),
        };
        Ok(Url { scheme, user, host, query, fragment })
    }
}

fn is_scheme(s: &str) -> bool {
    let mut chars = s.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
}

/// Upstream's `ValidateWebhookService`. Upstream's caller passes the service's name and
/// namespace in each other's place, so a missing name is reported at `namespace` and
/// the other way round; kapi reports them where upstream does.
fn webhook_service(s: &Value, at: &str, errs: &mut Vec<FieldError>) {
    if text(s.get("name")).is_empty() {
        errs.push(FieldError::required(format!("{at}.namespace"), ""));
    }
    if text(s.get("namespace")).is_empty() {
        errs.push(FieldError::required(format!("{at}.name"), ""));
    }
    let port = s.get("port").cloned().unwrap_or(json!(443));
    if !port.as_i64().is_some_and(|p| (1..=65535).contains(&p)) {
        let detail = "port is not valid: must be between 1 and 65535, inclusive";
        errs.push(FieldError::invalid(format!("{at}.port"), &port, detail));
    }
    if let Some(path) = s.get("path").and_then(Value::as_str) {
        service_path(path, &format!("{at}.path"), errs);
    }
}

fn service_path(path: &str, at: &str, errs: &mut Vec<FieldError>) {
    if path.is_empty() || path == "/" {
        return;
    }
    let value = json!(path);
    if path == "//" {
        errs.push(FieldError::invalid(at, &value, "segment[0] may not be empty"));
        return;
    }
    if !path.starts_with('/') {
        errs.push(FieldError::invalid(at, &value, "must start with a '/'"));
    }
    let inner = path.get(1..).unwrap_or("");
    let inner = inner.strip_suffix('/').unwrap_or(inner);
    for (i, step) in inner.split('/').enumerate() {
        if step.is_empty() {
            let detail = format!("segment[{i}] may not be empty");
            errs.push(FieldError::invalid(at, &value, &detail));
            continue;
        }
        for failure in dns1123_subdomain_errors(step) {
            errs.push(FieldError::invalid(at, &value, &format!("segment[{i}]: {failure}")));
        }
    }
}

fn review_versions(versions: &[Value], at: &str, errs: &mut Vec<FieldError>) {
    let at = format!("{at}.admissionReviewVersions");
    if versions.is_empty() {
        let detail = format!("must specify one of {}", REVIEW_VERSIONS.join(", "));
        errs.push(FieldError::required(at, &detail));
        return;
    }
    let mut seen = HashSet::new();
    let mut accepted = false;
    for (i, v) in versions.iter().enumerate() {
        let s = text(Some(v));
        if !seen.insert(s) {
            errs.push(FieldError::invalid(format!("{at}[{i}]"), v, "duplicate version"));
            continue;
        }
        for problem in dns1035_label_errors(s) {
            errs.push(FieldError::invalid(format!("{at}[{i}]"), v, &problem));
        }
        accepted |= REVIEW_VERSIONS.contains(&s);
    }
    if !accepted {
        let detail = format!("must include at least one of {}", REVIEW_VERSIONS.join(", "));
        let list: Vec<&str> = versions.iter().map(|v| text(Some(v))).collect();
        errs.push(FieldError::invalid_shown(at, &FieldError::go_strings("string", &list), &detail));
    }
}

/// Errors of a DNS-1035 label (a letter first; max 63).
fn dns1035_label_errors(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    if s.len() > 63 {
        out.push("must be no more than 63 characters".to_string());
    }
    let b = s.as_bytes();
    let ok = b.first().is_some_and(u8::is_ascii_lowercase)
        && b.last().is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        && b.iter().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-');
    if !ok {
        out.push("a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')".to_string());
    }
    out
}

/// The variables a webhook's match condition may name (the `authorizer` library is
/// declared by the compiler; `request` is typed as upstream types it).
const CONDITION_VARS: &[&str] = &["object", "oldObject", "request"];

fn match_conditions(list: Option<&Value>, at: &str, errs: &mut Vec<FieldError>) {
    let at = format!("{at}.matchConditions");
    let list = items(list);
    if list.len() > MAX_MATCH_CONDITIONS {
        let detail = format!("must have at most {MAX_MATCH_CONDITIONS} items");
        errs.push(FieldError::invalid(at.clone(), &json!(list.len()), &detail));
    }
    let mut names = HashSet::new();
    for (i, c) in list.iter().take(MAX_MATCH_CONDITIONS).enumerate() {
        let at = format!("{at}[{i}]");
        let name = text(c.get("name"));
        if name.is_empty() {
            errs.push(FieldError::required(format!("{at}.name"), ""));
        } else if !names.insert(name) {
            errs.push(FieldError::duplicate(format!("{at}.name"), &json!(name)));
        } else {
            for problem in qualified_name_errors(name) {
                errs.push(FieldError::invalid(format!("{at}.name"), &json!(name), &problem));
            }
        }
        condition(text(c.get("expression")), &format!("{at}.expression"), errs);
    }
}

fn condition(src: &str, at: &str, errs: &mut Vec<FieldError>) {
    if src.trim().is_empty() {
        errs.push(FieldError::required(at, ""));
        return;
    }
    let value = json!(src);
    match Expression::compile_with_authorizer(src, &admission_vars::vars(CONDITION_VARS)) {
        Err(e) => errs.push(FieldError::invalid(at, &value, &format!("compilation failed: {e}"))),
        Ok(expr) if matches!(expr.output_type(), "bool" | "dyn") => {}
        Ok(expr) => {
            let detail = format!("must evaluate to bool but got {}", expr.output_type());
            errs.push(FieldError::invalid(at, &value, &detail));
        }
    }
}

#[cfg(test)]
#[path = "webhooks_tests.rs"]
mod tests;
