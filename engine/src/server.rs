//! Starting and stopping the engine: the store opened (and unfinished batches resumed),
//! the HTTP server bound, both on the caller's tokio runtime.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::api::{self, AppState};
use crate::auth::{generate_key, owner_of};
use crate::config::{EngineConfig, Secret};
use crate::providers::Provider;
use crate::store::Store;
use crate::worker::Scheduler;

#[derive(Debug)]
pub enum EngineError {
    /// The data directory could not be made or opened.
    Storage(String),
    /// The address could not be bound.
    Bind(String),
    Config(String),
}

impl std::fmt::Display for EngineError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Storage(m) | Self::Bind(m) | Self::Config(m) => f.write_str(m),
        }
    }
}

impl std::error::Error for EngineError {}

/// A running engine. `stop()` ends it; state stays in the data directory.
pub struct Engine {
    addr: SocketAddr,
    api_key: Secret,
    data_dir: PathBuf,
    /// Owns a temporary data directory, removed when the engine is dropped.
    _temp_dir: Option<tempfile::TempDir>,
    resumed: usize,
    stop_serving: CancellationToken,
    server: JoinHandle<()>,
    scheduler: Scheduler,
    store: Arc<Store>,
}

/// How long `stop()` lets open requests (a download, say) finish.
const GRACE: Duration = Duration::from_secs(2);

impl Engine {
    /// Starts the engine. Must be called inside a tokio runtime, which then runs it.
    pub async fn start(mut cfg: EngineConfig) -> Result<Self, EngineError> {
        let (data_dir, temp_dir) = match &cfg.data_dir {
            Some(d) => (d.clone(), None),
            None => {
                let t = tempfile::Builder::new()
                    .prefix("fastrouter-batch-engine-")
                    .tempdir()
                    .map_err(|e| EngineError::Storage(format!("cannot make a temporary data directory: {e}")))?;
                (t.path().to_path_buf(), Some(t))
            }
        };
        if cfg.api_keys.is_empty() {
            cfg.api_keys.push(generate_key());
        }
        let api_key = cfg.api_keys[0].clone();
        let owners: HashSet<String> = cfg.api_keys.iter().map(|k| owner_of(k.expose())).collect();
        let store = Arc::new(open_store(&data_dir)?);
        let provider = Provider::new(&cfg.provider).map_err(EngineError::Config)?;
        let scheduler = Scheduler::new(store.clone(), provider, cfg.clone());
        let listener = tokio::net::TcpListener::bind((cfg.host, cfg.port))
            .await
            .map_err(|e| EngineError::Bind(format!("cannot listen on {}:{}: {e}", cfg.host, cfg.port)))?;
        let addr = listener.local_addr().map_err(|e| EngineError::Bind(e.to_string()))?;
        let state = AppState {
            store: store.clone(),
            scheduler: scheduler.clone(),
            cfg: Arc::new(cfg),
            owners: Arc::new(owners),
        };
        let stop_serving = CancellationToken::new();
        let app = api::router(state);
        let stop = stop_serving.clone();
        let server = tokio::spawn(async move {
            let serve = axum::serve(listener, app).with_graceful_shutdown(stop.cancelled_owned());
            if let Err(e) = serve.await {
                eprintln!("fastrouter-batch engine: server error: {e}");
            }
        });
        let resumed = scheduler.resume_all().map_err(|e| EngineError::Storage(e.to_string()))?;
        Ok(Self { addr, api_key, data_dir, _temp_dir: temp_dir, resumed, stop_serving, server, scheduler, store })
    }

    /// The base URL clients use (`http://127.0.0.1:PORT`).
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The first accepted key (the generated one when none was configured).
    pub fn api_key(&self) -> &Secret {
        &self.api_key
    }

    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// How many unfinished batches were picked up at start.
    pub fn resumed(&self) -> usize {
        self.resumed
    }

    /// Stops serving and processing. Batches still running resume on the next start on
    /// the same data directory.
    pub async fn stop(self) {
        self.stop_serving.cancel();
        let mut server = self.server;
        if tokio::time::timeout(GRACE, &mut server).await.is_err() {
            server.abort();
        }
        self.scheduler.shutdown().await;
        // Nothing runs any more: the directory is free for the next engine, even while
        // stray handles to the store (an idle connection's state, say) are dropped.
        self.store.release();
    }
}

fn open_store(dir: &Path) -> Result<Store, EngineError> {
    Store::open(dir).map_err(|e| EngineError::Storage(format!("cannot open the data directory {}: {e}", dir.display())))
}
