//! DefaultTolerationSeconds: a pod that does not tolerate the `not-ready` and
//! `unreachable` NoExecute taints gets a toleration of each for a bounded time
//! (`--default-not-ready-toleration-seconds`, `--default-unreachable-toleration-seconds`,
//! 300 s by default), so the taint manager evicts it from a lost node after that long.
//! As upstream: pods only (no subresource), on create and update; a toleration with an
//! empty key or an empty effect counts as tolerating the taint.
//!
//! The two tolerations are built once, with the plugin; a pod gets clones of them.

use super::{Attributes, Config, Operation, Plugin, Step};
use serde_json::{Value, json};

/// Upstream's default of both flags.
pub const DEFAULT_TOLERATION_SECONDS: i64 = 300;

const NOT_READY: &str = "node.kubernetes.io/not-ready";
const UNREACHABLE: &str = "node.kubernetes.io/unreachable";

/// Upstream's DefaultTolerationSeconds plugin.
pub struct DefaultTolerationSeconds {
    defaults: Defaults,
}

impl DefaultTolerationSeconds {
    pub fn new(cfg: &Config) -> DefaultTolerationSeconds {
        let defaults =
            Defaults::new(cfg.not_ready_toleration_seconds, cfg.unreachable_toleration_seconds);
        DefaultTolerationSeconds { defaults }
    }
}

/// The two tolerations a pod may be given, built once: `(taint key, toleration)`.
pub struct Defaults([(&'static str, Value); 2]);

impl Defaults {
    pub fn new(not_ready: i64, unreachable: i64) -> Defaults {
        let toleration = |key: &str, seconds: i64| {
            json!({"key": key, "operator": "Exists", "effect": "NoExecute",
                "tolerationSeconds": seconds})
        };
        Defaults([
            (NOT_READY, toleration(NOT_READY, not_ready)),
            (UNREACHABLE, toleration(UNREACHABLE, unreachable)),
        ])
    }
}

impl Plugin for DefaultTolerationSeconds {
    fn name(&self) -> &'static str {
        "DefaultTolerationSeconds"
    }

    fn handles(&self, a: &Attributes<'_>) -> bool {
        matches!(a.operation, Operation::Create | Operation::Update) && a.is("", "pods")
    }

    fn mutates(&self) -> bool {
        true
    }

    fn admit<'a>(&'a self, _a: &'a Attributes<'a>, obj: &'a mut Value) -> Step<'a> {
        add_tolerations(obj, &self.defaults);
        super::done(Ok(()))
    }
}

/// Whether `t` tolerates the NoExecute taint `key`.
fn tolerates(t: &Value, key: &str) -> bool {
    let field = |f: &str| t.get(f).and_then(Value::as_str).unwrap_or("");
    let k = field("key");
    let effect = field("effect");
    (k == key || k.is_empty()) && (effect == "NoExecute" || effect.is_empty())
}

/// Add the default tolerations a pod lacks.
pub fn add_tolerations(pod: &mut Value, defaults: &Defaults) {
    let Some(spec) = pod.get_mut("spec").and_then(Value::as_object_mut) else { return };
    let Some(list) = super::list_field(spec, "tolerations") else { return };
    // Decided before adding: a toleration added here does not count for the other.
    let missing = defaults.0.each_ref().map(|(key, _)| !list.iter().any(|t| tolerates(t, key)));
    for ((_, toleration), add) in defaults.0.iter().zip(missing) {
        if add {
            list.push(toleration.clone());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(pod: &Value) -> Vec<(String, i64)> {
        pod["spec"]["tolerations"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| {
                (
                    t["key"].as_str().unwrap_or("").into(),
                    t["tolerationSeconds"].as_i64().unwrap_or(-1),
                )
            })
            .collect()
    }

    #[test]
    fn a_pod_without_tolerations_gets_both_with_the_configured_seconds() {
        let mut pod = json!({"spec": {"containers": []}});
        add_tolerations(&mut pod, &Defaults::new(300, 60));
        assert_eq!(keys(&pod), [(NOT_READY.to_string(), 300), (UNREACHABLE.to_string(), 60)]);
        assert_eq!(pod["spec"]["tolerations"][0]["operator"], "Exists");
        assert_eq!(pod["spec"]["tolerations"][0]["effect"], "NoExecute");
    }

    #[test]
    fn existing_tolerations_of_the_taints_are_kept_as_they_are() {
        let mut pod = json!({"spec": {"tolerations": [
            {"key": NOT_READY, "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 5}]}});
        add_tolerations(&mut pod, &Defaults::new(300, 300));
        assert_eq!(keys(&pod), [(NOT_READY.to_string(), 5), (UNREACHABLE.to_string(), 300)]);
    }

    #[test]
    fn a_wildcard_toleration_tolerates_both() {
        // empty key with operator Exists tolerates every taint; an empty effect every effect
        let mut pod = json!({"spec": {"tolerations": [{"operator": "Exists"}]}});
        add_tolerations(&mut pod, &Defaults::new(300, 300));
        assert_eq!(pod["spec"]["tolerations"].as_array().unwrap().len(), 1);
        // a NoSchedule toleration of the key does not tolerate the NoExecute taint
        let mut pod =
            json!({"spec": {"tolerations": [{"key": NOT_READY, "effect": "NoSchedule"}]}});
        add_tolerations(&mut pod, &Defaults::new(300, 300));
        assert_eq!(pod["spec"]["tolerations"].as_array().unwrap().len(), 3);
    }
}
