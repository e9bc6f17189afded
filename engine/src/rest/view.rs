//! The view a response shows of the object a verb produced, as upstream's
//! `transformResponseObject` on every verb (get, create, update, patch, delete,
//! deletecollection): the object itself, its `PartialObjectMetadata`, or a `Table` of it,
//! per the negotiated `Accept`. A `Status` (a delete's Success) is sent as it is.

use super::{Scope, table};
use crate::body::Response;
use crate::negotiation::{self, Output};
use crate::status::ApiError;
use kapi_codec::meta;
use serde_json::{Value, json};

/// The response of one object of the scope's kind, with status `code`.
pub fn object(scope: &Scope<'_>, code: u16, obj: &Value) -> Result<Response, ApiError> {
    Ok(match object_view(scope, obj)? {
        Some(view) => negotiation::respond(code, &view, scope.output, scope.pretty),
        None => negotiation::respond(code, obj, plain(scope.output), scope.pretty),
    })
}

/// The response of the object a write stored, with status `code`: `json` (the
/// object's compact JSON ended by `\n`, spliced by its writer, byte for byte what
/// [`object`] writes of `obj` as JSON) when the client asked for compact JSON of the
/// object itself, else [`object`].
pub fn written(
    scope: &Scope<'_>,
    code: u16,
    obj: &Value,
    json: Option<bytes::Bytes>,
) -> Result<Response, ApiError> {
    match json {
        Some(body) if scope.output == Output::Json && !scope.pretty => {
            Ok(negotiation::respond_encoded(code, body, Output::Json.content_type()))
        }
        _ => object(scope, code, obj),
    }
}

/// The view of `obj` when it is not the object itself (None then).
fn object_view(scope: &Scope<'_>, obj: &Value) -> Result<Option<Value>, ApiError> {
    if is_status(obj) || !is_scope_kind(scope, obj) {
        return Ok(None);
    }
    match scope.output {
        Output::Table => {
            let rv = meta::meta_str(obj, "resourceVersion").unwrap_or("");
            Ok(Some(table::render(scope, std::slice::from_ref(obj), rv, None)?))
        }
        o if o.is_metadata() => Ok(Some(negotiation::partial(obj))),
        _ => Ok(None),
    }
}

/// The response of a list of objects of the scope's kind (a deletecollection's): a Table
/// of them, a `PartialObjectMetadataList`, or the list.
pub fn list(scope: &Scope<'_>, items: Vec<Value>, metadata: Value) -> Result<Response, ApiError> {
    let rv = metadata.get("resourceVersion").and_then(Value::as_str).unwrap_or("").to_string();
    let list = match scope.output {
        Output::Table => table::render(scope, &items, &rv, None)?,
        o if o.is_metadata() => {
            let items: Vec<Value> = items.iter().map(negotiation::partial).collect();
            json!({"kind": "PartialObjectMetadataList", "apiVersion": "meta.k8s.io/v1",
                "metadata": metadata, "items": items})
        }
        _ => json!({"kind": scope.rt.list_kind, "apiVersion": scope.rt.api_version(),
            "metadata": metadata, "items": items}),
    };
    Ok(negotiation::respond(200, &list, scope.output, scope.pretty))
}

fn is_status(obj: &Value) -> bool {
    obj.get("kind").and_then(Value::as_str) == Some("Status")
}

/// Whether `obj` is of the scope's own kind (a subresource's other kind, such as Scale,
/// has no printer here and is sent as it is).
fn is_scope_kind(scope: &Scope<'_>, obj: &Value) -> bool {
    obj.get("kind").and_then(Value::as_str).is_none_or(|k| k == scope.rt.kind)
}

/// The encoding of an object sent as it is (JSON or protobuf, never labelled a Table).
fn plain(output: Output) -> Output {
    output.encoding()
}
