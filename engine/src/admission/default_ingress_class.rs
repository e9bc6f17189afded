//! DefaultIngressClass: a new Ingress that names no class gets the default IngressClass
//! (annotated `ingressclass.kubernetes.io/is-default-class: "true"`; with several, the
//! newest, as `default_class`), read from the IngressClass cache. Without a default
//! class the Ingress is left as it is.
//!
//! As upstream: creates only, no subresource; an Ingress with `spec.ingressClassName`
//! set (even to `""`) or with the legacy `kubernetes.io/ingress.class` annotation (any
//! value) keeps what it says.

use super::cached::{self, INGRESS_CLASSES};
use super::{Attributes, Operation, Plugin, Step, default_class};
use crate::status::ApiError;
use kapi_codec::pointer::Pointer as _;
use serde_json::{Value, json};

/// The annotation that marks the default IngressClass.
pub const DEFAULT_MARK: &str = "ingressclass.kubernetes.io/is-default-class";

/// The legacy annotation naming an Ingress's class.
pub const LEGACY_CLASS: &str = "kubernetes.io/ingress.class";

/// The bytes a default class's JSON holds (the other classes are not parsed).
const MARK_BYTES: &[u8] = b"ingressclass.kubernetes.io/is-default-class\":\"true\"";

/// Upstream's DefaultIngressClass plugin.
pub struct DefaultIngressClass;

impl Plugin for DefaultIngressClass {
    fn name(&self) -> &'static str {
        "DefaultIngressClass"
    }

    fn handles(&self, a: &Attributes<'_>) -> bool {
        a.operation == Operation::Create && a.is("networking.k8s.io", "ingresses")
    }

    fn mutates(&self) -> bool {
        true
    }

    fn admit<'a>(&'a self, a: &'a Attributes<'a>, obj: &'a mut Value) -> Step<'a> {
        Box::pin(admit(a, obj))
    }
}

async fn admit(a: &Attributes<'_>, ingress: &mut Value) -> Result<(), ApiError> {
    if has_class(ingress) {
        return Ok(());
    }
    let classes = cached::list_holding(a.scope.app, INGRESS_CLASSES, MARK_BYTES).await;
    if let Some(name) =
        default_class::newest(&classes, &[DEFAULT_MARK]).and_then(kapi_codec::meta::name)
    {
        set_class(ingress, name);
    }
    Ok(())
}

/// Whether the Ingress already says which class it is (field or legacy annotation).
pub fn has_class(ingress: &Value) -> bool {
    let legacy = ingress.at("/metadata/annotations").and_then(|a| a.get(LEGACY_CLASS));
    legacy.is_some() || ingress.at("/spec/ingressClassName").is_some_and(|c| !c.is_null())
}

/// Set the Ingress's `spec.ingressClassName`.
pub fn set_class(ingress: &mut Value, name: &str) {
    let Some(o) = ingress.as_object_mut() else { return };
    let spec = o.entry("spec").or_insert_with(|| json!({}));
    if let Some(spec) = spec.as_object_mut() {
        spec.insert("ingressClassName".into(), json!(name));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_field_or_the_legacy_annotation_names_a_class() {
        assert!(!has_class(&json!({"spec": {"rules": []}})));
        assert!(has_class(&json!({"spec": {"ingressClassName": "nginx"}})));
        assert!(has_class(&json!({"spec": {"ingressClassName": ""}})));
        assert!(has_class(&json!({"metadata": {"annotations": {LEGACY_CLASS: "nginx"}}})));
    }

    #[test]
    fn the_newest_default_class_is_set() {
        let classes = [
            json!({"metadata": {"name": "a", "creationTimestamp": "2026-01-01T00:00:00Z",
                "annotations": {DEFAULT_MARK: "true"}}}),
            json!({"metadata": {"name": "b", "creationTimestamp": "2025-01-01T00:00:00Z",
                "annotations": {DEFAULT_MARK: "true"}}}),
        ];
        let name =
            default_class::newest(&classes, &[DEFAULT_MARK]).and_then(kapi_codec::meta::name);
        let mut ing = json!({"metadata": {"name": "i"}});
        set_class(&mut ing, name.unwrap());
        assert_eq!(ing["spec"]["ingressClassName"], "a");
    }
}
