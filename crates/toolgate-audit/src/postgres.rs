//! PostgreSQL storage for the audit log.
//!
//! Several replicas may write one table: each batch takes a transaction-scoped
//! advisory lock, reads the last hash inside the transaction and appends after it,
//! so the chain stays one chain whatever the interleaving. Sequence numbers may have
//! gaps (a rolled-back batch consumes them), so verification follows the chain of
//! hashes, which detects a removed or changed record just the same.
//!
//! Every operation has a deadline on the client side ([`OpenOptions`]), besides
//! PostgreSQL's own `statement_timeout` and TCP keepalives: a server that hangs or a
//! network that drops every packet (no reset) costs the writer that long, then the
//! connection is given up and the writer reconnects.

use std::future::Future;
use std::time::Duration;

use tokio_postgres::{Client, NoTls};

use crate::pg_tls::{self, Tls};
use crate::record::{Chain, GENESIS, Record, StoredRecord};
use crate::store::{Filter, OpenOptions, StoreError, Verified};

/// Advisory lock key shared by every writer of a table (hashed with the name).
const LOCK_BASE: i64 = 0x746f_6f6c_6761_7465; // "toolgate"

/// The audit log in a PostgreSQL table.
pub struct PgStore {
    /// The client's own runtime (the writer is an OS thread; `toolgate audit` has no
    /// runtime): every call is `block_on` with its deadline.
    rt: tokio::runtime::Runtime,
    client: Client,
    table: String,
    lock_key: i64,
    chain: Chain,
    timeout: Duration,
    /// The last hash of a batch whose append failed after it was sent: the server
    /// may have committed it without the answer arriving (a reset or a deadline
    /// between commit and reply). See [`PgStore::take_unacknowledged`].
    unacknowledged: Option<String>,
    /// The columns read back: [`COLUMNS`], or [`OLD_COLUMNS`] for a table an
    /// earlier version wrote.
    columns: &'static str,
}

fn valid_table(name: &str) -> bool {
    (1..=63).contains(&name.len())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !name.starts_with(|c: char| c.is_ascii_digit())
}

/// Run `fut` on `rt` within `timeout`.
fn within<T>(
    rt: &tokio::runtime::Runtime,
    timeout: Duration,
    what: &'static str,
    fut: impl Future<Output = Result<T, tokio_postgres::Error>>,
) -> Result<T, StoreError> {
    match rt.block_on(async { tokio::time::timeout(timeout, fut).await }) {
        Ok(result) => Ok(result?),
        Err(_) => Err(StoreError::Timeout(timeout, what)),
    }
}

