//! Reading a statement's rows under the row cap, and SQLite values as JSON.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use rusqlite::Statement;
use rusqlite::types::ValueRef;
use serde_json::{Map, Number, Value};

/// The rows of one statement, as the tools return them.
#[derive(Debug)]
pub(crate) struct RowSet {
    pub(crate) columns: Vec<String>,
    pub(crate) rows: Vec<Value>,
    pub(crate) truncated: bool,
    /// Set for writing statements that return no columns.
    pub(crate) rows_affected: Option<u64>,
}

impl RowSet {
    /// `{"columns": [...], "rows": [[...]], "truncated": bool}` (+ `rows_affected`).
    pub(crate) fn into_json(self) -> Value {
        let mut out = Map::new();
        out.insert(
            "columns".to_owned(),
            Value::Array(self.columns.into_iter().map(Value::String).collect()),
        );
        out.insert("rows".to_owned(), Value::Array(self.rows));
        out.insert("truncated".to_owned(), Value::Bool(self.truncated));
        if let Some(n) = self.rows_affected {
            out.insert("rows_affected".to_owned(), Value::from(n));
        }
        Value::Object(out)
    }
}

/// Step `stmt` (parameters already bound) and keep at most `max_rows` rows; one row
/// more is fetched to learn whether the result was cut.
pub(crate) fn collect(stmt: &mut Statement<'_>, max_rows: usize) -> rusqlite::Result<RowSet> {
    let mut rows = Vec::new();
    let mut truncated = false;
    let mut cursor = stmt.raw_query();
    while let Some(row) = cursor.next()? {
        if rows.len() == max_rows {
            truncated = true;
            break;
        }
        let width = row.as_ref().column_count();
        let mut values = Vec::with_capacity(width);
        for i in 0..width {
            values.push(to_json(row.get_ref(i)?));
        }
        rows.push(Value::Array(values));
    }
    drop(cursor);
    // Named only now: SQLite prepares again at the first step when the schema
    // changed since (an ALTER TABLE under `SELECT *`), and the names change with it.
    let columns: Vec<String> = stmt.column_names().into_iter().map(String::from).collect();
    Ok(RowSet {
        columns,
        rows,
        truncated,
        rows_affected: None,
    })
}

/// One SQLite value as JSON; the table in the crate docs is the contract.
pub(crate) fn to_json(value: ValueRef<'_>) -> Value {
    match value {
        ValueRef::Null => Value::Null,
        ValueRef::Integer(i) => Value::from(i),
        ValueRef::Real(f) => Number::from_f64(f).map_or(Value::Null, Value::Number),
        ValueRef::Text(bytes) => Value::String(String::from_utf8_lossy(bytes).into_owned()),
        ValueRef::Blob(bytes) => Value::String(STANDARD.encode(bytes)),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn values_map_as_documented() {
        assert_eq!(to_json(ValueRef::Null), Value::Null);
        assert_eq!(to_json(ValueRef::Integer(-7)), json!(-7));
        assert_eq!(to_json(ValueRef::Real(1.5)), json!(1.5));
        assert_eq!(to_json(ValueRef::Real(f64::NAN)), Value::Null);
        assert_eq!(to_json(ValueRef::Real(f64::INFINITY)), Value::Null);
        assert_eq!(to_json(ValueRef::Text(b"h\xffi")), json!("h\u{fffd}i"));
        assert_eq!(to_json(ValueRef::Blob(&[0, 1, 2, 255])), json!("AAEC/w=="));
    }
}
