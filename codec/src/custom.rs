//! What a CustomResourceDefinition says of one served version of its type, beyond the
//! names and scope every registry entry has: the schema, printer columns, selectable
//! fields and the scale subresource's paths. Built from the CRD by the engine's CRD
//! controller; immutable (a changed CRD makes new facts and a new registry snapshot).

use serde_json::Value;
use std::sync::Arc;

/// One `additionalPrinterColumns` entry.
#[derive(Debug, Clone, PartialEq)]
pub struct PrinterColumn {
    pub name: String,
    /// `integer`, `number`, `string`, `boolean` or `date`.
    pub type_: String,
    pub format: String,
    pub description: String,
    pub priority: i64,
    /// A simple JSONPath such as `.spec.replicas`.
    pub json_path: String,
}

/// The scale subresource's paths (`.spec.replicas` and friends).
#[derive(Debug, Clone, PartialEq)]
pub struct ScalePaths {
    pub spec_replicas: String,
    pub status_replicas: String,
    pub label_selector: Option<String>,
}

/// The facts of one served version of a custom resource.
#[derive(Debug, Clone)]
pub struct CustomFacts {
    /// The CRD's `metadata.name` (`widgets.example.com`).
    pub crd_name: String,
    /// The version's `openAPIV3Schema` (None when the CRD gives none).
    pub schema: Option<Arc<Value>>,
    pub printer_columns: Vec<PrinterColumn>,
    /// `selectableFields[*].jsonPath` without the leading `.`.
    pub selectable_fields: Vec<String>,
    pub scale: Option<ScalePaths>,
    /// The storage version's name (objects are stored in it).
    pub storage_version: String,
    /// Whether this version is deprecated, and the warning to send.
    pub deprecation_warning: Option<String>,
}
