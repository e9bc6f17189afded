//! The audit policy (`--audit-policy-file`, audit.k8s.io/v1 `Policy`, YAML or JSON) and
//! its evaluation, as upstream's policy checker: rules are tried in order and the first
//! that matches decides the level; a request no rule matches is not audited (`None`).
//!
//! Invariants: a loaded policy is valid (known levels and stages, URL rules start with
//! `/`, no rule mixes resources and non-resource URLs, at least one rule); unknown fields
//! are refused at load, so a typo never silently widens or narrows what is audited.

use serde::Deserialize;

/// How much of a request is recorded (ordered: `None` < `Metadata` < `Request` <
/// `RequestResponse`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Deserialize)]
pub enum Level {
    None,
    Metadata,
    Request,
    RequestResponse,
}

impl Level {
    pub fn as_str(self) -> &'static str {
        match self {
            Level::None => "None",
            Level::Metadata => "Metadata",
            Level::Request => "Request",
            Level::RequestResponse => "RequestResponse",
        }
    }
}

/// The point of a request's life an event is written at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum Stage {
    RequestReceived,
    ResponseStarted,
    ResponseComplete,
    Panic,
}

impl Stage {
    pub fn as_str(self) -> &'static str {
        match self {
            Stage::RequestReceived => "RequestReceived",
            Stage::ResponseStarted => "ResponseStarted",
            Stage::ResponseComplete => "ResponseComplete",
            Stage::Panic => "Panic",
        }
    }
}

const LEVELS: &str = r#""None", "Metadata", "Request", "RequestResponse""#;
const STAGES: &str = r#""RequestReceived", "ResponseStarted", "ResponseComplete", "Panic""#;

/// One group's resources in a rule.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct GroupResources {
    #[serde(default)]
    pub group: String,
    #[serde(default)]
    pub resources: Vec<String>,
    #[serde(default)]
    pub resource_names: Vec<String>,
}

/// A rule as written (levels and stages kept as text until validated).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawRule {
    #[serde(default)]
    level: String,
    #[serde(default)]
    users: Vec<String>,
    #[serde(default)]
    user_groups: Vec<String>,
    #[serde(default)]
    verbs: Vec<String>,
    #[serde(default)]
    resources: Vec<GroupResources>,
    #[serde(default)]
    namespaces: Vec<String>,
    #[serde(default, rename = "nonResourceURLs")]
    non_resource_urls: Vec<String>,
    #[serde(default)]
    omit_stages: Vec<String>,
    omit_managed_fields: Option<bool>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawPolicy {
    #[serde(default)]
    api_version: String,
    #[serde(default)]
    kind: String,
    #[serde(default)]
    metadata: Option<serde_json::Value>,
    #[serde(default)]
    rules: Vec<RawRule>,
    #[serde(default)]
    omit_stages: Vec<String>,
    #[serde(default)]
    omit_managed_fields: bool,
}

/// A validated rule.
#[derive(Debug, Clone)]
pub struct Rule {
    pub level: Level,
    pub users: Vec<String>,
    pub user_groups: Vec<String>,
    pub verbs: Vec<String>,
    pub resources: Vec<GroupResources>,
    pub namespaces: Vec<String>,
    pub non_resource_urls: Vec<String>,
    pub omit_stages: Vec<Stage>,
    pub omit_managed_fields: Option<bool>,
}

/// A validated policy.
#[derive(Debug, Clone)]
pub struct Policy {
    pub rules: Vec<Rule>,
    pub omit_stages: Vec<Stage>,
    pub omit_managed_fields: bool,
}

/// What the policy decided for one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    pub level: Level,
    pub omit_stages: Vec<Stage>,
    pub omit_managed_fields: bool,
}

/// The request facts a rule looks at (upstream's authorizer attributes).
#[derive(Debug, Clone, Copy, Default)]
pub struct Attrs<'a> {
    /// None for an unauthenticated request.
    pub user: Option<(&'a str, &'a [String])>,
    pub verb: &'a str,
    pub resource_request: bool,
    pub path: &'a str,
    pub group: &'a str,
    pub namespace: &'a str,
    pub resource: &'a str,
    pub subresource: &'a str,
    pub name: &'a str,
}

