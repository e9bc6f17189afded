//! ServiceAccount: a new pod runs as a ServiceAccount that exists (`default` when it
//! names none) and, unless it or its ServiceAccount opts out
//! (`automountServiceAccountToken: false`), gets the projected `kube-api-access-XXXXX`
//! volume (a bound token, the cluster's CA bundle, its namespace) mounted read-only at
//! `/var/run/secrets/kubernetes.io/serviceaccount` in every container and init
//! container that does not mount something there already. A pod without image pull
//! secrets gets its ServiceAccount's. As upstream:
//! - mirror pods (`kubernetes.io/config.mirror`) are not changed, and may reference no
//!   ServiceAccount, secret or token projection;
//! - a ServiceAccount annotated `kubernetes.io/enforce-mountable-secrets: "true"`
//!   limits the pod's secret volumes, env references and pull secrets to its own
//!   (checked again on `pods/ephemeralcontainers` updates);
//! - the ServiceAccount is read from the cache; a `default` one the controller has not
//!   made yet is waited for a moment (upstream retries its live lookup for ~1.5 s).
//!
//! The token volume and its mount are built once and cloned per pod (named on use); the
//! ServiceAccount is read once per request (kept in the request's [`Attributes`]).

use super::cached::{self, SERVICE_ACCOUNTS};
use super::{Attributes, Operation, Plugin, Step};
use crate::status::ApiError;
use kapi_codec::pointer::Pointer as _;
use serde_json::{Map, Value, json};
use std::sync::{Arc, LazyLock};
use std::time::Duration;

/// Where the token volume is mounted.
pub const TOKEN_MOUNT_PATH: &str = "/var/run/secrets/kubernetes.io/serviceaccount";
/// The token volume's name prefix (a random 5-character suffix follows).
pub const TOKEN_VOLUME_PREFIX: &str = "kube-api-access-";
const MIRROR_ANNOTATION: &str = "kubernetes.io/config.mirror";
const ENFORCE_ANNOTATION: &str = "kubernetes.io/enforce-mountable-secrets";
/// Upstream's bound token lifetime of the projected volume (`WarnOnlyBoundTokenExpirationSeconds`).
const TOKEN_EXPIRATION_SECONDS: i64 = 3607;
/// How long a missing `default` ServiceAccount is waited for.
const DEFAULT_WAIT: Duration = Duration::from_millis(1500);

/// Upstream's ServiceAccount plugin.
pub struct ServiceAccount;

impl Plugin for ServiceAccount {
    fn name(&self) -> &'static str {
        "ServiceAccount"
    }

    fn handles(&self, a: &Attributes<'_>) -> bool {
        let rt = a.rt();
        if !rt.group.is_empty() || &*rt.plural != "pods" {
            return false;
        }
        match a.subresource() {
            None => a.operation == Operation::Create,
            Some("ephemeralcontainers") => a.operation == Operation::Update,
            Some(_) => false,
        }
    }

    fn mutates(&self) -> bool {
        true
    }

    fn validates(&self) -> bool {
        true
    }

    fn admit<'a>(&'a self, a: &'a Attributes<'a>, obj: &'a mut Value) -> Step<'a> {
        if a.subresource().is_some() {
            return super::done(Ok(()));
        }
        Box::pin(admit(a, obj))
    }

    fn validate<'a>(&'a self, a: &'a Attributes<'a>, obj: &'a Value) -> Step<'a> {
        Box::pin(validate(a, obj))
    }
}

fn is_mirror(pod: &Value) -> bool {
    kapi_codec::meta::annotations(pod).is_some_and(|a| a.contains_key(MIRROR_ANNOTATION))
}

fn sa_name(pod: &Value) -> &str {
    pod.at("/spec/serviceAccountName").and_then(Value::as_str).unwrap_or("")
}

async fn admit(a: &Attributes<'_>, pod: &mut Value) -> Result<(), ApiError> {
    if is_mirror(pod) {
        return check_mirror(pod).map_err(|why| a.forbid(pod, why));
    }
    let Some(spec) = pod.get_mut("spec").and_then(Value::as_object_mut) else { return Ok(()) };
    if spec.get("serviceAccountName").and_then(Value::as_str).is_none_or(str::is_empty) {
        spec.insert("serviceAccountName".into(), json!("default"));
    }
    let sa = lookup(a, pod).await?;
    let Some(spec) = pod.get_mut("spec").and_then(Value::as_object_mut) else { return Ok(()) };
    if automounts(spec, &sa) {
        let name = crate::rest::object::generate_name(TOKEN_VOLUME_PREFIX);
        mount_token(spec, &name);
    }
    copy_pull_secrets(spec, &sa);
    Ok(())
}

