//! The `:param` scanner, against each dialect's lexical corners.

use super::*;

fn pg(sql: &str) -> Result<(String, Vec<String>), ScanError> {
    rewrite(sql, Dialect::Postgres).map(|p| (p.sql, p.names))
}

fn my(sql: &str) -> Result<(String, Vec<String>), ScanError> {
    rewrite(sql, Dialect::Mysql).map(|p| (p.sql, p.names))
}

fn names(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| (*s).to_owned()).collect()
}

#[test]
fn postgres_numbers_each_name_once() {
    assert_eq!(
        pg("SELECT * FROM t WHERE a = :a AND b > :b OR a < :a"),
        Ok((
            "SELECT * FROM t WHERE a = $1 AND b > $2 OR a < $1".to_owned(),
            names(&["a", "b"])
        ))
    );
}

#[test]
fn mysql_binds_every_occurrence() {
    assert_eq!(
        my("SELECT * FROM t WHERE a = :a AND b > :b OR a < :a"),
        Ok((
            "SELECT * FROM t WHERE a = ? AND b > ? OR a < ?".to_owned(),
            names(&["a", "b", "a"])
        ))
    );
}

#[test]
fn literals_identifiers_and_comments_hide_names() {
    let sql = "SELECT ':no', 'it''s :no', \"col:no\", E'\\' :no', $$ :no $$, $t$ :no $t$, \
               x -- :no\n, /* :no /* nested :no */ :no */ :yes";
    let (out, got) = pg(sql).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(got, names(&["yes"]));
    assert!(out.ends_with("*/ $1"), "{out}");
    let sql = "SELECT ':no', 'it\\'s :no', \"dq :no\", `bq:no`, x # :no\n, y -- :no\n, \
               /* :no */ :yes";
    let (out, got) = my(sql).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(got, names(&["yes"]));
    assert!(out.ends_with("*/ ?"), "{out}");
}

#[test]
fn casts_and_assignments_are_not_parameters() {
    assert_eq!(
        pg("SELECT :day::date, x::text, f(a := 1), arr[1:n], :n"),
        Ok((
            "SELECT $1::date, x::text, f(a := 1), arr[1:n], $2".to_owned(),
            names(&["day", "n"])
        ))
    );
    assert_eq!(
        my("SELECT @v := 1, '10:30', :v"),
        Ok(("SELECT @v := 1, '10:30', ?".to_owned(), names(&["v"])))
    );
}

#[test]
fn positional_placeholders_are_refused() {
    assert_eq!(pg("SELECT $1"), Err(ScanError::Positional("$1".to_owned())));
    assert_eq!(my("SELECT ?"), Err(ScanError::Positional("?".to_owned())));
    // `?` is a jsonb operator in PostgreSQL, and `$` may continue an identifier.
    assert!(pg("SELECT doc ? 'k', a$1 FROM t").is_ok());
    assert!(my("SELECT a$1 FROM t").is_ok());
    // MySQL's `--` is a comment only before a space: `--1` is minus minus one.
    assert_eq!(my("SELECT 1 --1"), Ok(("SELECT 1 --1".to_owned(), vec![])));
}

#[test]
fn one_statement_only() {
    assert_eq!(pg("SELECT 1; SELECT 2"), Err(ScanError::MultipleStatements));
    assert_eq!(
        my("SELECT 1; DROP TABLE t"),
        Err(ScanError::MultipleStatements)
    );
    assert_eq!(
        pg("SELECT ';'; -- done\n;  "),
        Ok(("SELECT ';'".to_owned(), vec![]))
    );
    assert_eq!(pg("  -- nothing\n"), Err(ScanError::Empty));
    assert_eq!(my(";"), Err(ScanError::Empty));
    // A function body is one dollar-quoted literal, semicolons and all.
    assert!(pg("CREATE FUNCTION f() RETURNS int AS $$ SELECT 1; $$ LANGUAGE sql").is_ok());
}

