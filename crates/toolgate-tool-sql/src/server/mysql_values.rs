//! MySQL and MariaDB values as JSON; the table in the crate docs is the contract.
//!
//! Types are told apart by sqlx's names, which follow the column definition
//! (`BOOLEAN` is `TINYINT(1)`), and strings from bytes by their character set.
//! MariaDB has no JSON type on the wire (`JSON` is an alias of `LONGTEXT`), so its
//! JSON columns arrive as text.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::Value;
use sqlx::mysql::MySqlRow;
use sqlx::mysql::types::MySqlTime;
use sqlx::{Decode, MySql, Row, Type, TypeInfo, ValueRef};

use super::{float_json, float32_json, temporal, unmappable};
use crate::error::JobError;

/// One row as a JSON array, in column order.
pub(super) fn row_json(row: &MySqlRow, names: &[String]) -> Result<Value, JobError> {
    let mut values = Vec::with_capacity(names.len());
    for (i, name) in names.iter().enumerate() {
        values.push(column_json(row, i, name)?);
    }
    Ok(Value::Array(values))
}

/// Decode column `i` as `T`, reporting a failure against the column.
fn get<'r, T: Decode<'r, MySql>>(row: &'r MySqlRow, i: usize, name: &str) -> Result<T, JobError> {
    row.try_get_unchecked::<T, _>(i).map_err(|e| {
        JobError::Unmappable(format!(
            "column {name:?} holds a value that cannot be read as JSON ({e}); cast it in the \
             query (CAST(... AS CHAR))"
        ))
    })
}

fn column_json(row: &MySqlRow, i: usize, name: &str) -> Result<Value, JobError> {
    let raw = row
        .try_get_raw(i)
        .map_err(|e| JobError::Unmappable(format!("column {name:?}: {e}")))?;
    if raw.is_null() {
        return Ok(Value::Null);
    }
    let type_info = raw.type_info().into_owned();
    let text = |s: String| Ok(Value::String(s));
    match type_info.name() {
        "NULL" => Ok(Value::Null),
        "BOOLEAN" => Ok(Value::Bool(get(row, i, name)?)),
        "TINYINT" | "SMALLINT" | "MEDIUMINT" | "INT" | "BIGINT" => {
            Ok(Value::from(get::<i64>(row, i, name)?))
        }
        "TINYINT UNSIGNED" | "SMALLINT UNSIGNED" | "MEDIUMINT UNSIGNED" | "INT UNSIGNED"
        | "BIGINT UNSIGNED" | "YEAR" | "BIT" => Ok(Value::from(get::<u64>(row, i, name)?)),
        "FLOAT" => Ok(float32_json(get(row, i, name)?)),
        "DOUBLE" => Ok(float_json(get(row, i, name)?)),
        // The wire carries a DECIMAL as its text, every digit of it.
        "DECIMAL" => text(get::<&str>(row, i, name)?.to_owned()),
        "CHAR" | "VARCHAR" | "TEXT" | "TINYTEXT" | "MEDIUMTEXT" | "LONGTEXT" | "ENUM" | "SET"
        | "BINARY" | "VARBINARY" | "BLOB" | "TINYBLOB" | "MEDIUMBLOB" | "LONGBLOB" => {
            // The names above follow the BINARY flag, which a `_bin` collation sets
            // too (MariaDB's JSON is utf8mb4_bin); only the `binary` character set
            // makes bytes, and sqlx's string check looks at exactly that.
            if <str as Type<MySql>>::compatible(&type_info) {
                text(get(row, i, name)?)
            } else {
                text(STANDARD.encode(get::<&[u8]>(row, i, name)?))
            }
        }
        "GEOMETRY" => text(STANDARD.encode(get::<&[u8]>(row, i, name)?)),
        "JSON" => get::<Value>(row, i, name),
        "DATE" => text(temporal::date(get(row, i, name)?)),
        "DATETIME" => text(temporal::local(get(row, i, name)?)),
        // sqlx keeps the session in UTC, so a TIMESTAMP is an instant.
        "TIMESTAMP" => text(temporal::instant(get(row, i, name)?)),
        "TIME" => text(duration(get(row, i, name)?)),
        other => Err(unmappable(name, other, "CAST(... AS CHAR)")),
    }
}

/// A `TIME`, which is a signed duration up to 838:59:59, as `[-]HH:MM:SS[.ffffff]`.
fn duration(t: MySqlTime) -> String {
    // Not `t.is_negative()`: in sqlx 0.9.0 it returns `is_positive()`.
    let sign = if t.sign().is_negative() { "-" } else { "" };
    let clock = temporal::clock(t.hours(), t.minutes(), t.seconds(), t.microseconds() * 1000);
    format!("{sign}{clock}")
}
