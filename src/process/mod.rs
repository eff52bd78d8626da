//! The process around the server: the tokio runtime, signals (SIGTERM/SIGINT,
//! SIGHUP, SIGUSR1), systemd notification, the config watcher and
//! reloads. `cli` and `demo` start here; the library's serve loop
//! ([`crate::transport::run`]) installs no signal handler and tells systemd
//! nothing.

pub mod reload;
pub mod sdnotify;
pub mod signals;

use std::process::ExitCode;

use crate::config::Config;
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
    // One worker: a current-thread runtime (no work-stealing queues or
    // cross-thread wake-ups), like one nginx worker process.
    let mut rt = match config.worker_threads {
        Some(n) if n <= 1 => tokio::runtime::Builder::new_current_thread(),
        Some(n) => {
            let mut b = tokio::runtime::Builder::new_multi_thread();
            b.worker_threads(n);
            b
        }
        None => tokio::runtime::Builder::new_multi_thread(),
    };
    let rt = match rt.enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("cannot start the runtime: {e}");
            return ExitCode::from(1);
        }
    };
    rt.block_on(async move {
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
        let r = prepared.run_and_tell(sdnotify::ready, shutdown).await;
        usr1.abort();
        match r {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                tracing::error!("server error: {e}");
                ExitCode::from(1)
            }
        }
    })
}
