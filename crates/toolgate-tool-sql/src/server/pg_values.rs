//! PostgreSQL values as JSON; the table in the crate docs is the contract.
//!
//! Types are told apart by name (sqlx's names for the built-in types). Values arrive
//! in the binary format; `numeric` and `uuid` are read from their bytes, which keeps
//! every digit of a numeric without a decimal crate.

use std::fmt::Write as _;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::Value;
use sqlx::postgres::types::{Oid, PgTimeTz};
use sqlx::postgres::{PgRow, PgTypeKind, PgValueFormat, PgValueRef};
use sqlx::{Decode, Postgres, Row, TypeInfo, ValueRef};

use super::{float_json, float32_json, temporal, unmappable};
use crate::error::JobError;

/// One row as a JSON array, in column order.
pub(super) fn row_json(row: &PgRow, names: &[String]) -> Result<Value, JobError> {
    let mut values = Vec::with_capacity(names.len());
    for (i, name) in names.iter().enumerate() {
        values.push(column_json(row, i, name)?);
    }
    Ok(Value::Array(values))
}

/// Decode column `i` as `T`, reporting a failure against the column.
fn get<'r, T: Decode<'r, Postgres>>(row: &'r PgRow, i: usize, name: &str) -> Result<T, JobError> {
    row.try_get_unchecked::<T, _>(i).map_err(|e| {
        JobError::Unmappable(format!(
            "column {name:?} holds a value that cannot be read as JSON ({e}); cast it in the \
             query (::text)"
        ))
    })
}

fn column_json(row: &PgRow, i: usize, name: &str) -> Result<Value, JobError> {
    let raw = row
        .try_get_raw(i)
        .map_err(|e| JobError::Unmappable(format!("column {name:?}: {e}")))?;
    if raw.is_null() {
        return Ok(Value::Null);
    }
    let type_info = raw.type_info().into_owned();
    let text = |s: String| Ok(Value::String(s));
    match type_info.name() {
        "BOOL" => Ok(Value::Bool(get(row, i, name)?)),
        "INT2" => Ok(Value::from(get::<i16>(row, i, name)?)),
        "INT4" => Ok(Value::from(get::<i32>(row, i, name)?)),
        "INT8" => Ok(Value::from(get::<i64>(row, i, name)?)),
        "OID" => Ok(Value::from(get::<Oid>(row, i, name)?.0)),
        "FLOAT4" => Ok(float32_json(get(row, i, name)?)),
        "FLOAT8" => Ok(float_json(get(row, i, name)?)),
        "NUMERIC" => text(numeric(&raw, name)?),
        "TEXT" | "VARCHAR" | "CHAR" | "NAME" | "UNKNOWN" => text(get(row, i, name)?),
        "\"CHAR\"" => text(char::from(get::<i8>(row, i, name)?.cast_unsigned()).to_string()),
        "JSON" | "JSONB" => get::<Value>(row, i, name),
        "BYTEA" => text(STANDARD.encode(get::<&[u8]>(row, i, name)?)),
        "UUID" => text(uuid(&raw, name)?),
        "DATE" => match infinity(&raw, 4) {
            Some(s) => text(s),
            None => text(temporal::date(get(row, i, name)?)),
        },
        "TIME" => text(temporal::time_of_day(get(row, i, name)?)),
        "TIMETZ" => {
            let t: PgTimeTz<time::Time, time::UtcOffset> = get(row, i, name)?;
            text(temporal::time_of_day(t.time) + &temporal::offset(t.offset))
        }
        "TIMESTAMP" => match infinity(&raw, 8) {
            Some(s) => text(s),
            None => text(temporal::local(get(row, i, name)?)),
        },
        "TIMESTAMPTZ" => match infinity(&raw, 8) {
            Some(s) => text(s),
            None => text(temporal::instant(get(row, i, name)?)),
        },
        "VOID" => Ok(Value::Null),
        array if array.ends_with("[]") => array_json(row, i, name, array),
        _ if matches!(type_info.kind(), PgTypeKind::Enum(_)) => text(get(row, i, name)?),
        other => Err(unmappable(name, other, "::text")),
    }
}

/// One-dimensional arrays of the scalar types above, as JSON arrays.
fn array_json(row: &PgRow, i: usize, name: &str, type_name: &str) -> Result<Value, JobError> {
    fn list<T>(items: Vec<Option<T>>, f: impl Fn(T) -> Value) -> Value {
        Value::Array(
            items
                .into_iter()
                .map(|v| v.map_or(Value::Null, &f))
                .collect(),
        )
    }
    Ok(match type_name {
        "BOOL[]" => list(get::<Vec<Option<bool>>>(row, i, name)?, Value::Bool),
        "INT2[]" => list(get::<Vec<Option<i16>>>(row, i, name)?, Value::from),
        "INT4[]" => list(get::<Vec<Option<i32>>>(row, i, name)?, Value::from),
        "INT8[]" => list(get::<Vec<Option<i64>>>(row, i, name)?, Value::from),
        "FLOAT4[]" => list(get::<Vec<Option<f32>>>(row, i, name)?, float32_json),
        "FLOAT8[]" => list(get::<Vec<Option<f64>>>(row, i, name)?, float_json),
        "TEXT[]" | "VARCHAR[]" | "CHAR[]" | "NAME[]" => {
            list(get::<Vec<Option<String>>>(row, i, name)?, Value::String)
        }
        other => return Err(unmappable(name, other, "::text or to_json()")),
    })
}

