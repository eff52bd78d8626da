//! This node's own addresses (docs/module-behaviour.md §6.3): the decoded source
//! of a file is "this node" when it is one of them. Addresses are compared
//! parsed, never as strings (docs/user-reports.md #13). Also: binding a listening
//! socket the way nginx does.

use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use tokio::net::TcpListener;

/// The local address set: `local_ip_addrs` when configured, else the
/// interfaces (filtered by `if_alias_prefix` like the module), plus
/// 127.0.0.1 and every specific listen address.
pub fn local_addrs(
    configured: Option<&[IpAddr]>,
    if_alias_prefix: &[String],
    listen: &[SocketAddr],
) -> Vec<IpAddr> {
    let mut out: Vec<IpAddr> = vec![IpAddr::V4(Ipv4Addr::LOCALHOST)];
    match configured {
        Some(list) => out.extend_from_slice(list),
        None => out.extend(interface_addrs(if_alias_prefix)),
    }
    out.extend(
        listen
            .iter()
            .map(SocketAddr::ip)
            .filter(|ip| !ip.is_unspecified()),
    );
    let mut dedup = Vec::with_capacity(out.len());
    for ip in out.into_iter().map(canonical) {
        if !dedup.contains(&ip) {
            dedup.push(ip);
        }
    }
    dedup
}

/// IPv4-mapped IPv6 addresses compare equal to their IPv4 form.
pub fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6
            .to_ipv4_mapped()
            .map(IpAddr::V4)
            .unwrap_or(IpAddr::V6(v6)),
        v4 => v4,
    }
}

/// Interface addresses: all of them with no prefix list; with prefixes,
/// the IPv4 addresses of interfaces `<prefix><k>` (module behaviour).
fn interface_addrs(prefixes: &[String]) -> Vec<IpAddr> {
    let Ok(ifaces) = if_addrs::get_if_addrs() else {
        tracing::warn!("cannot enumerate network interfaces; only 127.0.0.1 is local");
        return Vec::new();
    };
    ifaces
        .into_iter()
        .filter(|i| {
            prefixes.is_empty()
                || (i.ip().is_ipv4()
                    && prefixes.iter().any(|p| {
                        i.name
                            .strip_prefix(p.as_str())
                            .is_some_and(|k| !k.is_empty() && k.bytes().all(|b| b.is_ascii_digit()))
                    }))
        })
        .map(|i| i.ip())
        .collect()
}

/// Binds a listening socket like nginx does (`SO_REUSEADDR`, backlog 1024).
pub fn bind(addr: SocketAddr) -> io::Result<TcpListener> {
    use socket2::{Domain, Protocol, Socket, Type};
    let sock = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    sock.set_reuse_address(true)?;
    if addr.is_ipv6() {
        sock.set_only_v6(true)?;
    }
    sock.set_nonblocking(true)?;
    sock.bind(&addr.into())?;
    sock.listen(1024)?;
    TcpListener::from_std(sock.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn configured_plus_loopback_plus_listen() {
        let cfg: Vec<IpAddr> = vec!["127.0.0.2".parse().unwrap()];
        let listen: Vec<SocketAddr> = vec![
            "127.0.0.5:80".parse().unwrap(),
            "0.0.0.0:81".parse().unwrap(),
        ];
        let got = local_addrs(Some(&cfg), &[], &listen);
        assert_eq!(
            got,
            vec![
                "127.0.0.1".parse::<IpAddr>().unwrap(),
                "127.0.0.2".parse().unwrap(),
                "127.0.0.5".parse().unwrap()
            ]
        );
    }

    #[test]
    fn mapped_v6_is_v4() {
        assert_eq!(
            canonical("::ffff:10.0.0.1".parse().unwrap()),
            "10.0.0.1".parse::<IpAddr>().unwrap()
        );
    }

    #[test]
    fn interfaces_include_loopback() {
        let got = local_addrs(None, &[], &[]);
        assert!(got.contains(&IpAddr::V4(Ipv4Addr::LOCALHOST)));
    }
}
