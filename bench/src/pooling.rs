//! wasmtime's pooling instance allocator against its default on-demand one,
//! for the calculator in each plugin language: a fresh instance and its
//! first `handle` call (what a cold call, a replaced faulty instance and a
//! recycled one cost), and a `handle` call on a warm instance (every other
//! call). The engines differ in the allocator alone; the pool's limits are
//! those a host would need: memories up to the default per-plugin cap
//! (128 MiB), 64 instances of each of a few plugins.

use std::path::Path;
use std::time::Instant;

use anyhow::Context as _;
use wasmtime::component::types::ComponentItem;
use wasmtime::component::{Component, Instance, Linker, ResourceTable, Val};
use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig, Store};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use crate::{Effort, built, languages, median};

/// The default per-plugin memory cap, the largest memory a slot holds.
const MEMORY_CAP: usize = 128 << 20;
/// Instances the pool holds room for: 64 (the default per plugin) of 8 plugins.
const POOLED_INSTANCES: u32 = 512;

/// A store's data: WASI with nothing granted. The host interface's imports
/// are traps; the calculator's `add` calls none of them.
struct Data {
    wasi: WasiCtx,
    table: ResourceTable,
}

impl WasiView for Data {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

pub async fn run(effort: Effort, only: Option<&str>) -> anyhow::Result<()> {
    println!("| Plugin language | Allocator | Fresh instance + first call | Warm call |");
    println!("|---|---|---|---|");
    for (language, examples) in languages(only) {
        let file = built(examples, "calculator.wasm")?;
        for (allocator, pooled) in [("on demand (default)", false), ("pooling", true)] {
            let calculator = Calculator::load(&file, pooled)?;
            let (fresh, warm) = calculator.measure(effort).await?;
            println!("| {language} | {allocator} | {fresh:.1} µs | {warm:.2} µs |");
        }
    }
    Ok(())
}

/// A compiled calculator and the linker that instantiates it.
struct Calculator {
    engine: Engine,
    component: Component,
    linker: Linker<Data>,
}

impl Calculator {
    fn load(file: &Path, pooled: bool) -> anyhow::Result<Self> {
        let mut config = Config::new();
        config.epoch_interruption(true);
        if pooled {
            let mut pool = PoolingAllocationConfig::default();
            pool.total_component_instances(POOLED_INSTANCES)
                .total_core_instances(POOLED_INSTANCES * 32)
                .total_memories(POOLED_INSTANCES * 2)
                .total_tables(POOLED_INSTANCES * 4)
                .total_stacks(POOLED_INSTANCES)
                .max_memory_size(MEMORY_CAP)
                .max_core_instances_per_component(64)
                .max_memories_per_component(4)
                .max_tables_per_component(16)
                .table_elements(200_000)
                .max_core_instance_size(1 << 20)
                .max_component_instance_size(1 << 20);
            config.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
        }
        let engine = Engine::new(&config).map_err(anyhow::Error::from)?;
        let component = Component::from_file(&engine, file)
            .map_err(anyhow::Error::from)
            .with_context(|| format!("compiling {}", file.display()))?;
        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker).map_err(anyhow::Error::from)?;
        refuse_host_interface(&engine, &component, &mut linker)?;
        Ok(Self {
            engine,
            component,
            linker,
        })
    }

    /// Microseconds for a fresh instance and its first call, and for a
    /// call on a warm instance: medians of the repeats.
    async fn measure(&self, effort: Effort) -> anyhow::Result<(f64, f64)> {
        let (mut fresh, mut warm) = (Vec::new(), Vec::new());
        let instances = (effort.calls / 100).max(10);
        for _ in 0..effort.repeats {
            let started = Instant::now();
            for _ in 0..instances {
                let (mut store, instance) = self.instantiate().await?;
                add(&mut store, &instance).await?;
            }
            fresh.push(started.elapsed().as_secs_f64() * 1e6 / f64::from(instances));

            let (mut store, instance) = self.instantiate().await?;
            for _ in 0..effort.warmup_calls {
                add(&mut store, &instance).await?;
            }
            let started = Instant::now();
            for _ in 0..effort.calls {
                add(&mut store, &instance).await?;
            }
            warm.push(started.elapsed().as_secs_f64() * 1e6 / f64::from(effort.calls));
        }
        Ok((median(fresh), median(warm)))
    }

    async fn instantiate(&self) -> anyhow::Result<(Store<Data>, Instance)> {
        let data = Data {
            wasi: WasiCtx::builder().build(),
            table: ResourceTable::new(),
        };
        let mut store = Store::new(&self.engine, data);
        store.set_epoch_deadline(u64::MAX / 2);
        let instance = self
            .linker
            .instantiate_async(&mut store, &self.component)
            .await
            .map_err(|error| anyhow::anyhow!("instantiating: {error:?}"))?;
        Ok((store, instance))
    }
}

/// Define every function of the `rpcnode:plugin` interfaces the component
/// imports as one that fails: `add` calls none of them.
fn refuse_host_interface(
    engine: &Engine,
    component: &Component,
    linker: &mut Linker<Data>,
) -> anyhow::Result<()> {
    for (name, item) in component.component_type().imports(engine) {
        let (true, ComponentItem::ComponentInstance(interface)) =
            (name.starts_with("rpcnode:plugin/"), item.ty)
        else {
            continue;
        };
        let mut functions = linker.instance(name).map_err(anyhow::Error::from)?;
        for (function, item) in interface.exports(engine) {
            if let ComponentItem::ComponentFunc(_) = item.ty {
                functions
                    .func_new(function, |_, _, _, _| {
                        Err(wasmtime::Error::msg("not offered here"))
                    })
                    .map_err(anyhow::Error::from)?;
            }
        }
    }
    Ok(())
}

/// Call the calculator's `handle("add", {"a":1,"b":2})` and check the sum.
async fn add(store: &mut Store<Data>, instance: &Instance) -> anyhow::Result<()> {
    let handler = instance
        .get_export_index(&mut *store, None, "rpcnode:plugin/handler@0.3.1")
        .context("the component exports the handler")?;
    let handle = instance
        .get_export_index(&mut *store, Some(&handler), "handle")
        .context("the handler has handle")?;
    let handle = instance
        .get_func(&mut *store, handle)
        .context("handle is a function")?;
    let params = [
        Val::String("add".into()),
        Val::Option(Some(Box::new(Val::String(r#"{"a":1,"b":2}"#.into())))),
    ];
    let mut results = [Val::Bool(false)];
    handle
        .call_async(&mut *store, &params, &mut results)
        .await
        .map_err(|error| anyhow::anyhow!("calling handle: {error:?}"))?;
    match &results[0] {
        Val::Result(Ok(Some(sum))) if **sum == Val::String(r#"{"sum":3}"#.into()) => Ok(()),
        other => anyhow::bail!("add answered {other:?}"),
    }
}
