//! Reads one key by its row of the key table (`keys::Value`): the parser,
//! the default and the bounds come from the table, so a key's value rules
//! are written once (docs/config-keys.md §7). Rules that involve several
//! keys stay with their concern (`build`, `module`, `ops`).

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use super::build::Builder;
use super::keys::{key_def, Keys, Value};
use super::values::{parse_int_in, parse_ip, parse_size, parse_socket_addr, Cidr, ValueError};

impl Builder<'_> {
    /// The parser column of `key`.
    fn row(&mut self, key: &'static str) -> Value {
        match key_def(key) {
            Some(d) => d.value,
            None => {
                self.mismatch(key);
                Value::Rules
            }
        }
    }

    /// A reader that does not match the table: an error of the whole
    /// configuration (the tests load every key), never a panic.
    #[cold]
    fn mismatch(&mut self, key: &str) {
        let f = self.file_of(0);
        self.d.err(
            &f,
            None,
            format!("internal: {key} is read unlike its key table row"),
        );
    }

    /// `Value::Bool`.
    pub(super) fn flag(&mut self, k: Keys<'_>, key: &'static str) -> bool {
        match self.row(key) {
            Value::Bool(default) => self.bool(k, key, default),
            _ => {
                self.mismatch(key);
                false
            }
        }
    }

    /// `Value::Int`.
    pub(super) fn number(&mut self, k: Keys<'_>, key: &'static str) -> i64 {
        match self.row(key) {
            Value::Int { default, min, max } => self.int(k, key, default, min, max),
            _ => {
                self.mismatch(key);
                0
            }
        }
    }

    /// `Value::Secs`.
    pub(super) fn seconds(&mut self, k: Keys<'_>, key: &'static str) -> Duration {
        match self.row(key) {
            Value::Secs { default } => self.timeout(k, key, default),
            _ => {
                self.mismatch(key);
                Duration::ZERO
            }
        }
    }

    /// `Value::Count`.
    pub(super) fn count(&mut self, k: Keys<'_>, key: &'static str) -> Option<usize> {
        match self.row(key) {
            Value::Count => self
                .opt(k, key, |v| parse_int_in(v, 1, i64::from(u32::MAX)))
                .and_then(|v| usize::try_from(v).ok()),
            _ => {
                self.mismatch(key);
                None
            }
        }
    }

    /// `Value::Port`.
    pub(super) fn port(&mut self, k: Keys<'_>, key: &'static str) -> Option<u16> {
        match self.row(key) {
            Value::Port => self
                .opt(k, key, |v| parse_int_in(v, 1, 65535))
                .and_then(|v| u16::try_from(v).ok()),
            _ => {
                self.mismatch(key);
                None
            }
        }
    }

    /// `Value::Duration`.
    pub(super) fn span(&mut self, k: Keys<'_>, key: &'static str) -> Duration {
        match self.row(key) {
            Value::Duration { default, zero } => self.duration(k, key, default, zero),
            _ => {
                self.mismatch(key);
                Duration::ZERO
            }
        }
    }

    /// `Value::Size`.
    pub(super) fn size(&mut self, k: Keys<'_>, key: &'static str) -> u64 {
        match self.row(key) {
            Value::Size { default, min, max } => self
                .opt(k, key, |v| {
                    let n = parse_size(v)?;
                    if !(min..=max).contains(&n) {
                        return Err(ValueError::OutOfRange {
                            min: i64::try_from(min).unwrap_or(i64::MAX),
                            max: i64::try_from(max).unwrap_or(i64::MAX),
                        });
                    }
                    Ok(n)
                })
                .unwrap_or(default),
            _ => {
                self.mismatch(key);
                0
            }
        }
    }

    /// `Value::Word`: `values` in the order of the row's words; the first
    /// is the default.
    pub(super) fn word<T: Copy, const N: usize>(
        &mut self,
        k: Keys<'_>,
        key: &'static str,
        values: [T; N],
    ) -> T {
        const { assert!(N > 0) };
        let default = values[0];
        let names = match self.row(key) {
            Value::Word(names) if names.len() == N => names,
            _ => {
                self.mismatch(key);
                return default;
            }
        };
        let Some(e) = k.get(key) else {
            return default;
        };
        self.value(e, |v| {
            names
                .iter()
                .zip(values)
                .find(|(n, _)| v.eq_ignore_ascii_case(n))
                .map(|(_, t)| t)
                .ok_or(ValueError::NotOneOf(names))
        })
        .unwrap_or(default)
    }

    /// `Value::SocketAddr`.
    pub(super) fn socket_addr(&mut self, k: Keys<'_>, key: &'static str) -> Option<SocketAddr> {
        match self.row(key) {
            Value::SocketAddr => self.opt(k, key, parse_socket_addr),
            _ => {
                self.mismatch(key);
                None
            }
        }
    }

    /// `Value::SocketAddrs`.
    pub(super) fn socket_addrs(&mut self, k: Keys<'_>, key: &'static str) -> Vec<SocketAddr> {
        match self.row(key) {
            Value::SocketAddrs => self.list(k, key, parse_socket_addr),
            _ => {
                self.mismatch(key);
                Vec::new()
            }
        }
    }

    /// `Value::Ips`.
    pub(super) fn ips(&mut self, k: Keys<'_>, key: &'static str) -> Vec<IpAddr> {
        match self.row(key) {
            Value::Ips => self.list(k, key, parse_ip),
            _ => {
                self.mismatch(key);
                Vec::new()
            }
        }
    }

    /// `Value::Cidrs`.
    pub(super) fn cidrs(&mut self, k: Keys<'_>, key: &'static str) -> Vec<Cidr> {
        match self.row(key) {
            Value::Cidrs => self.list(k, key, |v| v.parse::<Cidr>().map_err(ValueError::Cidr)),
            _ => {
                self.mismatch(key);
                Vec::new()
            }
        }
    }

    /// `Value::File`.
    pub(super) fn file(&mut self, k: Keys<'_>, key: &'static str) -> Option<PathBuf> {
        match self.row(key) {
            Value::File => self.checked_file(k, key),
            _ => {
                self.mismatch(key);
                None
            }
        }
    }
}
