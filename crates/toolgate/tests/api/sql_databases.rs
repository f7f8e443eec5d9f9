//! The same SQL tool suite against SQLite, PostgreSQL (127.0.0.1:5432, user
//! `postgres`, database `test`) and MariaDB (127.0.0.1:3306, user `root`, database
//! `test`), black-box over HTTP.
//!
//! Each test gets a table of its own (`tg_<random>`), created through a destructive
//! tool of a first server and dropped at the end, even when the test fails. Under
//! CI the databases must be there; elsewhere a missing one skips its tests, loudly.

mod suite;
mod timeouts;
mod types;

use std::future::Future;
use std::net::{SocketAddr, TcpStream};
use std::panic::AssertUnwindSafe;
use std::path::PathBuf;
use std::time::Duration;

use futures::FutureExt as _;
use serde_json::{Value, json};
use toolgate_test_support::TestServer;

use crate::read;

/// A database of the suite.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Db {
    Sqlite,
    Postgres,
    Mariadb,
}

impl Db {
    /// Whether the database answers. Under CI it must; elsewhere the test is
    /// skipped, loudly.
    fn available(self) -> bool {
        let port = match self {
            Db::Sqlite => return true,
            Db::Postgres => 5432,
            Db::Mariadb => 3306,
        };
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let up = TcpStream::connect_timeout(&addr, Duration::from_secs(1)).is_ok();
        if !up {
            assert!(
                std::env::var("CI").is_err(),
                "{self:?} must run on 127.0.0.1:{port} under CI"
            );
            eprintln!(
                "SKIPPED: {self:?} is not running on 127.0.0.1:{port}; its SQL tests did not run"
            );
        }
        up
    }

    /// A statement that runs for about ten seconds (SQLite has no sleep: a long
    /// count); `marker` lets the test find it among the server's sessions.
    fn sleep_ten_seconds(self, marker: &str) -> String {
        match self {
            Db::Sqlite => format!(
                "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c \
                 WHERE x < 5000000000) SELECT count(*), '{marker}' FROM c"
            ),
            Db::Postgres => format!("SELECT pg_sleep(10), '{marker}'"),
            Db::Mariadb => format!("SELECT SLEEP(10), '{marker}'"),
        }
    }

    /// An ad-hoc query counting the server sessions running a statement that holds
    /// `marker` (other than the one asking). SQLite has no sessions.
    fn running_with(self, marker: &str) -> Option<String> {
        match self {
            Db::Sqlite => None,
            Db::Postgres => Some(format!(
                "SELECT count(*) FROM pg_stat_activity WHERE state = 'active' \
                 AND query LIKE '%{marker}%' AND pid <> pg_backend_pid()"
            )),
            Db::Mariadb => Some(format!(
                "SELECT count(*) FROM information_schema.PROCESSLIST \
                 WHERE INFO LIKE '%{marker}%' AND ID <> CONNECTION_ID()"
            )),
        }
    }
}

/// The table of one test, and where it lives.
#[derive(Debug, Clone)]
pub struct Fixture {
    pub db: Db,
    /// `tg_<random>`: unique per test, so tests can share a database.
    pub table: String,
    /// The SQLite file (empty until the table is created).
    sqlite_path: PathBuf,
}

impl Fixture {
    /// `[sources.db]`, plus `extra` fields.
    pub fn source(&self, extra: &str) -> String {
        let location = match self.db {
            Db::Sqlite => format!("kind = \"sqlite\"\npath = {:?}", self.sqlite_path),
            Db::Postgres => {
                "kind = \"postgres\"\nurl = \"postgres://postgres@127.0.0.1:5432/test\"".to_owned()
            }
            Db::Mariadb => {
                "kind = \"mysql\"\nurl = \"mysql://root@127.0.0.1:3306/test\"".to_owned()
            }
        };
        format!("\n[sources.db]\n{location}\n{extra}\n")
    }

    /// A server with the source (plus `source_extra`) and `tools`, where `{t}`
    /// stands for the table.
    pub async fn serve(&self, source_extra: &str, tools: &str) -> TestServer {
        let config = format!("{}{}", self.source(source_extra), tools).replace("{t}", &self.table);
        TestServer::spawn(&config)
            .await
            .unwrap_or_else(|e| panic!("the server did not start: {e}\n{config}"))
    }