impl Policy {
    /// Read and validate the policy file at `path`.
    pub fn load(path: &std::path::Path) -> Result<Policy, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("failed to read audit policy file {}: {e}", path.display()))?;
        Policy::parse(&text)
            .map_err(|e| format!("invalid audit policy file {}: {e}", path.display()))
    }

    /// Parse and validate a policy (YAML or JSON).
    pub fn parse(text: &str) -> Result<Policy, String> {
        let raw: RawPolicy = serde_norway::from_str(text).map_err(|e| e.to_string())?;
        if raw.api_version != "audit.k8s.io/v1" || raw.kind != "Policy" {
            return Err(format!(
                "no kind {:?} is registered for version {:?} (want kind \"Policy\", apiVersion \"audit.k8s.io/v1\")",
                raw.kind, raw.api_version
            ));
        }
        let _ = raw.metadata;
        let mut errors = Vec::new();
        let omit_stages = stages(&raw.omit_stages, "omitStages", &mut errors);
        let rules: Vec<Rule> = raw
            .rules
            .into_iter()
            .enumerate()
            .map(|(i, r)| rule(r, &format!("rules[{i}]"), &mut errors))
            .collect();
        if !errors.is_empty() {
            return Err(errors.join(", "));
        }
        if rules.is_empty() {
            return Err("loaded illegal policy with 0 rules".into());
        }
        Ok(Policy { rules, omit_stages, omit_managed_fields: raw.omit_managed_fields })
    }

    /// The first matching rule's level, its stages to omit (with the policy's) and
    /// whether managedFields are left out; `None` when no rule matches.
    pub fn evaluate(&self, a: &Attrs<'_>) -> Decision {
        for r in &self.rules {
            if matches(r, a) {
                let mut omit = self.omit_stages.clone();
                for s in &r.omit_stages {
                    if !omit.contains(s) {
                        omit.push(*s);
                    }
                }
                return Decision {
                    level: r.level,
                    omit_stages: omit,
                    omit_managed_fields: r.omit_managed_fields.unwrap_or(self.omit_managed_fields),
                };
            }
        }
        Decision {
            level: Level::None,
            omit_stages: self.omit_stages.clone(),
            omit_managed_fields: self.omit_managed_fields,
        }
    }
}

fn level(s: &str, field: &str, errors: &mut Vec<String>) -> Level {
    match s {
        "None" => Level::None,
        "Metadata" => Level::Metadata,
        "Request" => Level::Request,
        "RequestResponse" => Level::RequestResponse,
        other => {
            errors
                .push(format!("{field}: Unsupported value: {other:?}: supported values: {LEVELS}"));
            Level::None
        }
    }
}

fn stages(list: &[String], field: &str, errors: &mut Vec<String>) -> Vec<Stage> {
    let mut out = Vec::new();
    for (i, s) in list.iter().enumerate() {
        let stage = match s.as_str() {
            "RequestReceived" => Stage::RequestReceived,
            "ResponseStarted" => Stage::ResponseStarted,
            "ResponseComplete" => Stage::ResponseComplete,
            "Panic" => Stage::Panic,
            other => {
                errors.push(format!(
                    "{field}[{i}]: Unsupported value: {other:?}: supported values: {STAGES}"
                ));
                continue;
            }
        };
        out.push(stage);
    }
    out
}

fn rule(r: RawRule, field: &str, errors: &mut Vec<String>) -> Rule {
    let lvl = level(&r.level, &format!("{field}.level"), errors);
    if !r.non_resource_urls.is_empty() && (!r.resources.is_empty() || !r.namespaces.is_empty()) {
        errors.push(format!(
            "{field}.nonResourceURLs: Invalid value: {:?}: rules cannot apply to both regular resources and non-resource URLs",
            r.non_resource_urls
        ));
    }
    for (i, url) in r.non_resource_urls.iter().enumerate() {
        let f = format!("{field}.nonResourceURLs[{i}]");
        if url != "*" && !url.starts_with('/') {
            errors.push(format!(
                "{f}: Invalid value: {url:?}: non-resource URL rules must begin with a '/' character"
            ));
        }
        if url.find('*').is_some_and(|p| p != url.len() - 1) {
            errors.push(format!(
                "{f}: Invalid value: {url:?}: non-resource URL wildcards '*' must be the final character of the rule"
            ));
        }
    }
    for (i, gr) in r.resources.iter().enumerate() {
        if !gr.resource_names.is_empty() && gr.resources.is_empty() {
            errors.push(format!(
                "{field}.resources[{i}].resourceNames: Invalid value: {:?}: using resourceNames requires at least one resource",
                gr.resource_names
            ));
        }
    }
    let omit_stages = stages(&r.omit_stages, &format!("{field}.omitStages"), errors);
    Rule {
        level: lvl,
        users: r.users,
        user_groups: r.user_groups,
        verbs: r.verbs,
        resources: r.resources,
        namespaces: r.namespaces,
        non_resource_urls: r.non_resource_urls,
        omit_stages,
        omit_managed_fields: r.omit_managed_fields,
    }
}

