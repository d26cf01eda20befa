//! The local zone: `home.<suffix>`, `dns.<suffix>` and each service's subdomain resolve to the
//! server's tunnel addresses; every other name under the suffix is NXDOMAIN and never leaves the
//! host. The special-use names are answered here too, never blocked and never forwarded:
//! `localhost` and its subdomains are the loopback addresses (RFC 6761 6.3); `invalid`
//! (RFC 6761 6.4), `onion` (RFC 7686), `local` (RFC 6762), `home.arpa` (RFC 8375) and the reverse
//! zones of private, loopback and link-local addresses (RFC 6761 6.1, RFC 6303) are NXDOMAIN.
//! (`test` and `example` are forwarded: RFC 6761 lets a resolver treat `example` normally, and the
//! project's tests and benchmarks use `test` names as ordinary upstream names.)

use std::collections::HashMap;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

use hickory_server::proto::rr::{LowerName, Name};

use crate::error::{Error, Result};

/// Addresses of one local name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LocalHost {
    /// IPv4 address, if any.
    pub v4: Option<Ipv4Addr>,
    /// IPv6 address, if any.
    pub v6: Option<Ipv6Addr>,
}

/// What the local zone says about a name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ZoneAnswer<'a> {
    /// Not under the suffix: forward it.
    NotLocal,
    /// The suffix itself: exists, no address.
    Apex,
    /// A local name.
    Host(&'a LocalHost),
    /// Under the suffix but unknown.
    NxDomain,
}

/// Where `localhost` names point.
static LOOPBACK: LocalHost = LocalHost {
    v4: Some(Ipv4Addr::LOCALHOST),
    v6: Some(Ipv6Addr::LOCALHOST),
};

/// The answer for a special-use name, `None` for every other name. Labels are compared from
/// the top-level one down (a `LowerName` is already lowercase).
fn special(name: &LowerName) -> Option<ZoneAnswer<'static>> {
    let mut labels = name.iter().rev();
    match labels.next()? {
        b"localhost" => Some(ZoneAnswer::Host(&LOOPBACK)),
        b"invalid" | b"onion" | b"local" => Some(ZoneAnswer::NxDomain),
        b"arpa" => {
            let zone: Vec<&[u8]> = labels.take(4).collect();
            let private = match zone.as_slice() {
                [b"home", ..] => true,
                [b"in-addr", b"10" | b"127" | b"0", ..] => true,
                [b"in-addr", b"192", b"168", ..] | [b"in-addr", b"169", b"254", ..] => true,
                [b"in-addr", b"172", second, ..] => std::str::from_utf8(second)
                    .ok()
                    .and_then(|s| s.parse::<u8>().ok())
                    .is_some_and(|n| (16..=31).contains(&n)),
                // fc00::/7 (unique local) and fe80::/10 (link-local).
                [b"ip6", b"f", b"c" | b"d", ..] => true,
                [b"ip6", b"f", b"e", b"8" | b"9" | b"a" | b"b", ..] => true,
                _ => false,
            };
            private.then_some(ZoneAnswer::NxDomain)
        }
        _ => None,
    }
}

/// The local names, immutable once built (rebuilt and swapped when services change).
#[derive(Debug, Clone)]
pub struct LocalZone {
    suffix: LowerName,
    hosts: HashMap<LowerName, LocalHost>,
}

impl LocalZone {
    /// The zone `<suffix>` with `home`, `dns` and `services` pointing at the server's addresses.
    pub fn new(suffix: &str, server: LocalHost, services: &[String]) -> Result<Self> {
        let suffix = parse_name("dns suffix", suffix)?;
        let mut zone = Self {
            suffix,
            hosts: HashMap::new(),
        };
        for label in ["home", "dns"]
            .into_iter()
            .chain(services.iter().map(String::as_str))
        {
            zone.add(label, server)?;
        }
        Ok(zone)
    }