impl PgStore {
    /// Connect without creating anything; the log's chain must be `options.chain`.
    ///
    /// # Errors
    /// The table name or URL is invalid, the server cannot be reached in time, or the
    /// chain is not the log's.
    pub fn connect(url: &str, table: &str, options: &OpenOptions) -> Result<Self, StoreError> {
        let mut store = Self::connect_only(url, table, options)?;
        let (kind, fingerprint) = store
            .stored_chain()?
            .unwrap_or_else(|| ("sha256".to_owned(), String::new()));
        store
            .chain
            .matches(&kind, &fingerprint)
            .map_err(StoreError::Chain)?;
        let table = store.table.clone();
        let has_identity: bool = within(
            &store.rt,
            store.timeout,
            "reading the table's columns",
            store.client.query_one(
                "SELECT EXISTS (SELECT 1 FROM pg_attribute
                  WHERE attrelid = to_regclass($1) AND attname = 'issuer' AND NOT attisdropped)",
                &[&table],
            ),
        )?
        .get(0);
        if !has_identity {
            store.columns = OLD_COLUMNS;
        }
        Ok(store)
    }

    fn connect_only(url: &str, table: &str, options: &OpenOptions) -> Result<Self, StoreError> {
        if !valid_table(table) {
            return Err(StoreError::Config(format!(
                "{table:?} is not a valid table name"
            )));
        }
        let (mut config, tls) = pg_tls::parse(url)?;
        let timeout = options.statement_timeout;
        config
            .connect_timeout(options.connect_timeout)
            .keepalives(true)
            .keepalives_idle(timeout.max(Duration::from_secs(1)))
            .tcp_user_timeout(timeout.max(Duration::from_secs(1)));
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| StoreError::Config(format!("cannot start the audit client: {e}")))?;
        let connect_timeout = options.connect_timeout.max(Duration::from_millis(1));
        let client = rt.block_on(async {
            let connected = tokio::time::timeout(connect_timeout, async {
                match tls {
                    Tls::Off => config.connect(NoTls).await.map(|(client, conn)| {
                        tokio::spawn(watch(conn));
                        client
                    }),
                    Tls::On(tls) => config.connect(tls).await.map(|(client, conn)| {
                        tokio::spawn(watch(conn));
                        client
                    }),
                }
            })
            .await;
            match connected {
                Ok(result) => Ok(result?),
                Err(_) => Err(StoreError::Timeout(connect_timeout, "connecting")),
            }
        })?;
        let lock_key = table.bytes().fold(LOCK_BASE, |h, b| {
            h.wrapping_mul(31).wrapping_add(i64::from(b))
        });
        let store = Self {
            rt,
            client,
            table: table.to_owned(),
            lock_key,
            chain: options.chain.clone(),
            timeout,
            unacknowledged: None,
            columns: COLUMNS,
        };
        let ms = timeout.as_millis();
        within(
            &store.rt,
            timeout,
            "setting the statement timeout",
            store
                .client
                .batch_execute(&format!("SET statement_timeout = {ms}")),
        )?;
        Ok(store)
    }

    /// The chain kind and key fingerprint stored in `<table>_meta`, if any.
    fn stored_chain(&mut self) -> Result<Option<(String, String)>, StoreError> {
        let meta = format!("{}_meta", self.table);
        let exists: Option<String> = within(
            &self.rt,
            self.timeout,
            "reading the chain kind",
            self.client
                .query_one(&format!("SELECT to_regclass('{meta}')::text"), &[]),
        )?
        .get(0);
        if exists.is_none() {
            return Ok(None);
        }
        let rows = within(
            &self.rt,
            self.timeout,
            "reading the chain kind",
            self.client
                .query(&format!("SELECT name, value FROM {meta}"), &[]),
        )?;
        Ok(chain_of_rows(&rows))
    }

    /// Connect and create the table if needed. Every commit waits for the server's
    /// WAL flush (`synchronous_commit` as the server has it, `on` by default) in both
    /// durability modes: the writer forgets a record once it is committed, so a
    /// commit acknowledged before it was flushed would be lost, silently, if
    /// PostgreSQL crashed (seen in the restart tests with `synchronous_commit = off`).
    ///
    /// # Errors
    /// The server cannot be reached, the table cannot be created, or the log was
    /// written with another chain.
    pub fn open(url: &str, table: &str, options: &OpenOptions) -> Result<Self, StoreError> {
        let mut store = Self::connect_only(url, table, options)?;
        let t = store.table.clone();
        within(
            &store.rt,
            store.timeout,
            "creating the table",
            store.client.batch_execute(&format!(
                "CREATE TABLE IF NOT EXISTS {t} (
                seq BIGSERIAL PRIMARY KEY, ts TEXT NOT NULL, key TEXT NOT NULL, tool TEXT NOT NULL,
                transport TEXT NOT NULL, outcome TEXT NOT NULL, duration_ms BIGINT NOT NULL,
                trace_id TEXT NOT NULL, args_sha256 TEXT NOT NULL, arguments TEXT,
                prev_hash TEXT NOT NULL, hash TEXT NOT NULL);
             ALTER TABLE {t} ADD COLUMN IF NOT EXISTS issuer TEXT,
               ADD COLUMN IF NOT EXISTS subject TEXT, ADD COLUMN IF NOT EXISTS client_id TEXT;
             CREATE INDEX IF NOT EXISTS {t}_ts ON {t} (ts);
             CREATE INDEX IF NOT EXISTS {t}_key ON {t} (key, ts);
             CREATE TABLE IF NOT EXISTS {t}_meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);"
            )),
        )?;
        store.claim_chain()?;
        Ok(store)
    }

    /// Record the configured chain in a new log, or check it against the stored one
    /// (under the writers' lock, so that two replicas starting together agree).
    fn claim_chain(&mut self) -> Result<(), StoreError> {
        let Self {
            rt,
            client,
            table,
            lock_key,
            chain,
            timeout,
            ..
        } = self;
        let (kind, fingerprint) = (chain.kind(), chain.fingerprint());
        let t = table.as_str();
        let stored = within(rt, *timeout, "claiming the chain", async {
            let tx = client.transaction().await?;
            tx.execute("SELECT pg_advisory_xact_lock($1)", &[&*lock_key])
                .await?;
            let rows = tx
                .query(&format!("SELECT name, value FROM {t}_meta"), &[])
                .await?;
            let stored = chain_of_rows(&rows);
            let any: Option<tokio_postgres::Row> = tx
                .query_opt(&format!("SELECT 1 FROM {t} LIMIT 1"), &[])
                .await?;
            if stored.is_none() && (any.is_none() || kind == "sha256") {
                tx.execute(
                    &format!("INSERT INTO {t}_meta (name, value) VALUES ('chain', $1), ('key_fingerprint', $2) ON CONFLICT (name) DO NOTHING"),
                    &[&kind, &fingerprint],
                )
                .await?;
                tx.commit().await?;
                return Ok(None);
            }
            tx.commit().await?;
            Ok(Some(
                stored.unwrap_or_else(|| ("sha256".to_owned(), String::new())),
            ))
        })?;
        if let Some((kind, fingerprint)) = stored {
            self.chain
                .matches(&kind, &fingerprint)
                .map_err(StoreError::Chain)?;
        }
        Ok(())
    }

    /// Whether the server answers (`SELECT 1`).
    ///
    /// # Errors
    /// It does not.
    pub fn check(&mut self) -> Result<(), StoreError> {
        within(
            &self.rt,
            self.timeout,
            "SELECT 1",
            self.client.simple_query("SELECT 1"),
        )?;
        Ok(())
    }

    /// The newest record's sequence number and hash.
    ///
    /// # Errors
    /// The database failed.
    pub fn head(&mut self) -> Result<Option<(i64, String)>, StoreError> {
        let row = within(
            &self.rt,
            self.timeout,
            "reading the head",
            self.client.query_opt(
                &format!(
                    "SELECT seq, hash FROM {} ORDER BY seq DESC LIMIT 1",
                    self.table
                ),
                &[],
            ),
        )?;
        Ok(row.map(|r| (r.get(0), r.get(1))))
    }

    /// The record at `seq`.
    ///
    /// # Errors
    /// The database failed.
    pub fn get(&mut self, seq: i64) -> Result<Option<StoredRecord>, StoreError> {
        let row = within(
            &self.rt,
            self.timeout,
            "reading a record",
            self.client.query_opt(
                &format!("SELECT {} FROM {} WHERE seq = $1", self.columns, self.table),
                &[&seq],
            ),
        )?;
        Ok(row.as_ref().map(row_to_record))
    }

    /// The last hash of the batch whose append failed last, if it was sent: the
    /// batch is in the log if and only if the log's head has that hash now.
    pub fn take_unacknowledged(&mut self) -> Option<String> {
        self.unacknowledged.take()
    }

    /// Append records in one transaction after the current last record.
    ///
    /// # Errors
    /// The batch was not stored, or (see [`PgStore::take_unacknowledged`]) its
    /// commit was not acknowledged.
    pub fn append(&mut self, records: &[Record]) -> Result<(), StoreError> {
        let Self {
            rt,
            client,
            table,
            lock_key,
            chain,
            timeout,
            unacknowledged,
            ..
        } = self;
        let table = table.as_str();
        let mut last_hash = None;
        let result = within(rt, *timeout, "appending", async {
            let tx = client.transaction().await?;
            tx.execute("SELECT pg_advisory_xact_lock($1)", &[&*lock_key])
                .await?;
            let mut prev: String = tx
                .query_opt(
                    &format!("SELECT hash FROM {table} ORDER BY seq DESC LIMIT 1"),
                    &[],
                )
                .await?
                .map_or_else(|| GENESIS.to_owned(), |row| row.get(0));
            // One statement per batch (arrays, unnested in order): a round trip per
            // record would make a 1024-record batch outlast the statement deadline
            // on a slow link, and a spool could then never drain.
            let n = records.len();
            let mut ts = Vec::with_capacity(n);
            let mut keys = Vec::with_capacity(n);
            let mut tools = Vec::with_capacity(n);
            let mut transports = Vec::with_capacity(n);
            let mut outcomes = Vec::with_capacity(n);
            let mut durations = Vec::with_capacity(n);
            let mut traces = Vec::with_capacity(n);
            let mut digests = Vec::with_capacity(n);
            let mut arguments = Vec::with_capacity(n);
            let mut prevs = Vec::with_capacity(n);
            let mut hashes = Vec::with_capacity(n);
            let mut issuers = Vec::with_capacity(n);
            let mut subjects = Vec::with_capacity(n);
            let mut clients = Vec::with_capacity(n);
            for r in records {
                let hash = r.chain_hash(&prev, chain);
                ts.push(r.ts.as_str());
                keys.push(r.key.as_str());
                tools.push(r.tool.as_str());
                transports.push(r.transport.as_str());
                outcomes.push(r.outcome.as_str());
                durations.push(i64::try_from(r.duration_ms).unwrap_or(i64::MAX));
                traces.push(r.trace_id.as_str());
                digests.push(r.args_sha256.as_str());
                arguments.push(r.arguments.as_ref().map(ToString::to_string));
                prevs.push(std::mem::replace(&mut prev, hash.clone()));
                hashes.push(hash);
                issuers.push(r.issuer.as_deref());
                subjects.push(r.subject.as_deref());
                clients.push(r.client_id.as_deref());
            }
            last_hash = hashes.last().cloned();
            tx.execute(
                &format!(
                    "INSERT INTO {table} (ts, key, tool, transport, outcome, duration_ms, trace_id, args_sha256, arguments, prev_hash, hash, issuer, subject, client_id)
                     SELECT ts, key, tool, transport, outcome, duration_ms, trace_id, args_sha256, arguments, prev_hash, hash, issuer, subject, client_id
                     FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::int8[], $7::text[], $8::text[], $9::text[], $10::text[], $11::text[], $12::text[], $13::text[], $14::text[])
                       WITH ORDINALITY AS r(ts, key, tool, transport, outcome, duration_ms, trace_id, args_sha256, arguments, prev_hash, hash, issuer, subject, client_id, n)
                     ORDER BY n"
                ),
                &[
                    &ts,
                    &keys,
                    &tools,
                    &transports,
                    &outcomes,
                    &durations,
                    &traces,
                    &digests,
                    &arguments,
                    &prevs,
                    &hashes,
                    &issuers,
                    &subjects,
                    &clients,
                ],
            )
            .await?;
            tx.commit().await
        });
        *unacknowledged = if result.is_err() { last_hash } else { None };
        result
    }

    /// Records matching `filter`, oldest first.
    ///
    /// # Errors
    /// The database failed.
    pub fn list(&mut self, f: &Filter) -> Result<Vec<StoredRecord>, StoreError> {
        let limit = f.limit.map_or(i64::MAX, i64::from);
        let sql = format!(
            "SELECT * FROM (SELECT {} FROM {} WHERE ($1::text IS NULL OR key = $1)
               AND ($2::text IS NULL OR tool = $2) AND ($3::text IS NULL OR outcome = $3)
               AND ($4::text IS NULL OR ts >= $4) AND ($5::text IS NULL OR ts < $5)
               ORDER BY seq DESC LIMIT $6) newest ORDER BY seq",
            self.columns, self.table
        );
        let rows = within(
            &self.rt,
            self.timeout,
            "listing",
            self.client.query(
                &sql,
                &[&f.key, &f.tool, &f.outcome, &f.since, &f.until, &limit],
            ),
        )?;
        Ok(rows.iter().map(row_to_record).collect())
    }

    /// Follow the chain over every record.
    ///
    /// # Errors
    /// [`StoreError::Broken`] at the first record that does not match.
    pub fn verify(&mut self) -> Result<Verified, StoreError> {
        let rows = within(
            &self.rt,
            self.timeout,
            "reading the log",
            self.client.query(
                &format!("SELECT {} FROM {} ORDER BY seq", self.columns, self.table),
                &[],
            ),
        )?;
        let mut prev = GENESIS.to_owned();
        let mut count = 0u64;
        let mut last_seq = 0i64;
        for row in &rows {
            let stored = row_to_record(row);
            let last_good = (last_seq > 0).then(|| (last_seq, prev.clone()));
            let broken = |reason: &str| StoreError::Broken {
                seq: stored.seq,
                reason: reason.to_owned(),
                last_good: last_good.clone(),
            };
            if stored.prev_hash != prev {
                return Err(broken(
                    "its prev_hash is not the previous record's hash (a record was removed or changed)",
                ));
            }
            if stored.record.chain_hash(&prev, &self.chain) != stored.hash {
                return Err(broken("its contents do not match its hash"));
            }
            prev = stored.hash;
            last_seq = stored.seq;
            count += 1;
        }
        Ok(Verified {
            count,
            last_seq,
            last_hash: prev,
        })
    }
}

