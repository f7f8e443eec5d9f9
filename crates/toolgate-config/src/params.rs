//! Declared parameters (`params = [...]` of `sql` and `http` tools) as a JSON Schema.

use serde_json::{Map, Number, Value, json};

use crate::model::ParamConfig;

impl ParamConfig {
    /// Whether the argument must be given: `required`, else "no default".
    #[must_use]
    pub fn is_required(&self) -> bool {
        self.required.unwrap_or(self.default.is_none())
    }
}

/// The input schema of a tool whose arguments are `params`: an object with one
/// property per parameter (type, description, default, bounds, enum), the required
/// ones listed, and nothing else allowed.
#[must_use]
pub fn params_schema(params: &[ParamConfig]) -> Value {
    let mut properties = Map::new();
    let mut required = Vec::new();
    for p in params {
        let name = p.name.get_ref().clone();
        let mut schema = Map::new();
        schema.insert("type".to_owned(), json!(p.ty.json_type()));
        if let Some(d) = &p.description {
            schema.insert("description".to_owned(), json!(d));
        }
        if let Some(d) = &p.default {
            schema.insert("default".to_owned(), d.clone());
        }
        if let Some(min) = p.minimum {
            schema.insert("minimum".to_owned(), number(min));
        }
        if let Some(max) = p.maximum {
            schema.insert("maximum".to_owned(), number(max));
        }
        if let Some(len) = p.max_length {
            schema.insert("maxLength".to_owned(), json!(len));
        }
        if let Some(allowed) = &p.allowed {
            schema.insert("enum".to_owned(), Value::Array(allowed.clone()));
        }
        if p.is_required() {
            required.push(Value::String(name.clone()));
        }
        properties.insert(name, Value::Object(schema));
    }
    json!({
        "type": "object",
        "properties": properties,
        "required": required,
        "additionalProperties": false
    })
}

/// Whole numbers as JSON integers (so `minimum = 1` reads `1`, not `1.0`).
fn number(f: f64) -> Value {
    #[allow(clippy::cast_possible_truncation)] // guarded: whole and within i64's exact range
    if f.fract() == 0.0 && f.abs() < 9.0e15 {
        Value::from(f as i64)
    } else {
        Number::from_f64(f).map_or(Value::Null, Value::Number)
    }
}