    /// Adds `<label>.<suffix>` (a label may contain dots for deeper names).
    pub fn add(&mut self, label: &str, host: LocalHost) -> Result<()> {
        let name = parse_name("local name", &format!("{label}.{}", self.suffix))?;
        self.hosts.insert(name, host);
        Ok(())
    }

    /// Decides for `name`.
    #[inline]
    pub fn lookup(&self, name: &LowerName) -> ZoneAnswer<'_> {
        if let Some(answer) = special(name) {
            return answer;
        }
        if !self.suffix.zone_of(name) {
            return ZoneAnswer::NotLocal;
        }
        if *name == self.suffix {
            return ZoneAnswer::Apex;
        }
        match self.hosts.get(name) {
            Some(h) => ZoneAnswer::Host(h),
            None => ZoneAnswer::NxDomain,
        }
    }

    /// The zone's suffix.
    pub fn suffix(&self) -> &LowerName {
        &self.suffix
    }
}

fn parse_name(field: &'static str, s: &str) -> Result<LowerName> {
    let mut name = Name::from_str(s)
        .map_err(|e| Error::invalid(field, format!("'{s}' is not a DNS name: {e}")))?;
    name.set_fqdn(true);
    Ok(LowerName::new(&name))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(s: &str) -> LowerName {
        LowerName::new(&Name::from_str(s).expect("name"))
    }

    #[test]
    fn local_names_apex_and_nxdomain() {
        let server = LocalHost {
            v4: Some(Ipv4Addr::new(10, 15, 91, 1)),
            v6: Some("fd15:91::1".parse().expect("v6")),
        };
        let z = LocalZone::new("mistborn", server, &["nextcloud".into()]).expect("zone");
        assert_eq!(z.lookup(&n("HOME.mistborn.")), ZoneAnswer::Host(&server));
        assert_eq!(z.lookup(&n("dns.mistborn.")), ZoneAnswer::Host(&server));
        assert_eq!(
            z.lookup(&n("nextcloud.mistborn.")),
            ZoneAnswer::Host(&server)
        );
        assert_eq!(z.lookup(&n("other.mistborn.")), ZoneAnswer::NxDomain);
        assert_eq!(z.lookup(&n("a.home.mistborn.")), ZoneAnswer::NxDomain);
        assert_eq!(z.lookup(&n("mistborn.")), ZoneAnswer::Apex);
        assert_eq!(z.lookup(&n("example.com.")), ZoneAnswer::NotLocal);
        assert_eq!(z.lookup(&n("notmistborn.")), ZoneAnswer::NotLocal);
    }

    #[test]
    fn special_use_names_are_answered_here() {
        let server = LocalHost {
            v4: Some(Ipv4Addr::new(10, 15, 91, 1)),
            v6: None,
        };
        let z = LocalZone::new("mistborn", server, &[]).expect("zone");
        for name in ["localhost.", "LOCALHOST.", "a.b.localhost."] {
            assert_eq!(z.lookup(&n(name)), ZoneAnswer::Host(&LOOPBACK), "{name}");
        }
        for name in [
            "x.invalid.",
            "invalid.",
            "abc.onion.",
            "printer.local.",
            "nas.home.arpa.",
            "2.91.15.10.in-addr.arpa.",
            "1.0.0.127.in-addr.arpa.",
            "5.1.168.192.in-addr.arpa.",
            "1.0.20.172.in-addr.arpa.",
            "1.0.254.169.in-addr.arpa.",
            "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.1.9.0.0.5.1.d.f.ip6.arpa.",
            "0.8.e.f.ip6.arpa.",
        ] {
            assert_eq!(z.lookup(&n(name)), ZoneAnswer::NxDomain, "{name}");
        }
        for name in [
            "localhost.example.com.",
            "ads.test.",
            "1.0.32.172.in-addr.arpa.",
            "8.8.8.8.in-addr.arpa.",
            "arpa.",
            "example.",
        ] {
            assert_eq!(z.lookup(&n(name)), ZoneAnswer::NotLocal, "{name}");
        }
    }
}
