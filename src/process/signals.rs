//! Process signals: SIGTERM/SIGINT end the server gracefully; SIGHUP
//! reloads the configuration; SIGUSR1 reopens the log files.

use std::sync::Arc;

use super::reload::Reloader;

/// Resolves on the first SIGTERM or SIGINT.
pub async fn shutdown() {
    use tokio::signal::unix::{signal, SignalKind};
    let term = signal(SignalKind::terminate());
    let int = signal(SignalKind::interrupt());
    match (term, int) {
        (Ok(mut t), Ok(mut i)) => {
            tokio::select! {
                _ = t.recv() => {}
                _ = i.recv() => {}
            }
        }
        _ => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

/// Reopens the error log and the current access log on every SIGUSR1
/// (logrotate's `postrotate kill -USR1`), until the task is aborted.
pub async fn reopen_logs_on_usr1(app: std::sync::Arc<crate::state::App>) {
    use tokio::signal::unix::{signal, SignalKind};
    let Ok(mut usr1) = signal(SignalKind::user_defined1()) else {
        tracing::warn!("cannot install the SIGUSR1 handler; logs will not be reopened");
        return;
    };
    while usr1.recv().await.is_some() {
        if let Err(e) = crate::logging::reopen() {
            tracing::error!("reopening log_filename: {e}");
        }
        if let Err(e) = app.state().access_log.reopen() {
            tracing::error!("reopening access_log: {e}");
        }
        tracing::info!("SIGUSR1: log files reopened");
    }
}

/// Calls [`Reloader::reload`] on every SIGHUP, for as long as it runs.
/// Install it before announcing readiness: an unhandled SIGHUP ends the
/// process.
pub fn hangups(reloader: Arc<Reloader>) -> std::io::Result<tokio::task::JoinHandle<()>> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut hup = signal(SignalKind::hangup())?;
    Ok(tokio::spawn(async move {
        while hup.recv().await.is_some() {
            tracing::info!("SIGHUP: reloading");
            // The outcome is logged by reload; a rejected one changes nothing.
            let _ = reloader.reload();
        }
    }))
}