#[test]
fn unterminated_pieces_are_errors() {
    assert_eq!(pg("SELECT 'x"), Err(ScanError::Unterminated("string")));
    assert_eq!(
        pg("SELECT \"x"),
        Err(ScanError::Unterminated("quoted name"))
    );
    assert_eq!(pg("SELECT /* x"), Err(ScanError::Unterminated("comment")));
    assert_eq!(
        pg("SELECT $a$ x"),
        Err(ScanError::Unterminated("dollar-quoted string"))
    );
    assert_eq!(my("SELECT `x"), Err(ScanError::Unterminated("quoted name")));
}

#[test]
fn ad_hoc_text_keeps_its_names_and_loses_the_trailing_semicolon() {
    assert_eq!(
        single_statement("SELECT ':x', :y; -- c", Dialect::Postgres),
        Ok("SELECT ':x', :y")
    );
    assert_eq!(
        single_statement("SELECT 1 /* c */", Dialect::Mysql),
        Ok("SELECT 1 /* c */")
    );
    assert_eq!(
        single_statement("SELECT 1; SELECT 2", Dialect::Mysql),
        Err(ScanError::MultipleStatements)
    );
    assert_eq!(
        single_statement("SELECT * FROM t WHERE id = ?", Dialect::Mysql),
        Err(ScanError::Positional("?".to_owned()))
    );
}

#[test]
fn non_ascii_text_survives() {
    assert_eq!(
        pg("SELECT 'häh', :név, :név"),
        Ok(("SELECT 'häh', $1, $1".to_owned(), names(&["név"])))
    );
}

fn lite(sql: &str) -> Result<(String, Vec<String>), ScanError> {
    rewrite(sql, Dialect::Sqlite).map(|p| (p.sql, p.names))
}

#[test]
fn caller_claims_are_one_name_on_every_dialect() {
    let sql = "SELECT * FROM t WHERE owner = :caller.sub AND a = :a AND org = :caller.tenant_id";
    assert_eq!(
        pg(sql),
        Ok((
            "SELECT * FROM t WHERE owner = $1 AND a = $2 AND org = $3".to_owned(),
            names(&["caller.sub", "a", "caller.tenant_id"])
        ))
    );
    assert_eq!(
        my(sql),
        Ok((
            "SELECT * FROM t WHERE owner = ? AND a = ? AND org = ?".to_owned(),
            names(&["caller.sub", "a", "caller.tenant_id"])
        ))
    );
    assert_eq!(
        lite(sql),
        Ok((
            "SELECT * FROM t WHERE owner = :caller$sub AND a = :a AND org = :caller$tenant_id"
                .to_owned(),
            names(&["caller.sub", "a", "caller.tenant_id"])
        ))
    );
    // A declared `:caller` without a claim, a table named `caller`, and a cast stay
    // what they were.
    assert_eq!(
        pg("SELECT caller.x, :caller::text FROM caller WHERE y = :caller. "),
        Ok((
            "SELECT caller.x, $1::text FROM caller WHERE y = $1. ".to_owned(),
            names(&["caller"])
        ))
    );
}

#[test]
fn sqlite_literals_and_quoted_names_hide_claims() {
    assert_eq!(
        lite("SELECT ':caller.sub', \":caller.x\", [:caller.y], `:caller.z` --:caller.c\n FROM t /* :caller.d */ WHERE a = :caller.sub;"),
        Ok((
            "SELECT ':caller.sub', \":caller.x\", [:caller.y], `:caller.z` --:caller.c\n FROM t /* :caller.d */ WHERE a = :caller$sub".to_owned(),
            names(&["caller.sub"])
        ))
    );
    // SQLite has no backslash escapes and no E'' strings.
    assert_eq!(
        lite("SELECT e'a\\' , :caller.sub"),
        Ok((
            "SELECT e'a\\' , :caller$sub".to_owned(),
            names(&["caller.sub"])
        ))
    );
}
