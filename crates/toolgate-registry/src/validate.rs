//! Argument validation against a tool's input schema, compiled once at load.

use serde_json::Value;
use toolgate_core::{FieldError, ToolError};

/// A compiled input schema.
pub struct ArgumentSchema {
    validator: jsonschema::Validator,
}

impl std::fmt::Debug for ArgumentSchema {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ArgumentSchema")
    }
}

impl ArgumentSchema {
    /// Compile `schema` as JSON Schema draft 2020-12.
    ///
    /// # Errors
    /// The schema itself is invalid.
    pub fn compile(schema: &Value) -> Result<Self, String> {
        jsonschema::draft202012::new(schema)
            .map(|validator| Self { validator })
            .map_err(|e| format!("invalid JSON Schema: {e}"))
    }

    /// Check `arguments`; every violation becomes a [`FieldError`].
    ///
    /// # Errors
    /// `invalid_arguments` listing each violation, at most
    /// [`toolgate_core::MAX_FIELD_ERRORS`].
    pub fn check(&self, arguments: &Value) -> Result<(), ToolError> {
        if self.validator.is_valid(arguments) {
            return Ok(());
        }
        let errors: Vec<FieldError> = self
            .validator
            .iter_errors(arguments)
            .take(toolgate_core::MAX_FIELD_ERRORS)
            .map(|e| FieldError {
                pointer: e.instance_path().as_str().to_owned(),
                // Masked: the message names the rule, not the (possibly secret or huge) value.
                message: e.masked().to_string(),
            })
            .collect();
        Err(ToolError::invalid_arguments(errors))
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;
    use toolgate_core::ErrorKind;

    use super::*;

    #[test]
    fn errors_carry_pointers() {
        let schema = ArgumentSchema::compile(&json!({
            "type": "object",
            "properties": {"ms": {"type": "integer"}, "tags": {"type": "array", "items": {"type": "string"}}},
            "required": ["ms"]
        }))
        .unwrap_or_else(|e| panic!("{e}"));
        assert!(schema.check(&json!({"ms": 1})).is_ok());
        let err = schema
            .check(&json!({"ms": "x", "tags": ["a", 2]}))
            .err()
            .unwrap_or_else(|| panic!("must fail"));
        assert_eq!(err.kind, ErrorKind::InvalidArguments);
        let mut pointers: Vec<_> = err.errors.iter().map(|e| e.pointer.as_str()).collect();
        pointers.sort_unstable();
        assert_eq!(pointers, vec!["/ms", "/tags/1"]);
        assert!(!err.errors[0].message.contains("\"x\""));
    }

    #[test]
    fn invalid_schemas_are_refused() {
        assert!(ArgumentSchema::compile(&json!({"type": "no-such-type"})).is_err());
    }
}
