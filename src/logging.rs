//! The error log (module-behaviour.md §15): `log_level`, and `log_filename`
//! or stderr.

use std::fs::OpenOptions;
use std::path::Path;

use tracing_subscriber::EnvFilter;

use crate::config::LogLevel;

/// Installs the global subscriber. `RUST_LOG`, when set, wins over the
/// configured level (handy while debugging one module).
pub fn init(level: LogLevel, file: Option<&Path>) {
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new(level.tracing_level().as_str()));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false);
    let result = match file.and_then(|p| OpenOptions::new().create(true).append(true).open(p).ok())
    {
        Some(f) => builder
            .with_ansi(false)
            .with_writer(std::sync::Mutex::new(f))
            .try_init(),
        None => {
            if let Some(p) = file {
                eprintln!(
                    "cannot open log_filename {}; logging to stderr",
                    p.display()
                );
            }
            builder.with_writer(std::io::stderr).try_init()
        }
    };
    let _ = result;
}
