//! Pods: upstream defaults (SetDefaults_PodSpec, containers, probes, volumes, plus what
//! default admission adds: priority, service account name, default tolerations), status
//! on create (Pending, QoS class), validation of containers, and the spec fields an
//! update may change.

use super::Strategy;
use super::resources;
use super::util::{default, each, field_string, obj_at, str_at};
use crate::error::FieldError;
use crate::validation::dns1123_label_errors;
use serde_json::{Map, Value, json};

#[derive(Debug)]
pub struct Pods;

const PROBES: [&str; 3] = ["livenessProbe", "readinessProbe", "startupProbe"];

fn default_probe(p: &mut Map<String, Value>) {
    default(p, "timeoutSeconds", json!(1));
    default(p, "periodSeconds", json!(10));
    default(p, "successThreshold", json!(1));
    default(p, "failureThreshold", json!(3));
    if let Some(h) = p.get_mut("httpGet").and_then(Value::as_object_mut) {
        default(h, "scheme", json!("HTTP"));
        default(h, "path", json!("/"));
    }
}

fn pull_policy(image: &str) -> &'static str {
    let last = image.rsplit('/').next().unwrap_or(image);
    let tag =
        if last.contains('@') { Some("digest") } else { last.split_once(':').map(|(_, t)| t) };
    match tag {
        None | Some("latest") => "Always",
        _ => "IfNotPresent",
    }
}

fn default_container(c: &mut Map<String, Value>) {
    default(c, "terminationMessagePath", json!("/dev/termination-log"));
    default(c, "terminationMessagePolicy", json!("File"));
    let image = c.get("image").and_then(Value::as_str).unwrap_or("").to_string();
    default(c, "imagePullPolicy", json!(pull_policy(&image)));
    default(c, "resources", json!({}));
    for p in each(c, "ports") {
        default(p, "protocol", json!("TCP"));
    }
    for probe in PROBES {
        if let Some(p) = c.get_mut(probe).and_then(Value::as_object_mut) {
            default_probe(p);
        }
    }
    for e in each(c, "env") {
        if let Some(f) = e
            .get_mut("valueFrom")
            .and_then(|v| v.get_mut("fieldRef"))
            .and_then(Value::as_object_mut)
        {
            default(f, "apiVersion", json!("v1"));
        }
    }
}

fn default_volume(v: &mut Map<String, Value>) {
    for source in ["secret", "configMap", "downwardAPI", "projected"] {
        if let Some(s) = v.get_mut(source).and_then(Value::as_object_mut) {
            default(s, "defaultMode", json!(420));
        }
    }
    if let Some(h) = v.get_mut("hostPath").and_then(Value::as_object_mut) {
        default(h, "type", json!(""));
    }
}

/// Defaults of a pod spec (also used for templates of workloads).
pub fn default_pod_spec(spec: &mut Map<String, Value>) {
    default(spec, "dnsPolicy", json!("ClusterFirst"));
    default(spec, "restartPolicy", json!("Always"));
    default(spec, "terminationGracePeriodSeconds", json!(30));
    default(spec, "securityContext", json!({}));
    default(spec, "schedulerName", json!("default-scheduler"));
    for key in ["containers", "initContainers", "ephemeralContainers"] {
        for c in each(spec, key) {
            default_container(c);
        }
    }
    for v in each(spec, "volumes") {
        default_volume(v);
    }
}

/// Defaults of a pod template (`spec.template` of workloads).
pub fn default_template(obj: &mut Value, path: &[&str]) {
    let mut full: Vec<&str> = path.to_vec();
    full.push("spec");
    if let Some(spec) = obj_at(obj, &full) {
        default_pod_spec(spec);
    }
}

/// Upstream's SetDefaults_Pod (a pod's, not a template's): a container's resource with
/// a limit and no request gets the limit as its request.
fn requests_from_limits(spec: &mut Map<String, Value>) {
    for key in ["containers", "initContainers"] {
        for c in each(spec, key) {
            let Some(Value::Object(resources)) = c.get_mut("resources") else { continue };
            let Some(Value::Object(limits)) = resources.get("limits") else { continue };
            let requests = resources.get("requests").and_then(Value::as_object);
            let missing: Vec<(String, Value)> = limits
                .iter()
                .filter(|(name, _)| requests.is_none_or(|r| !r.contains_key(*name)))
                .map(|(name, limit)| (name.clone(), limit.clone()))
                .collect();
            if missing.is_empty() {
                continue;
            }
            let requests = resources.entry("requests").or_insert_with(|| json!({}));
            if !requests.is_object() {
                *requests = json!({});
            }
            if let Some(requests) = requests.as_object_mut() {
                requests.extend(missing);
            }
        }
    }
}

