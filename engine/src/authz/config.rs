//! The structured authorization configuration (`--authorization-config`, upstream's
//! `apiserver.config.k8s.io/v1` AuthorizationConfiguration; v1beta1 and v1alpha1 read the
//! same): the authorizers in order, each a `type` and a `name`, a Webhook with its
//! timeout, SubjectAccessReview version, failure policy, cache TTLs, connection (a
//! kubeconfig file) and CEL `matchConditions` over `request` (the review's spec).
//!
//! [`load`] reads and checks a file's bytes as upstream's `LoadAndValidateData`: strict
//! decoding (an unknown field is refused), the v1 defaults (TTLs 5m/30s, both cached),
//! then upstream's validation, its messages (`authorizers[1].name: Duplicate value:
//! "x"`) aggregated as Go's `[a, b]`; every expression is compiled here, so a
//! configuration that loads has only working conditions. Nothing is contacted.

use super::Mode;
use kapi_codec::FieldError;
use kapi_codec::cel::Condition;
use serde::Deserialize;
use serde_json::{Value, json};
use std::path::PathBuf;
use std::time::Duration;

/// The most match conditions one webhook may have (upstream's limit).
pub const MAX_MATCH_CONDITIONS: usize = 64;
/// The longest webhook timeout upstream accepts.
const MAX_TIMEOUT: Duration = Duration::from_secs(30);
/// Every type upstream knows, as its "supported values" list shows them.
const KNOWN_TYPES: &[&str] = &["ABAC", "AlwaysAllow", "AlwaysDeny", "Node", "RBAC", "Webhook"];
/// The variables a match condition may name.
pub const CONDITION_VARS: &[&str] = &["request"];

/// What a webhook's failure (an unreachable server, an unreadable answer, a condition
/// that fails to evaluate) decides.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailurePolicy {
    NoOpinion,
    Deny,
}

/// One webhook authorizer as configured.
#[derive(Debug)]
pub struct WebhookSpec {
    pub timeout: Duration,
    /// `v1` or `v1beta1`.
    pub version: String,
    pub failure_policy: FailurePolicy,
    /// Zero when allowed answers are not cached.
    pub authorized_ttl: Duration,
    /// Zero when other answers are not cached.
    pub unauthorized_ttl: Duration,
    pub kubeconfig: PathBuf,
    /// All must hold for the webhook to be asked.
    pub match_conditions: Vec<Condition>,
}

/// One authorizer of the chain.
#[derive(Debug)]
pub struct AuthorizerSpec {
    pub mode: Mode,
    pub name: String,
    pub webhook: Option<WebhookSpec>,
}

