//! Process signals: SIGTERM/SIGINT end the server gracefully; SIGHUP
//! reloads the configuration (issue 5 item 2).

use std::sync::Arc;

use crate::reload::Reloader;

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