fn qos_class(spec: &Value) -> &'static str {
    let containers: Vec<&Value> = ["containers", "initContainers"]
        .iter()
        .filter_map(|k| spec.get(*k).and_then(Value::as_array))
        .flatten()
        .collect();
    let (mut any, mut guaranteed) = (false, true);
    for c in &containers {
        let req = c.pointer("/resources/requests").and_then(Value::as_object);
        let lim = c.pointer("/resources/limits").and_then(Value::as_object);
        if req.is_some_and(|r| !r.is_empty()) || lim.is_some_and(|l| !l.is_empty()) {
            any = true;
        }
        for res in ["cpu", "memory"] {
            let l = lim.and_then(|l| l.get(res));
            let r = req.and_then(|r| r.get(res)).or(l);
            if l.is_none() || r != l {
                guaranteed = false;
            }
        }
    }
    match (any, guaranteed) {
        (false, _) => "BestEffort",
        (true, true) => "Guaranteed",
        _ => "Burstable",
    }
}

fn validate_containers(
    spec: &Value,
    path: &str,
    key: &str,
    required: bool,
    out: &mut Vec<FieldError>,
) {
    let list = spec.get(key).and_then(Value::as_array);
    if required && list.is_none_or(Vec::is_empty) {
        out.push(FieldError::required(format!("{path}.{key}"), ""));
        return;
    }
    let mut seen = std::collections::HashSet::new();
    for (i, c) in list.into_iter().flatten().enumerate() {
        let at = format!("{path}.{key}[{i}]");
        let name = c.get("name").and_then(Value::as_str).unwrap_or("");
        if name.is_empty() {
            out.push(FieldError::required(format!("{at}.name"), ""));
        } else {
            for e in dns1123_label_errors(name) {
                out.push(FieldError::invalid(format!("{at}.name"), &json!(name), &e));
            }
            if !seen.insert(name.to_string()) {
                out.push(FieldError::duplicate(format!("{at}.name"), &json!(name)));
            }
        }
        if c.get("image").and_then(Value::as_str).is_none_or(|s| s.trim().is_empty()) {
            out.push(FieldError::required(format!("{at}.image"), ""));
        }
        if let Some(res) = c.get("resources") {
            let claims = pod_claim_names(spec);
            resources::validate_requirements(res, &format!("{at}.resources"), &claims, out);
        }
    }
}

/// The names in the pod's `spec.resourceClaims` (what a container's claims may name).
fn pod_claim_names(spec: &Value) -> std::collections::BTreeSet<&str> {
    let list = spec.get("resourceClaims").and_then(Value::as_array);
    list.into_iter().flatten().filter_map(|c| c.get("name").and_then(Value::as_str)).collect()
}

/// Validation of a pod spec at `path` (`spec` or `spec.template.spec`).
pub fn validate_pod_spec(spec: &Value, path: &str, restart: &[&str]) -> Vec<FieldError> {
    let mut out = Vec::new();
    validate_containers(spec, path, "containers", true, &mut out);
    validate_containers(spec, path, "initContainers", false, &mut out);
    let rp = spec.get("restartPolicy").and_then(Value::as_str).unwrap_or("Always");
    if !restart.contains(&rp) {
        out.push(FieldError::not_supported(format!("{path}.restartPolicy"), &json!(rp), restart));
    }
    if let Some(overhead) = spec.get("overhead") {
        resources::validate_overhead(overhead, &format!("{path}.overhead"), &mut out);
    }
    let dns = spec.get("dnsPolicy").and_then(Value::as_str).unwrap_or("ClusterFirst");
    let dns_ok = ["ClusterFirstWithHostNet", "ClusterFirst", "Default", "None"];
    if !dns_ok.contains(&dns) {
        out.push(FieldError::not_supported(format!("{path}.dnsPolicy"), &json!(dns), &dns_ok));
    }
    out
}

