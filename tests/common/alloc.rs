//! A global allocator that counts, per thread, the bytes allocated and not freed, and their
//! peak: what a call costs, measured inside a test (run the call on the test's thread).
//! Include with `#[path = "common/alloc.rs"] mod alloc;` in the tests that measure memory.
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

/// Counts the bytes this thread has allocated and not freed, and their peak: what decoding
/// one input costs, measured inside the test (the decoder runs on this thread only).
struct Counting;

thread_local! {
    static NOW: Cell<usize> = const { Cell::new(0) };
    static PEAK: Cell<usize> = const { Cell::new(0) };
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        let p = unsafe { System.alloc(l) };
        if !p.is_null() {
            let _ = NOW.try_with(|n| {
                n.set(n.get() + l.size());
                let _ = PEAK.try_with(|p| p.set(p.get().max(n.get())));
            });
        }
        p
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        unsafe { System.dealloc(p, l) };
        let _ = NOW.try_with(|n| n.set(n.get().saturating_sub(l.size())));
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

/// Peak bytes allocated by `f` on this thread, over what was live before.
pub fn peak_of<T>(f: impl FnOnce() -> T) -> (T, usize) {
    let base = NOW.with(|n| n.get());
    PEAK.with(|p| p.set(base));
    let r = f();
    (r, PEAK.with(|p| p.get()) - base)
}
