//! `componentstatuses` (GET and LIST) as upstream serves them: always `scheduler`,
//! `controller-manager` and `etcd-0`, each with one `Healthy` condition found when asked.
//! The scheduler and controller manager are probed at upstream's health ports
//! (`https://127.0.0.1:10259/healthz` and `10257`, certificates not verified); `etcd-0`
//! is the store's own health check (the embedded store, or the etcd backend). Nothing is
//! stored; the list has no resourceVersion; an unknown name is upstream's plain 500;
//! every answer carries upstream's deprecation warning.

use super::create::with_warnings;
use super::fields::Selectors;
use super::{Scope, table, view};
use crate::body::Response;
use crate::negotiation::{self, Output};
use crate::probe::{self, Outcome};
use crate::status::ApiError;
use serde_json::{Value, json};

/// The components, in the order they are listed.
const COMPONENTS: [&str; 3] = ["scheduler", "controller-manager", "etcd-0"];

/// Upstream's deprecation warning on every componentstatuses answer.
const DEPRECATED: &str = "v1 ComponentStatus is deprecated in v1.19+";

pub async fn get(scope: &Scope<'_>) -> Result<Response, ApiError> {
    Ok(with_warnings(get_one(scope).await?, &[DEPRECATED.into()]))
}

pub async fn list(scope: &Scope<'_>) -> Result<Response, ApiError> {
    Ok(with_warnings(list_all(scope).await?, &[DEPRECATED.into()]))
}

async fn get_one(scope: &Scope<'_>) -> Result<Response, ApiError> {
    let name = scope.url_name()?;
    if !COMPONENTS.contains(&name) {
        return Err(ApiError::Unknown(format!("Component not found: {name}")));
    }
    let obj = status_of(scope, name).await;
    if scope.output == Output::Table {
        let t = table::render_rows(&scope.rt, include(scope), std::slice::from_ref(&obj), true);
        return Ok(negotiation::respond(200, &t, Output::Table, scope.pretty));
    }
    view::object(scope, 200, &obj)
}

async fn list_all(scope: &Scope<'_>) -> Result<Response, ApiError> {
    let selectors =
        Selectors::parse(&scope.rt, scope.param("labelSelector"), scope.param("fieldSelector"))?;
    let mut items = Vec::with_capacity(COMPONENTS.len());
    for name in COMPONENTS {
        let obj = status_of(scope, name).await;
        if selectors.matches(&scope.rt, &obj) {
            items.push(without_type(obj));
        }
    }
    if scope.output == Output::Table {
        let t = table::render_rows(&scope.rt, include(scope), &items, true);
        return Ok(negotiation::respond(200, &t, Output::Table, scope.pretty));
    }
    view::list(scope, items, json!({}))
}

fn include<'a>(scope: &'a Scope<'_>) -> &'a str {
    scope.info.param("includeObject").unwrap_or("Metadata")
}

/// A list item: upstream's list items carry no kind or apiVersion.
fn without_type(mut obj: Value) -> Value {
    if let Some(m) = obj.as_object_mut() {
        m.shift_remove("kind");
        m.shift_remove("apiVersion");
    }
    obj
}

/// The ComponentStatus of `name`, probed now.
async fn status_of(scope: &Scope<'_>, name: &str) -> Value {
    let outcome = match name {
        "scheduler" => probe::https_get(10259, "/healthz").await,
        "controller-manager" => probe::https_get(10257, "/healthz").await,
        _ => match scope.app.store.check_health().await {
            Ok(()) => Outcome::Success("ok".into()),
            Err(e) => Outcome::Failure(e.to_string()),
        },
    };
    component(name, &outcome, name.starts_with("etcd"))
}

/// The object of one component. A failed store check is upstream's (False, no message,
/// the error); a failed HTTP probe is (False, why) as upstream's prober reports it.
fn component(name: &str, outcome: &Outcome, is_store: bool) -> Value {
    let condition = match outcome {
        Outcome::Success(body) => json!({"type": "Healthy", "status": "True", "message": body}),
        Outcome::Failure(why) if is_store => {
            json!({"type": "Healthy", "status": "False", "error": why})
        }
        Outcome::Failure(why) => json!({"type": "Healthy", "status": "False", "message": why}),
    };
    json!({
        "kind": "ComponentStatus",
        "apiVersion": "v1",
        "metadata": {"name": name, "creationTimestamp": null},
        "conditions": [condition],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Regression: componentstatuses was an empty list; these are upstream's objects.
    #[test]
    fn components_read_as_upstreams() {
        let ok = component("etcd-0", &Outcome::Success("ok".into()), true);
        assert_eq!(
            serde_json::to_string(&ok).unwrap(),
            r#"{"kind":"ComponentStatus","apiVersion":"v1","metadata":{"name":"etcd-0","creationTimestamp":null},"conditions":[{"type":"Healthy","status":"True","message":"ok"}]}"#
        );
        let why = "Get \"https://127.0.0.1:10259/healthz\": dial tcp 127.0.0.1:10259: connect: connection refused";
        let down = without_type(component("scheduler", &Outcome::Failure(why.into()), false));
        assert_eq!(
            down,
            json!({"metadata": {"name": "scheduler", "creationTimestamp": null},
                "conditions": [{"type": "Healthy", "status": "False", "message": why}]})
        );
        let store = component("etcd-0", &Outcome::Failure("unreachable".into()), true);
        assert_eq!(store["conditions"][0]["error"], "unreachable");
    }
}
