//! The documented mapping of column types to JSON, value by value, on each database:
//! literals stored in typed columns, and parameters bound by a tool and read back.

use serde_json::{Value, json};

use super::{Db, ok, query_tool, rows, sql_tool, with_table};

/// Columns, one row of literals (id 1), and that row as JSON.
fn table(db: Db) -> (&'static str, &'static str, Value) {
    match db {
        Db::Sqlite => (
            "id INTEGER PRIMARY KEY, i INTEGER, r REAL, s TEXT, b BLOB, n TEXT",
            "1, 42, 2.5, 'häh ✓', x'00FF10', NULL",
            json!([1, 42, 2.5, "häh ✓", "AP8Q", null]),
        ),
        Db::Postgres => (
            "id integer PRIMARY KEY, i2 smallint, i4 integer, i8 bigint, n numeric(20,6), \
             f4 real, f8 double precision, t text, vc varchar(20), c char(3), b boolean, \
             j json, jb jsonb, d date, tm time, tz timetz, ts timestamp, tstz timestamptz, \
             bt bytea, u uuid, ia integer[], ta text[], nul text",
            "1, -32768, 2147483647, 9223372036854775807, 12345678901234.567891, 0.1, 2.5, \
             'häh ✓', 'vc', 'ab', true, '{\"a\": [1, 2.5, null]}', '{\"b\": {\"c\": true}}', \
             '2026-01-05', '07:08:09.123', '07:08:09-03:30', '2026-01-05 07:08:09.000001', \
             '2026-01-05 07:08:09+02', '\\x00ff10', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', \
             '{1,2,NULL}', '{\"x\",\"y z\"}', NULL",
            json!([
                1, -32768, 2_147_483_647, 9_223_372_036_854_775_807_i64,
                "12345678901234.567891", 0.1, 2.5, "häh ✓", "vc", "ab ", true,
                {"a": [1, 2.5, null]}, {"b": {"c": true}}, "2026-01-05", "07:08:09.123",
                "07:08:09-03:30", "2026-01-05T07:08:09.000001", "2026-01-05T05:08:09Z",
                "AP8Q", "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11", [1, 2, null], ["x", "y z"],
                null
            ]),
        ),
        Db::Mariadb => (
            "id INT PRIMARY KEY, ti TINYINT, si SMALLINT, i INT, bi BIGINT, ubi BIGINT UNSIGNED, \
             dc DECIMAL(20,6), fl FLOAT, db DOUBLE, vc VARCHAR(20), tx TEXT, ch CHAR(3), \
             bo BOOLEAN, js JSON, d DATE, tm TIME(3), dt DATETIME(6), ts TIMESTAMP NULL, \
             vb VARBINARY(10), bl BLOB, en ENUM('a','b'), yr YEAR, bt BIT(10), \
             st SET('x','y','z'), nul TEXT",
            "1, -128, -32768, 2147483647, 9223372036854775807, 18446744073709551615, \
             12345678901234.567891, 0.1, 2.5, 'vc', 'häh ✓', 'ab', TRUE, \
             '{\"a\": [1, 2.5, null]}', '2026-01-05', '-07:08:09.123', \
             '2026-01-05 07:08:09.000001', '2026-01-05 05:08:09', x'00FF10', x'01', 'b', \
             2026, b'1000000001', 'x,z', NULL",
            json!([
                1, -128, -32768, 2_147_483_647, 9_223_372_036_854_775_807_i64,
                18_446_744_073_709_551_615_u64, "12345678901234.567891", 0.1, 2.5, "vc",
                "häh ✓", "ab", true, {"a": [1, 2.5, null]}, "2026-01-05", "-07:08:09.123",
                "2026-01-05T07:08:09.000001", "2026-01-05T05:08:09Z", "AP8Q", "AQ==", "b",
                2026, 513, "x,z", null
            ]),
        ),
    }
}

