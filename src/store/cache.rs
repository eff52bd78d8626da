//! Open-file cache: keeps descriptors and metadata of recently served files
//! so the hot path costs no `open`/`stat` (what nginx's `open_file_cache`
//! does). An entry's descriptor is trusted for [`OpenFileCache::TTL`] and
//! then revalidated against the path (inode, size, mtime); the store lookup
//! (`local::open_inside`) also takes size and mtime from a fresh `fstat` on
//! every request and reopens when the path names another inode, so growing
//! appender files and replaced files are seen at once. A path found absent
//! is remembered for [`ABSENT_TTL`] only, so the redirect and proxy path
//! pays no failed `open` per request while a file that lands during
//! replication lag is served locally at most that much later.

use std::collections::HashMap;
use std::fs::{File, Metadata};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How long a path found absent is answered "absent" without looking.
pub const ABSENT_TTL: Duration = Duration::from_millis(100);
/// Most paths remembered as absent.
const MAX_ABSENT: usize = 4096;

/// A cached open file.
#[derive(Debug, Clone)]
pub struct Cached {
    /// The open descriptor, shared with in-flight responses.
    pub file: Arc<File>,
    /// Metadata at open (or last revalidation) time.
    pub len: u64,
    /// Modification time, Unix seconds.
    pub mtime: i64,
    ino: u64,
    dev: u64,
    checked: Instant,
}

/// Bounded map of path → open file.
#[derive(Debug)]
pub struct OpenFileCache {
    /// Entries; the mutex is held only for map operations, never across I/O.
    /// Keyed by the path's bytes (hashing a `Path` walks its components).
    map: Mutex<HashMap<Box<[u8]>, Cached, PathHash>>,
    /// Upper bound on cached descriptors, kept well under RLIMIT_NOFILE.
    max: usize,
    /// Opens answered from a cached descriptor.
    hits: AtomicU64,
    /// Opens that opened the file.
    misses: AtomicU64,
    /// Open store directories, for resolving paths beneath them.
    roots: Mutex<Vec<Root>>,
    /// Paths found absent and when (see [`ABSENT_TTL`]); bounded by
    /// [`MAX_ABSENT`].
    absent: Mutex<HashMap<Box<[u8]>, Instant, PathHash>>,
}

/// An open store directory and when it was last checked to still be the
/// directory at its path.
#[derive(Debug)]
struct Root {
    path: Box<Path>,
    dir: Arc<File>,
    dev: u64,
    ino: u64,
    checked: Instant,
}

impl OpenFileCache {
    /// How long an entry is trusted without looking at the path again.
    pub const TTL: Duration = Duration::from_secs(1);

    /// A cache holding at most `max` descriptors (0 disables caching).
    pub fn new(max: usize) -> Self {
        OpenFileCache {
            map: Mutex::new(HashMap::default()),
            max: max.min(fd_budget()),
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
            roots: Mutex::new(Vec::new()),
            absent: Mutex::new(HashMap::default()),
        }
    }

    /// Whether `path` was found absent less than [`ABSENT_TTL`] ago.
    pub fn known_absent(&self, path: &Path) -> bool {
        self.absent
            .lock()
            .is_ok_and(|m| m.get(key(path)).is_some_and(|t| t.elapsed() < ABSENT_TTL))
    }

    /// Remembers that `path` was just found absent (not when caching is off).
    pub fn note_absent(&self, path: &Path) {
        if self.max == 0 {
            return;
        }
        let now = Instant::now();
        if let Ok(mut m) = self.absent.lock() {
            if m.len() >= MAX_ABSENT && !m.contains_key(key(path)) {
                m.retain(|_, t| now.duration_since(*t) < ABSENT_TTL);
                if m.len() >= MAX_ABSENT {
                    m.clear();
                }
            }
            m.insert(key(path).into(), now);
        }
    }

    /// An open descriptor of the directory `path`, revalidated against the
    /// path after [`Self::TTL`] (a remounted or replaced store is seen).
    pub fn root(&self, path: &Path) -> std::io::Result<Arc<File>> {
        let now = Instant::now();
        let mut roots = self.roots.lock().unwrap_or_else(|p| p.into_inner());
        let at = roots.iter().position(|r| &*r.path == path);
        if let Some(r) = at.map(|i| &mut roots[i]) {
            if now.duration_since(r.checked) < Self::TTL {
                return Ok(r.dir.clone());
            }
            let meta = std::fs::metadata(path)?;
            if (meta.dev(), meta.ino()) == (r.dev, r.ino) {
                r.checked = now;
                return Ok(r.dir.clone());
            }
        }
        let dir = File::open(path)?;
        let meta = dir.metadata()?;
        let root = Root {
            path: path.into(),
            dir: Arc::new(dir),
            dev: meta.dev(),
            ino: meta.ino(),
            checked: now,
        };
        let dir = root.dir.clone();
        match at {
            Some(i) => roots[i] = root,
            None => roots.push(root),
        }
        Ok(dir)
    }

