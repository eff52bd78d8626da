//! The access log (docs/config-keys.md, `access_log`, `access_log_format`):
//! one line per request in nginx `combined` format followed by the request
//! time in seconds and how the request was served (`local`, `proxy:<peer>`,
//! `redirect`, `not_found`, `token_fail`, `rate_limited`, ...), or one JSON
//! object per line. A line is written when the response body has been sent
//! (or the client went away), so the byte count is what was sent. Files are
//! opened for append and reopened on SIGUSR1 (logrotate's habit).
//!
//! This module formats and writes lines; [`crate::service`] gathers them
//! around every request.

use std::fmt::Write as _;
use std::fs::{File, OpenOptions};
use std::io::{self, Write as _};
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Duration;

use http::Version;

use crate::config::{AccessLog, AccessLogFormat, Config};

/// One request as logged.
#[derive(Debug, Clone)]
pub struct Entry {
    /// Client address (after `trusted_proxies`).
    pub client: IpAddr,
    /// Request start, Unix seconds.
    pub time: i64,
    /// Method.
    pub method: String,
    /// Request target as received (path and query).
    pub target: String,
    /// Protocol, e.g. `HTTP/1.1`.
    pub protocol: &'static str,
    /// Response status.
    pub status: u16,
    /// Body bytes sent.
    pub bytes: u64,
    /// `Referer` header bytes.
    pub referer: Option<Vec<u8>>,
    /// `User-Agent` header bytes.
    pub user_agent: Option<Vec<u8>>,
    /// Time from request head to the last body byte.
    pub request_time: Duration,
    /// How the request was served (`Outcome::label`).
    pub served: String,
}

/// Protocol name as nginx's `$server_protocol`.
pub fn protocol(v: Version) -> &'static str {
    match v {
        Version::HTTP_09 => "HTTP/0.9",
        Version::HTTP_10 => "HTTP/1.0",
        Version::HTTP_2 => "HTTP/2.0",
        Version::HTTP_3 => "HTTP/3.0",
        _ => "HTTP/1.1",
    }
}

/// Appends `b` escaped like nginx's log variables: `"`, `\`, control
/// characters and bytes ≥ 0x7F become `\xHH`.
fn push_escaped(out: &mut String, b: &[u8]) {
    for &c in b {
        if c == b'"' || c == b'\\' || !(0x20..0x7f).contains(&c) {
            let _ = write!(out, "\\x{c:02X}");
        } else {
            out.push(char::from(c));
        }
    }
}

