//! Worker threads, the model of nginx and Envoy: each worker is a thread with its own
//! single-threaded runtime, its own listening sockets (`SO_REUSEPORT`: the kernel spreads
//! new connections over the workers), its own accept loops and its own upstream pools. A
//! connection lives on the worker that accepted it, from its first byte to its close, with
//! its upstream sockets: no work stealing, no wake-up sent to another thread, no pool lock
//! that another core holds.
//!
//! Worker 0 is the main thread, which also runs the admin listener, the reloader, the audit
//! log and the signals; with one worker, douane is one thread (and a blocking pool).
//! What the workers share is read-mostly: the state snapshot, the metrics (atomics), the
//! connection limit, the per-address upstream cap and the resolver's cache.

use std::cell::Cell;
use std::future::Future;
use std::io;

use tokio::runtime::Runtime;
use tokio::sync::oneshot;

thread_local! {
    static INDEX: Cell<usize> = const { Cell::new(0) };
}

/// The index of the worker this thread runs: 0 on the main thread, and on any thread that
/// is not a worker's (a blocking pool's, a test's).
pub fn current() -> usize {
    INDEX.with(Cell::get)
}

/// A worker's single-threaded runtime, made before its thread so that a failure stops the
/// start, and so that the worker's sockets can be registered with it from the main thread
/// (`Runtime::enter`).
pub fn runtime() -> io::Result<Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
}

/// Runs `serve` on worker `index`'s own thread and runtime; the receiver resolves when it
/// has returned (or panicked: the sender is dropped either way) and the runtime, with the
/// tasks left on it, is gone.
pub fn spawn<F>(index: usize, runtime: Runtime, serve: F) -> io::Result<oneshot::Receiver<()>>
where
    F: Future<Output = ()> + Send + 'static,
{
    let (done, finished) = oneshot::channel();
    std::thread::Builder::new()
        .name(format!("douane-worker-{index}"))
        .spawn(move || {
            INDEX.with(|i| i.set(index));
            runtime.block_on(serve);
            drop(runtime);
            let _ = done.send(());
        })?;
    Ok(finished)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_worker_thread_knows_its_index_and_the_main_thread_is_zero() {
        assert_eq!(current(), 0);
        let (tx, rx) = std::sync::mpsc::channel();
        let finished = spawn(3, runtime().unwrap(), async move {
            tx.send(current()).unwrap();
        })
        .unwrap();
        assert_eq!(rx.recv().unwrap(), 3);
        assert!(finished.blocking_recv().is_ok());
        assert_eq!(current(), 0);
    }
}
