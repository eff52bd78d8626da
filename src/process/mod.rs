//! The process around the server: the tokio runtime, signals (SIGTERM/SIGINT,
//! SIGHUP, SIGUSR1), systemd notification, the config watcher and
//! reloads. `cli` and `demo` start here; the library's serve loop
//! ([`crate::transport::run`]) installs no signal handler and tells systemd
//! nothing.

pub mod reload;
pub mod sdnotify;
pub mod signals;

use std::process::ExitCode;

use std::sync::Arc;

use crate::config::Config;
use crate::transport;
use reload::{Prepared, Source};

/// Binds the configured listeners and serves until SIGTERM/SIGINT. SIGHUP
/// reloads from the main file `config` was read from, keeping its
/// listeners as they are.
pub fn serve_until_signal(config: Config) -> ExitCode {
    let source = Source {
        path: config.files.first().cloned().unwrap_or_default(),
        listen: config.listen.clone(),
    };
    serve_reloadable(config, source)
}

/// Binds the configured listeners and serves until SIGTERM/SIGINT;
/// SIGHUP (and file changes with `watch_config`) reload from `source`.
pub fn serve_reloadable(config: Config, source: Source) -> ExitCode {
    // One worker: a current-thread runtime, like one nginx worker process.
    // More: that runtime keeps the listeners, signals and background tasks,
    // and each worker is a thread with a current-thread runtime of its own
    // serving the connections handed to it (no work-stealing queues or
    // cross-thread wake-ups).
    let n = config
        .worker_threads
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    let built = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .and_then(|rt| {
            let workers = (n > 1)
                .then(|| transport::Workers::start(n).map(Arc::new))
                .transpose()?;
            Ok((rt, workers))
        });
    let (rt, workers) = match built {
        Ok(x) => x,
        Err(e) => {
            eprintln!("cannot start the runtime: {e}");
            return ExitCode::from(1);
        }
    };
    let served = workers.clone();
    let code = rt.block_on(async move {
        let prepared = match Prepared::new(config, source) {
            Ok(p) => p,
            Err(e) => {
                tracing::error!("{e}");
                eprintln!("{e}");
                return ExitCode::from(1);
            }
        };
        if let Err(e) = signals::hangups(prepared.reloader.clone()) {
            tracing::warn!("SIGHUP reload unavailable: {e}");
        }
        let usr1 = tokio::spawn(signals::reopen_logs_on_usr1(prepared.app()));
        let shutdown = async {
            signals::shutdown().await;
            sdnotify::stopping();
        };
        // READY=1 only once the admin listener is bound too: a bind that
        // fails ends the process without it.
        let r = prepared
            .run_and_tell(served, sdnotify::ready, shutdown)
            .await;
        usr1.abort();
        match r {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                tracing::error!("server error: {e}");
                ExitCode::from(1)
            }
        }
    });
    // Joined off the event loop, once the drain is over: what a worker
    // still runs is cancelled with its runtime.
    if let Some(w) = workers {
        w.stop();
    }
    code
}
