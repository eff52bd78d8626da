//! The error log (docs/module-behaviour.md §15): `log_level`, and `log_filename`
//! or stderr. The file is reopened by [`reopen`] (on SIGUSR1, after
//! logrotate moved it away).

use std::fs::{File, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

use tracing_subscriber::EnvFilter;

use crate::config::LogLevel;

/// The error log file, swappable under a lock.
#[derive(Debug)]
struct LogFile {
    path: PathBuf,
    file: Mutex<File>,
}

impl io::Write for &LogFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self.file.lock() {
            Ok(mut f) => f.write(buf),
            Err(_) => Ok(buf.len()),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self.file.lock() {
            Ok(mut f) => f.flush(),
            Err(_) => Ok(()),
        }
    }
}

/// The installed log file, when logging to a file.
static LOG_FILE: OnceLock<Arc<LogFile>> = OnceLock::new();

fn open_append(p: &Path) -> io::Result<File> {
    OpenOptions::new().create(true).append(true).open(p)
}

/// Installs the global subscriber. `RUST_LOG`, when set, wins over the
/// configured level (handy while debugging one module).
pub fn init(level: LogLevel, file: Option<&Path>) {
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new(level.tracing_level().as_str()));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false);
    let opened = file.and_then(|p| open_append(p).ok().map(|f| (p, f)));
    let result = match opened {
        Some((p, f)) => {
            let lf = Arc::new(LogFile {
                path: p.to_path_buf(),
                file: Mutex::new(f),
            });
            let _ = LOG_FILE.set(lf.clone());
            builder.with_ansi(false).with_writer(lf).try_init()
        }
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

/// Reopens `log_filename` (no-op when logging to stderr).
pub fn reopen() -> io::Result<()> {
    if let Some(lf) = LOG_FILE.get() {
        let fresh = open_append(&lf.path)?;
        if let Ok(mut f) = lf.file.lock() {
            *f = fresh;
        }
    }
    Ok(())
}
