//! TaintNodesByCondition: a new Node gets the `node.kubernetes.io/not-ready:NoSchedule`
//! taint, so nothing is scheduled onto it before the node lifecycle controller has seen
//! it Ready (and removed the taint). As upstream: node creates only (no subresource); a
//! taint with the same key and effect already there is left alone.

use super::{Attributes, Operation, Plugin, Step};
use serde_json::{Value, json};

const NOT_READY: &str = "node.kubernetes.io/not-ready";

/// Upstream's TaintNodesByCondition plugin.
pub struct TaintNodesByCondition;

impl Plugin for TaintNodesByCondition {
    fn name(&self) -> &'static str {
        "TaintNodesByCondition"
    }

    fn handles(&self, a: &Attributes<'_>) -> bool {
        a.operation == Operation::Create && a.is("", "nodes")
    }

    fn mutates(&self) -> bool {
        true
    }

    fn admit<'a>(&'a self, _a: &'a Attributes<'a>, obj: &'a mut Value) -> Step<'a> {
        add_not_ready_taint(obj);
        super::done(Ok(()))
    }
}

/// Add the not-ready NoSchedule taint unless a taint of that key and effect is there.
pub fn add_not_ready_taint(node: &mut Value) {
    let Some(o) = node.as_object_mut() else { return };
    let spec = o.entry("spec").or_insert_with(|| json!({}));
    let Some(spec) = spec.as_object_mut() else { return };
    let taints = spec.entry("taints").or_insert_with(|| json!([]));
    if taints.is_null() {
        *taints = json!([]);
    }
    let Some(list) = taints.as_array_mut() else { return };
    let field = |t: &Value, f: &str| t.get(f).and_then(Value::as_str).map(str::to_owned);
    let present = list.iter().any(|t| {
        field(t, "key").as_deref() == Some(NOT_READY)
            && field(t, "effect").as_deref() == Some("NoSchedule")
    });
    if !present {
        list.push(json!({"key": NOT_READY, "effect": "NoSchedule"}));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_node_gets_the_not_ready_taint_once() {
        let mut node = json!({"metadata": {"name": "n"}});
        add_not_ready_taint(&mut node);
        assert_eq!(node["spec"]["taints"], json!([{"key": NOT_READY, "effect": "NoSchedule"}]));
        add_not_ready_taint(&mut node);
        assert_eq!(node["spec"]["taints"].as_array().unwrap().len(), 1);
    }

    #[test]
    fn other_taints_stay_and_a_different_effect_does_not_count() {
        let mut node = json!({"spec": {"taints": [
            {"key": "dedicated", "value": "gpu", "effect": "NoSchedule"},
            {"key": NOT_READY, "effect": "NoExecute"}]}});
        add_not_ready_taint(&mut node);
        let taints = node["spec"]["taints"].as_array().unwrap();
        assert_eq!(taints.len(), 3);
        assert_eq!(taints[2], json!({"key": NOT_READY, "effect": "NoSchedule"}));
    }
}
