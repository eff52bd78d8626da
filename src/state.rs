//! Shared server state: the current configuration (swapped atomically on
//! reload) and the caches that outlive a reload.

use std::net::IpAddr;
use std::sync::Arc;

use arc_swap::ArcSwap;

use crate::access_log::AccessLogger;
use crate::config::Config;
use crate::limits::RateLimiter;
use crate::metrics::Metrics;
use crate::net;
use crate::resolve::cluster::{Cluster, Tracked};
use crate::store::OpenFileCache;
use crate::tls::{self, PeerHttp, TlsError};

/// Everything derived from one configuration. Immutable; replaced whole.
#[derive(Debug)]
pub struct State {
    /// The loaded configuration.
    pub config: Arc<Config>,
    /// This node's own addresses (a decoded source among them is "us").
    pub local_ips: Vec<IpAddr>,
    /// Per-client-IP request rate limit; `None` = unlimited.
    pub limiter: Option<Arc<RateLimiter>>,
    /// The access log of this configuration.
    pub access_log: AccessLogger,
    /// TLS server configuration of the `tls_listen` listeners.
    pub tls: Option<Arc<rustls::ServerConfig>>,
    /// How peers are spoken to over HTTP (`peer_scheme`, `peer_ca_file`).
    pub peer_http: PeerHttp,
}

impl State {
    /// Derives the runtime state from a configuration. A TLS file that
    /// cannot be used is logged and left out; see [`State::try_new`].
    pub fn new(config: Config) -> Self {
        let tls = tls::server_config_for(&config).unwrap_or_else(|e| {
            tracing::error!("{e}");
            None
        });
        let peer_http = tls::peer_http_for(&config).unwrap_or_else(|e| {
            tracing::error!("peer_ca_file: {e}; peers are not proxied to over HTTPS");
            PeerHttp::NoCa
        });
        Self::with_tls(config, tls, peer_http)
    }

    /// Like [`State::new`], failing when a TLS file cannot be used.
    pub fn try_new(config: Config) -> Result<Self, TlsError> {
        let tls = tls::server_config_for(&config)?;
        let peer_http = tls::peer_http_for(&config)?;
        Ok(Self::with_tls(config, tls, peer_http))
    }

    fn with_tls(
        config: Config,
        tls: Option<Arc<rustls::ServerConfig>>,
        peer_http: PeerHttp,
    ) -> Self {
        let local_ips = net::local_addrs(
            config.local_ip_addrs.as_deref(),
            &config.if_alias_prefix,
            &config.listen,
        );
        State {
            limiter: RateLimiter::from_config(&config).map(Arc::new),
            access_log: AccessLogger::open(&config),
            config: Arc::new(config),
            local_ips,
            tls,
            peer_http,
        }
    }

    /// Whether `ip` is one of this node's addresses.
    pub fn is_local(&self, ip: IpAddr) -> bool {
        self.local_ips.contains(&net::canonical(ip))
    }
}

/// Process-wide state shared by every connection.
#[derive(Debug)]
pub struct App {
    /// Current state; requests take a snapshot, so a reload never changes
    /// the rules under an in-flight request.
    current: ArcSwap<State>,
    /// Open descriptors of recently served files, kept across reloads.
    pub files: OpenFileCache,
    /// Counters for `/metrics`, kept across reloads.
    pub metrics: Metrics,
    /// Not-local machinery (tracker view, peer health, proxy client), kept
    /// across reloads.
    pub lag: crate::resolve::Lag,
    /// Upload API counters and concurrency slots, kept across reloads.
    pub uploads: crate::upload_stats::UploadStats,
}

impl App {
    /// Creates the shared state for `config`.
    pub fn new(config: Config) -> Arc<Self> {
        Self::with_state(State::new(config))
    }

    /// Creates the shared state from an already derived [`State`].
    pub fn with_state(state: State) -> Arc<Self> {
        let slots = state
            .config
            .upload
            .as_ref()
            .map_or(32, |u| u.max_concurrent);
        Arc::new(App {
            uploads: crate::upload_stats::UploadStats::new(slots),
            current: ArcSwap::from_pointee(state),
            files: OpenFileCache::new(10_000),
            metrics: Metrics::new(),
            lag: crate::resolve::Lag::default(),
        })
    }

    /// A snapshot of the current state.
    pub fn state(&self) -> Arc<State> {
        self.current.load_full()
    }

    /// Swaps in a new configuration; in-flight requests keep the old one.
    pub fn replace(&self, config: Config) {
        self.replace_state(State::new(config));
    }

    /// Swaps in an already derived [`State`] (reload). A rate limit with
    /// the same rate and burst keeps its clients' buckets.
    pub fn replace_state(&self, mut state: State) {
        let old = self.current.load();
        if let (Some(new), Some(kept)) = (&state.limiter, &old.limiter) {
            if new.same_quota(kept) {
                state.limiter = Some(kept.clone());
            }
        }
        self.current.store(Arc::new(state));
    }
}

/// The tracker refresh reads the current configuration and refreshes the
/// view kept across reloads; whoever starts serving an [`App`] starts it
/// ([`crate::resolve::cluster::spawn_refresher`]).
impl Tracked for App {
    fn config(&self) -> Arc<Config> {
        self.state().config.clone()
    }

    fn cluster(&self) -> &Cluster {
        &self.lag.cluster
    }

    fn peers(&self) -> &crate::resolve::peers::PeerTable {
        &self.lag.peers
    }
}

/// The reachability probes read the current configuration and the tracker
/// view and keep their results across reloads
/// ([`crate::resolve::reach::spawn_prober`], started with the refresher).
impl crate::resolve::reach::Probed for App {
    fn config(&self) -> Arc<Config> {
        self.state().config.clone()
    }

    fn local_ips(&self) -> Vec<IpAddr> {
        self.state().local_ips.clone()
    }

    fn cluster(&self) -> &Cluster {
        &self.lag.cluster
    }

    fn reach(&self) -> &crate::resolve::reach::Reach {
        &self.lag.reach
    }
}
