//! The wasmtime engine shared by every plugin, and the epoch ticker that
//! bounds how long any plugin call can run.

use std::time::Duration;

use anyhow::Context as _;
use wasmtime::component::Linker;
use wasmtime::{Config, Engine};

use super::bindings;
use super::store_state::StoreState;

/// How often the engine's epoch advances: a running plugin yields to the
/// async runtime and checks its deadline once per tick.
pub const EPOCH_TICK: Duration = Duration::from_millis(5);

/// The engine and the linker that gives plugins WASI and the host interface.
#[derive(Clone)]
pub struct PluginEngine {
    pub(crate) engine: Engine,
    pub(crate) linker: std::sync::Arc<Linker<StoreState>>,
}

impl PluginEngine {
    /// Create the engine and start its epoch ticker (one thread per engine; it
    /// stops when the engine is dropped).
    pub fn new() -> anyhow::Result<Self> {
        let mut config = Config::new();
        config.epoch_interruption(true);
        let engine = Engine::new(&config)
            .map_err(anyhow::Error::from)
            .context("creating the wasmtime engine")?;

        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker)
            .map_err(anyhow::Error::from)
            .context("linking WASI")?;
        bindings::SingleCalls::add_to_linker::<_, wasmtime::component::HasSelf<_>>(
            &mut linker,
            |state| state,
        )
        .map_err(anyhow::Error::from)
        .context("linking the rpcnode host interface")?;

        let weak = engine.weak();
        std::thread::Builder::new()
            .name("rpcnode-epoch".into())
            .spawn(move || {
                while let Some(engine) = weak.upgrade() {
                    engine.increment_epoch();
                    drop(engine);
                    std::thread::sleep(EPOCH_TICK);
                }
            })
            .context("starting the epoch ticker")?;

        Ok(Self {
            engine,
            linker: std::sync::Arc::new(linker),
        })
    }
}
