//! Scenario 7: the backends alone. Plugin state writes, reads and increments,
//! and notifications appended to a stream's history, on the memory backend,
//! the embedded store (SQLite, every commit fsynced) and a cluster's Redis,
//! from 1 to 256
//! callers at once: how far group commits carry concurrent writers, and what
//! a read costs.

use std::sync::Arc;
use std::time::{Duration, Instant};

use rpcnode::config::Cluster;
use rpcnode::store::embedded::Embedded;
use rpcnode::store::memory::{MemoryLog, MemoryState};
use rpcnode::store::{
    BackendStatus, Deliver, HistoryLimits, Notification, Position, StateStore, StreamLog,
    StreamName,
};

use crate::redis_server::RedisServer;

/// Delivers to no one: the scenario measures the log.
struct Nowhere;

impl Deliver for Nowhere {
    fn deliver(&self, _: &StreamName, _: &Position, _: &Notification) -> u32 {
        0
    }
}

const LIMITS: HistoryLimits = HistoryLimits {
    size: 1000,
    ttl: Duration::from_secs(300),
};
/// How long a session outlives its node (no sessions are measured here).
const SESSION_TTL: Duration = Duration::from_secs(60);

/// One operation, made by each caller in turn.
#[derive(Clone, Copy)]
enum Operation {
    Set,
    Increment,
    Get,
    Append,
}

impl Operation {
    fn name(self) -> &'static str {
        match self {
            Self::Set => "state-set",
            Self::Increment => "state-increment (one shared key)",
            Self::Get => "state-get",
            Self::Append => "append to a stream's history",
        }
    }
}

/// The backends under test.
struct Backend {
    name: &'static str,
    state: Arc<dyn StateStore>,
    streams: Arc<dyn StreamLog>,
    _folder: Option<tempfile::TempDir>,
    _redis: Option<RedisServer>,
}

impl Backend {
    fn memory() -> Self {
        Self {
            name: "memory",
            state: Arc::new(MemoryState::default()),
            streams: Arc::new(MemoryLog::new(LIMITS, Arc::new(Nowhere))),
            _folder: None,
            _redis: None,
        }
    }

    fn embedded() -> anyhow::Result<Self> {
        // On the disk the node's data goes to, not a tmpfs.
        let folder = tempfile::tempdir_in(crate::target())?;
        let store = Embedded::open(folder.path(), LIMITS, Arc::new(Nowhere))?;
        Ok(Self {
            name: "embedded (SQLite, fsync per commit)",
            state: Arc::new(store.clone()),
            streams: Arc::new(store),
            _folder: Some(folder),
            _redis: None,
        })
    }

    /// A cluster's backends on a Redis of the harness's own (over a unix
    /// socket, nothing kept on disk): every append is also published.
    async fn redis() -> anyhow::Result<Self> {
        let redis = RedisServer::start()?;
        let cluster = Cluster::new(redis.url());
        let status = Arc::new(BackendStatus::default());
        let joined = rpcnode::store::redis::connect(
            &cluster,
            LIMITS,
            SESSION_TTL,
            Arc::new(Nowhere),
            status,
        )
        .await?;
        Ok(Self {
            name: "Redis (a cluster's, unix socket)",
            state: Arc::new(joined.state),
            streams: Arc::new(joined.streams),
            _folder: None,
            _redis: Some(redis),
        })
    }

    async fn once(&self, operation: Operation, caller: usize, n: usize) -> anyhow::Result<()> {
        let key = format!("k{caller}_{}", n % 64);
        match operation {
            Operation::Set => self.state.set("bench", &key, n.to_string()).await?,
            Operation::Increment => drop(self.state.increment("bench", "shared", 1).await?),
            Operation::Get => drop(self.state.get("bench", &key).await?),
            Operation::Append => {
                let stream = StreamName::topic(&format!("t{}", caller % 8));
                let text = format!(r#"{{"jsonrpc":"2.0","method":"m","params":{{"n":{n}}}}}"#);
                drop(
                    self.streams
                        .append(&stream, Notification::new(text))
                        .await?,
                );
            }
        }
        Ok(())
    }
}

/// Run `operation` from `callers` tasks for `window`; operations per second.
async fn measure(
    backend: &Arc<Backend>,
    operation: Operation,
    callers: usize,
    window: Duration,
) -> anyhow::Result<f64> {
    let until = Instant::now() + window;
    let tasks: Vec<_> = (0..callers)
        .map(|caller| {
            let backend = Arc::clone(backend);
            tokio::spawn(async move {
                let mut done = 0usize;
                while Instant::now() < until {
                    backend.once(operation, caller, done).await?;
                    done += 1;
                }
                anyhow::Ok(done)
            })
        })
        .collect();
    let mut total = 0;
    for task in tasks {
        total += task.await??;
    }
    Ok(total as f64 / window.as_secs_f64())
}

/// Print one row per backend, operation and number of callers.
pub async fn run(window: Duration, callers: &[usize]) -> anyhow::Result<()> {
    println!("| Backend | Operation | Callers at once | Operations per second |");
    println!("|---|---|---|---|");
    for backend in [
        Backend::memory(),
        Backend::embedded()?,
        Backend::redis().await?,
    ] {
        let backend = Arc::new(backend);
        // Reads find keys.
        measure(&backend, Operation::Set, 64, window / 4).await?;
        let operations = [
            Operation::Set,
            Operation::Increment,
            Operation::Get,
            Operation::Append,
        ];
        for operation in operations {
            for &count in callers {
                let rate = measure(&backend, operation, count, window).await?;
                println!(
                    "| {} | {} | {count} | {} |",
                    backend.name,
                    operation.name(),
                    crate::chart::thousands(rate)
                );
            }
        }
    }
    Ok(())
}
