//! Client address rules (`allow`, `deny`; docs/operations.md "Address
//! rules"), with nginx's `ngx_http_access_module` semantics: the rules are
//! checked in the order written, the first whose range contains the client
//! address decides; no match admits the client. The address is the one
//! `trusted_proxies` resolved (`X-Forwarded-For` from a trusted proxy).

use std::net::IpAddr;

pub use crate::config::AccessRule;

/// The rule that decides for `ip` (`None`: no rule matched, admitted).
pub fn deciding(rules: &[AccessRule], ip: IpAddr) -> Option<&AccessRule> {
    rules
        .iter()
        .find(|r| r.range.map_or(true, |c| c.contains(ip)))
}

/// Whether `ip` is admitted.
pub fn admitted(rules: &[AccessRule], ip: IpAddr) -> bool {
    deciding(rules, ip).map_or(true, |r| r.allow)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Cidr;

    fn rule(allow: bool, r: Option<(&str, u8)>) -> AccessRule {
        AccessRule {
            allow,
            range: r.map(|(a, p)| Cidr::new(a.parse().unwrap(), p).unwrap()),
        }
    }

    #[test]
    fn first_match_wins() {
        let rules = [
            rule(false, Some(("10.1.2.3", 32))),
            rule(true, Some(("10.0.0.0", 8))),
            rule(true, Some(("2001:db8::", 32))),
            rule(false, None),
        ];
        let ok = |s: &str| admitted(&rules, s.parse().unwrap());
        assert!(!ok("10.1.2.3"));
        assert!(ok("10.1.2.4"));
        assert!(ok("2001:db8::1"));
        assert!(ok("::ffff:10.9.9.9"));
        assert!(!ok("192.168.0.1"));
        assert!(!ok("::1"));
        assert!(admitted(&[], "1.2.3.4".parse().unwrap()));
        assert!(
            admitted(&rules[..3], "1.2.3.4".parse().unwrap()),
            "no match admits"
        );
        assert_eq!(
            deciding(&rules, "1.1.1.1".parse().unwrap())
                .unwrap()
                .to_string(),
            "deny all"
        );
    }
}
