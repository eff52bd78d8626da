//! Hot reload: re-read the configuration (and every file it names) on
//! SIGHUP or, with `watch_config = true`, when one of [`Config::files`]
//! changes. A valid result is swapped in atomically (requests in flight
//! finish on the old snapshot), new listeners are bound before the swap,
//! removed ones are closed after it; an invalid one is logged and the old
//! configuration keeps serving. Issue 5 item 2.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::ffi::OsString;
use std::fmt;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{mpsc, watch};

use crate::config::{Config, Diagnostic};
use crate::state::{App, State};
use crate::tls::TlsError;
use crate::transport::{self, BindError, Change, Kind, Listener};

/// Where the configuration comes from, and command-line overrides that
/// every reload re-applies.
#[derive(Debug, Clone)]
pub struct Source {
    /// The main `mod_fastdfs.conf`.
    pub path: PathBuf,
    /// `--listen` addresses; when not empty they replace `listen`.
    pub listen: Vec<SocketAddr>,
}

impl Source {
    /// A source reading `path` with no overrides.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Source {
            path: path.into(),
            listen: Vec::new(),
        }
    }

    /// Applies the overrides to a loaded configuration.
    pub fn apply(&self, config: &mut Config) {
        if !self.listen.is_empty() {
            config.listen = self.listen.clone();
        }
    }

    /// Reads the configuration and the files it names, overrides applied.
    pub fn load(&self) -> Result<(Config, Vec<Diagnostic>), ReloadError> {
        let loaded = Config::load(&self.path).map_err(ReloadError::Config)?;
        let mut config = loaded.config;
        self.apply(&mut config);
        Ok((config, loaded.warnings))
    }
}

/// Why a reload was rejected (the old configuration keeps serving).
#[derive(Debug)]
pub enum ReloadError {
    /// The configuration files have errors.
    Config(Vec<Diagnostic>),
    /// A certificate, key or CA file cannot be used.
    Tls(TlsError),
    /// A new listener cannot be bound.
    Bind(BindError),
}

impl fmt::Display for ReloadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReloadError::Config(d) => {
                write!(f, "{} configuration problem(s)", d.len())?;
                for p in d {
                    write!(f, "; {p}")?;
                }
                Ok(())
            }
            ReloadError::Tls(e) => e.fmt(f),
            ReloadError::Bind(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for ReloadError {}

/// What a successful reload changed.
#[derive(Debug, Default)]
pub struct Report {
    /// Listeners opened.
    pub added: Vec<(Kind, SocketAddr)>,
    /// Listeners closed.
    pub removed: Vec<(Kind, SocketAddr)>,
    /// Listeners whose kind changed.
    pub retyped: Vec<(Kind, SocketAddr)>,
    /// Non-fatal problems in the new files.
    pub warnings: Vec<Diagnostic>,
    /// Keys that changed but only take effect after a restart.
    pub restart_needed: Vec<&'static str>,
}

/// Listener changes between two configurations, keyed by configured address.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Plan {
    /// To bind.
    pub add: Vec<(Kind, SocketAddr)>,
    /// To close.
    pub remove: Vec<(Kind, SocketAddr)>,
    /// Kept, speaking another kind.
    pub retype: Vec<(Kind, SocketAddr)>,
}

/// Listener changes from the served set to the wanted one.
pub fn plan(serving: &BTreeMap<SocketAddr, Kind>, wanted: &[(Kind, SocketAddr)]) -> Plan {
    let mut add = Vec::new();
    let mut retype = Vec::new();
    for &(kind, addr) in wanted {
        match serving.get(&addr) {
            None => add.push((kind, addr)),
            Some(k) if *k != kind => retype.push((kind, addr)),
            Some(_) => {}
        }
    }
    let remove = serving
        .iter()
        .filter(|(a, _)| !wanted.iter().any(|(_, w)| w == *a))
        .map(|(a, k)| (*k, *a))
        .collect();
    Plan {
        add,
        remove,
        retype,
    }
}

/// Keys whose change a reload cannot apply (read once at start).
pub fn restart_needed(old: &Config, new: &Config) -> Vec<&'static str> {
    let mut out = Vec::new();
    if old.worker_threads != new.worker_threads {
        out.push("worker_threads");
    }
    if old.log_level != new.log_level {
        out.push("log_level");
    }
    if old.log_filename != new.log_filename {
        out.push("log_filename");
    }
    if old.max_connections != new.max_connections {
        out.push("max_connections");
    }
    if old.admin_listen != new.admin_listen {
        out.push("admin_listen");
    }
    out
}

