//! Command line (fixed: tools outside the project depend on it):
//! `--config FILE`, `--check-config`, `--demo`, `--listen IP:PORT`,
//! `token FILE_ID [--ttl N]` and `doctor [--config FILE]`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::config::Config;
use crate::process::{self, reload::Source};

/// fdfs-httpd: serves FastDFS files over HTTP from this storage node.
#[derive(Debug, Parser)]
#[command(version, about)]
pub struct Cli {
    /// mod_fastdfs.conf to read.
    #[arg(long, default_value = "/etc/fdfs/mod_fastdfs.conf")]
    pub config: PathBuf,
    /// Validate the configuration (and every file it names), then exit.
    #[arg(long)]
    pub check_config: bool,
    /// Serve a temporary demo store with sample files; needs no files.
    #[arg(long)]
    pub demo: bool,
    /// Listen address (repeatable); overrides `listen` in the config.
    #[arg(long)]
    pub listen: Vec<SocketAddr>,
    /// Subcommands.
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Print a URL path with a valid anti-steal token for FILE_ID
    /// (secret and ttl from the config's http.anti_steal.* keys).
    Token {
        /// File ID, e.g. group1/M00/00/00/xxx.jpg.
        file_id: String,
        /// Seconds the URL should stay valid (default: token_ttl).
        #[arg(long)]
        ttl: Option<u64>,
    },
    /// Check this node: config, store paths, trackers, peers' storage and
    /// HTTP ports from here, clock. One line per check (ok/warn/FAIL);
    /// exit 0 all ok, 1 warnings, 2 failures.
    Doctor {
        /// mod_fastdfs.conf to read (default: the global --config).
        #[arg(long)]
        config: Option<PathBuf>,
    },
}

/// Entry point of the binary.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    match &cli.command {
        Some(Command::Token { file_id, ttl }) => return token(&cli, file_id, *ttl),
        Some(Command::Doctor { config }) => {
            return crate::doctor::main(config.as_ref().unwrap_or(&cli.config))
        }
        None => {}
    }
    if cli.demo {
        return crate::demo::main(&cli.listen);
    }
    let loaded = match Config::load(&cli.config) {
        Ok(l) => l,
        Err(problems) => {
            for p in &problems {
                eprintln!("error: {p}");
            }
            eprintln!(
                "{}: {} problem(s); not starting",
                cli.config.display(),
                problems.len()
            );
            return ExitCode::from(1);
        }
    };
    for w in &loaded.warnings {
        eprintln!("warning: {w}");
    }
    if cli.check_config {
        // Certificates, keys (matching) and CA bundles, beyond readability.
        if let Err(e) = crate::tls::check(&loaded.config) {
            eprintln!("error: {e}");
            eprintln!("{}: 1 problem(s); not starting", cli.config.display());
            return ExitCode::from(1);
        }
        println!("{}: configuration OK", cli.config.display());
        return ExitCode::SUCCESS;
    }
    let source = Source {
        path: cli.config.clone(),
        listen: cli.listen.clone(),
    };
    let mut config = loaded.config;
    source.apply(&mut config);
    crate::logging::init(config.log_level, config.log_filename.as_deref());
    process::serve_reloadable(config, source)
}

fn token(cli: &Cli, file_id: &str, ttl: Option<u64>) -> ExitCode {
    let loaded = match Config::load(&cli.config) {
        Ok(l) => l,
        Err(problems) => {
            for p in &problems {
                eprintln!("error: {p}");
            }
            return ExitCode::from(1);
        }
    };
    let cfg = loaded.config;
    // "group1/M00/..." or, for url_have_group_name=false nodes, "M00/...".
    let id = file_id.trim_start_matches('/');
    let split = match id.split_once('/') {
        Some((first, _)) if is_store_dir(first) => {
            cfg.groups.first().map(|g| (g.name.as_str(), id))
        }
        other => other,
    };
    let Some((group, remote)) = split else {
        eprintln!("FILE_ID must look like group1/M00/00/00/<name>");
        return ExitCode::from(2);
    };
    let policy = cfg
        .group(group)
        .map_or(cfg.anti_steal.as_ref(), |g| g.anti_steal.as_ref());
    let Some(policy) = policy else {
        eprintln!(
            "http.anti_steal.check_token is not enabled in {}",
            cli.config.display()
        );
        return ExitCode::from(2);
    };
    let now = crate::clock::unix_now();
    // A token is valid while now - ts <= token_ttl: shift ts so it lasts `ttl`.
    let ttl = ttl.unwrap_or(policy.token_ttl) as i64;
    let ts = now + ttl - policy.token_ttl as i64;
    let token = crate::antisteal::token::sign(remote, &policy.secret_key, ts);
    let path = if cfg.url_have_group_name {
        format!("/{group}/{remote}")
    } else {
        format!("/{remote}")
    };
    println!("{path}?token={token}&ts={ts}");
    eprintln!(
        "valid until {}",
        httpdate::fmt_http_date(
            std::time::UNIX_EPOCH
                + std::time::Duration::from_secs((ts + policy.token_ttl as i64).max(0) as u64)
        )
    );
    ExitCode::SUCCESS
}

/// `Mxx`: the store-path segment that starts a remote filename.
fn is_store_dir(s: &str) -> bool {
    s.len() == 3 && s.starts_with('M') && s[1..].bytes().all(|b| b.is_ascii_hexdigit())
}