fn has(list: &[String], s: &str) -> bool {
    list.iter().any(|x| x == s)
}

fn matches(r: &Rule, a: &Attrs<'_>) -> bool {
    if !r.users.is_empty() && !a.user.is_some_and(|(name, _)| has(&r.users, name)) {
        return false;
    }
    if !r.user_groups.is_empty()
        && !a.user.is_some_and(|(_, groups)| groups.iter().any(|g| has(&r.user_groups, g)))
    {
        return false;
    }
    if !r.verbs.is_empty() && !has(&r.verbs, a.verb) {
        return false;
    }
    if !r.namespaces.is_empty() || !r.resources.is_empty() {
        return matches_resource(r, a);
    }
    if !r.non_resource_urls.is_empty() {
        return !a.resource_request && r.non_resource_urls.iter().any(|u| path_matches(a.path, u));
    }
    true
}

/// `*`, an exact path, or a prefix ending in `*`.
fn path_matches(path: &str, spec: &str) -> bool {
    spec == "*" || spec == path || spec.strip_suffix('*').is_some_and(|p| path.starts_with(p))
}

fn matches_resource(r: &Rule, a: &Attrs<'_>) -> bool {
    if !a.resource_request {
        return false;
    }
    if !r.namespaces.is_empty() && !has(&r.namespaces, a.namespace) {
        return false;
    }
    if r.resources.is_empty() {
        return true;
    }
    r.resources.iter().filter(|gr| gr.group == a.group).any(|gr| group_matches(gr, a))
}

