//! ResourceQuota: a write that adds usage a quota of its namespace limits is refused
//! with upstream's message once the quota's `status.hard` would be exceeded, else the
//! usage is charged to the quota's `status.used` before the object is stored.
//!
//! The check reads the namespace's quotas from the watch cache; the charge is a
//! compare-and-swap of each concerned quota (`rest::update_internal`: re-read and
//! re-checked on a conflict), so concurrent writes cannot both take the last slot.
//! What admission over-charges (a write refused after it, a delete) the quota
//! controller (`controllers/quota.rs`) recalculates from the caches, as upstream's
//! controller does; both arrive at the same values, so kube-controller-manager may run
//! alongside.
//!
//! Invariants: only namespaced writes of stored resources are considered, never
//! events and never the creation of a namespace; a dry run is checked, not charged.

pub mod check;
pub mod evaluate;
pub mod usage;

use super::{Attributes, Operation, Plugin, Step, done, lister};
use crate::status::{ApiError, Target};
use evaluate::Evaluator;
use resources_json::with_used;
use serde_json::Value;

use crate::admission::resources::ResourceList;

/// Upstream's ResourceQuota plugin.
pub struct ResourceQuota;

impl Plugin for ResourceQuota {
    fn name(&self) -> &'static str {
        "ResourceQuota"
    }

    fn handles(&self, a: &Attributes<'_>) -> bool {
        let rt = a.rt();
        if !rt.namespaced || rt.persistence != kapi_codec::registry::Persistence::Stored {
            return false;
        }
        let core = rt.group.is_empty();
        match (a.operation, a.subresource()) {
            (Operation::Create, None) => !(core && &*rt.plural == "events"),
            (Operation::Update, None) => {
                core && matches!(&*rt.plural, "services" | "persistentvolumeclaims")
            }
            (Operation::Update, Some("resize")) => core && &*rt.plural == "pods",
            _ => false,
        }
    }

    fn validates(&self) -> bool {
        true
    }

    fn validate<'a>(&'a self, a: &'a Attributes<'a>, obj: &'a Value) -> Step<'a> {
        if a.namespace().is_empty() {
            return done(Ok(()));
        }
        // Most namespaces have no quota: that costs one cache listing, nothing more.
        let quotas = lister::core(a.scope.app, "resourcequotas", a.namespace());
        if quotas.is_empty() {
            return done(Ok(()));
        }
        let rt = a.rt();
        let Some(ev) = Evaluator::of(&rt.group, &rt.plural) else { return done(Ok(())) };
        if !ev.handles(a.operation, a.subresource()) {
            return done(Ok(()));
        }
        Box::pin(admit(a, ev, quotas, obj))
    }
}

async fn admit(
    a: &Attributes<'_>,
    ev: Evaluator,
    quotas: Vec<Value>,
    obj: &Value,
) -> Result<(), ApiError> {
    let target = a.target();
    let forbid = |msg: String| ApiError::ForbiddenTarget(target.clone(), msg);
    let picked = check::interesting(&ev, &quotas, obj).map_err(forbid)?;
    if picked.is_empty() {
        return Ok(());
    }
    let delta = check::delta(&ev, obj, a.old, evaluate::now_seconds());
    if delta.is_empty() {
        return Ok(());
    }
    for i in picked {
        if a.dry_run {
            check::charge(&ev, &quotas[i], obj, &delta).map_err(forbid)?;
            continue;
        }
        let name = kapi_codec::meta::name(&quotas[i]).unwrap_or("");
        charge_stored(a, name, &ev, obj, &delta, &target).await?;
    }
    Ok(())
}

/// Charge `delta` to the stored quota `name` with a compare-and-swap of its status
/// (re-read and re-checked on every conflict). A quota deleted meanwhile is skipped.
async fn charge_stored(
    a: &Attributes<'_>,
    name: &str,
    ev: &Evaluator,
    obj: &Value,
    delta: &ResourceList,
    target: &Target,
) -> Result<(), ApiError> {
    let result = crate::rest::update_internal(
        a.scope.app,
        "",
        "v1",
        "resourcequotas",
        Some(a.namespace()),
        name,
        |current| match check::charge(ev, current, obj, delta) {
            Ok(Some(used)) => Ok(with_used(current, &used)),
            Ok(None) => Ok(current.clone()),
            Err(msg) => Err(ApiError::ForbiddenTarget(target.clone(), msg)),
        },
    )
    .await;
    match result {
        Err(ApiError::NotFound(_)) => Ok(()),
        other => other.map(|_| ()),
    }
}

/// Status writes shared by the plugin and the controller.
pub mod resources_json {
    use crate::admission::resources::{self, ResourceList};
    use serde_json::{Map, Value};

    /// `quota` with `status.used` set to `used`.
    pub fn with_used(quota: &Value, used: &ResourceList) -> Value {
        let mut out = quota.clone();
        if let Some(status) = status_mut(&mut out) {
            status.insert("used".into(), resources::to_json(used));
        }
        out
    }

    /// `quota` with `status.hard` and `status.used` set.
    pub fn with_status(quota: &Value, hard: &ResourceList, used: &ResourceList) -> Value {
        let mut out = quota.clone();
        if let Some(status) = status_mut(&mut out) {
            status.insert("hard".into(), resources::to_json(hard));
            status.insert("used".into(), resources::to_json(used));
        }
        out
    }

    fn status_mut(obj: &mut Value) -> Option<&mut Map<String, Value>> {
        let status =
            obj.as_object_mut()?.entry("status").or_insert_with(|| Value::Object(Map::new()));
        if !status.is_object() {
            *status = Value::Object(Map::new());
        }
        status.as_object_mut()
    }
}
