//! A global allocator that counts live heap bytes and refuses any allocation past a limit, so that an input that
//! makes a reader allocate without bound ends the worker with Rust's `memory allocation of N bytes failed`
//! (which the supervisor reports as out-of-memory) instead of eating the machine's memory.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

/// The counting allocator (installed as `#[global_allocator]` in main.rs).
pub struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static LIMIT: AtomicUsize = AtomicUsize::new(usize::MAX);

/// Refuses allocations that would take the live heap past `bytes`.
pub fn set_limit(bytes: usize) {
    LIMIT.store(bytes, Ordering::Relaxed);
}

fn admit(extra: usize) -> bool {
    LIVE.load(Ordering::Relaxed).saturating_add(extra) <= LIMIT.load(Ordering::Relaxed)
}

/// Runs `alloc` (of `size` bytes) if the limit admits it, counting what it allocated; null otherwise.
fn counted(size: usize, alloc: impl FnOnce() -> *mut u8) -> *mut u8 {
    if !admit(size) {
        return std::ptr::null_mut();
    }
    let p = alloc();
    if !p.is_null() {
        LIVE.fetch_add(size, Ordering::Relaxed);
    }
    p
}

// SAFETY: every call is forwarded to `System` with the caller's own layout and pointer; only the byte count is
// tracked, and refusing an allocation (returning null) is allowed by the `GlobalAlloc` contract.
#[allow(unsafe_code)]
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded unchanged.
        counted(layout.size(), || unsafe { System.alloc(layout) })
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded unchanged.
        counted(layout.size(), || unsafe { System.alloc_zeroed(layout) })
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded unchanged.
        unsafe { System.dealloc(ptr, layout) };
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if new_size > layout.size() && !admit(new_size - layout.size()) {
            return std::ptr::null_mut();
        }
        // SAFETY: forwarded unchanged.
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            LIVE.fetch_add(new_size, Ordering::Relaxed);
            LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
        }
        p
    }
}