struct Inner {
    /// Listeners being served: configured address → kind and bound address.
    serving: BTreeMap<SocketAddr, (Kind, Option<SocketAddr>)>,
    changes: mpsc::UnboundedSender<Change>,
}

/// Re-reads the configuration and applies it to a running server. One
/// reload runs at a time.
pub struct Reloader {
    app: Arc<App>,
    source: Source,
    inner: Mutex<Inner>,
    generation: watch::Sender<u64>,
}

impl fmt::Debug for Reloader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Reloader")
            .field("source", &self.source)
            .field("generation", &*self.generation.borrow())
            .finish_non_exhaustive()
    }
}

impl Reloader {
    /// The shared state it swaps.
    pub fn app(&self) -> &Arc<App> {
        &self.app
    }

    /// Where it reads from.
    pub fn source(&self) -> &Source {
        &self.source
    }

    /// Counts successful reloads; changes after each.
    pub fn generation(&self) -> watch::Receiver<u64> {
        self.generation.subscribe()
    }

    /// Listeners served now: kind, configured address, bound address.
    pub fn listeners(&self) -> Vec<(Kind, SocketAddr, Option<SocketAddr>)> {
        let inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        inner
            .serving
            .iter()
            .map(|(a, (k, b))| (*k, *a, *b))
            .collect()
    }

    /// Re-reads everything and swaps it in, or leaves the running
    /// configuration alone and says why. Logs either way. Needs a Tokio
    /// runtime (new listeners register with it).
    pub fn reload(&self) -> Result<Report, ReloadError> {
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        super::sdnotify::reloading();
        let result = self.reload_locked(&mut inner);
        super::sdnotify::ready();
        match &result {
            Ok(r) => {
                for w in &r.warnings {
                    tracing::warn!("reload: {w}");
                }
                for k in &r.restart_needed {
                    tracing::warn!("reload: {k} changed; it takes effect after a restart");
                }
                tracing::info!(
                    "reloaded {}: {} listener(s) added, {} removed",
                    self.source.path.display(),
                    r.added.len(),
                    r.removed.len()
                );
            }
            Err(ReloadError::Config(problems)) => {
                for p in problems {
                    tracing::error!("reload rejected: {p}");
                }
                tracing::error!(
                    "reload of {} rejected ({} problem(s)); still serving the previous configuration",
                    self.source.path.display(),
                    problems.len()
                );
            }
            Err(e) => tracing::error!(
                "reload of {} rejected: {e}; still serving the previous configuration",
                self.source.path.display()
            ),
        }
        result
    }

    fn reload_locked(&self, inner: &mut Inner) -> Result<Report, ReloadError> {
        let (config, warnings) = self.source.load()?;
        let state = State::try_new(config).map_err(ReloadError::Tls)?;
        let serving: BTreeMap<SocketAddr, Kind> =
            inner.serving.iter().map(|(a, (k, _))| (*a, *k)).collect();
        let Plan {
            add,
            remove,
            retype,
        } = plan(&serving, &transport::wanted(&state.config));
        // Bind before the swap: a port that cannot be had rejects the reload.
        let mut bound = Vec::with_capacity(add.len());
        for &(kind, addr) in &add {
            match transport::bind(addr) {
                Ok(tcp) => bound.push(Listener { kind, addr, tcp }),
                Err(error) => return Err(ReloadError::Bind(BindError { kind, addr, error })),
            }
        }
        let restart = restart_needed(&self.app.state().config, &state.config);
        self.app.replace_state(state);
        for l in bound {
            let local = l.tcp.local_addr().ok();
            inner.serving.insert(l.addr, (l.kind, local));
            let _ = inner.changes.send(Change::Add(l));
        }
        for &(_, addr) in &remove {
            inner.serving.remove(&addr);
            let _ = inner.changes.send(Change::Remove(addr));
        }
        for &(kind, addr) in &retype {
            if let Some(e) = inner.serving.get_mut(&addr) {
                e.0 = kind;
            }
            let _ = inner.changes.send(Change::Retype(addr, kind));
        }
        self.generation.send_modify(|g| *g = g.wrapping_add(1));
        Ok(Report {
            added: add,
            removed: remove,
            retyped: retype,
            warnings,
            restart_needed: restart,
        })
    }
}

/// A server ready to run: listeners bound, state built, reloader attached.
#[derive(Debug)]
pub struct Prepared {
    /// The reloader; `reloader.reload()` is what SIGHUP calls.
    pub reloader: Arc<Reloader>,
    listeners: Vec<Listener>,
    changes: mpsc::UnboundedReceiver<Change>,
}