/// A checked configuration: the chain, in order.
#[derive(Debug)]
pub struct AuthorizationConfig {
    pub authorizers: Vec<AuthorizerSpec>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawConfig {
    #[serde(default)]
    api_version: String,
    #[serde(default)]
    kind: String,
    #[serde(default)]
    authorizers: Vec<RawAuthorizer>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAuthorizer {
    #[serde(rename = "type", default)]
    kind: String,
    #[serde(default)]
    name: String,
    webhook: Option<RawWebhook>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawWebhook {
    #[serde(default)]
    timeout: String,
    #[serde(rename = "authorizedTTL", default)]
    authorized_ttl: String,
    #[serde(rename = "unauthorizedTTL", default)]
    unauthorized_ttl: String,
    cache_authorized_requests: Option<bool>,
    cache_unauthorized_requests: Option<bool>,
    #[serde(default)]
    subject_access_review_version: String,
    #[serde(default)]
    match_condition_subject_access_review_version: String,
    #[serde(default)]
    failure_policy: String,
    #[serde(default)]
    connection_info: RawConnection,
    #[serde(default)]
    match_conditions: Vec<RawCondition>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawConnection {
    #[serde(rename = "type", default)]
    kind: String,
    kube_config_file: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCondition {
    #[serde(default)]
    expression: String,
}

/// Read the file at `path` (its bytes are also returned, for the reload's comparison).
pub fn load_file(path: &std::path::Path) -> Result<(AuthorizationConfig, Vec<u8>), String> {
    let data = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let config = load(&data)?;
    Ok((config, data))
}

/// Decode, default and validate a configuration as upstream's `LoadAndValidateData`.
pub fn load(data: &[u8]) -> Result<AuthorizationConfig, String> {
    let raw = decode(data)
        .map_err(|e| format!("failed to load AuthorizationConfiguration from file: {e}"))?;
    let mut errs = Vec::new();
    let authorizers = validate(&raw, &mut errs);
    if !errs.is_empty() {
        return Err(aggregate(errs.iter().map(|e| e.message.clone()).collect()));
    }
    let names: Vec<String> = authorizers.iter().filter_map(expected_name).collect();
    if !names.is_empty() {
        return Err(aggregate(names));
    }
    Ok(AuthorizationConfig { authorizers })
}

fn decode(data: &[u8]) -> Result<RawConfig, String> {
    let text = std::str::from_utf8(data).map_err(|e| e.to_string())?;
    if text.trim().is_empty() {
        return Ok(RawConfig::default());
    }
    let raw: RawConfig =
        serde_norway::from_str(text).map_err(|e| format!("strict decoding error: {e}"))?;
    let group_version = raw.api_version.as_str();
    let known = matches!(
        group_version,
        "apiserver.config.k8s.io/v1"
            | "apiserver.config.k8s.io/v1beta1"
            | "apiserver.config.k8s.io/v1alpha1"
    );
    if !known || raw.kind != "AuthorizationConfiguration" {
        return Err(format!("no kind {:?} is registered for version {group_version:?}", raw.kind));
    }
    Ok(raw)
}

/// Go's aggregate error text: one error as is, several as `[a, b]`.
fn aggregate(msgs: Vec<String>) -> String {
    match msgs.len() {
        1 => msgs.into_iter().next().unwrap_or_default(),
        _ => format!("[{}]", msgs.join(", ")),
    }
}

/// Upstream (kube-apiserver) wants non-webhook authorizers named as their lowercased type.
fn expected_name(a: &AuthorizerSpec) -> Option<String> {
    if a.mode == Mode::Webhook {
        return None;
    }
    let want = a.mode.type_name().to_lowercase();
    (a.name != want).then(|| {
        format!("expected name {want} for authorizer {} instead of {}", a.mode.type_name(), a.name)
    })
}

fn validate(raw: &RawConfig, errs: &mut Vec<FieldError>) -> Vec<AuthorizerSpec> {
    if raw.authorizers.is_empty() {
        errs.push(FieldError::required(
            "authorizers",
            "at least one authorization mode must be defined",
        ));
    }
    let mut seen_types: Vec<Mode> = Vec::new();
    let mut seen_names: Vec<&str> = Vec::new();
    let mut out = Vec::new();
    for (i, a) in raw.authorizers.iter().enumerate() {
        let path = format!("authorizers[{i}]");
        if let Some(spec) = validate_one(a, &path, &mut seen_types, &mut seen_names, errs) {
            out.push(spec);
        }
    }
    out
}

fn validate_one<'r>(
    a: &'r RawAuthorizer,
    path: &str,
    seen_types: &mut Vec<Mode>,
    seen_names: &mut Vec<&'r str>,
    errs: &mut Vec<FieldError>,
) -> Option<AuthorizerSpec> {
    if a.kind.is_empty() {
        errs.push(FieldError::required(format!("{path}.type"), ""));
        return None;
    }
    if a.kind == "ABAC" {
        let detail = "the ABAC authorizer is not supported by kapi";
        errs.push(FieldError::invalid(format!("{path}.type"), &json!(a.kind), detail));
        return None;
    }
    let Some(mode) = Mode::of_type(&a.kind) else {
        errs.push(FieldError::not_supported(format!("{path}.type"), &json!(a.kind), KNOWN_TYPES));
        return None;
    };
    if seen_types.contains(&mode) && mode != Mode::Webhook {
        errs.push(FieldError::duplicate(format!("{path}.type"), &json!(a.kind)));
        return None;
    }
    seen_types.push(mode);
    check_name(&a.name, path, seen_names, errs);
    seen_names.push(&a.name);
    let webhook = match (mode, &a.webhook) {
        (Mode::Webhook, None) => {
            errs.push(FieldError::required(
                format!("{path}.webhook"),
                "required when type=Webhook",
            ));
            return None;
        }
        (Mode::Webhook, Some(w)) => Some(validate_webhook(w, path, errs)),
        (_, Some(_)) => {
            let detail = "may only be specified when type=Webhook";
            errs.push(FieldError::invalid(format!("{path}.webhook"), &json!("non-null"), detail));
            None
        }
        (_, None) => None,
    };
    Some(AuthorizerSpec { mode, name: a.name.clone(), webhook: webhook.flatten() })
}

fn check_name(name: &str, path: &str, seen: &[&str], errs: &mut Vec<FieldError>) {
    let field = format!("{path}.name");
    if name.is_empty() {
        errs.push(FieldError::required(field, ""));
    } else if seen.contains(&name) {
        errs.push(FieldError::duplicate(field, &json!(name)));
    } else {
        let bad = kapi_codec::validation::dns1123_subdomain_errors(name);
        if !bad.is_empty() {
            let detail = format!("authorizer name is invalid: {}", bad.join(", "));
            errs.push(FieldError::invalid(field, &json!(name), &detail));
        }
    }
}

/// A Go duration field (zero when unset); None when it does not parse.
fn duration(s: &str, field: &str, errs: &mut Vec<FieldError>) -> Option<i64> {
    if s.is_empty() {
        return Some(0);
    }
    match kapi_codec::time::parse_go_duration(s) {
        Some(n) => Some(n),
        None => {
            errs.push(FieldError::invalid(field, &json!(s), "time: invalid duration"));
            None
        }
    }
}

/// Webhook fields are checked at the authorizer's own path, as upstream does.
fn validate_webhook(w: &RawWebhook, path: &str, errs: &mut Vec<FieldError>) -> Option<WebhookSpec> {
    let before = errs.len();
    let timeout = checked_timeout(&w.timeout, path, errs);
    let authorized_ttl =
        checked_ttl(&w.authorized_ttl, 300, &format!("{path}.authorizedTTL"), errs);
    let unauthorized_ttl =
        checked_ttl(&w.unauthorized_ttl, 30, &format!("{path}.unauthorizedTTL"), errs);
    let version = w.subject_access_review_version.as_str();
    match version {
        "" => errs.push(FieldError::required(format!("{path}.subjectAccessReviewVersion"), "")),
        "v1" | "v1beta1" => {}
        other => errs.push(FieldError::not_supported(
            format!("{path}.subjectAccessReviewVersion"),
            &json!(other),
            &["v1", "v1beta1"],
        )),
    }
    check_condition_version(w, path, errs);
    let failure_policy = checked_policy(&w.failure_policy, path, errs);
    let kubeconfig = checked_connection(&w.connection_info, path, errs);
    let match_conditions = compile_conditions(&w.match_conditions, path, errs);
    if errs.len() > before {
        return None;
    }
    let ttl = |d: Option<i64>, on: Option<bool>| match on {
        Some(false) => Duration::ZERO,
        _ => Duration::from_nanos(d.unwrap_or(0).max(0) as u64),
    };
    Some(WebhookSpec {
        timeout: timeout?,
        version: version.to_string(),
        failure_policy: failure_policy?,
        authorized_ttl: ttl(authorized_ttl, w.cache_authorized_requests),
        unauthorized_ttl: ttl(unauthorized_ttl, w.cache_unauthorized_requests),
        kubeconfig: kubeconfig?,
        match_conditions,
    })
}

fn checked_timeout(s: &str, path: &str, errs: &mut Vec<FieldError>) -> Option<Duration> {
    let field = format!("{path}.timeout");
    let n = duration(s, &field, errs)?;
    if n == 0 {
        errs.push(FieldError::required(field, ""));
        return None;
    }
    let d = Duration::from_nanos(n.max(0) as u64);
    if n < 0 || d > MAX_TIMEOUT {
        let shown = json!(kapi_codec::time::go_duration(n));
        errs.push(FieldError::invalid(field, &shown, "must be > 0s and <= 30s"));
        return None;
    }
    Some(d)
}

/// A TTL, defaulted (v1's defaults) when unset; negative is refused.
fn checked_ttl(s: &str, default_secs: i64, field: &str, errs: &mut Vec<FieldError>) -> Option<i64> {
    let n = duration(s, field, errs)?;
    if n == 0 {
        return Some(default_secs * 1_000_000_000);
    }
    if n < 0 {
        let shown = json!(kapi_codec::time::go_duration(n));
        errs.push(FieldError::invalid(field, &shown, "must be > 0s"));
        return None;
    }
    Some(n)
}

fn check_condition_version(w: &RawWebhook, path: &str, errs: &mut Vec<FieldError>) {
    let field = format!("{path}.matchConditionSubjectAccessReviewVersion");
    match w.match_condition_subject_access_review_version.as_str() {
        "" if !w.match_conditions.is_empty() => {
            errs.push(FieldError::required(field, "required if match conditions are specified"))
        }
        "" | "v1" => {}
        other => errs.push(FieldError::not_supported(field, &json!(other), &["v1"])),
    }
}

fn checked_policy(s: &str, path: &str, errs: &mut Vec<FieldError>) -> Option<FailurePolicy> {
    let field = format!("{path}.failurePolicy");
    match s {
        "NoOpinion" => Some(FailurePolicy::NoOpinion),
        "Deny" => Some(FailurePolicy::Deny),
        "" => {
            errs.push(FieldError::required(field, ""));
            None
        }
        other => {
            errs.push(FieldError::not_supported(field, &json!(other), &["NoOpinion", "Deny"]));
            None
        }
    }
}

fn checked_connection(
    c: &RawConnection,
    path: &str,
    errs: &mut Vec<FieldError>,
) -> Option<PathBuf> {
    let field = format!("{path}.connectionInfo.kubeConfigFile");
    match c.kind.as_str() {
        "" => errs.push(FieldError::required(format!("{path}.connectionInfo.type"), "")),
        "InClusterConfig" => match &c.kube_config_file {
            Some(f) => {
                let detail = "can only be set when type=KubeConfigFile";
                errs.push(FieldError::invalid(field, &json!(f), detail));
            }
            None => errs.push(FieldError::invalid(
                format!("{path}.connectionInfo.type"),
                &json!("InClusterConfig"),
                "not allowed for kube-apiserver (kapi is the API server): use KubeConfigFile",
            )),
        },
        "KubeConfigFile" => return checked_kubeconfig(c.kube_config_file.as_deref(), field, errs),
        other => errs.push(FieldError::not_supported(
            format!("{path}.connectionInfo.type"),
            &json!(other),
            &["InClusterConfig", "KubeConfigFile"],
        )),
    }
    None
}

fn checked_kubeconfig(
    file: Option<&str>,
    field: String,
    errs: &mut Vec<FieldError>,
) -> Option<PathBuf> {
    let f = file.unwrap_or("");
    let path = PathBuf::from(f);
    let problem = if f.is_empty() {
        errs.push(FieldError::required(field, ""));
        return None;
    } else if !path.is_absolute() {
        Some("must be an absolute path".to_string())
    } else {
        match std::fs::metadata(&path) {
            Err(e) => Some(format!("error loading file: stat {f}: {e}")),
            Ok(m) if !m.is_file() => Some("must be a regular file".to_string()),
            Ok(_) => None,
        }
    };
    match problem {
        Some(detail) => {
            errs.push(FieldError::invalid(field, &json!(f), &detail));
            None
        }
        None => Some(path),
    }
}

fn compile_conditions(
    conds: &[RawCondition],
    path: &str,
    errs: &mut Vec<FieldError>,
) -> Vec<Condition> {
    if conds.len() > MAX_MATCH_CONDITIONS {
        let field = format!("{path}.matchConditions");
        errs.push(FieldError {
            kind: kapi_codec::FieldErrorType::TooMany,
            message: format!(
                "{field}: Too many: {}: must have at most {MAX_MATCH_CONDITIONS} items",
                conds.len()
            ),
            field,
        });
        return Vec::new();
    }
    let mut seen: Vec<&str> = Vec::new();
    let mut out = Vec::new();
    for (i, c) in conds.iter().enumerate() {
        let field = format!("{path}.matchConditions[{i}].expression");
        let expr = c.expression.as_str();
        if expr.trim().is_empty() {
            errs.push(FieldError::required(field, ""));
        } else if seen.contains(&expr) {
            errs.push(FieldError::duplicate(field, &json!(expr)));
        } else {
            seen.push(expr);
            match Condition::compile(expr, CONDITION_VARS) {
                Ok(compiled) => out.push(compiled),
                Err(e) => {
                    let detail = format!("compilation failed: {e}");
                    errs.push(FieldError::invalid(field, &Value::String(expr.into()), &detail));
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kubeconfig() -> tempfile::NamedTempFile {
        tempfile::NamedTempFile::new().expect("temp file")
    }

    fn webhook_yaml(name: &str, file: &str, extra: &str) -> String {
        format!(
            "- type: Webhook\n  name: {name}\n  webhook:\n    timeout: 3s\n    subjectAccessReviewVersion: v1\n    failurePolicy: Deny\n    connectionInfo:\n      type: KubeConfigFile\n      kubeConfigFile: {file}\n{extra}"
        )
    }

    fn config(authorizers: &str) -> String {
        format!(
            "apiVersion: apiserver.config.k8s.io/v1\nkind: AuthorizationConfiguration\nauthorizers:\n{authorizers}"
        )
    }

    #[test]
    fn a_full_configuration_loads_with_upstreams_defaults() {
        let f = kubeconfig();
        let file = f.path().display().to_string();
        let conds = "    matchConditionSubjectAccessReviewVersion: v1\n    matchConditions:\n    - expression: has(request.resourceAttributes)\n";
        let text = config(&format!(
            "{}- type: Node\n  name: node\n- type: RBAC\n  name: rbac\n",
            webhook_yaml("hook.example.com", &file, conds)
        ));
        let c = load(text.as_bytes()).expect("loads");
        let modes: Vec<Mode> = c.authorizers.iter().map(|a| a.mode).collect();
        assert_eq!(modes, vec![Mode::Webhook, Mode::Node, Mode::Rbac]);
        let w = c.authorizers[0].webhook.as_ref().expect("webhook");
        assert_eq!(w.timeout, Duration::from_secs(3));
        assert_eq!(w.authorized_ttl, Duration::from_secs(300));
        assert_eq!(w.unauthorized_ttl, Duration::from_secs(30));
        assert_eq!(w.failure_policy, FailurePolicy::Deny);
        assert_eq!(w.match_conditions.len(), 1);
    }

    #[test]
    fn duplicates_unknown_types_and_repeated_node_are_refused_with_upstreams_texts() {
        let e =
            load(config("- type: RBAC\n  name: rbac\n- type: RBAC\n  name: rbac2\n").as_bytes())
                .unwrap_err();
        assert_eq!(e, r#"authorizers[1].type: Duplicate value: "RBAC""#);
        let e = load(config("- type: Bogus\n  name: b\n").as_bytes()).unwrap_err();
        assert_eq!(
            e,
            r#"authorizers[0].type: Unsupported value: "Bogus": supported values: "ABAC", "AlwaysAllow", "AlwaysDeny", "Node", "RBAC", "Webhook""#
        );
        let f = kubeconfig();
        let file = f.path().display().to_string();
        let two = format!("{}{}", webhook_yaml("a", &file, ""), webhook_yaml("a", &file, ""));
        assert_eq!(
            load(config(&two).as_bytes()).unwrap_err(),
            r#"authorizers[1].name: Duplicate value: "a""#
        );
        let e = load(config("- type: Node\n  name: nodes\n").as_bytes()).unwrap_err();
        assert_eq!(e, "expected name node for authorizer Node instead of nodes");
        let e = load(config("").as_bytes()).unwrap_err();
        assert_eq!(
            e,
            "authorizers: Required value: at least one authorization mode must be defined"
        );
    }

    #[test]
    fn webhook_fields_are_required_and_several_errors_aggregate() {
        let text = config("- type: Webhook\n  name: w\n  webhook:\n    unauthorizedTTL: 10s\n");
        let e = load(text.as_bytes()).unwrap_err();
        assert_eq!(
            e,
            "[authorizers[0].timeout: Required value, authorizers[0].subjectAccessReviewVersion: Required value, authorizers[0].failurePolicy: Required value, authorizers[0].connectionInfo.type: Required value]"
        );
        let e = load(config("- type: Webhook\n  name: w\n").as_bytes()).unwrap_err();
        assert_eq!(e, "authorizers[0].webhook: Required value: required when type=Webhook");
        let text = config(&webhook_yaml("w", "relative.yaml", "").replace("3s", "45s"));
        let e = load(text.as_bytes()).unwrap_err();
        assert!(
            e.contains(r#"authorizers[0].timeout: Invalid value: "45s": must be > 0s and <= 30s"#),
            "{e}"
        );
        assert!(
            e.contains(
                r#"kubeConfigFile: Invalid value: "relative.yaml": must be an absolute path"#
            ),
            "{e}"
        );
    }

    #[test]
    fn a_bad_expression_is_refused_with_the_compilers_message() {
        let f = kubeconfig();
        let file = f.path().display().to_string();
        let conds = "    matchConditionSubjectAccessReviewVersion: v1\n    matchConditions:\n    - expression: nope == 1\n";
        let e = load(config(&webhook_yaml("w", &file, conds)).as_bytes()).unwrap_err();
        assert!(
            e.starts_with(r#"authorizers[0].matchConditions[0].expression: Invalid value: "nope == 1": compilation failed: ERROR: <input>:1:1: undeclared reference to 'nope'"#),
            "{e}"
        );
        let conds = "    matchConditions:\n    - expression: 'true'\n";
        let e = load(config(&webhook_yaml("w", &file, conds)).as_bytes()).unwrap_err();
        assert_eq!(
            e,
            "authorizers[0].matchConditionSubjectAccessReviewVersion: Required value: required if match conditions are specified"
        );
    }

    #[test]
    fn unknown_fields_and_kinds_fail_to_load() {
        let e = load(config("- type: RBAC\n  name: rbac\n  extra: 1\n").as_bytes()).unwrap_err();
        assert!(
            e.starts_with(
                "failed to load AuthorizationConfiguration from file: strict decoding error"
            ),
            "{e}"
        );
        let e = load(b"apiVersion: v1\nkind: Pod\n").unwrap_err();
        assert!(e.contains(r#"no kind "Pod" is registered for version "v1""#), "{e}");
        let e = load(config("- type: ABAC\n  name: abac\n").as_bytes()).unwrap_err();
        assert!(e.contains("not supported by kapi"), "{e}");
    }
}
