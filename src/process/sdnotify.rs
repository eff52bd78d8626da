//! systemd readiness notification (`Type=notify`, sd_notify(3)) without a
//! crate: one datagram per state change to the `AF_UNIX` socket named by
//! `$NOTIFY_SOCKET` (a path, or `@name` for the abstract namespace).
//! Without `$NOTIFY_SOCKET` every call is a no-op.

use std::io;
use std::os::unix::net::UnixDatagram;

/// Why a notification could not be sent.
#[derive(Debug)]
pub enum NotifyError {
    /// `$NOTIFY_SOCKET` is set but names no usable socket address.
    BadAddress,
    /// Creating the socket or sending failed.
    Io(io::Error),
}

impl std::fmt::Display for NotifyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::BadAddress => f.write_str("NOTIFY_SOCKET is not a unix socket address"),
            Self::Io(e) => write!(f, "sd_notify: {e}"),
        }
    }
}

impl std::error::Error for NotifyError {}

/// Where `$NOTIFY_SOCKET` points.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// A filesystem path.
    Path(std::path::PathBuf),
    /// An abstract-namespace name (`@` stripped).
    Abstract(Vec<u8>),
}

/// Parses a `$NOTIFY_SOCKET` value (pure).
pub fn parse_target(v: &str) -> Option<Target> {
    if let Some(name) = v.strip_prefix('@') {
        return (!name.is_empty()).then(|| Target::Abstract(name.as_bytes().to_vec()));
    }
    v.starts_with('/')
        .then(|| Target::Path(std::path::PathBuf::from(v)))
}

/// Sends `state` (newline-separated `KEY=VALUE` lines). Returns whether a
/// notification was sent (false when not started by systemd).
pub fn notify(state: &str) -> Result<bool, NotifyError> {
    let Some(v) = std::env::var_os("NOTIFY_SOCKET") else {
        return Ok(false);
    };
    let target = v
        .to_str()
        .and_then(parse_target)
        .ok_or(NotifyError::BadAddress)?;
    let sock = UnixDatagram::unbound().map_err(NotifyError::Io)?;
    match target {
        Target::Path(p) => sock.send_to(state.as_bytes(), p),
        Target::Abstract(name) => {
            use std::os::linux::net::SocketAddrExt;
            let addr = std::os::unix::net::SocketAddr::from_abstract_name(name)
                .map_err(NotifyError::Io)?;
            sock.send_to_addr(state.as_bytes(), &addr)
        }
    }
    .map_err(NotifyError::Io)?;
    Ok(true)
}

fn report(state: &str) {
    if let Err(e) = notify(state) {
        tracing::warn!("{e}");
    }
}

/// `READY=1`: listeners are bound and serving (also after a reload).
pub fn ready() {
    report(&format!("READY=1\nMAINPID={}", std::process::id()));
}

/// `RELOADING=1` with `MONOTONIC_USEC` (sd_notify(3): `Type=notify-reload`
/// needs both): a reload started; call [`ready`] when it is done.
pub fn reloading() {
    report(&reloading_message(monotonic_usec()));
}

fn reloading_message(usec: u64) -> String {
    format!("RELOADING=1\nMONOTONIC_USEC={usec}")
}

/// `CLOCK_MONOTONIC` in microseconds, the clock systemd compares against.
fn monotonic_usec() -> u64 {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::Monotonic);
    u64::try_from(t.tv_sec).unwrap_or(0) * 1_000_000 + u64::try_from(t.tv_nsec).unwrap_or(0) / 1_000
}

/// `STOPPING=1`: shutdown started.
pub fn stopping() {
    report("STOPPING=1");
}

/// `STATUS=...`: a one-line status for `systemctl status`.
pub fn status(text: &str) {
    let line: String = text.chars().filter(|c| *c != '\n').collect();
    report(&format!("STATUS={line}"));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets() {
        assert_eq!(
            parse_target("/run/systemd/notify"),
            Some(Target::Path("/run/systemd/notify".into()))
        );
        assert_eq!(
            parse_target("@sd-notify"),
            Some(Target::Abstract(b"sd-notify".to_vec()))
        );
        assert_eq!(parse_target("@"), None);
        assert_eq!(parse_target(""), None);
        assert_eq!(parse_target("relative/path"), None);
        assert_eq!(parse_target("vsock:2:123"), None);
    }
}
