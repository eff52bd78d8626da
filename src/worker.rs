//! Which worker runtime the current thread runs: per-worker state (the
//! peer connection pool's idle connections) is kept apart by it, so a
//! socket is only used on the thread whose reactor it is registered with.

use std::cell::Cell;

thread_local! {
    static WORKER: Cell<usize> = const { Cell::new(0) };
}

/// This thread's worker: 1.. on a worker thread, 0 elsewhere (a single
/// runtime, tests).
pub fn current() -> usize {
    WORKER.with(Cell::get)
}

/// Marks this thread as worker `i` (called once when the thread starts).
pub fn set(i: usize) {
    WORKER.with(|w| w.set(i));
}
