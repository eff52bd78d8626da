//! Worker runtimes: with more than one worker, each is a thread running a
//! current-thread tokio runtime (nginx's worker processes as threads: no
//! work-stealing, a connection stays on the thread that took it). The
//! accept loops hand each accepted connection to the next worker; the
//! connection's socket is registered with that worker's reactor, so its
//! wake-ups never cross threads.

use std::future::Future;
use std::io;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::thread::JoinHandle;

use tokio::net::TcpStream;
use tokio::runtime::Handle;
use tokio::sync::oneshot;

/// Running worker threads, each with its own runtime.
pub struct Workers {
    handles: Vec<Handle>,
    next: AtomicUsize,
    threads: Mutex<Vec<(oneshot::Sender<()>, JoinHandle<()>)>>,
}

impl std::fmt::Debug for Workers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Workers({})", self.handles.len())
    }
}

impl Workers {
    /// Starts `n` worker threads (at least one; `fdfs-worker-<i>`),
    /// numbered from 1 for [`crate::worker::current`].
    pub fn start(n: usize) -> io::Result<Workers> {
        let n = n.max(1);
        let mut handles = Vec::with_capacity(n);
        let mut threads = Vec::with_capacity(n);
        for i in 1..=n {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            handles.push(rt.handle().clone());
            let (stop, stopped) = oneshot::channel::<()>();
            let t = std::thread::Builder::new()
                .name(format!("fdfs-worker-{i}"))
                .spawn(move || {
                    crate::worker::set(i);
                    // Runs the connections spawned onto it until stopped;
                    // dropping the runtime then cancels what is left.
                    let _ = rt.block_on(stopped);
                })?;
            threads.push((stop, t));
        }
        Ok(Workers {
            handles,
            next: AtomicUsize::new(0),
            threads: Mutex::new(threads),
        })
    }

    /// Serves `tcp` on the next worker (round robin): the socket moves to
    /// that worker's reactor and `serve` runs there.
    pub fn spawn<F, Fut>(&self, tcp: TcpStream, serve: F)
    where
        F: FnOnce(TcpStream) -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let i = self.next.fetch_add(1, Ordering::Relaxed) % self.handles.len();
        let std = match tcp.into_std() {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!("connection dropped: cannot move it to a worker: {e}");
                return;
            }
        };
        self.handles[i].spawn(async move {
            match TcpStream::from_std(std) {
                Ok(tcp) => serve(tcp).await,
                Err(e) => tracing::warn!("connection dropped: worker cannot register it: {e}"),
            }
        });
    }

    /// Stops every worker (their remaining connections are closed) and
    /// waits for the threads to end.
    pub fn stop(&self) {
        let threads = std::mem::take(&mut *self.threads.lock().unwrap_or_else(|p| p.into_inner()));
        for (stop, t) in threads {
            let _ = stop.send(());
            let _ = t.join();
        }
    }
}

impl Drop for Workers {
    fn drop(&mut self) {
        self.stop();
    }
}
