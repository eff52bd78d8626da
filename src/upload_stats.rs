//! The upload API's shared counters (docs/upload.md §7): uploads and
//! deletes by application and result, bytes stored, a duration
//! histogram, and the slots that cap concurrent uploads. Kept across
//! reloads in [`crate::state::App`]; rendered on `/metrics` and `/status`.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use tokio::sync::Semaphore;

use crate::metrics::Histogram;

/// Upload API counters and the concurrency slots.
#[derive(Debug)]
pub struct UploadStats {
    /// One permit per upload in progress (`upload.max_concurrent`, fixed at start).
    pub slots: Semaphore,
    /// The number of slots.
    pub capacity: usize,
    /// (operation, app, result) → count.
    counts: Mutex<BTreeMap<(&'static str, String, &'static str), u64>>,
    /// Bytes stored by successful uploads and appends.
    bytes: AtomicU64,
    /// Time of each upload, request head to answer.
    duration: Histogram,
}

impl UploadStats {
    /// Counters with `capacity` upload slots.
    pub fn new(capacity: usize) -> Self {
        UploadStats {
            slots: Semaphore::new(capacity),
            capacity,
            counts: Mutex::default(),
            bytes: AtomicU64::default(),
            duration: Histogram::default(),
        }
    }

    /// Records one upload/append/delete (`op`) of `app` (empty when not
    /// authenticated) with its result label (`ok`, or an error code).
    pub fn record(
        &self,
        op: &'static str,
        app: &str,
        result: &'static str,
        bytes: u64,
        d: Duration,
    ) {
        if let Ok(mut m) = self.counts.lock() {
            *m.entry((op, app.to_owned(), result)).or_default() += 1;
        }
        if result == "ok" {
            self.bytes.fetch_add(bytes, Ordering::Relaxed);
        }
        if op != "delete" {
            self.duration.observe(d);
        }
    }

    /// Count of `op` with `result` over all applications.
    pub fn count(&self, op: &str, result: Option<&str>) -> u64 {
        self.counts.lock().map_or(0, |m| {
            m.iter()
                .filter(|((o, _, r), _)| *o == op && result.map_or(true, |want| *r == want))
                .map(|(_, n)| *n)
                .sum()
        })
    }

    /// Uploads in progress.
    pub fn in_progress(&self) -> usize {
        self.capacity.saturating_sub(self.slots.available_permits())
    }

    /// Prometheus lines.
    pub fn render(&self, out: &mut String) {
        out.push_str("# HELP fdfs_upload_requests_total Upload API requests, by operation, application and result.\n# TYPE fdfs_upload_requests_total counter\n");
        if let Ok(m) = self.counts.lock() {
            for ((op, app, result), n) in m.iter() {
                let _ = writeln!(
                    out,
                    "fdfs_upload_requests_total{{op=\"{op}\",app=\"{app}\",result=\"{result}\"}} {n}"
                );
            }
        }
        let _ = writeln!(
            out,
            "# HELP fdfs_upload_bytes_total Bytes stored through the upload API.\n# TYPE fdfs_upload_bytes_total counter\nfdfs_upload_bytes_total {}\n# HELP fdfs_upload_in_progress Uploads in progress.\n# TYPE fdfs_upload_in_progress gauge\nfdfs_upload_in_progress {}",
            self.bytes.load(Ordering::Relaxed),
            self.in_progress()
        );
        out.push_str("# HELP fdfs_upload_duration_seconds Time of uploads and appends.\n# TYPE fdfs_upload_duration_seconds histogram\n");
        self.duration
            .render(out, "fdfs_upload_duration_seconds", "");
    }

    /// The `uploads` object of `/status`.
    pub fn status_json(&self) -> String {
        format!(
            "{{\"ok\":{},\"failed\":{},\"deleted\":{},\"bytes\":{},\"in_progress\":{}}}",
            self.count("upload", Some("ok")) + self.count("append", Some("ok")),
            (self.count("upload", None) + self.count("append", None)).saturating_sub(
                self.count("upload", Some("ok")) + self.count("append", Some("ok"))
            ),
            self.count("delete", Some("ok")),
            self.bytes.load(Ordering::Relaxed),
            self.in_progress()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_and_render() {
        let s = UploadStats::new(2);
        s.record("upload", "shop", "ok", 10, Duration::from_millis(5));
        s.record("upload", "shop", "too_large", 0, Duration::from_millis(5));
        s.record("delete", "shop", "ok", 0, Duration::ZERO);
        assert_eq!(
            s.status_json(),
            "{\"ok\":1,\"failed\":1,\"deleted\":1,\"bytes\":10,\"in_progress\":0}"
        );
        let mut out = String::new();
        s.render(&mut out);
        assert!(
            out.contains("fdfs_upload_requests_total{op=\"upload\",app=\"shop\",result=\"ok\"} 1")
        );
        assert!(out.contains("fdfs_upload_duration_seconds_count 2"));
    }
}
