//! kapi-codec: the object model every other layer builds on.
//!
//! Objects are schema-driven JSON trees (`serde_json::Value`); one registry of resource
//! types (built from `k8s-openapi`'s v1.35 types) drives routing, discovery, OpenAPI,
//! validation, defaulting, field selectors and storage keys. Nothing here touches the
//! network or the store.
//!
//! Table of contents:
//! - [`registry`]: the run-time registry: every served group/version/resource with its
//!   facts and strategy (built-in and custom).
//! - [`runtime_config`]: `--runtime-config`: the known beta/alpha versions and which
//!   group/versions are served.
//! - [`name`]: the registry's names (static for built-in types, shared for custom ones).
//! - [`custom`]: what a CustomResourceDefinition says of a served custom type.
//! - [`schema`]: compact structural schemas derived from the OpenAPI definitions; unknown
//!   field detection and type checks (fieldValidation Ignore/Warn/Strict).
//! - [`openapi`]: OpenAPI v2 and v3 documents generated from the registry.
//! - [`openapi_pb`]: the OpenAPI v2 document as gnostic's protobuf `openapi.v2.Document`.
//! - [`managed`]: managedFields on every write and server-side apply.
//! - [`fieldset`]: FieldsV1 field sets and the fields an object sets (managedFields).
//! - [`topology`]: list types, list-map keys and map types of the built-in types (SSA).
//! - [`strategic`], [`patch_meta`]: strategic merge patch and the per-field facts it uses.
//! - [`crd`]: CustomResourceDefinitions: structural schemas, CRD and custom object validation, pruning, defaulting.
//! - [`strategy`]: per-type defaulting, validation, status split and field selectors.
//! - [`validation`]: reusable validators (names, labels, annotations) with field errors.
//! - [`cel`]: CRD `x-kubernetes-validations` rules: compiled from a schema, metered evaluation.
//! - [`selector`]: label and field selector parsing and matching.
//! - [`format`]: JSON and YAML decoding and encoding.
//! - [`pointer`]: JSON Pointer lookups without an allocation per token.
//! - [`protobuf`]: Kubernetes protobuf (`k8s\0` + runtime.Unknown), table-driven.
//! - [`stored`]: the bytes objects are stored as (JSON or protobuf, told apart on read).
//! - [`order`]: upstream's field order (Go struct order, sorted map keys) of built-in
//!   objects, applied once per write.
//! - [`quantity`]: resource quantities (`500m`, `1Gi`) as upstream's `resource.Quantity`.
//! - [`time`]: RFC 3339 timestamps and Go durations.
//! - [`meta`]: helpers over `metadata` of a JSON object.
//! - [`semantic`]: Go's semantic equality (zero values and absent fields alike).
//! - [`pem`]: PEM blocks as Go's `encoding/pem` finds them.
//! - [`error`]: the crate's error type.

pub mod cel;
pub mod convert;
pub mod crd;
pub mod custom;
pub mod error;
pub mod fieldset;
pub mod format;
pub mod managed;
pub mod meta;
pub mod name;
pub mod openapi;
pub mod openapi_pb;
pub mod order;
pub mod patch_meta;
pub mod pem;
pub mod pointer;
pub mod protobuf;
pub mod quantity;
pub mod registry;
mod registry_table;
pub mod runtime_config;
pub mod schema;
pub mod selector;
pub mod semantic;
#[cfg(test)]
mod spec_files;
pub mod stored;
pub mod strategic;
pub mod strategy;
pub mod time;
pub mod topology;
pub mod validation;
pub mod webhook_conversion;

pub use error::{CodecError, FieldError, FieldErrorType};
pub use registry::{Registry, ResourceType};