async fn validate(a: &Attributes<'_>, pod: &Value) -> Result<(), ApiError> {
    let ephemeral = a.subresource() == Some("ephemeralcontainers");
    if !ephemeral && is_mirror(pod) {
        return check_mirror(pod).map_err(|why| a.forbid(pod, why));
    }
    if sa_name(pod).is_empty() {
        let name = kapi_codec::meta::name(pod).unwrap_or("");
        let why = format!("no service account specified for pod {}/{name}", a.namespace());
        return Err(a.forbid(pod, why));
    }
    let sa = lookup(a, pod).await?;
    if !enforces_mountable_secrets(&sa) {
        return Ok(());
    }
    let checked = if ephemeral { limit_ephemeral(&sa, pod) } else { limit_secrets(&sa, pod) };
    checked.map_err(|why| a.forbid(pod, why))
}

/// The pod's ServiceAccount from the cache, or upstream's 403. Read once per request:
/// the validating half (and a reinvocation round) takes what the mutating half read
/// when the pod still names it.
async fn lookup(a: &Attributes<'_>, pod: &Value) -> Result<Arc<Value>, ApiError> {
    let name = sa_name(pod);
    if let Some(kept) = a.read_service_account(name) {
        return Ok(kept);
    }
    let app = a.scope.app;
    let ns = Some(a.namespace());
    let found = if name == "default" {
        cached::wait_for(app, SERVICE_ACCOUNTS, ns, name, DEFAULT_WAIT).await
    } else {
        cached::get_shared(app, SERVICE_ACCOUNTS, ns, name).await
    };
    if let Some(sa) = &found {
        a.keep_service_account(sa.clone());
    }
    found.ok_or_else(|| {
        let why = format!(
            "error looking up service account {}/{name}: serviceaccount \"{name}\" not found",
            a.namespace()
        );
        a.forbid(pod, why)
    })
}

/// The pod's choice wins, then the ServiceAccount's; mounting is the default.
fn automounts(spec: &Map<String, Value>, sa: &Value) -> bool {
    let key = "automountServiceAccountToken";
    spec.get(key)
        .and_then(Value::as_bool)
        .or_else(|| sa.get(key).and_then(Value::as_bool))
        .unwrap_or(true)
}

/// The projected token volume upstream adds (`TokenVolumeSource`).
pub fn token_volume(name: String) -> Value {
    let mut v = TOKEN_VOLUME.clone();
    v["name"] = Value::String(name);
    v
}

/// The token volume and its mount, built once (named on use).
static TOKEN_VOLUME: LazyLock<Value> = LazyLock::new(|| {
    json!({"name": "", "projected": {
        "sources": [
            {"serviceAccountToken": {"expirationSeconds": TOKEN_EXPIRATION_SECONDS, "path": "token"}},
            {"configMap": {"name": "kube-root-ca.crt", "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
            {"downwardAPI": {"items": [{"path": "namespace",
                "fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.namespace"}}]}}
        ],
        "defaultMode": 420}})
});
static TOKEN_MOUNT: LazyLock<Value> =
    LazyLock::new(|| json!({"name": "", "readOnly": true, "mountPath": TOKEN_MOUNT_PATH}));

/// Mount the token volume (an existing `kube-api-access-*` volume, else a new one named
/// `fresh`) in every container and init container without a mount at the token path;
/// the volume is added when one of them needed it.
pub fn mount_token(spec: &mut Map<String, Value>, fresh: &str) {
    let volumes = spec.get("volumes").and_then(Value::as_array);
    let existing = volumes.into_iter().flatten().find_map(|v| {
        v.get("name").and_then(Value::as_str).filter(|n| n.starts_with(TOKEN_VOLUME_PREFIX))
    });
    let has_volume = existing.is_some();
    let mut mount = TOKEN_MOUNT.clone();
    mount["name"] = Value::String(existing.unwrap_or(fresh).to_string());
    let mut needed = false;
    for key in ["initContainers", "containers"] {
        let Some(list) = spec.get_mut(key).and_then(Value::as_array_mut) else { continue };
        for c in list.iter_mut().filter_map(Value::as_object_mut) {
            let Some(mounts) = super::list_field(c, "volumeMounts") else { continue };
            let taken = mounts
                .iter()
                .any(|m| m.get("mountPath").and_then(Value::as_str) == Some(TOKEN_MOUNT_PATH));
            if !taken {
                mounts.push(mount.clone());
                needed = true;
            }
        }
    }
    if needed && !has_volume {
        // The mounts are in: the template's name moves to the volume.
        let Value::String(name) = mount["name"].take() else { return };
        let volume = token_volume(name);
        if !spec.get("volumes").is_some_and(Value::is_array) {
            spec.insert("volumes".into(), Value::Array(Vec::with_capacity(1)));
        }
        if let Some(v) = spec.get_mut("volumes").and_then(Value::as_array_mut) {
            v.push(volume);
        }
    }
}

/// A pod without image pull secrets gets its ServiceAccount's.
fn copy_pull_secrets(spec: &mut Map<String, Value>, sa: &Value) {
    let has = spec.get("imagePullSecrets").and_then(Value::as_array).is_some_and(|l| !l.is_empty());
    let theirs = names(sa.get("imagePullSecrets"));
    if has || theirs.is_empty() {
        return;
    }
    let list: Vec<Value> = theirs.iter().map(|n| json!({"name": n})).collect();
    spec.insert("imagePullSecrets".into(), Value::Array(list));
}

fn names(list: Option<&Value>) -> Vec<&str> {
    list.and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|r| r.get("name").and_then(Value::as_str))
        .collect()
}

