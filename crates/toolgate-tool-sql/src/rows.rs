//! Reading a statement's rows under the row and byte caps, and SQLite values as JSON.
//!
//! The byte cap counts each row's size as JSON while the rows are read (SQLite's
//! values before they are even converted), so a result never grows past it in
//! memory: the row that would cross it is left out, and the result says
//! `"truncated": true, "truncated_reason": "max_result_bytes"`.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use rusqlite::Statement;
use rusqlite::types::ValueRef;
use serde_json::{Map, Number, Value};

/// Bytes of result a SQL tool returns at most when it sets no `max_result_bytes`.
pub const DEFAULT_MAX_RESULT_BYTES: usize = 8 * 1024 * 1024;

/// The caps on one result: rows, and bytes of JSON.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Caps {
    /// Most rows.
    pub rows: usize,
    /// Most bytes of rows, as JSON.
    pub bytes: usize,
}

impl From<usize> for Caps {
    /// `rows` rows, and the default byte cap.
    fn from(rows: usize) -> Self {
        Self {
            rows,
            bytes: DEFAULT_MAX_RESULT_BYTES,
        }
    }
}

/// Which cap cut a result short.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Cut {
    Rows,
    Bytes,
}

impl Cut {
    fn reason(self) -> &'static str {
        match self {
            Cut::Rows => "max_rows",
            Cut::Bytes => "max_result_bytes",
        }
    }
}

/// What a result has used of its caps so far.
#[derive(Debug)]
pub(crate) struct Budget {
    caps: Caps,
    rows: usize,
    bytes: usize,
}

impl Budget {
    pub(crate) fn new(caps: Caps) -> Self {
        Self {
            caps,
            rows: 0,
            bytes: 0,
        }
    }

    /// Whether one more row could come at all (the row cap).
    pub(crate) fn row_room(&self) -> Result<(), Cut> {
        if self.rows >= self.caps.rows {
            Err(Cut::Rows)
        } else {
            Ok(())
        }
    }

    /// Count a row of `size` bytes, or say which cap it would cross.
    pub(crate) fn take(&mut self, size: usize) -> Result<(), Cut> {
        self.row_room()?;
        let bytes = self.bytes.saturating_add(size);
        if bytes > self.caps.bytes {
            return Err(Cut::Bytes);
        }
        self.rows += 1;
        self.bytes = bytes;
        Ok(())
    }
}

/// Keep one more row within `budget`: converted by `convert` only when the row cap
/// leaves room, kept when its size fits. `Some(cut)` when it was not kept.
///
/// # Errors
/// The conversion failed.
pub(crate) fn keep<E>(
    budget: &mut Budget,
    rows: &mut Vec<Value>,
    convert: impl FnOnce() -> Result<Value, E>,
) -> Result<Option<Cut>, E> {
    if let Err(cut) = budget.row_room() {
        return Ok(Some(cut));
    }
    let value = convert()?;
    match budget.take(json_size(&value)) {
        Ok(()) => {
            rows.push(value);
            Ok(None)
        }
        Err(cut) => {
            tracing::info!(
                max_result_bytes = budget.caps.bytes,
                rows = rows.len(),
                "result cut at its byte cap"
            );
            Ok(Some(cut))
        }
    }
}

/// The length of `value` serialized as JSON, near enough to cap on (escapes aside).
pub(crate) fn json_size(value: &Value) -> usize {
    match value {
        Value::Null => 4,
        Value::Bool(_) => 5,
        Value::Number(_) => 24,
        Value::String(s) => s.len() + 2,
        Value::Array(items) => items.iter().map(|v| json_size(v) + 1).sum::<usize>() + 2,
        Value::Object(map) => {
            map.iter()
                .map(|(k, v)| k.len() + 4 + json_size(v))
                .sum::<usize>()
                + 2
        }
    }
}

/// The JSON size a SQLite value will have, without converting it.
fn raw_size(value: ValueRef<'_>) -> usize {
    match value {
        ValueRef::Null => 4,
        ValueRef::Integer(_) | ValueRef::Real(_) => 24,
        ValueRef::Text(t) => t.len() + 2,
        ValueRef::Blob(b) => b.len().div_ceil(3) * 4 + 2,
    }
}

/// The rows of one statement, as the tools return them.
#[derive(Debug)]
pub(crate) struct RowSet {
    pub(crate) columns: Vec<String>,
    pub(crate) rows: Vec<Value>,
    pub(crate) truncated: bool,
    /// Which cap cut the rows short, when one did.
    pub(crate) cut: Option<Cut>,
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
        if let Some(cut) = self.cut {
            out.insert(
                "truncated_reason".to_owned(),
                Value::String(cut.reason().to_owned()),
            );
        }
        if let Some(n) = self.rows_affected {
            out.insert("rows_affected".to_owned(), Value::from(n));
        }
        Value::Object(out)
    }
}

/// Step `stmt` (parameters already bound) and keep the rows within `caps`; one row
/// more is fetched to learn whether the result was cut.
pub(crate) fn collect(stmt: &mut Statement<'_>, caps: Caps) -> rusqlite::Result<RowSet> {
    let mut rows = Vec::new();
    let mut cut = None;
    let mut budget = Budget::new(caps);
    let mut cursor = stmt.raw_query();
    while let Some(row) = cursor.next()? {
        let width = row.as_ref().column_count();
        let mut size = 2 + width;
        for i in 0..width {
            size += raw_size(row.get_ref(i)?);
        }
        if let Err(c) = budget.take(size) {
            cut = Some(c);
            break;
        }
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
    if cut == Some(Cut::Bytes) {
        tracing::info!(
            max_result_bytes = caps.bytes,
            rows = rows.len(),
            "result cut at its byte cap"
        );
    }
    Ok(RowSet {
        columns,
        rows,
        truncated: cut.is_some(),
        cut,
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
