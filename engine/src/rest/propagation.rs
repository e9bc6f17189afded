//! Garbage-collection policy of a delete, as upstream's generic store decides it: the
//! `orphan` and `foregroundDeletion` finalizers that tell the garbage collector (in the
//! controller manager) what to do with the object's dependents. An explicit
//! `propagationPolicy` (or the deprecated `orphanDependents`) wins, then a finalizer the
//! object already carries, then the type's default (delete dependents in the background
//! for every served type).

use crate::status::{ApiError, Target};
use kapi_codec::FieldError;
use serde_json::{Value, json};

pub const ORPHAN: &str = "orphan";
pub const FOREGROUND: &str = "foregroundDeletion";

/// What a delete asked for.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Policy {
    /// `propagationPolicy`: Foreground, Background or Orphan.
    pub propagation: Option<String>,
    /// The deprecated `orphanDependents`.
    pub orphan_dependents: Option<bool>,
}

impl Policy {
    /// Upstream's validation of DeleteOptions' policy fields (422 on DeleteOptions).
    pub fn validate(&self) -> Result<(), ApiError> {
        let mut errs = Vec::new();
        if let (Some(_), Some(o)) = (&self.propagation, self.orphan_dependents) {
            errs.push(FieldError::invalid(
                "orphanDependents",
                &json!(o),
                "OrphanDependents and DeletionPropagation cannot be both set",
            ));
        }
        if let Some(p) = self.propagation.as_deref()
            && !matches!(p, "Foreground" | "Background" | "Orphan")
        {
            errs.push(FieldError::not_supported(
                "propagationPolicy",
                &json!(p),
                &["Foreground", "Background", "Orphan"],
            ));
        }
        if errs.is_empty() {
            return Ok(());
        }
        let target = Target {
            group: "meta.k8s.io".into(),
            kind: "DeleteOptions".into(),
            ..Default::default()
        };
        Err(ApiError::Invalid(target, errs))
    }

    fn orphans(&self, finalizers: &[String]) -> bool {
        if let Some(o) = self.orphan_dependents {
            return o;
        }
        match self.propagation.as_deref() {
            Some("Orphan") => return true,
            Some(_) => return false,
            None => {}
        }
        for f in finalizers {
            match f.as_str() {
                ORPHAN => return true,
                FOREGROUND => return false,
                _ => {}
            }
        }
        false
    }

    fn foreground(&self, finalizers: &[String]) -> bool {
        if self.orphan_dependents.is_some() {
            return false;
        }
        match self.propagation.as_deref() {
            Some("Foreground") => return true,
            Some(_) => return false,
            None => {}
        }
        for f in finalizers {
            match f.as_str() {
                FOREGROUND => return true,
                ORPHAN => return false,
                _ => {}
            }
        }
        false
    }

    /// The finalizers the object gets on delete, when they differ from `current`'s
    /// (as a set); None when nothing changes.
    pub fn finalizers(&self, current: &[String]) -> Option<Vec<String>> {
        let mut out: Vec<String> =
            current.iter().filter(|f| *f != ORPHAN && *f != FOREGROUND).cloned().collect();
        if self.orphans(current) {
            out.push(ORPHAN.into());
        }
        if self.foreground(current) {
            out.push(FOREGROUND.into());
        }
        let same = out.len() == current.len() && out.iter().all(|f| current.contains(f));
        (!same).then_some(out)
    }
}

/// The object's `metadata.finalizers`.
pub fn finalizers_of(obj: &Value) -> Vec<String> {
    obj.pointer("/metadata/finalizers")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).map(String::from).collect())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(p: Option<&str>, o: Option<bool>) -> Policy {
        Policy { propagation: p.map(String::from), orphan_dependents: o }
    }

    fn v(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn explicit_policies_set_the_garbage_collector_finalizers() {
        assert_eq!(policy(Some("Foreground"), None).finalizers(&[]), Some(v(&[FOREGROUND])));
        assert_eq!(policy(Some("Orphan"), None).finalizers(&v(&["x"])), Some(v(&["x", ORPHAN])));
        assert_eq!(policy(Some("Background"), None).finalizers(&[]), None);
        assert_eq!(policy(Some("Background"), None).finalizers(&v(&[ORPHAN])), Some(vec![]));
        assert_eq!(policy(None, Some(true)).finalizers(&[]), Some(v(&[ORPHAN])));
        assert_eq!(policy(None, Some(false)).finalizers(&v(&[FOREGROUND])), Some(vec![]));
    }

    #[test]
    fn without_a_policy_the_objects_finalizer_decides() {
        assert_eq!(policy(None, None).finalizers(&[]), None, "default: background");
        assert_eq!(policy(None, None).finalizers(&v(&[ORPHAN])), None);
        assert_eq!(policy(None, None).finalizers(&v(&[FOREGROUND, "a"])), None);
    }

    #[test]
    fn conflicting_or_unknown_policies_are_refused() {
        assert!(policy(Some("Orphan"), Some(true)).validate().is_err());
        assert!(policy(Some("Sideways"), None).validate().is_err());
        assert!(policy(Some("Foreground"), None).validate().is_ok());
    }
}