fn enforces_mountable_secrets(sa: &Value) -> bool {
    kapi_codec::meta::annotations(sa)
        .and_then(|a| a.get(ENFORCE_ANNOTATION))
        .and_then(Value::as_str)
        .is_some_and(|v| matches!(v, "1" | "t" | "T" | "true" | "TRUE" | "True"))
}

/// Mirror pods may reference no ServiceAccount, secret or token projection.
pub fn check_mirror(pod: &Value) -> Result<(), String> {
    if !sa_name(pod).is_empty() {
        return Err("a mirror pod may not reference service accounts".into());
    }
    if !secret_names(pod).is_empty() {
        return Err("a mirror pod may not reference secrets".into());
    }
    let projects_token = volumes(pod).any(|v| {
        v.at("/projected/sources")
            .and_then(Value::as_array)
            .is_some_and(|s| s.iter().any(|p| p.get("serviceAccountToken").is_some()))
    });
    if projects_token {
        return Err("a mirror pod may not use ServiceAccountToken volume projections".into());
    }
    Ok(())
}

fn volumes(pod: &Value) -> impl Iterator<Item = &Value> {
    pod.at("/spec/volumes").and_then(Value::as_array).into_iter().flatten()
}

fn containers<'p>(pod: &'p Value, key: &str) -> impl Iterator<Item = &'p Value> {
    pod.get("spec").and_then(|s| s.get(key)).and_then(Value::as_array).into_iter().flatten()
}

/// Every secret a pod names (upstream's `VisitPodSecretNames`, all containers).
pub fn secret_names(pod: &Value) -> Vec<&str> {
    let mut out = names(pod.at("/spec/imagePullSecrets"));
    for key in ["initContainers", "containers", "ephemeralContainers"] {
        for c in containers(pod, key) {
            out.extend(env_secret_refs(c).into_iter().map(|(_, s)| s));
            out.extend(env_from_secrets(c));
        }
    }
    for v in volumes(pod) {
        out.extend(volume_secrets(v));
    }
    out
}

/// `(env name, secret)` of a container's `env[].valueFrom.secretKeyRef`.
fn env_secret_refs(c: &Value) -> Vec<(&str, &str)> {
    c.get("env")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|e| {
            let secret = e.at("/valueFrom/secretKeyRef/name").and_then(Value::as_str)?;
            Some((e.get("name").and_then(Value::as_str).unwrap_or(""), secret))
        })
        .collect()
}

fn env_from_secrets(c: &Value) -> Vec<&str> {
    c.get("envFrom")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|e| e.at("/secretRef/name").and_then(Value::as_str))
        .collect()
}

/// The secrets a volume names: secret volumes, projected secrets, and the secret
/// references of the volume plugins that take one.
fn volume_secrets(v: &Value) -> Vec<&str> {
    let mut out = Vec::new();
    let at = |p: &str| v.at(p).and_then(Value::as_str).filter(|s| !s.is_empty());
    out.extend(at("/secret/secretName"));
    out.extend(at("/azureFile/secretName"));
    for plugin in ["cephfs", "cinder", "flexVolume", "rbd", "scaleIO", "iscsi", "storageos"] {
        out.extend(at(&format!("/{plugin}/secretRef/name")));
    }
    out.extend(at("/csi/nodePublishSecretRef/name"));
    let sources = v.at("/projected/sources").and_then(Value::as_array);
    out.extend(
        sources.into_iter().flatten().filter_map(|s| s.at("/secret/name").and_then(Value::as_str)),
    );
    out
}