/// `infinity` and `-infinity`, which dates and timestamps may hold: the largest and
/// smallest value of their `width`-byte binary form.
fn infinity(raw: &PgValueRef<'_>, width: usize) -> Option<String> {
    let bytes = raw.as_bytes().ok()?;
    if raw.format() != PgValueFormat::Binary || bytes.len() != width {
        return None;
    }
    let (max, min) = if width == 4 {
        (
            i32::MAX.to_be_bytes().to_vec(),
            i32::MIN.to_be_bytes().to_vec(),
        )
    } else {
        (
            i64::MAX.to_be_bytes().to_vec(),
            i64::MIN.to_be_bytes().to_vec(),
        )
    };
    if bytes == max {
        Some("infinity".to_owned())
    } else if bytes == min {
        Some("-infinity".to_owned())
    } else {
        None
    }
}

fn bytes<'r>(raw: &PgValueRef<'r>, name: &str) -> Result<&'r [u8], JobError> {
    raw.as_bytes()
        .map_err(|e| JobError::Unmappable(format!("column {name:?}: {e}")))
}

/// A uuid's 16 bytes as `xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx`.
fn uuid(raw: &PgValueRef<'_>, name: &str) -> Result<String, JobError> {
    let b = bytes(raw, name)?;
    if raw.format() == PgValueFormat::Text {
        return Ok(String::from_utf8_lossy(b).into_owned());
    }
    let mut out = String::with_capacity(36);
    for (k, byte) in b.iter().enumerate() {
        if matches!(k, 4 | 6 | 8 | 10) {
            out.push('-');
        }
        let _ = write!(out, "{byte:02x}");
    }
    Ok(out)
}

/// A `numeric` as its exact decimal text (`NaN`, `Infinity` and `-Infinity` too).
fn numeric(raw: &PgValueRef<'_>, name: &str) -> Result<String, JobError> {
    let b = bytes(raw, name)?;
    if raw.format() == PgValueFormat::Text {
        return Ok(String::from_utf8_lossy(b).into_owned());
    }
    numeric_text(b)
        .ok_or_else(|| JobError::Unmappable(format!("column {name:?}: malformed numeric value")))
}

/// The binary `numeric`: digit count, weight (of the first digit, in powers of
/// 10000), sign, display scale, then base-10000 digits.
pub(super) fn numeric_text(b: &[u8]) -> Option<String> {
    let word = |k: usize| Some(u16::from_be_bytes([*b.get(k)?, *b.get(k + 1)?]));
    let ndigits = usize::from(word(0)?);
    let weight = i64::from(word(2)?.cast_signed());
    let sign = word(4)?;
    let dscale = usize::from(word(6)?);
    let digits: Vec<u16> = (0..ndigits)
        .map(|k| word(8 + 2 * k))
        .collect::<Option<_>>()?;
    match sign {
        0x0000 | 0x4000 => {}
        0xC000 => return Some("NaN".to_owned()),
        0xD000 => return Some("Infinity".to_owned()),
        0xF000 => return Some("-Infinity".to_owned()),
        _ => return None,
    }
    let digit = |k: i64| {
        usize::try_from(k)
            .ok()
            .and_then(|k| digits.get(k).copied())
            .unwrap_or(0)
    };
    let mut out = String::new();
    if sign == 0x4000 {
        out.push('-');
    }
    if weight < 0 {
        out.push('0');
    } else {
        let _ = write!(out, "{}", digit(0));
        for k in 1..=weight {
            let _ = write!(out, "{:04}", digit(k));
        }
    }
    if dscale > 0 {
        let mut fraction = String::with_capacity(dscale + 4);
        let mut k = weight + 1;
        while fraction.len() < dscale {
            let _ = write!(fraction, "{:04}", digit(k));
            k += 1;
        }
        fraction.truncate(dscale);
        out.push('.');
        out.push_str(&fraction);
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::numeric_text;

    fn numeric(weight: i16, sign: u16, dscale: u16, digits: &[u16]) -> Vec<u8> {
        let mut b = Vec::new();
        for w in [digits.len() as u16, weight.cast_unsigned(), sign, dscale] {
            b.extend(w.to_be_bytes());
        }
        for d in digits {
            b.extend(d.to_be_bytes());
        }
        b
    }

    #[test]
    fn numerics_keep_every_digit() {
        let cases = [
            (numeric(1, 0, 3, &[1, 2345, 6780]), "12345.678"),
            (numeric(-1, 0x4000, 1, &[5000]), "-0.5"),
            (numeric(0, 0, 0, &[]), "0"),
            (numeric(-2, 0, 8, &[1234]), "0.00001234"),
            (numeric(5, 0, 0, &[1]), "100000000000000000000"),
            (numeric(0, 0, 2, &[7]), "7.00"),
            (numeric(0, 0xC000, 0, &[]), "NaN"),
            (numeric(0, 0xF000, 0, &[]), "-Infinity"),
        ];
        for (bytes, text) in cases {
            assert_eq!(numeric_text(&bytes).as_deref(), Some(text));
        }
        assert_eq!(numeric_text(&[0, 1]), None);
    }
}