/// The pod spec with every field an update may change blanked out.
fn frozen_spec(spec: Option<&Value>) -> Value {
    let mut s = spec.cloned().unwrap_or(Value::Null);
    if let Some(m) = s.as_object_mut() {
        for k in ["activeDeadlineSeconds", "tolerations", "terminationGracePeriodSeconds"] {
            m.remove(k);
        }
        for key in ["containers", "initContainers"] {
            for c in each(m, key) {
                c.remove("image");
            }
        }
    }
    s
}

const UPDATABLE: &str = "`spec.containers[*].image`,`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions to existing tolerations),`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)";

impl Strategy for Pods {
    fn tracks_generation(&self) -> bool {
        true
    }

    fn default(&self, obj: &mut Value) {
        if let Some(spec) = obj_at(obj, &["spec"]) {
            default_pod_spec(spec);
            // a pod's default, not a pod spec's (upstream's SetDefaults_Pod): templates
            // of workloads do not get it
            default(spec, "enableServiceLinks", json!(true));
            requests_from_limits(spec);
            // upstream's v1 conversion: the deprecated field names the account when the
            // current one does not
            let named = spec.get("serviceAccountName").and_then(Value::as_str);
            if named.is_none_or(str::is_empty)
                && let Some(sa) =
                    spec.get("serviceAccount").filter(|v| v.as_str().is_some_and(|s| !s.is_empty()))
            {
                let sa = sa.clone();
                spec.insert("serviceAccountName".into(), sa);
            }
        }
    }

    /// What upstream's pod storage adds; the service account, priority and tolerations
    /// are the admission plugins' (engine/src/admission). The deprecated
    /// `serviceAccount` mirrors `serviceAccountName`, as upstream's v1 conversion sets it.
    fn prepare_create(&self, obj: &mut Value) {
        let qos = qos_class(obj.get("spec").unwrap_or(&Value::Null));
        if let Some(spec) = obj_at(obj, &["spec"]) {
            match spec
                .get("serviceAccountName")
                .filter(|n| n.as_str().is_some_and(|n| !n.is_empty()))
            {
                Some(sa) => {
                    let sa = sa.clone();
                    spec.insert("serviceAccount".into(), sa);
                }
                None => {
                    spec.remove("serviceAccount");
                }
            }
        }
        if let Some(m) = obj.as_object_mut() {
            m.insert("status".into(), json!({"phase": "Pending", "qosClass": qos}));
        }
    }

    fn validate(&self, obj: &Value) -> Vec<FieldError> {
        match obj.get("spec") {
            Some(spec) => validate_pod_spec(spec, "spec", &["Always", "OnFailure", "Never"]),
            None => vec![FieldError::required("spec.containers", "")],
        }
    }

    fn validate_update(&self, new: &Value, old: &Value) -> Vec<FieldError> {
        if frozen_spec(new.get("spec")) == frozen_spec(old.get("spec")) {
            return Vec::new();
        }
        vec![FieldError::forbidden(
            "spec",
            &format!("pod updates may not change fields other than {UPDATABLE}"),
        )]
    }