/// Upstream's `limitSecretReferences`: the pod's secret volumes, env references and
/// pull secrets must be the ServiceAccount's.
pub fn limit_secrets(sa: &Value, pod: &Value) -> Result<(), String> {
    let sa_name = kapi_codec::meta::name(sa).unwrap_or("");
    let mountable = names(sa.get("secrets"));
    for v in volumes(pod) {
        if let Some(s) = v.at("/secret/secretName").and_then(Value::as_str)
            && !mountable.contains(&s)
        {
            return Err(format!(
                "volume with secret.secretName=\"{s}\" is not allowed because service account {sa_name} does not reference that secret"
            ));
        }
    }
    for (key, what) in [("initContainers", "init container"), ("containers", "container")] {
        for c in containers(pod, key) {
            check_container(c, what, &mountable, sa_name)?;
        }
    }
    let pull = names(sa.get("imagePullSecrets"));
    for (i, s) in names(pod.at("/spec/imagePullSecrets")).into_iter().enumerate() {
        if !pull.contains(&s) {
            return Err(format!(
                "imagePullSecrets[{i}].name=\"{s}\" is not allowed because service account {sa_name} does not reference that imagePullSecret"
            ));
        }
    }
    Ok(())
}

/// Upstream's `limitEphemeralContainerSecretReferences`.
pub fn limit_ephemeral(sa: &Value, pod: &Value) -> Result<(), String> {
    let sa_name = kapi_codec::meta::name(sa).unwrap_or("");
    let mountable = names(sa.get("secrets"));
    for c in containers(pod, "ephemeralContainers") {
        check_container(c, "ephemeral container", &mountable, sa_name)?;
    }
    Ok(())
}

