//! The local zone: `home.<suffix>`, `dns.<suffix>` and each service's subdomain resolve to the
//! server's tunnel addresses; every other name under the suffix is NXDOMAIN and never leaves the
//! host.

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
}
