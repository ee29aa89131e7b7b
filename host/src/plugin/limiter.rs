//! What plugin instances may allocate. Each store is held to its plugin's
//! memory cap and to a count of instances, memories and tables that real
//! components stay far below; on top, every instance of every plugin draws
//! its linear memory from one host-wide budget, so a plugin with many
//! instances cannot take the machine.

use std::sync::atomic::{AtomicU64, Ordering};

use wasmtime::ResourceLimiter;

/// Core instances one store may hold: a component's modules, adapters and
/// shims (a JavaScript or Python plugin has a few dozen at most).
const MAX_INSTANCES: usize = 100;
/// Linear memories one store may hold.
const MAX_MEMORIES: usize = 16;
/// Tables one store may hold.
const MAX_TABLES: usize = 100;
/// Elements one table may hold (an engine's function table is tens of
/// thousands).
const MAX_TABLE_ELEMENTS: usize = 1_000_000;

/// The linear memory all plugin instances may hold together, in bytes.
#[derive(Debug)]
pub struct MemoryBudget {
    limit: u64,
    used: AtomicU64,
}

impl MemoryBudget {
    pub fn new(limit: u64) -> Self {
        Self {
            limit,
            used: AtomicU64::new(0),
        }
    }

    /// Bytes of linear memory held by live instances now.
    pub fn used(&self) -> u64 {
        self.used.load(Ordering::Relaxed)
    }

    /// The budget, in bytes.
    pub fn limit(&self) -> u64 {
        self.limit
    }

    /// Take `bytes` if they fit.
    fn take(&self, bytes: u64) -> bool {
        self.used
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |used| {
                used.checked_add(bytes).filter(|total| *total <= self.limit)
            })
            .is_ok()
    }

    fn give_back(&self, bytes: u64) {
        self.used.fetch_sub(bytes, Ordering::AcqRel);
    }
}

/// One store's limits, and the share of the budget its memories hold (given
/// back when the store is dropped).
pub struct StoreLimiter {
    budget: std::sync::Arc<MemoryBudget>,
    memory_limit: usize,
    held: u64,
    /// What the last growth took, given back if the growth then failed.
    last_growth: u64,
}

impl StoreLimiter {
    pub fn new(budget: std::sync::Arc<MemoryBudget>, memory_limit: usize) -> Self {
        Self {
            budget,
            memory_limit,
            held: 0,
            last_growth: 0,
        }
    }
}

impl ResourceLimiter for StoreLimiter {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > self.memory_limit {
            return Ok(false);
        }
        let more = desired.saturating_sub(current) as u64;
        if !self.budget.take(more) {
            tracing::warn!(
                used = self.budget.used(),
                limit = self.budget.limit(),
                wanted = more,
                "plugin memory budget exhausted: a memory growth was refused"
            );
            return Ok(false);
        }
        self.held += more;
        self.last_growth = more;
        Ok(true)
    }

    fn memory_grow_failed(&mut self, _error: wasmtime::Error) -> wasmtime::Result<()> {
        self.budget.give_back(self.last_growth);
        self.held -= self.last_growth;
        self.last_growth = 0;
        Ok(())
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= MAX_TABLE_ELEMENTS)
    }

    fn instances(&self) -> usize {
        MAX_INSTANCES
    }

    fn tables(&self) -> usize {
        MAX_TABLES
    }

    fn memories(&self) -> usize {
        MAX_MEMORIES
    }
}

impl Drop for StoreLimiter {
    fn drop(&mut self) {
        self.budget.give_back(self.held);
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    #[test]
    fn stores_draw_from_one_budget_and_give_back_when_dropped() {
        let budget = Arc::new(MemoryBudget::new(10 << 20));
        let mut first = StoreLimiter::new(Arc::clone(&budget), 8 << 20);
        let mut second = StoreLimiter::new(Arc::clone(&budget), 8 << 20);
        assert!(first.memory_growing(0, 6 << 20, None).unwrap());
        assert!(
            !first.memory_growing(6 << 20, 9 << 20, None).unwrap(),
            "over its cap"
        );
        assert!(
            !second.memory_growing(0, 5 << 20, None).unwrap(),
            "over the budget"
        );
        assert!(second.memory_growing(0, 4 << 20, None).unwrap());
        assert_eq!(budget.used(), 10 << 20);
        second
            .memory_grow_failed(wasmtime::Error::msg("failed"))
            .unwrap();
        assert_eq!(budget.used(), 6 << 20);
        drop(first);
        assert_eq!(budget.used(), 0);
        drop(second);
        assert_eq!(budget.used(), 0);
    }
}