fn check_container(c: &Value, what: &str, mountable: &[&str], sa: &str) -> Result<(), String> {
    let name = c.get("name").and_then(Value::as_str).unwrap_or("");
    for (env, s) in env_secret_refs(c) {
        if !mountable.contains(&s) {
            return Err(format!(
                "{what} {name} with envVar {env} referencing secret.secretName=\"{s}\" is not allowed because service account {sa} does not reference that secret"
            ));
        }
    }
    for s in env_from_secrets(c) {
        if !mountable.contains(&s) {
            return Err(format!(
                "{what} {name} with envFrom referencing secret.secretName=\"{s}\" is not allowed because service account {sa} does not reference that secret"
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec_of(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn every_container_and_init_container_mounts_the_token_volume() {
        let mut spec = spec_of(json!({
            "initContainers": [{"name": "i", "image": "x"}],
            "containers": [{"name": "a", "image": "x", "volumeMounts": [{"name": "cfg", "mountPath": "/etc"}]},
                {"name": "b", "image": "x"}],
            "volumes": [{"name": "cfg", "configMap": {"name": "c"}}]}));
        mount_token(&mut spec, "kube-api-access-abcde");
        let vols = spec["volumes"].as_array().unwrap();
        assert_eq!(vols.len(), 2);
        assert_eq!(vols[1], token_volume("kube-api-access-abcde".into()));
        for c in spec["initContainers"]
            .as_array()
            .unwrap()
            .iter()
            .chain(spec["containers"].as_array().unwrap())
        {
            let last = c["volumeMounts"].as_array().unwrap().last().unwrap().clone();
            assert_eq!(
                last,
                json!({"name": "kube-api-access-abcde", "readOnly": true, "mountPath": TOKEN_MOUNT_PATH})
            );
        }
    }

    #[test]
    fn a_mount_at_the_token_path_or_an_existing_token_volume_is_kept() {
        let mut spec = spec_of(json!({
            "containers": [{"name": "a", "image": "x", "volumeMounts": [{"name": "mine", "mountPath": TOKEN_MOUNT_PATH}]}],
            "volumes": [{"name": "mine", "emptyDir": {}}]}));
        mount_token(&mut spec, "kube-api-access-abcde");
        assert_eq!(spec["volumes"].as_array().unwrap().len(), 1, "nobody needed the token volume");
        let mut spec = spec_of(json!({
            "containers": [{"name": "a", "image": "x"}],
            "volumes": [{"name": "kube-api-access-zzzzz", "emptyDir": {}}]}));
        mount_token(&mut spec, "kube-api-access-abcde");
        assert_eq!(spec["volumes"].as_array().unwrap().len(), 1);
        assert_eq!(spec["containers"][0]["volumeMounts"][0]["name"], "kube-api-access-zzzzz");
    }

    #[test]
    fn automount_the_pods_choice_wins_then_the_service_accounts() {
        let sa_off = json!({"automountServiceAccountToken": false});
        assert!(!automounts(&spec_of(json!({})), &sa_off));
        assert!(automounts(&spec_of(json!({"automountServiceAccountToken": true})), &sa_off));
        assert!(!automounts(&spec_of(json!({"automountServiceAccountToken": false})), &json!({})));
        assert!(automounts(&spec_of(json!({})), &json!({})));
    }

    #[test]
    fn pull_secrets_come_from_the_service_account_when_the_pod_has_none() {
        let sa = json!({"imagePullSecrets": [{"name": "reg"}]});
        let mut spec = spec_of(json!({}));
        copy_pull_secrets(&mut spec, &sa);
        assert_eq!(spec["imagePullSecrets"], json!([{"name": "reg"}]));
        let mut spec = spec_of(json!({"imagePullSecrets": [{"name": "own"}]}));
        copy_pull_secrets(&mut spec, &sa);
        assert_eq!(spec["imagePullSecrets"], json!([{"name": "own"}]));
        let mut spec = spec_of(json!({}));
        copy_pull_secrets(&mut spec, &json!({}));
        assert!(!spec.contains_key("imagePullSecrets"));
    }

    #[test]
    fn mirror_pods_reference_no_service_account_secret_or_token() {
        assert_eq!(check_mirror(&json!({"spec": {"containers": []}})), Ok(()));
        let sa = json!({"spec": {"serviceAccountName": "x"}});
        assert_eq!(
            check_mirror(&sa).unwrap_err(),
            "a mirror pod may not reference service accounts"
        );
        let secret = json!({"spec": {"containers": [{"name": "c", "envFrom": [{"secretRef": {"name": "s"}}]}]}});
        assert_eq!(check_mirror(&secret).unwrap_err(), "a mirror pod may not reference secrets");
        let token = json!({"spec": {"volumes": [token_volume("kube-api-access-x".into())]}});
        assert_eq!(
            check_mirror(&token).unwrap_err(),
            "a mirror pod may not use ServiceAccountToken volume projections"
        );
    }

    #[test]
    fn mountable_secrets_are_enforced_with_upstreams_messages() {
        let sa = json!({"metadata": {"name": "bot", "annotations": {ENFORCE_ANNOTATION: "true"}},
            "secrets": [{"name": "ok"}], "imagePullSecrets": [{"name": "reg"}]});
        assert!(enforces_mountable_secrets(&sa));
        assert!(!enforces_mountable_secrets(&json!({"metadata": {"name": "x"}})));
        let pod = json!({"spec": {"volumes": [{"name": "v", "secret": {"secretName": "ok"}}],
            "containers": [{"name": "c", "env": [{"name": "E", "valueFrom": {"secretKeyRef": {"name": "ok", "key": "k"}}}]}],
            "imagePullSecrets": [{"name": "reg"}]}});
        assert_eq!(limit_secrets(&sa, &pod), Ok(()));
        let pod = json!({"spec": {"volumes": [{"name": "v", "secret": {"secretName": "no"}}]}});
        assert_eq!(
            limit_secrets(&sa, &pod).unwrap_err(),
            "volume with secret.secretName=\"no\" is not allowed because service account bot does not reference that secret"
        );
        let pod = json!({"spec": {"initContainers": [{"name": "i", "env": [{"name": "E", "valueFrom": {"secretKeyRef": {"name": "no"}}}]}]}});
        assert_eq!(
            limit_secrets(&sa, &pod).unwrap_err(),
            "init container i with envVar E referencing secret.secretName=\"no\" is not allowed because service account bot does not reference that secret"
        );
        let pod = json!({"spec": {"imagePullSecrets": [{"name": "other"}]}});
        assert_eq!(
            limit_secrets(&sa, &pod).unwrap_err(),
            "imagePullSecrets[0].name=\"other\" is not allowed because service account bot does not reference that imagePullSecret"
        );
        let pod = json!({"spec": {"ephemeralContainers": [{"name": "dbg", "envFrom": [{"secretRef": {"name": "no"}}]}]}});
        assert_eq!(
            limit_ephemeral(&sa, &pod).unwrap_err(),
            "ephemeral container dbg with envFrom referencing secret.secretName=\"no\" is not allowed because service account bot does not reference that secret"
        );
    }
}