/// Values with no column of their own: special numbers, expressions.
fn scalars(db: Db) -> Vec<(&'static str, Value)> {
    match db {
        Db::Sqlite => vec![("1e999", Value::Null), ("-7", json!(-7))],
        Db::Postgres => vec![
            ("'NaN'::numeric", json!("NaN")),
            ("-0.5::numeric", json!("-0.5")),
            ("0.00001234::numeric", json!("0.00001234")),
            ("'NaN'::float8", Value::Null),
            ("'infinity'::timestamp", json!("infinity")),
            ("'-infinity'::date", json!("-infinity")),
            ("'x'::\"char\"", json!("x")),
            ("pg_sleep(0)", Value::Null),
        ],
        Db::Mariadb => vec![
            ("1.50", json!("1.50")),
            ("CAST(7 AS UNSIGNED)", json!(7)),
            ("NULL", Value::Null),
            ("b'101'", json!("BQ==")),
        ],
    }
}

/// The JSON columns of MariaDB are LONGTEXT on the wire, so they come back as the
/// JSON text; compare what that text says.
fn normalise(db: Db, mut row: Value) -> Value {
    if db == Db::Mariadb
        && let Some(text) = row[13].as_str()
    {
        row[13] = serde_json::from_str(text).unwrap_or_else(|e| panic!("{e}: {row}"));
    }
    row
}

/// Literals in typed columns, special values, and parameters bound by a tool all
/// come back as the mapping says.
pub async fn every_type_in_the_mapping_round_trips(db: Db) {
    let (columns, literals, expected) = table(db);
    with_table(db, columns, |fx| async move {
        fx.exec(&format!("INSERT INTO {} VALUES ({literals})", fx.table))
            .await;
        let insert = sql_tool(
            "insert",
            &param_insert(db),
            r#"[{ name = "id", type = "integer" }, { name = "i", type = "integer" },
                { name = "f", type = "number" }, { name = "s", type = "string" },
                { name = "b", type = "boolean" }, { name = "n", type = "string", required = false }]"#,
            "destructive = true",
        );
        let s = fx.serve("", &[query_tool("q", ""), insert].concat()).await;
        let t = &fx.table;
        let got = rows(&s, "q", &format!("SELECT * FROM {t} WHERE id = 1")).await;
        assert_eq!(normalise(db, got[0].clone()), expected, "{db:?}");
        for (expr, want) in scalars(db) {
            let got = rows(&s, "q", &format!("SELECT {expr} AS v")).await;
            assert_eq!(got, json!([[want]]), "{db:?}: {expr}");
        }
        if db == Db::Postgres {
            // A type outside the mapping is refused, naming the type and the cure.
            let resp = s
                .call("q", &json!({"query": "SELECT '1 day'::interval AS span"}))
                .send()
                .await
                .unwrap();
            let body = crate::expect_problem(resp, 422, "invalid_arguments").await;
            let message = body["errors"][0]["message"].as_str().unwrap();
            assert!(message.contains("INTERVAL") && message.contains("::text"), "{message}");
        }
        let args = json!({"id": 2, "i": -9_007_199_254_740_993_i64, "f": 1.5e300,
                          "s": "ünï 'q' \"dq\" \\ %", "b": true});
        ok(&s, "insert", args.clone()).await;
        let got = rows(&s, "q", &param_select(db, t)).await;
        let truth = if db == Db::Sqlite { json!(1) } else { json!(true) };
        assert_eq!(got, json!([[2, args["i"], args["f"], args["s"], truth, null]]), "{db:?}");
    })
    .await;
}

/// Insert the parameters into the columns of matching type.
fn param_insert(db: Db) -> String {
    match db {
        Db::Sqlite => "INSERT INTO {t} (id, i, r, s, b, n) VALUES (:id, :i, :f, :s, :b, :n)",
        Db::Postgres => "INSERT INTO {t} (id, i8, f8, t, b, nul) VALUES (:id, :i, :f, :s, :b, :n)",
        Db::Mariadb => "INSERT INTO {t} (id, bi, db, tx, bo, nul) VALUES (:id, :i, :f, :s, :b, :n)",
    }
    .to_owned()
}

fn param_select(db: Db, t: &str) -> String {
    let columns = match db {
        Db::Sqlite => "id, i, r, s, b, n",
        Db::Postgres => "id, i8, f8, t, b, nul",
        Db::Mariadb => "id, bi, db, tx, bo, nul",
    };
    format!("SELECT {columns} FROM {t} WHERE id = 2")
}
