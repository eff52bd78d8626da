//! The file-system and resolver seam: every disk or DNS access made while
//! building a [`super::Config`] goes through [`Env`], so the rules are
//! testable without disk ([`OfflineEnv`] reads nothing).

use std::fmt;
use std::io;
use std::net::IpAddr;
use std::path::Path;

/// Why a path check failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum PathProblem {
    Missing,
    NotDir,
    NotFile,
    Unreadable(String),
}

impl fmt::Display for PathProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Missing => f.write_str("does not exist"),
            Self::NotDir => f.write_str("is not a directory"),
            Self::NotFile => f.write_str("is not a regular file"),
            Self::Unreadable(e) => write!(f, "cannot be read: {e}"),
        }
    }
}

/// Filesystem and name resolution used while building a [`Config`].
pub(crate) trait Env {
    /// Reads a whole text file.
    fn read(&self, path: &Path) -> io::Result<String>;
    /// Ok if `path` is a readable directory.
    fn check_dir(&self, path: &Path) -> Result<(), PathProblem>;
    /// Ok if `path` is a readable regular file.
    fn check_file(&self, path: &Path) -> Result<(), PathProblem>;
    /// Whether `path` is a directory.
    fn is_dir(&self, path: &Path) -> bool;
    /// First address of a hostname.
    fn resolve(&self, host: &str) -> Option<IpAddr>;
    /// Whether users other than the owner may read `path` (a key file).
    fn readable_by_others(&self, _path: &Path) -> bool {
        false
    }
}

/// The real filesystem and system resolver.
pub(crate) struct RealEnv;

fn io_problem(e: &io::Error) -> PathProblem {
    if e.kind() == io::ErrorKind::NotFound {
        PathProblem::Missing
    } else {
        PathProblem::Unreadable(e.to_string())
    }
}

impl Env for RealEnv {
    fn read(&self, path: &Path) -> io::Result<String> {
        let bytes = std::fs::read(path)?;
        String::from_utf8(bytes)
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "not valid UTF-8"))
    }

    fn check_dir(&self, path: &Path) -> Result<(), PathProblem> {
        let md = std::fs::metadata(path).map_err(|e| io_problem(&e))?;
        if !md.is_dir() {
            return Err(PathProblem::NotDir);
        }
        std::fs::read_dir(path).map_err(|e| io_problem(&e))?;
        Ok(())
    }

    fn check_file(&self, path: &Path) -> Result<(), PathProblem> {
        let md = std::fs::metadata(path).map_err(|e| io_problem(&e))?;
        if !md.is_file() {
            return Err(PathProblem::NotFile);
        }
        std::fs::File::open(path).map_err(|e| io_problem(&e))?;
        Ok(())
    }

    fn is_dir(&self, path: &Path) -> bool {
        path.is_dir()
    }

    fn resolve(&self, host: &str) -> Option<IpAddr> {
        use std::net::ToSocketAddrs;
        (host, 0u16)
            .to_socket_addrs()
            .ok()
            .and_then(|mut a| a.next())
            .map(|a| a.ip())
    }

    fn readable_by_others(&self, path: &Path) -> bool {
        use std::os::unix::fs::PermissionsExt;
        std::fs::metadata(path).is_ok_and(|m| m.permissions().mode() & 0o044 != 0)
    }
}

/// An [`Env`] that reads nothing: files are missing, directories exist,
/// names do not resolve.
pub(crate) struct OfflineEnv;

impl Env for OfflineEnv {
    fn read(&self, _path: &Path) -> io::Result<String> {
        Err(io::ErrorKind::NotFound.into())
    }
    fn check_dir(&self, _path: &Path) -> Result<(), PathProblem> {
        Ok(())
    }
    fn check_file(&self, _path: &Path) -> Result<(), PathProblem> {
        Err(PathProblem::Missing)
    }
    fn is_dir(&self, _path: &Path) -> bool {
        false
    }
    fn resolve(&self, _host: &str) -> Option<IpAddr> {
        None
    }
}
