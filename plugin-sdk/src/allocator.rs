//! The memory allocator Rust plugins get by default. A call allocates a few
//! dozen small, short-lived blocks (its arguments, parsed params, the result
//! text); the standard allocator (wasi-libc's dlmalloc) spent more guest
//! instructions on them than the handler did (see BENCHMARKS.md). Here each
//! small block comes from a free list kept per power-of-two size, so taking
//! and returning one is a pointer swap. Large or over-aligned blocks, and
//! blocks past what a list keeps, go to the standard allocator.
//!
//! A plugin that wants another allocator turns off the SDK's `allocator`
//! feature and declares its own `#[global_allocator]`.

// Implementing `GlobalAlloc` means working with raw memory.
#![allow(unsafe_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::UnsafeCell;
use std::ptr;

/// The smallest block is 8 bytes (it must hold the free-list link).
const MIN_SHIFT: u32 = 3;
/// Blocks up to 4 KiB are kept on free lists.
const MAX_SHIFT: u32 = 12;
const SIZES: usize = (MAX_SHIFT - MIN_SHIFT + 1) as usize;
/// Every block is aligned to 8; a layout asking more goes to the standard
/// allocator.
const BLOCK_ALIGN: usize = 8;
/// Bytes each size's list keeps at most, so that memory freed in one size
/// stays usable by others.
const KEEP_BYTES: usize = 1 << 20;

/// Free lists of small blocks in front of the standard allocator. Not
/// thread-safe: installed only on single-threaded WebAssembly.
pub(crate) struct FreeListAllocator {
    lists: UnsafeCell<[FreeList; SIZES]>,
}

/// The free blocks of one size, linked through their first word.
#[derive(Clone, Copy)]
struct FreeList {
    head: *mut FreeBlock,
    kept_bytes: usize,
}

struct FreeBlock {
    next: *mut FreeBlock,
}

impl FreeListAllocator {
    /// An allocator with empty lists.
    pub(crate) const fn new() -> Self {
        let empty = FreeList {
            head: ptr::null_mut(),
            kept_bytes: 0,
        };
        Self {
            lists: UnsafeCell::new([empty; SIZES]),
        }
    }

    /// The list of `index`. Callers hold the reference only within one
    /// allocator call, and the standard allocator never calls back here.
    #[allow(clippy::mut_from_ref)]
    fn list(&self, index: usize) -> &mut FreeList {
        // SAFETY: one thread, and no two references to a list live at once
        // (see above).
        unsafe { &mut (*self.lists.get())[index] }
    }
}

// SAFETY: WebAssembly without the `atomics` feature runs one thread.
#[cfg(all(target_family = "wasm", not(target_feature = "atomics")))]
unsafe impl Sync for FreeListAllocator {}

/// The list index for `layout`, or `None` when the standard allocator
/// serves it.
fn size_index(layout: Layout) -> Option<usize> {
    if layout.size() > 1 << MAX_SHIFT || layout.align() > BLOCK_ALIGN {
        return None;
    }
    let shift = layout.size().next_power_of_two().trailing_zeros();
    Some(shift.max(MIN_SHIFT) as usize - MIN_SHIFT as usize)
}

/// The layout of the blocks on list `index`.
fn block_layout(index: usize) -> Layout {
    // Powers of two up to 4 KiB with an alignment of 8 are valid layouts.
    Layout::from_size_align(1 << (index as u32 + MIN_SHIFT), BLOCK_ALIGN).unwrap()
}

// SAFETY: blocks handed out are at least `layout.size()` bytes and aligned to
// at least `layout.align()`; each is on no list while in use.
unsafe impl GlobalAlloc for FreeListAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let Some(index) = size_index(layout) else {
            // SAFETY: forwarded as received.
            return unsafe { System.alloc(layout) };
        };
        let list = self.list(index);
        if list.head.is_null() {
            // SAFETY: a valid, non-zero-sized layout.
            return unsafe { System.alloc(block_layout(index)) };
        }
        let block = list.head;
        // SAFETY: `block` is a free block of this list, written by `dealloc`.
        list.head = unsafe { (*block).next };
        list.kept_bytes -= block_layout(index).size();
        block.cast()
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        let Some(index) = size_index(layout) else {
            // SAFETY: `ptr` came from `System.alloc(layout)`.
            return unsafe { System.dealloc(ptr, layout) };
        };
        let list = self.list(index);
        let size = block_layout(index).size();
        if list.kept_bytes + size > KEEP_BYTES {
            // SAFETY: every block of this size came from `System` with this layout.
            return unsafe { System.dealloc(ptr, block_layout(index)) };
        }
        let block = ptr.cast::<FreeBlock>();
        // SAFETY: the block is ours again, at least 8 bytes and aligned to 8.
        unsafe { block.write(FreeBlock { next: list.head }) };
        list.head = block;
        list.kept_bytes += size;
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY (all blocks below): the caller guarantees `ptr` and `layout`
        // match and `new_size` forms a valid layout with the same alignment.
        let new_layout = unsafe { Layout::from_size_align_unchecked(new_size, layout.align()) };
        match (size_index(layout), size_index(new_layout)) {
            (Some(old), Some(new)) if old == new => ptr,
            (None, None) => unsafe { System.realloc(ptr, layout, new_size) },
            _ => {
                let moved = unsafe { self.alloc(new_layout) };
                if !moved.is_null() {
                    unsafe {
                        ptr::copy_nonoverlapping(ptr, moved, layout.size().min(new_size));
                        self.dealloc(ptr, layout);
                    }
                }
                moved
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_round_up_to_powers_of_two() {
        let index = |size, align| size_index(Layout::from_size_align(size, align).unwrap());
        assert_eq!(index(1, 1), Some(0));
        assert_eq!(index(8, 8), Some(0));
        assert_eq!(index(9, 1), Some(1));
        assert_eq!(index(4096, 8), Some(SIZES - 1));
        assert_eq!(index(4097, 1), None);
        assert_eq!(index(16, 16), None);
    }

    #[test]
    fn a_freed_block_is_reused_and_realloc_within_a_size_stays_put() {
        let allocator = FreeListAllocator::new();
        let layout = Layout::from_size_align(24, 8).unwrap();
        unsafe {
            let first = allocator.alloc(layout);
            first.write_bytes(7, 24);
            let grown = allocator.realloc(first, layout, 32);
            assert_eq!(grown, first, "24 and 32 bytes share a size");
            let moved = allocator.realloc(grown, Layout::from_size_align(32, 8).unwrap(), 100);
            assert_ne!(moved, first);
            assert_eq!(std::slice::from_raw_parts(moved, 24), &[7; 24]);
            let again = allocator.alloc(layout);
            assert_eq!(again, first, "the freed 32-byte block comes back");
            allocator.dealloc(again, layout);
            allocator.dealloc(moved, Layout::from_size_align(100, 8).unwrap());
        }
    }

    #[test]
    fn a_list_keeps_at_most_its_share() {
        let allocator = FreeListAllocator::new();
        let layout = Layout::from_size_align(4096, 8).unwrap();
        let blocks: Vec<_> = (0..(KEEP_BYTES / 4096 + 3))
            .map(|_| unsafe { allocator.alloc(layout) })
            .collect();
        for block in blocks {
            unsafe { allocator.dealloc(block, layout) };
        }
        assert_eq!(allocator.list(SIZES - 1).kept_bytes, KEEP_BYTES);
    }
}
