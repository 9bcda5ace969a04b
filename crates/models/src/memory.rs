//! Process-wide allocator policy for CPU training and inference.
//!
//! A CPU step allocates and frees tensors of up to `B × T × V × 4` bytes (100 MB for 4 × 128 tokens of
//! SmolLM2's 49,152-word vocabulary) dozens of times. glibc serves every block above 32 MB with a fresh `mmap`
//! and returns it with `munmap` on free, so each such tensor costs a page fault and a kernel page clear per 4 KiB
//! — measured at 17 % of an SFT step's CPU time (`perf`, `clear_page_erms` + `exc_page_fault`). Keeping freed
//! memory in the heap removes that cost: the SFT step bench went from 85.6 to 96.1 tokens/s (docs/benchmarks.md).
//!
//! This is a choice for the whole process, so libraries do not make it: the `temper` binary and the benches
//! call [`retain_freed_memory`] once at start-up. The price is that the process keeps its peak heap until it
//! exits, which is what a training run needs again at its next step anyway.

/// Tells glibc's `malloc` to serve large blocks from the heap and not to give freed memory back to the kernel
/// (`M_MMAP_MAX = 0`, and `M_TRIM_THRESHOLD = -1`, which glibc stores as `SIZE_MAX`: `INT_MAX` would still trim
/// once more than 2 GB is free, which a step's activations exceed). Returns whether the settings were taken; a
/// no-op returning `false` on other C libraries and platforms.
pub fn retain_freed_memory() -> bool {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        // SAFETY: `mallopt` only changes malloc's tuning parameters; it is thread-safe and takes plain integers.
        #[allow(unsafe_code)]
        unsafe {
            libc::mallopt(libc::M_MMAP_MAX, 0) == 1 && libc::mallopt(libc::M_TRIM_THRESHOLD, -1) == 1
        }
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    {
        false
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn large_blocks_still_allocate_and_free_after_the_switch() {
        let taken = super::retain_freed_memory();
        assert_eq!(taken, cfg!(all(target_os = "linux", target_env = "gnu")));
        for i in 0..3u8 {
            let mut v = vec![i; 160 << 20]; // 160 MB: above glibc's largest mmap threshold
            v[(160 << 20) - 1] = 7;
            assert_eq!((v[0], v[80 << 20], v[(160 << 20) - 1]), (i, i, 7));
        }
    }
}
