//! The stages of a CREATE, each the very function `create` runs, for the create-path
//! benches and allocation tests (`benches/benches/create_path.rs`, issue #20). Not an
//! API: hidden from the docs, shaped by what the benches measure. Each stage takes the
//! object as the previous one left it, in `create`'s order: [`decode`], [`default`],
//! [`managed_fields`], [`admit_and_prepare`], [`canonicalize`], [`to_stored`], then
//! the store, then [`respond`].

use super::{Scope, create, object, view};
use crate::body::Response;
use crate::status::ApiError;
use bytes::Bytes;
use kapi_codec::format::Format;
use serde_json::Value;

/// Decode a JSON request body: parse, type meta, unknown fields pruned (the schema walk).
pub fn decode(scope: &Scope<'_>, body: &[u8]) -> Result<Value, ApiError> {
    object::decode_body(scope, body, Format::Json, &scope.rt.kind).map(|d| d.obj)
}

/// The request's namespace and the type's defaults.
pub fn default(scope: &Scope<'_>, obj: &mut Value) -> Result<(), ApiError> {
    create::default(scope, obj)
}

/// The creator's managedFields.
pub fn managed_fields(scope: &Scope<'_>, obj: &mut Value) {
    super::fields_managed::on_create(scope, obj);
}

/// Mutating admission, server-owned metadata, the strategy's PrepareForCreate and
/// validation, validating admission.
pub async fn admit_and_prepare(scope: &Scope<'_>, obj: &mut Value) -> Result<(), ApiError> {
    create::admit_and_prepare(scope, obj).await
}

/// The strategy's PrepareForCreate and validation alone (server-owned metadata stamped
/// first), without admission.
pub fn prepare(scope: &Scope<'_>, obj: &mut Value) -> Result<(), ApiError> {
    create::prepare(scope, obj)
}

/// Upstream's field order, as the stored bytes and the answer are written from it.
pub fn canonicalize(scope: &Scope<'_>, obj: &mut Value) {
    kapi_codec::order::canonicalize_type(&scope.rt, obj);
}

/// The bytes to store.
pub async fn to_stored(scope: &Scope<'_>, obj: &Value) -> Result<Bytes, ApiError> {
    crate::conversion::to_stored(scope.app, &scope.rt, obj).await
}

/// The 201 answer.
pub fn respond(scope: &Scope<'_>, obj: &Value) -> Result<Response, ApiError> {
    view::object(scope, 201, obj)
}