/// The chain kind and key fingerprint among `<table>_meta`'s `(name, value)` rows.
fn chain_of_rows(rows: &[tokio_postgres::Row]) -> Option<(String, String)> {
    let get = |name: &str| {
        rows.iter()
            .find(|r| r.get::<_, &str>(0) == name)
            .map(|r| r.get::<_, String>(1))
    };
    get("chain").map(|kind| (kind, get("key_fingerprint").unwrap_or_default()))
}

/// Drive a connection; its end (the server went away) is logged once.
async fn watch<S, T>(conn: tokio_postgres::Connection<S, T>)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
    T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    if let Err(e) = conn.await {
        tracing::warn!(error = %e, "the audit database connection ended");
    }
}

/// Every column of a stored record, in [`row_to_record`]'s order.
const COLUMNS: &str = "seq, ts, key, tool, transport, outcome, duration_ms, trace_id, args_sha256, arguments, prev_hash, hash, issuer, subject, client_id";
/// The same for a table without the identity columns (written by an earlier
/// version and not yet opened by a writer, which adds them).
const OLD_COLUMNS: &str = "seq, ts, key, tool, transport, outcome, duration_ms, trace_id, args_sha256, arguments, prev_hash, hash, NULL::text, NULL::text, NULL::text";

fn row_to_record(row: &tokio_postgres::Row) -> StoredRecord {
    let arguments: Option<String> = row.get(9);
    let duration: i64 = row.get(6);
    StoredRecord {
        seq: row.get(0),
        record: Record {
            ts: row.get(1),
            key: row.get(2),
            tool: row.get(3),
            transport: row.get(4),
            outcome: row.get(5),
            duration_ms: u64::try_from(duration).unwrap_or(0),
            trace_id: row.get(7),
            args_sha256: row.get(8),
            arguments: arguments.and_then(|a| serde_json::from_str(&a).ok()),
            issuer: row.get(12),
            subject: row.get(13),
            client_id: row.get(14),
        },
        prev_hash: row.get(10),
        hash: row.get(11),
    }
}