impl Prepared {
    /// Builds the state for `config` (TLS files must be usable) and binds
    /// its listeners. `source` is what reloads read. Needs a Tokio runtime.
    pub fn new(config: Config, source: Source) -> Result<Self, ReloadError> {
        let state = State::try_new(config).map_err(ReloadError::Tls)?;
        let listeners = transport::bind_all(&state.config).map_err(ReloadError::Bind)?;
        let app = App::with_state(state);
        let (tx, changes) = mpsc::unbounded_channel();
        let serving = listeners
            .iter()
            .map(|l| (l.addr, (l.kind, l.tcp.local_addr().ok())))
            .collect();
        let reloader = Arc::new(Reloader {
            app,
            source,
            inner: Mutex::new(Inner {
                serving,
                changes: tx,
            }),
            generation: watch::channel(0).0,
        });
        Ok(Prepared {
            reloader,
            listeners,
            changes,
        })
    }

    /// The shared state.
    pub fn app(&self) -> Arc<App> {
        self.reloader.app.clone()
    }

    /// Serves until `shutdown` resolves, reloading when watched files
    /// change (if `watch_config`). Signals and systemd notification are
    /// the caller's (`process::serve_reloadable`).
    pub async fn run(self, shutdown: impl Future<Output = ()>) -> io::Result<()> {
        self.run_and_tell(None, || {}, shutdown).await
    }

    /// [`Prepared::run`] with connections served on `workers` when given,
    /// calling `ready` once every listener, the admin one included, is
    /// bound and accepting.
    pub async fn run_and_tell(
        self,
        workers: Option<Arc<transport::Workers>>,
        ready: impl FnOnce(),
        shutdown: impl Future<Output = ()>,
    ) -> io::Result<()> {
        let app = self.app();
        let watcher = tokio::spawn(watch_files(self.reloader.clone()));
        let r =
            transport::serve_and_tell(self.listeners, app, self.changes, workers, ready, shutdown)
                .await;
        watcher.abort();
        r
    }
}

/// Files to watch grouped by directory: the directory is watched (editors
/// and certificate tools replace files by renaming), events are matched by
/// file name.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Targets {
    /// Directory → names in it.
    pub dirs: HashMap<PathBuf, HashSet<OsString>>,
}

impl Targets {
    /// Groups `files` (made absolute against `cwd`) by their directory.
    pub fn new(files: &[PathBuf], cwd: &Path) -> Self {
        let mut dirs: HashMap<PathBuf, HashSet<OsString>> = HashMap::new();
        for f in files {
            let abs = cwd.join(f);
            if let (Some(dir), Some(name)) = (abs.parent(), abs.file_name()) {
                dirs.entry(dir.to_path_buf())
                    .or_default()
                    .insert(name.to_os_string());
            }
        }
        Targets { dirs }
    }

    /// Whether an event path is one of the files.
    pub fn matches(&self, path: &Path) -> bool {
        match (path.parent(), path.file_name()) {
            (Some(d), Some(n)) => self.dirs.get(d).is_some_and(|names| names.contains(n)),
            _ => false,
        }
    }
}

/// Whether a filesystem event can change a file's content.
fn is_content_change(kind: &notify::EventKind) -> bool {
    use notify::event::{AccessKind, AccessMode, ModifyKind};
    use notify::EventKind;
    match kind {
        // Closing a file written to: the most reliable "done" signal.
        EventKind::Access(AccessKind::Close(AccessMode::Write)) => true,
        EventKind::Access(_) => false,
        EventKind::Modify(ModifyKind::Metadata(_)) => false,
        EventKind::Any
        | EventKind::Create(_)
        | EventKind::Modify(_)
        | EventKind::Remove(_)
        | EventKind::Other => true,
    }
}

/// Quiet time after a change before reloading (editors write in steps).
const SETTLE: Duration = Duration::from_millis(150);

/// Watches the current configuration's files while `watch_config` is on
/// and reloads when one changes; follows the file list across reloads.
pub async fn watch_files(reloader: Arc<Reloader>) {
    let mut generation = reloader.generation();
    let cwd = std::env::current_dir().unwrap_or_default();
    loop {
        generation.borrow_and_update();
        let config = reloader.app.state().config.clone();
        let (tx, mut rx) = mpsc::unbounded_channel::<notify::Event>();
        let mut targets = Targets::new(&config.files, &cwd);
        // Watch canonical directories so event paths compare equal.
        targets.dirs = targets
            .dirs
            .into_iter()
            .map(|(d, n)| (d.canonicalize().unwrap_or(d), n))
            .collect();
        let _watcher = if config.watch_config {
            start_watcher(&targets, tx)
        } else {
            None
        };
        loop {
            tokio::select! {
                changed = generation.changed() => {
                    if changed.is_err() {
                        return;
                    }
                    break;
                }
                ev = rx.recv() => {
                    let Some(ev) = ev else { break };
                    if !(is_content_change(&ev.kind) && ev.paths.iter().any(|p| targets.matches(p))) {
                        continue;
                    }
                    tokio::time::sleep(SETTLE).await;
                    while rx.try_recv().is_ok() {}
                    tracing::info!("configuration file changed: {}", ev.paths.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", "));
                    // Errors are logged by reload; keep watching the old files.
                    let _ = reloader.reload();
                }
            }
        }
    }
}