    /// Caches `file`, just opened at `path`, and returns its entry; `None`
    /// (and nothing cached) when it is not a regular file.
    pub fn insert(&self, path: &Path, file: File) -> std::io::Result<Option<Cached>> {
        self.misses.fetch_add(1, Ordering::Relaxed);
        let meta = file.metadata()?;
        if !meta.is_file() {
            return Ok(None);
        }
        let c = Self::entry(file, &meta, Instant::now());
        self.put(path, c.clone());
        Ok(Some(c))
    }

    /// Opens `path` (following symlinks) through the cache: a fresh entry,
    /// else the cached descriptor if the path still names its inode, else
    /// a new descriptor (only regular files are served).
    pub fn open(&self, path: &Path) -> std::io::Result<Cached> {
        if let Some(hit) = self.fresh(path) {
            return Ok(hit);
        }
        let meta = std::fs::metadata(path)?;
        if let Some(hit) = self.same_file(path, meta.dev(), meta.ino()) {
            return Ok(Cached {
                len: meta.len(),
                mtime: meta.mtime(),
                ..hit
            });
        }
        self.forget(path);
        self.insert(path, File::open(path)?)?
            .ok_or_else(|| std::io::Error::other("not a regular file"))
    }

    /// The entry for `path` if it was opened or revalidated less than
    /// [`Self::TTL`] ago: the hot path, with no system call at all.
    pub fn fresh(&self, path: &Path) -> Option<Cached> {
        let hit = self.get(path)?;
        let fresh = hit.checked.elapsed() < Self::TTL;
        if fresh {
            self.hits.fetch_add(1, Ordering::Relaxed);
        }
        fresh.then_some(hit)
    }

    /// The cached descriptor of `path` if it is still the file now at the
    /// path (same device and inode), whatever its age. The caller has just
    /// checked the path, so the entry counts as fresh again for
    /// [`Self::TTL`].
    pub fn same_file(&self, path: &Path, dev: u64, ino: u64) -> Option<Cached> {
        let mut m = self.map.lock().ok()?;
        let hit = m.get_mut(key(path))?;
        if hit.dev == dev && hit.ino == ino {
            hit.checked = Instant::now();
            self.hits.fetch_add(1, Ordering::Relaxed);
            Some(hit.clone())
        } else {
            None
        }
    }

    /// Whether `path` has an entry (fresh or not).
    pub fn contains(&self, path: &Path) -> bool {
        self.map.lock().is_ok_and(|m| m.contains_key(key(path)))
    }

    /// Drops the entry for `path` (after a failed validation).
    pub fn forget(&self, path: &Path) {
        if let Ok(mut m) = self.map.lock() {
            m.remove(key(path));
        }
    }

    /// Opens answered from a cached descriptor since start.
    pub fn hits(&self) -> u64 {
        self.hits.load(Ordering::Relaxed)
    }

    /// Opens that had to open the file since start.
    pub fn misses(&self) -> u64 {
        self.misses.load(Ordering::Relaxed)
    }

    /// Number of cached descriptors.
    pub fn len(&self) -> usize {
        self.map.lock().map(|m| m.len()).unwrap_or(0)
    }

    /// Whether nothing is cached.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn entry(file: File, meta: &Metadata, now: Instant) -> Cached {
        Cached {
            file: Arc::new(file),
            len: meta.len(),
            mtime: meta.mtime(),
            ino: meta.ino(),
            dev: meta.dev(),
            checked: now,
        }
    }

    fn get(&self, path: &Path) -> Option<Cached> {
        self.map.lock().ok()?.get(key(path)).cloned()
    }

    fn put(&self, path: &Path, c: Cached) {
        if self.max == 0 {
            return;
        }
        if let Ok(mut m) = self.map.lock() {
            if m.len() >= self.max && !m.contains_key(key(path)) {
                // Evict an arbitrary eighth: cheap, and good enough for a
                // working set larger than the cache.
                let drop: Vec<Box<[u8]>> = m.keys().take(self.max / 8 + 1).cloned().collect();
                for k in drop {
                    m.remove(&k);
                }
            }
            m.insert(key(path).into(), c);
        }
    }
}