    /// Run one statement through a throw-away destructive tool.
    pub async fn exec(&self, statement: &str) {
        let s = self
            .serve(
                "",
                &sql_tool("admin", statement, "[]", "destructive = true"),
            )
            .await;
        let (status, _, body) = read(s.call("admin", &json!({})).send().await.unwrap()).await;
        assert_eq!(status, 200, "{statement}: {body}");
        s.stop().await.unwrap();
    }
}

/// Run `body` on a fresh table with `columns` (in `db`'s dialect) in `db`, then
/// drop the table, whether `body` passed or not.
pub async fn with_table<F, Fut>(db: Db, columns: &str, body: F)
where
    F: FnOnce(Fixture) -> Fut,
    Fut: Future<Output = ()>,
{
    if !db.available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let sqlite_path = dir.path().join("db.sqlite3");
    // An empty file is an empty SQLite database.
    std::fs::write(&sqlite_path, b"").unwrap();
    let fixture = Fixture {
        db,
        table: format!("tg_{}", &toolgate_server::trace::generate()[..12]),
        sqlite_path,
    };
    fixture
        .exec(&format!("CREATE TABLE {} ({columns})", fixture.table))
        .await;
    let outcome = AssertUnwindSafe(body(fixture.clone())).catch_unwind().await;
    if db != Db::Sqlite {
        fixture.exec(&format!("DROP TABLE {}", fixture.table)).await;
    }
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic);
    }
}

/// A `sql` tool on the source `db`.
pub fn sql_tool(name: &str, statement: &str, params: &str, extra: &str) -> String {
    format!(
        "\n[[tools]]\nname = \"{name}\"\nkind = \"sql\"\nsource = \"db\"\n\
         statement = '''{statement}'''\nparams = {params}\n{extra}\n"
    )
}

/// A `sql_query` tool on the source `db`.
pub fn query_tool(name: &str, extra: &str) -> String {
    format!("\n[[tools]]\nname = \"{name}\"\nkind = \"sql_query\"\nsource = \"db\"\n{extra}\n")
}

/// Call `tool` and expect 200; returns the tool's output.
pub async fn ok(s: &TestServer, tool: &str, args: Value) -> Value {
    let (status, _, body) = read(s.call(tool, &args).send().await.unwrap()).await;
    assert_eq!(status, 200, "{tool} {args}: {body}");
    body["output"].clone()
}

/// Run `sql` through the `sql_query` tool `tool`; returns the rows.
pub async fn rows(s: &TestServer, tool: &str, sql: &str) -> Value {
    ok(s, tool, json!({ "query": sql })).await["rows"].clone()
}

/// The `every_database!` macro: one test per database for a suite function.
macro_rules! every_database {
    ($($suite:ident :: $name:ident),* $(,)?) => {
        $(
            mod $name {
                use super::Db;

                #[tokio::test]
                async fn sqlite() {
                    super::$suite::$name(Db::Sqlite).await;
                }

                #[tokio::test]
                async fn postgres() {
                    super::$suite::$name(Db::Postgres).await;
                }

                #[tokio::test]
                async fn mariadb() {
                    super::$suite::$name(Db::Mariadb).await;
                }
            }
        )*
    };
}

every_database!(
    suite::injection_payloads_leave_the_data_unchanged,
    suite::writes_in_read_only_tools_fail,
    suite::the_row_cap_truncates_and_the_pool_survives,
    suite::the_byte_cap_cuts_huge_results,
    suite::bad_sql_is_the_callers_error,
    suite::destructive_tools_commit_or_roll_back,
    suite::a_table_that_changes_shape_is_read_afresh,
    timeouts::a_sleep_under_a_one_second_deadline_stops_at_one_second,
    timeouts::a_cancelled_call_stops_its_statement,
    types::every_type_in_the_mapping_round_trips,
);

mod an_unreachable_database_is_reported_not_fatal {
    use super::Db;

    #[tokio::test]
    async fn postgres() {
        super::suite::an_unreachable_database_is_reported_not_fatal(Db::Postgres).await;
    }

    #[tokio::test]
    async fn mariadb() {
        super::suite::an_unreachable_database_is_reported_not_fatal(Db::Mariadb).await;
    }
}
