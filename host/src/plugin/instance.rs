//! Warm instances: each plugin keeps a pool of instantiated components and
//! lends one to each call. A call that faults or times out throws its
//! instance away; the next call gets a fresh one.

use std::sync::Arc;
use std::time::Instant;

use parking_lot::Mutex;
use tokio::sync::{Semaphore, SemaphorePermit};
use wasmtime::component::ComponentExportIndex;
use wasmtime::{Store, Trap};

use super::bindings;
use super::call_context::CallContext;
use super::engine::PluginEngine;
use super::exports::{BorrowingExports, find_handle_batch};
use super::plugin_file::Sandbox;
use super::store_state::{PluginEnv, StoreState, new_store};

/// Why a plugin call produced no answer.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    /// The call ran past its deadline and was interrupted.
    #[error("the call ran past its deadline")]
    Timeout,
    /// The plugin trapped (a panic, an out-of-bounds access, running out of
    /// memory, a stack overflow) or failed to instantiate.
    #[error("the plugin faulted: {0}")]
    Fault(wasmtime::Error),
}

/// One instantiated plugin and its store.
pub struct Instance {
    pub(crate) store: Store<StoreState>,
    pub(crate) guest: bindings::SingleCalls,
    pub(crate) exports: BorrowingExports,
    calls: u64,
}

/// The instances of one plugin: idle ones ready for reuse, and a cap on how
/// many exist at once.
pub struct InstancePool {
    engine: PluginEngine,
    pre: bindings::SingleCallsPre<StoreState>,
    /// Where the component exports `handle-batch`, if it does.
    handle_batch: Option<ComponentExportIndex>,
    env: Arc<PluginEnv>,
    sandbox: Sandbox,
    idle: Mutex<Vec<Instance>>,
    permits: Semaphore,
}

impl InstancePool {
    /// A pool for the pre-linked component `pre`, its instances confined by
    /// `sandbox`.
    pub fn new(
        engine: PluginEngine,
        pre: bindings::SingleCallsPre<StoreState>,
        env: Arc<PluginEnv>,
        sandbox: Sandbox,
    ) -> Self {
        Self {
            engine,
            handle_batch: find_handle_batch(pre.instance_pre().component()),
            pre,
            env,
            permits: Semaphore::new(sandbox.max_instances),
            sandbox,
            idle: Mutex::new(Vec::new()),
        }
    }

    /// Whether the plugin exports `handle-batch`.
    pub fn handles_batches(&self) -> bool {
        self.handle_batch.is_some()
    }

    /// Borrow an instance for one call that must finish by `deadline`, made
    /// on behalf of `call`.
    pub async fn lease(
        &self,
        deadline: Instant,
        call: CallContext,
    ) -> Result<Lease<'_>, CallError> {
        // Most calls find a free slot: skip the timed wait and its timer.
        let permit = match self.permits.try_acquire() {
            Ok(permit) => permit,
            Err(_) => tokio::time::timeout_at(deadline.into(), self.permits.acquire())
                .await
                .map_err(|_| CallError::Timeout)?
                .expect("the pool's semaphore is never closed"),
        };
        let idle = self.idle.lock().pop();
        let mut instance = match idle {
            Some(instance) => instance,
            // Boxed: instantiation's future is large, and every call's
            // future would otherwise carry (and copy) its size.
            None => Box::pin(self.instantiate(deadline)).await?,
        };
        instance.calls += 1;
        let state = instance.store.data_mut();
        state.deadline = deadline;
        state.call = call;
        instance.store.set_epoch_deadline(1);
        Ok(Lease {
            instance: Some(instance),
            pool: self,
            _permit: permit,
            reusable: false,
        })
    }

    async fn instantiate(&self, deadline: Instant) -> Result<Instance, CallError> {
        let mut store = new_store(
            &self.engine.engine,
            Arc::clone(&self.env),
            &self.sandbox,
            deadline,
        )
        .map_err(CallError::Fault)?;
        let instance = self
            .pre
            .instance_pre()
            .instantiate_async(&mut store)
            .await
            .map_err(classify)?;
        let guest = bindings::SingleCalls::new(&mut store, &instance).map_err(CallError::Fault)?;
        let exports =
            BorrowingExports::new(&mut store, &instance, &guest, self.handle_batch.as_ref())
                .map_err(CallError::Fault)?;
        Ok(Instance {
            store,
            guest,
            exports,
            calls: 0,
        })
    }

    /// Take back an instance after a clean call, unless it is due for
    /// recycling.
    fn give_back(&self, mut instance: Instance) {
        instance.store.data_mut().call = CallContext::background();
        let recycle = self.sandbox.recycle_after_calls;
        if recycle == 0 || instance.calls < recycle {
            self.idle.lock().push(instance);
        }
    }
}

/// Tell a deadline interrupt from any other fault.
pub fn classify(error: wasmtime::Error) -> CallError {
    if error.downcast_ref::<Trap>() == Some(&Trap::Interrupt) {
        CallError::Timeout
    } else {
        CallError::Fault(error)
    }
}

/// An instance lent to one call. It goes back to the pool only if the call
/// settled cleanly; a fault, a timeout or a dropped call discards it.
pub struct Lease<'a> {
    instance: Option<Instance>,
    pool: &'a InstancePool,
    _permit: SemaphorePermit<'a>,
    reusable: bool,
}

impl Lease<'_> {
    /// The instance to call.
    pub fn instance(&mut self) -> &mut Instance {
        self.instance
            .as_mut()
            .expect("a lease holds its instance until dropped")
    }

    /// Record how the call ended.
    pub fn settle<R>(&mut self, result: wasmtime::Result<R>) -> Result<R, CallError> {
        self.reusable = result.is_ok();
        result.map_err(classify)
    }
}

impl Drop for Lease<'_> {
    fn drop(&mut self) {
        if let Some(instance) = self.instance.take()
            && self.reusable
        {
            self.pool.give_back(instance);
        }
    }
}