/// Appends `s` as a JSON string literal (non-UTF-8 bytes as U+FFFD).
pub fn push_json_str(out: &mut String, s: &[u8]) {
    out.push('"');
    for ch in String::from_utf8_lossy(s).chars() {
        match ch {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if u32::from(c) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// Civil date and time (UTC) of Unix seconds: (year, month 1–12, day,
/// hour, minute, second). Howard Hinnant's `civil_from_days`.
pub fn civil(unix: i64) -> (i64, u32, u32, u32, u32, u32) {
    let days = unix.div_euclid(86_400);
    let secs = unix.rem_euclid(86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (
        y,
        m,
        d,
        (secs / 3600) as u32,
        (secs % 3600 / 60) as u32,
        (secs % 60) as u32,
    )
}

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// `$time_local` in UTC: `10/Oct/2000:13:55:36 +0000`.
pub fn time_local(unix: i64) -> String {
    let (y, m, d, hh, mm, ss) = civil(unix);
    let mon = MONTHS
        .get(m.saturating_sub(1) as usize)
        .copied()
        .unwrap_or("???");
    format!("{d:02}/{mon}/{y}:{hh:02}:{mm:02}:{ss:02} +0000")
}

/// `$time_iso8601` in UTC: `2000-10-10T13:55:36+00:00`.
pub fn time_iso8601(unix: i64) -> String {
    let (y, m, d, hh, mm, ss) = civil(unix);
    format!("{y:04}-{m:02}-{d:02}T{hh:02}:{mm:02}:{ss:02}+00:00")
}

/// The `combined` line plus ` <request_time> <served>`, newline-terminated:
/// `$remote_addr - - [$time_local] "$request" $status $body_bytes_sent
/// "$http_referer" "$http_user_agent" $request_time $served`.
pub fn combined(e: &Entry) -> String {
    let mut out = String::with_capacity(256);
    let _ = write!(out, "{} - - [{}] \"", e.client, time_local(e.time));
    push_escaped(&mut out, e.method.as_bytes());
    out.push(' ');
    push_escaped(&mut out, e.target.as_bytes());
    out.push(' ');
    out.push_str(e.protocol);
    let _ = write!(out, "\" {} {} \"", e.status, e.bytes);
    push_escaped(&mut out, e.referer.as_deref().unwrap_or(b"-"));
    out.push_str("\" \"");
    push_escaped(&mut out, e.user_agent.as_deref().unwrap_or(b"-"));
    let _ = write!(out, "\" {:.3} ", e.request_time.as_secs_f64());
    push_escaped(&mut out, e.served.as_bytes());
    out.push('\n');
    out
}

/// One JSON object per line with the same fields as [`combined`].
pub fn json(e: &Entry) -> String {
    let mut out = String::with_capacity(320);
    out.push_str("{\"time\":");
    push_json_str(&mut out, time_iso8601(e.time).as_bytes());
    out.push_str(",\"remote_addr\":");
    push_json_str(&mut out, e.client.to_string().as_bytes());
    out.push_str(",\"method\":");
    push_json_str(&mut out, e.method.as_bytes());
    out.push_str(",\"uri\":");
    push_json_str(&mut out, e.target.as_bytes());
    out.push_str(",\"protocol\":");
    push_json_str(&mut out, e.protocol.as_bytes());
    let _ = write!(
        out,
        ",\"status\":{},\"body_bytes_sent\":{},\"referer\":",
        e.status, e.bytes
    );
    push_json_str(&mut out, e.referer.as_deref().unwrap_or(b""));
    out.push_str(",\"user_agent\":");
    push_json_str(&mut out, e.user_agent.as_deref().unwrap_or(b""));
    let _ = write!(
        out,
        ",\"request_time\":{:.3},\"served\":",
        e.request_time.as_secs_f64()
    );
    push_json_str(&mut out, e.served.as_bytes());
    out.push_str("}\n");
    out
}

/// Where lines go.
#[derive(Debug)]
enum Dest {
    Off,
    Stderr,
    File { path: PathBuf, file: Mutex<File> },
}

/// The access log writer of one configuration.
#[derive(Debug)]
pub struct AccessLogger {
    dest: Dest,
    format: AccessLogFormat,
}

fn open_append(path: &std::path::Path) -> io::Result<File> {
    OpenOptions::new().create(true).append(true).open(path)
}

impl AccessLogger {
    /// A logger that writes nothing.
    pub fn off() -> Self {
        AccessLogger {
            dest: Dest::Off,
            format: AccessLogFormat::Combined,
        }
    }

    /// Opens the configured destination; a file that cannot be opened is
    /// reported on the error log and the access log falls back to stderr.
    pub fn open(cfg: &Config) -> Self {
        let dest = match &cfg.access_log {
            AccessLog::Off => Dest::Off,
            AccessLog::Stderr => Dest::Stderr,
            AccessLog::File(path) => match open_append(path) {
                Ok(f) => Dest::File {
                    path: path.clone(),
                    file: Mutex::new(f),
                },
                Err(e) => {
                    tracing::error!("access_log {}: {e}; writing it to stderr", path.display());
                    Dest::Stderr
                }
            },
        };
        AccessLogger {
            dest,
            format: cfg.access_log_format,
        }
    }

    /// Whether lines are written at all.
    pub fn enabled(&self) -> bool {
        !matches!(self.dest, Dest::Off)
    }

    /// Writes one line (errors are reported on the error log).
    pub fn write(&self, e: &Entry) {
        let line = match (&self.dest, self.format) {
            (Dest::Off, _) => return,
            (_, AccessLogFormat::Combined) => combined(e),
            (_, AccessLogFormat::Json) => json(e),
        };
        let r = match &self.dest {
            Dest::Off => Ok(()),
            Dest::Stderr => io::stderr().lock().write_all(line.as_bytes()),
            Dest::File { file, .. } => match file.lock() {
                Ok(mut f) => f.write_all(line.as_bytes()),
                Err(_) => Ok(()),
            },
        };
        if let Err(err) = r {
            tracing::error!("access_log write failed: {err}");
        }
    }

    /// Reopens the file (after logrotate moved it away).
    pub fn reopen(&self) -> io::Result<()> {
        if let Dest::File { path, file } = &self.dest {
            let fresh = open_append(path)?;
            if let Ok(mut f) = file.lock() {
                *f = fresh;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry() -> Entry {
        Entry {
            client: "192.0.2.7".parse().unwrap(),
            time: 971_185_736, // 2000-10-10 13:48:56 UTC
            method: "GET".into(),
            target: "/group1/M00/00/00/a.jpg?x=1".into(),
            protocol: "HTTP/1.1",
            status: 200,
            bytes: 2326,
            referer: Some(b"http://example.com/".to_vec()),
            user_agent: Some(b"curl/7.88.1".to_vec()),
            request_time: Duration::from_micros(3_400),
            served: "local".into(),
        }
    }

    #[test]
    fn combined_line() {
        assert_eq!(
            combined(&entry()),
            "192.0.2.7 - - [10/Oct/2000:13:48:56 +0000] \"GET /group1/M00/00/00/a.jpg?x=1 HTTP/1.1\" 200 2326 \"http://example.com/\" \"curl/7.88.1\" 0.003 local\n"
        );
        let mut e = entry();
        e.referer = None;
        e.user_agent = Some(b"a \"quoted\"\\ \x01\xc3\xa9".to_vec());
        e.served = "proxy:10.0.0.2".into();
        e.request_time = Duration::from_millis(1500);
        assert_eq!(
            combined(&e),
            "192.0.2.7 - - [10/Oct/2000:13:48:56 +0000] \"GET /group1/M00/00/00/a.jpg?x=1 HTTP/1.1\" 200 2326 \"-\" \"a \\x22quoted\\x22\\x5C \\x01\\xC3\\xA9\" 1.500 proxy:10.0.0.2\n"
        );
    }

    #[test]
    fn json_line_parses() {
        let mut e = entry();
        e.user_agent = Some(b"x\"\\\n\x01\xff".to_vec());
        e.referer = None;
        let line = json(&e);
        assert!(line.ends_with("}\n"));
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(v["time"], "2000-10-10T13:48:56+00:00");
        assert_eq!(v["remote_addr"], "192.0.2.7");
        assert_eq!(v["method"], "GET");
        assert_eq!(v["uri"], "/group1/M00/00/00/a.jpg?x=1");
        assert_eq!(v["protocol"], "HTTP/1.1");
        assert_eq!(v["status"], 200);
        assert_eq!(v["body_bytes_sent"], 2326);
        assert_eq!(v["referer"], "");
        assert_eq!(v["user_agent"], "x\"\\\n\u{1}\u{fffd}");
        assert_eq!(v["request_time"], 0.003);
        assert_eq!(v["served"], "local");
    }

    #[test]
    fn civil_dates() {
        assert_eq!(civil(0), (1970, 1, 1, 0, 0, 0));
        assert_eq!(civil(951_782_400), (2000, 2, 29, 0, 0, 0));
        assert_eq!(civil(1_700_000_000), (2023, 11, 14, 22, 13, 20));
        assert_eq!(civil(-1), (1969, 12, 31, 23, 59, 59));
        assert_eq!(civil(4_102_444_799), (2099, 12, 31, 23, 59, 59));
        // Extremes do not panic.
        let _ = time_local(i64::MAX / 2);
        let _ = time_local(i64::MIN / 2);
        assert_eq!(time_local(0), "01/Jan/1970:00:00:00 +0000");
        assert_eq!(time_iso8601(0), "1970-01-01T00:00:00+00:00");
    }

    #[test]
    fn protocols() {
        assert_eq!(protocol(Version::HTTP_10), "HTTP/1.0");
        assert_eq!(protocol(Version::HTTP_11), "HTTP/1.1");
        assert_eq!(protocol(Version::HTTP_2), "HTTP/2.0");
        assert_eq!(protocol(Version::HTTP_09), "HTTP/0.9");
        assert_eq!(protocol(Version::HTTP_3), "HTTP/3.0");
    }

    #[test]
    fn file_logger_reopens_after_rename() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("access.log");
        let l = AccessLogger {
            dest: Dest::File {
                path: p.clone(),
                file: Mutex::new(open_append(&p).unwrap()),
            },
            format: AccessLogFormat::Combined,
        };
        assert!(l.enabled());
        l.write(&entry());
        std::fs::rename(&p, dir.path().join("access.log.1")).unwrap();
        l.write(&entry());
        l.reopen().unwrap();
        l.write(&entry());
        let old = std::fs::read_to_string(dir.path().join("access.log.1")).unwrap();
        assert_eq!(old.lines().count(), 2);
        assert_eq!(std::fs::read_to_string(&p).unwrap().lines().count(), 1);
        assert!(!AccessLogger::off().enabled());
        AccessLogger::off().write(&entry());
        AccessLogger::off().reopen().unwrap();
    }
}