fn start_watcher(
    targets: &Targets,
    tx: mpsc::UnboundedSender<notify::Event>,
) -> Option<notify::RecommendedWatcher> {
    use notify::{RecursiveMode, Watcher};
    let handler = move |ev: notify::Result<notify::Event>| match ev {
        Ok(ev) => {
            let _ = tx.send(ev);
        }
        Err(e) => tracing::warn!("watch_config: {e}"),
    };
    let mut w = match notify::recommended_watcher(handler) {
        Ok(w) => w,
        Err(e) => {
            tracing::error!("watch_config: cannot watch files: {e}");
            return None;
        }
    };
    for dir in targets.dirs.keys() {
        if let Err(e) = w.watch(dir, RecursiveMode::NonRecursive) {
            tracing::error!("watch_config: cannot watch {}: {e}", dir.display());
        }
    }
    Some(w)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn a(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    #[test]
    fn plan_adds_removes_and_retypes() {
        let serving: BTreeMap<_, _> = [
            (a("127.0.0.1:80"), Kind::Http),
            (a("127.0.0.1:81"), Kind::Http),
            (a("127.0.0.1:443"), Kind::Https),
        ]
        .into();
        let wanted = [
            (Kind::Http, a("127.0.0.1:80")),
            (Kind::Https, a("127.0.0.1:81")),
            (Kind::Https, a("127.0.0.1:8443")),
        ];
        let Plan {
            add,
            remove,
            retype,
        } = plan(&serving, &wanted);
        assert_eq!(add, [(Kind::Https, a("127.0.0.1:8443"))]);
        assert_eq!(remove, [(Kind::Https, a("127.0.0.1:443"))]);
        assert_eq!(retype, [(Kind::Https, a("127.0.0.1:81"))]);
    }

    #[test]
    fn plan_same_set_changes_nothing() {
        let serving: BTreeMap<_, _> = [(a("127.0.0.1:80"), Kind::Http)].into();
        assert_eq!(
            plan(&serving, &[(Kind::Http, a("127.0.0.1:80"))]),
            Plan::default()
        );
        assert_eq!(plan(&BTreeMap::new(), &[]), Plan::default());
    }

    #[test]
    fn targets_group_by_directory_and_match_names() {
        let t = Targets::new(
            &[
                PathBuf::from("/etc/fdfs/mod_fastdfs.conf"),
                PathBuf::from("http.conf"),
                PathBuf::from("/etc/fdfs/tls/cert.pem"),
            ],
            Path::new("/etc/fdfs"),
        );
        assert_eq!(t.dirs.len(), 2);
        assert!(t.matches(Path::new("/etc/fdfs/http.conf")));
        assert!(t.matches(Path::new("/etc/fdfs/mod_fastdfs.conf")));
        assert!(t.matches(Path::new("/etc/fdfs/tls/cert.pem")));
        assert!(!t.matches(Path::new("/etc/fdfs/tls/key.pem")));
        assert!(!t.matches(Path::new("/etc/fdfs/http.conf.swp")));
        assert!(!t.matches(Path::new("/")));
    }

    #[test]
    fn only_content_events_count() {
        use notify::event::{AccessKind, CreateKind, MetadataKind, ModifyKind, RemoveKind};
        use notify::EventKind;
        assert!(!is_content_change(&EventKind::Access(AccessKind::Any)));
        assert!(!is_content_change(&EventKind::Access(AccessKind::Close(
            notify::event::AccessMode::Read
        ))));
        assert!(is_content_change(&EventKind::Access(AccessKind::Close(
            notify::event::AccessMode::Write
        ))));
        assert!(!is_content_change(&EventKind::Modify(
            ModifyKind::Metadata(MetadataKind::Any)
        )));
        assert!(is_content_change(&EventKind::Modify(ModifyKind::Any)));
        assert!(is_content_change(&EventKind::Create(CreateKind::File)));
        assert!(is_content_change(&EventKind::Remove(RemoveKind::File)));
    }
}