    fn selectable_fields(&self) -> &'static [&'static str] {
        &[
            "spec.nodeName",
            "spec.restartPolicy",
            "spec.schedulerName",
            "spec.serviceAccountName",
            "spec.hostNetwork",
            "status.phase",
            "status.podIP",
            "status.podIPs",
            "status.nominatedNodeName",
        ]
    }

    fn field_value(&self, obj: &Value, field: &str) -> Option<String> {
        Some(match field {
            "spec.hostNetwork" => obj
                .pointer("/spec/hostNetwork")
                .and_then(Value::as_bool)
                .unwrap_or(false)
                .to_string(),
            "status.podIPs" => str_at(obj, "/status/podIPs/0/ip").to_string(),
            other if self.selectable_fields().contains(&other) => {
                field_string(obj.pointer(&format!("/{}", other.replace('.', "/"))))
            }
            _ => return None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pod_defaults_match_upstream() {
        let mut pod = json!({"spec": {"containers": [{"name": "c", "image": "nginx", "ports": [{"containerPort": 80}]}, {"name": "d", "image": "busybox:1.36"}]}});
        Pods.default(&mut pod);
        Pods.prepare_create(&mut pod);
        let s = &pod["spec"];
        assert_eq!(
            (s["restartPolicy"].as_str(), s["dnsPolicy"].as_str()),
            (Some("Always"), Some("ClusterFirst"))
        );
        assert_eq!(
            (s["schedulerName"].as_str(), s["terminationGracePeriodSeconds"].as_i64()),
            (Some("default-scheduler"), Some(30))
        );
        let c = &s["containers"][0];
        assert_eq!(c["terminationMessagePath"], "/dev/termination-log");
        assert_eq!(c["terminationMessagePolicy"], "File");
        assert_eq!(c["imagePullPolicy"], "Always");
        assert_eq!(c["ports"][0]["protocol"], "TCP");
        assert_eq!(s["containers"][1]["imagePullPolicy"], "IfNotPresent");
        assert_eq!(pod["status"], json!({"phase": "Pending", "qosClass": "BestEffort"}));
        // the service account, priority and tolerations are admission's
        for field in ["serviceAccountName", "serviceAccount", "priority", "tolerations"] {
            assert!(s.get(field).is_none(), "{field}: {s}");
        }
    }

    #[test]
    fn the_deprecated_service_account_field_mirrors_the_current_one() {
        let mut pod = json!({"spec": {"serviceAccount": "old", "containers": []}});
        Pods.default(&mut pod);
        assert_eq!(pod["spec"]["serviceAccountName"], "old");
        let mut pod = json!({"spec": {"serviceAccountName": "new", "serviceAccount": "old", "containers": []}});
        Pods.default(&mut pod);
        Pods.prepare_create(&mut pod);
        assert_eq!(
            (pod["spec"]["serviceAccountName"].as_str(), pod["spec"]["serviceAccount"].as_str()),
            (Some("new"), Some("new"))
        );
    }

    #[test]
    fn qos_classes() {
        let g = json!({"containers": [{"resources": {"limits": {"cpu": "1", "memory": "1Gi"}}}]});
        let b = json!({"containers": [{"resources": {"requests": {"cpu": "1"}}}]});
        assert_eq!(qos_class(&g), "Guaranteed");
        assert_eq!(qos_class(&b), "Burstable");
        assert_eq!(qos_class(&json!({"containers": [{}]})), "BestEffort");
    }

    #[test]
    fn invalid_pods_and_immutable_specs() {
        let errs = Pods.validate(&json!({"spec": {"containers": [{"name": "Bad_Name"}]}}));
        let fields: Vec<&str> = errs.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, vec!["spec.containers[0].name", "spec.containers[0].image"]);
        let old = json!({"spec": {"containers": [{"name": "c", "image": "a"}], "nodeName": ""}});
        let image = json!({"spec": {"containers": [{"name": "c", "image": "b"}], "nodeName": ""}});
        let node = json!({"spec": {"containers": [{"name": "c", "image": "a"}], "nodeName": "n1"}});
        assert!(Pods.validate_update(&image, &old).is_empty());
        assert_eq!(Pods.validate_update(&node, &old).len(), 1);
        assert_eq!(Pods.field_value(&node, "spec.nodeName").as_deref(), Some("n1"));
        assert_eq!(Pods.field_value(&old, "spec.hostNetwork").as_deref(), Some("false"));
    }

    /// Regression: a pod's limit without a request was stored without the request
    /// upstream's SetDefaults_Pod copies from it (templates do not get it).
    #[test]
    fn a_limit_without_a_request_becomes_the_request() {
        let mut pod = json!({"spec": {"containers": [
            {"name": "a", "resources": {"limits": {"cpu": "1", "example.com/x": "2"},
                                        "requests": {"cpu": "500m"}}},
            {"name": "b", "resources": {"limits": {"memory": "1Gi"}}},
            {"name": "c"}]}});
        Pods.default(&mut pod);
        let c = &pod["spec"]["containers"];
        assert_eq!(c[0]["resources"]["requests"], json!({"cpu": "500m", "example.com/x": "2"}));
        assert_eq!(c[1]["resources"]["requests"], json!({"memory": "1Gi"}));
        assert!(c[2].pointer("/resources/requests").is_none());
    }
}