fn group_matches(gr: &GroupResources, a: &Attrs<'_>) -> bool {
    if gr.resources.is_empty() {
        return true;
    }
    if !gr.resource_names.is_empty() && !has(&gr.resource_names, a.name) {
        return false;
    }
    let sub = a.subresource;
    gr.resources.iter().any(|res| {
        let combined = if sub.is_empty() {
            res == a.resource
        } else {
            res.split_once('/') == Some((a.resource, sub))
        };
        combined
            || res == "*"
            || (!sub.is_empty() && res.strip_prefix("*/") == Some(sub))
            || res.strip_suffix("/*") == Some(a.resource)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const POLICY: &str = r#"
apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: [RequestReceived]
rules:
- level: None
  users: ["system:kube-proxy"]
- level: None
  nonResourceURLs: ["/healthz*", "/version"]
- level: Metadata
  resources:
  - group: ""
    resources: ["secrets", "configmaps"]
- level: RequestResponse
  resources:
  - group: ""
    resources: ["pods/log", "*/status"]
  omitStages: [ResponseStarted]
- level: Request
  userGroups: ["devs"]
  verbs: ["create"]
  namespaces: ["team"]
- level: Request
  resources:
  - group: apps
    resources: ["deployments"]
    resourceNames: ["web"]
  omitManagedFields: true
- level: Metadata
  resources:
  - group: "batch"
    resources: ["jobs/*"]
"#;

    fn res<'a>(group: &'a str, resource: &'a str, sub: &'a str, name: &'a str) -> Attrs<'a> {
        Attrs {
            user: None,
            verb: "get",
            resource_request: true,
            group,
            namespace: "default",
            resource,
            subresource: sub,
            name,
            path: "",
        }
    }

    #[test]
    fn first_matching_rule_decides() {
        let p = Policy::parse(POLICY).unwrap();
        let groups = vec!["system:nodes".to_string()];
        let proxy =
            Attrs { user: Some(("system:kube-proxy", &groups)), ..res("", "secrets", "", "") };
        assert_eq!(p.evaluate(&proxy).level, Level::None);
        let d = p.evaluate(&res("", "secrets", "", "s"));
        assert_eq!(d.level, Level::Metadata);
        assert_eq!(d.omit_stages, vec![Stage::RequestReceived]);
        assert_eq!(p.evaluate(&res("", "services", "", "")).level, Level::None);
    }

    #[test]
    fn subresources_match_as_upstream() {
        let p = Policy::parse(POLICY).unwrap();
        let d = p.evaluate(&res("", "pods", "log", "p"));
        assert_eq!(d.level, Level::RequestResponse);
        assert_eq!(d.omit_stages, vec![Stage::RequestReceived, Stage::ResponseStarted]);
        assert_eq!(p.evaluate(&res("", "nodes", "status", "n")).level, Level::RequestResponse);
        assert_eq!(p.evaluate(&res("", "pods", "", "p")).level, Level::None);
        assert_eq!(p.evaluate(&res("", "pods", "exec", "p")).level, Level::None);
        assert_eq!(p.evaluate(&res("batch", "jobs", "status", "j")).level, Level::Metadata);
        // `jobs/*` also matches the resource itself, as upstream.
        assert_eq!(p.evaluate(&res("batch", "jobs", "", "j")).level, Level::Metadata);
    }

    #[test]
    fn resource_names_groups_verbs_namespaces() {
        let p = Policy::parse(POLICY).unwrap();
        let web = p.evaluate(&res("apps", "deployments", "", "web"));
        assert_eq!(web.level, Level::Request);
        assert!(web.omit_managed_fields);
        assert_eq!(p.evaluate(&res("apps", "deployments", "", "db")).level, Level::None);
        let groups = vec!["devs".to_string()];
        let dev = Attrs {
            user: Some(("ann", &groups)),
            verb: "create",
            namespace: "team",
            ..res("", "services", "", "")
        };
        assert_eq!(p.evaluate(&dev).level, Level::Request);
        assert_eq!(p.evaluate(&Attrs { verb: "get", ..dev }).level, Level::None);
        assert_eq!(p.evaluate(&Attrs { namespace: "other", ..dev }).level, Level::None);
        assert_eq!(p.evaluate(&Attrs { user: None, ..dev }).level, Level::None);
    }

    #[test]
    fn non_resource_urls_with_wildcard_suffix() {
        let p = Policy::parse(POLICY).unwrap();
        let url = |path| Attrs { resource_request: false, path, verb: "get", ..Default::default() };
        assert_eq!(p.evaluate(&url("/healthz/etcd")).level, Level::None);
        assert!(path_matches("/healthz/etcd", "/healthz*"));
        assert!(path_matches("/version", "/version"));
        assert!(!path_matches("/versions", "/version"));
        assert!(path_matches("/anything", "*"));
    }

    #[test]
    fn json_policies_parse() {
        let p = Policy::parse(
            r#"{"apiVersion":"audit.k8s.io/v1","kind":"Policy","rules":[{"level":"Metadata"}]}"#,
        )
        .unwrap();
        assert_eq!(p.evaluate(&res("", "pods", "", "")).level, Level::Metadata);
    }

    #[test]
    fn bad_policies_are_refused_with_the_reason() {
        let bad_level = "apiVersion: audit.k8s.io/v1\nkind: Policy\nrules:\n- level: Everything\n";
        let e = Policy::parse(bad_level).unwrap_err();
        assert!(e.contains("rules[0].level: Unsupported value: \"Everything\""), "{e}");
        let unknown =
            "apiVersion: audit.k8s.io/v1\nkind: Policy\nrules:\n- level: None\n  user: [a]\n";
        let e = Policy::parse(unknown).unwrap_err();
        assert!(e.contains("unknown field `user`"), "{e}");
        let stage = "apiVersion: audit.k8s.io/v1\nkind: Policy\nomitStages: [Later]\nrules:\n- level: None\n";
        assert!(Policy::parse(stage).unwrap_err().contains("omitStages[0]: Unsupported value"));
        let empty = "apiVersion: audit.k8s.io/v1\nkind: Policy\nrules: []\n";
        assert_eq!(Policy::parse(empty).unwrap_err(), "loaded illegal policy with 0 rules");
        let mixed = "apiVersion: audit.k8s.io/v1\nkind: Policy\nrules:\n- level: None\n  nonResourceURLs: [/a]\n  resources: [{group: \"\"}]\n";
        assert!(Policy::parse(mixed).unwrap_err().contains("both regular resources"));
        let url = "apiVersion: audit.k8s.io/v1\nkind: Policy\nrules:\n- level: None\n  nonResourceURLs: [healthz]\n";
        assert!(Policy::parse(url).unwrap_err().contains("must begin with a '/'"));
        let version = "apiVersion: audit.k8s.io/v1beta1\nkind: Policy\nrules:\n- level: None\n";
        assert!(Policy::parse(version).unwrap_err().contains("audit.k8s.io/v1beta1"));
    }
}
