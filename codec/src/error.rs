//! Errors of the codec layer. The engine maps each variant onto a Kubernetes `Status`
//! in one place (`engine/src/status.rs`); nothing here knows about HTTP.

use serde::Serialize;

/// The kind of a validation failure, named as upstream's `field.ErrorType`
/// (`FieldValueRequired` and friends); its `reason()` is the `StatusCause.reason`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldErrorType {
    Required,
    Invalid,
    Duplicate,
    NotFound,
    NotSupported,
    Forbidden,
    TooLong,
    TooMany,
    TypeInvalid,
}

impl FieldErrorType {
    /// `StatusCause.reason` as upstream writes it.
    pub fn reason(self) -> &'static str {
        match self {
            Self::Required => "FieldValueRequired",
            Self::Invalid => "FieldValueInvalid",
            Self::Duplicate => "FieldValueDuplicate",
            Self::NotSupported => "FieldValueNotSupported",
            Self::Forbidden => "FieldValueForbidden",
            Self::TooLong => "FieldValueTooLong",
            Self::TooMany => "FieldValueTooMany",
            Self::NotFound => "FieldValueNotFound",
            Self::TypeInvalid => "FieldValueTypeInvalid",
        }
    }
}

/// One validation failure at a field path such as `spec.containers[0].image`.
/// `message` is the full upstream text (`field: Required value`, `field: Invalid value:
/// "x": detail`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FieldError {
    #[serde(skip)]
    pub kind: FieldErrorType,
    pub field: String,
    pub message: String,
}

impl FieldError {
    pub fn required(field: impl Into<String>, detail: &str) -> Self {
        let field = field.into();
        let message = if detail.is_empty() {
            format!("{field}: Required value")
        } else {
            format!("{field}: Required value: {detail}")
        };
        Self { kind: FieldErrorType::Required, field, message }
    }

    /// `value` is rendered as upstream does: strings quoted, other JSON verbatim.
    pub fn invalid(field: impl Into<String>, value: &serde_json::Value, detail: &str) -> Self {
        let field = field.into();
        let shown = render_value(value);
        let message = if detail.is_empty() {
            format!("{field}: Invalid value: {shown}")
        } else {
            format!("{field}: Invalid value: {shown}: {detail}")
        };
        Self { kind: FieldErrorType::Invalid, field, message }
    }

    /// As [`FieldError::invalid`], with the value already rendered as upstream shows it
    /// (e.g. Go's `[]string{"a", "b"}` for a list of strings).
    pub fn invalid_shown(field: impl Into<String>, shown: &str, detail: &str) -> Self {
        let field = field.into();
        let message = format!("{field}: Invalid value: {shown}: {detail}");
        Self { kind: FieldErrorType::Invalid, field, message }
    }

    /// A list of strings as Go's `%#v` renders a `[]string` (upstream's shape for a list
    /// value in an Invalid error); `type_name` is the element's Go type.
    pub fn go_strings(type_name: &str, list: &[&str]) -> String {
        let items: Vec<String> = list.iter().map(|s| format!("{s:?}")).collect();
        format!("[]{type_name}{{{}}}", items.join(", "))
    }

    pub fn not_supported(
        field: impl Into<String>,
        value: &serde_json::Value,
        valid: &[&str],
    ) -> Self {
        let field = field.into();
        let list: Vec<String> = valid.iter().map(|v| format!("\"{v}\"")).collect();
        let message = format!(
            "{field}: Unsupported value: {}: supported values: {}",
            render_value(value),
            list.join(", ")
        );
        Self { kind: FieldErrorType::NotSupported, field, message }
    }

    pub fn duplicate(field: impl Into<String>, value: &serde_json::Value) -> Self {
        let field = field.into();
        let message = format!("{field}: Duplicate value: {}", render_value(value));
        Self { kind: FieldErrorType::Duplicate, field, message }
    }

    /// `Not found: "value"`, with `detail` after it when given.
    pub fn not_found(field: impl Into<String>, value: &serde_json::Value, detail: &str) -> Self {
        let field = field.into();
        let mut message = format!("{field}: Not found: {}", render_value(value));
        if !detail.is_empty() {
            message.push_str(": ");
            message.push_str(detail);
        }
        Self { kind: FieldErrorType::NotFound, field, message }
    }

    pub fn forbidden(field: impl Into<String>, detail: &str) -> Self {
        let field = field.into();
        let message = format!("{field}: Forbidden: {detail}");
        Self { kind: FieldErrorType::Forbidden, field, message }
    }

    pub fn too_long(field: impl Into<String>, max: usize) -> Self {
        let field = field.into();
        let message = format!("{field}: Too long: may not be more than {max} bytes");
        Self { kind: FieldErrorType::TooLong, field, message }
    }
}

fn render_value(value: &serde_json::Value) -> String {
    match value {
        serde_json::Value::String(s) => format!("{s:?}"),
        other => other.to_string(),
    }
}

/// Errors of decoding, encoding and checking objects.
#[derive(Debug, thiserror::Error)]
pub enum CodecError {
    /// The body is not valid JSON/YAML, or a field has the wrong type (400 BadRequest).
    #[error("{0}")]
    Malformed(String),
    /// fieldValidation=Strict found unknown or duplicate fields (400 BadRequest).
    #[error("strict decoding error: {}", .0.join(", "))]
    Strict(Vec<String>),
    /// The object failed validation (422 Invalid with one cause per error).
    #[error("invalid object")]
    Invalid(Vec<FieldError>),
    /// A label or field selector could not be parsed (400 BadRequest).
    #[error("{0}")]
    BadSelector(String),
    /// An error upstream returns as a plain Go error (500 without a reason), e.g. a
    /// strategic merge patch directive of the wrong type.
    #[error("{0}")]
    Unclassified(String),
    /// A custom resource's conversion webhook failed (500 without a reason, as upstream
    /// answers the plain error its converter returns).
    #[error("{0}")]
    Conversion(String),
}
