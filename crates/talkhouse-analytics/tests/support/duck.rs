//! A DuckDB-backed test double of `Destination`, through Python's `duckdb` module (the Rust crate
//! takes twenty minutes to build). One Python process per test; one JSON request per line.

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::Mutex;

use talkhouse_model::{
    Commit, CommitStats, Destination, DestinationError, LoadRecord, QueryRows, TableSpec,
};

use super::Engine;

const BRIDGE: &str = r#"
import sys, json, datetime, decimal, duckdb
con = duckdb.connect(':memory:')
def conv(v):
    if isinstance(v, datetime.datetime):
        if v.tzinfo is not None:
            v = v.astimezone(datetime.timezone.utc).replace(tzinfo=None)
        return v.isoformat() + 'Z'
    if isinstance(v, (datetime.date, datetime.time)):
        return v.isoformat()
    if isinstance(v, decimal.Decimal):
        return float(v)
    return v
for line in sys.stdin:
    req = json.loads(line)
    try:
        cur = con.execute(req['sql'])
        rows = []
        if cur.description is not None:
            names = [d[0] for d in cur.description]
            rows = [dict(zip(names, [conv(v) for v in r])) for r in cur.fetchall()]
        out = {'rows': rows}
    except Exception as e:
        out = {'error': str(e)}
    sys.stdout.write(json.dumps(out) + '\n')
    sys.stdout.flush()
"#;

pub struct Duck {
    io: Mutex<(ChildStdin, BufReader<ChildStdout>)>,
    child: Mutex<Child>,
}

/// Starts the bridge; `None` when python3 or its duckdb module is missing.
pub fn connect() -> Option<Duck> {
    let ok = Command::new("python3")
        .args(["-c", "import duckdb"])
        .stderr(Stdio::null())
        .status()
        .ok()?
        .success();
    if !ok {
        return None;
    }
    let mut child = Command::new("python3")
        .args(["-u", "-c", BRIDGE])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .ok()?;
    let stdin = child.stdin.take()?;
    let stdout = BufReader::new(child.stdout.take()?);
    Some(Duck {
        io: Mutex::new((stdin, stdout)),
        child: Mutex::new(child),
    })
}

impl Drop for Duck {
    fn drop(&mut self) {
        if let Ok(mut c) = self.child.lock() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Duck {
    fn call(&self, sql: &str) -> Result<QueryRows, DestinationError> {
        let mut io = self
            .io
            .lock()
            .map_err(|e| DestinationError::query("bridge", e.to_string()))?;
        let req = serde_json::json!({ "sql": sql }).to_string();
        writeln!(io.0, "{req}").map_err(|e| DestinationError::query("bridge", e))?;
        let mut line = String::new();
        io.1.read_line(&mut line)
            .map_err(|e| DestinationError::query("bridge", e))?;
        let v: serde_json::Value =
            serde_json::from_str(&line).map_err(|e| DestinationError::query("bridge", e))?;
        if let Some(err) = v.get("error").and_then(|e| e.as_str()) {
            return Err(DestinationError::query(sql.to_owned(), err));
        }
        let rows = v
            .get("rows")
            .and_then(|r| r.as_array())
            .cloned()
            .unwrap_or_default();
        Ok(rows
            .into_iter()
            .filter_map(|r| r.as_object().cloned())
            .collect())
    }
}

#[async_trait::async_trait]
impl Engine for Duck {
    fn dest(&self) -> &dyn Destination {
        self
    }
    fn timestamp_type(&self) -> &'static str {
        "TIMESTAMP"
    }
    /// DuckDB reads Ultimate through the connector-shaped views; PostgreSQL through the tables.
    fn ultimate_views(&self) -> bool {
        true
    }
}

fn unsupported() -> DestinationError {
    DestinationError::Injected("not supported by the test double".into())
}

#[async_trait::async_trait]
impl Destination for Duck {
    fn describe(&self) -> String {
        "duckdb-python-test".into()
    }
    async fn init(&self) -> Result<(), DestinationError> {
        Ok(())
    }
    async fn prepare(&self, _: &str, _: &[TableSpec]) -> Result<(), DestinationError> {
        Err(unsupported())
    }
    async fn read_state(
        &self,
        _: &str,
        _: &str,
    ) -> Result<Option<serde_json::Value>, DestinationError> {
        Err(unsupported())
    }
    async fn commit(&self, _: Commit) -> Result<CommitStats, DestinationError> {
        Err(unsupported())
    }
    async fn record_load(&self, _: &LoadRecord) -> Result<(), DestinationError> {
        Err(unsupported())
    }
    async fn query(&self, sql: &str) -> Result<QueryRows, DestinationError> {
        self.call(sql)
    }
    async fn execute(&self, sql: &str) -> Result<(), DestinationError> {
        self.call(sql).map(|_| ())
    }
}