/// Half the soft descriptor limit: the rest stays for sockets.
fn fd_budget() -> usize {
    let soft = std::fs::read_to_string("/proc/self/limits")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Max open files"))
                .and_then(|l| l.split_whitespace().nth(3).map(str::to_owned))
        })
        .and_then(|v| v.parse::<usize>().ok())
        .unwrap_or(1024);
    soft / 2
}

/// A word-at-a-time multiplicative hash (FxHash's step) over a path's
/// bytes: a few cycles per 8 bytes where SipHash costs far more per key.
/// Collision flooding is not a concern: only files that exist in the
/// store become keys (misses are never cached).
#[derive(Debug, Clone, Copy, Default)]
struct PathHash;

impl std::hash::BuildHasher for PathHash {
    type Hasher = WordHash;
    fn build_hasher(&self) -> WordHash {
        WordHash(0)
    }
}

/// The hash state.
struct WordHash(u64);

impl WordHash {
    fn add(&mut self, word: u64) {
        self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(0x517c_c1b7_2722_0a95);
    }
}

impl std::hash::Hasher for WordHash {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        let mut words = bytes.chunks_exact(8);
        for w in &mut words {
            let mut b = [0u8; 8];
            b.copy_from_slice(w);
            self.add(u64::from_le_bytes(b));
        }
        let rest = words.remainder();
        let mut b = [0u8; 8];
        b[..rest.len()].copy_from_slice(rest);
        self.add(u64::from_le_bytes(b) ^ (rest.len() as u64) << 56);
    }
}

/// A path's bytes, the cache key.
fn key(path: &Path) -> &[u8] {
    path.as_os_str().as_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hit_then_revalidate_after_replace() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f");
        std::fs::write(&p, b"one").unwrap();
        let c = OpenFileCache::new(16);
        assert_eq!(c.open(&p).unwrap().len, 3);
        assert_eq!(c.len(), 1);
        assert_eq!((c.hits(), c.misses()), (0, 1));
        assert_eq!(c.open(&p).unwrap().len, 3);
        assert_eq!((c.hits(), c.misses()), (1, 1));
        // Replaced by a new inode: after the TTL the new file is seen.
        std::fs::remove_file(&p).unwrap();
        std::fs::write(&p, b"three").unwrap();
        assert_eq!(c.fresh(&p).map(|h| h.len), Some(3));
        std::thread::sleep(OpenFileCache::TTL + Duration::from_millis(50));
        assert!(c.fresh(&p).is_none());
        assert_eq!(c.open(&p).unwrap().len, 5);
    }

    #[test]
    fn a_revalidated_entry_is_fresh_again() {
        use std::os::unix::fs::MetadataExt;
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f");
        std::fs::write(&p, b"one").unwrap();
        let c = OpenFileCache::new(16);
        c.open(&p).unwrap();
        std::thread::sleep(OpenFileCache::TTL + Duration::from_millis(50));
        assert!(c.fresh(&p).is_none(), "stale after the TTL");
        let m = std::fs::metadata(&p).unwrap();
        assert!(c.same_file(&p, m.dev(), m.ino() + 1).is_none());
        assert!(c.fresh(&p).is_none(), "another inode does not refresh");
        assert!(c.same_file(&p, m.dev(), m.ino()).is_some());
        assert!(
            c.fresh(&p).is_some(),
            "fresh again once the path was checked"
        );
    }

    #[test]
    fn absent_paths_are_remembered_briefly_and_bounded() {
        let dir = tempfile::tempdir().unwrap();
        let c = OpenFileCache::new(4);
        let p = dir.path().join("lands-later");
        assert!(!c.known_absent(&p));
        c.note_absent(&p);
        assert!(c.known_absent(&p));
        std::thread::sleep(ABSENT_TTL + Duration::from_millis(20));
        assert!(!c.known_absent(&p), "remembered past ABSENT_TTL");
        for i in 0..MAX_ABSENT + 10 {
            c.note_absent(&dir.path().join(format!("a{i}")));
        }
        assert!(c.absent.lock().unwrap().len() <= MAX_ABSENT);
        // Caching off: nothing remembered.
        let off = OpenFileCache::new(0);
        off.note_absent(&p);
        assert!(!off.known_absent(&p));
    }

    #[test]
    fn misses_are_not_cached_and_bound_holds() {
        let dir = tempfile::tempdir().unwrap();
        let c = OpenFileCache::new(4);
        assert!(c.open(&dir.path().join("nope")).is_err());
        assert!(c.is_empty());
        for i in 0..20 {
            let p = dir.path().join(format!("f{i}"));
            std::fs::write(&p, b"x").unwrap();
            c.open(&p).unwrap();
            assert!(c.len() <= 4);
        }
    }
}
