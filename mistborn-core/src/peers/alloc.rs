//! Tunnel address allocation. A profile owns one *host index*; its IPv4 and IPv6 addresses are that
//! index inside each subnet, so the pair always matches and one unique column guards both.

use std::collections::BTreeSet;
use std::net::{Ipv4Addr, Ipv6Addr};

use ipnet::{Ipv4Net, Ipv6Net};

use crate::error::{Error, Result};

/// The server takes index 1; clients take 2 up to the last address below the IPv4 broadcast.
pub const SERVER_INDEX: u64 = 1;

/// The two tunnel subnets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AddressPool {
    v4: Ipv4Net,
    v6: Ipv6Net,
}

impl AddressPool {
    /// A pool over two subnets (validated by the config).
    pub fn new(v4: Ipv4Net, v6: Ipv6Net) -> Self {
        Self {
            v4: v4.trunc(),
            v6: v6.trunc(),
        }
    }

    /// The highest usable client index.
    pub fn last_index(&self) -> u64 {
        let v4_hosts = (1u64 << (32 - self.v4.prefix_len())) - 2; // minus broadcast, minus network
        let v6_bits = 128 - u32::from(self.v6.prefix_len());
        let v6_last = if v6_bits >= 63 {
            u64::MAX >> 1
        } else {
            (1u64 << v6_bits) - 1
        };
        v4_hosts.min(v6_last)
    }

    /// How many client addresses the pool holds.
    pub fn capacity(&self) -> u64 {
        self.last_index().saturating_sub(SERVER_INDEX)
    }

    /// The addresses for a host index.
    pub fn addresses(&self, index: u64) -> (Ipv4Addr, Ipv6Addr) {
        let v4 = Ipv4Addr::from(u32::from(self.v4.network()).wrapping_add(index as u32));
        let v6 = Ipv6Addr::from(u128::from(self.v6.network()).wrapping_add(u128::from(index)));
        (v4, v6)
    }

    /// The server's own tunnel addresses.
    pub fn server_addresses(&self) -> (Ipv4Addr, Ipv6Addr) {
        self.addresses(SERVER_INDEX)
    }

    /// The client index of a tunnel address, if it is one (not the network, server or broadcast).
    pub fn index_of(&self, addr: std::net::IpAddr) -> Option<u64> {
        let index = match addr {
            std::net::IpAddr::V4(a) if self.v4.contains(&a) => {
                u64::from(u32::from(a) - u32::from(self.v4.network()))
            }
            std::net::IpAddr::V6(a) if self.v6.contains(&a) => {
                u64::try_from(u128::from(a) - u128::from(self.v6.network())).ok()?
            }
            std::net::IpAddr::V6(a) => {
                return a.to_ipv4_mapped().and_then(|v4| self.index_of(v4.into()));
            }
            _ => return None,
        };
        (index > SERVER_INDEX && index <= self.last_index()).then_some(index)
    }

    /// The IPv4 subnet.
    pub fn v4(&self) -> Ipv4Net {
        self.v4
    }

    /// The IPv6 subnet.
    pub fn v6(&self) -> Ipv6Net {
        self.v6
    }

    /// The lowest free client index, or a clear error when every one is taken.
    pub fn next_free(&self, used: &BTreeSet<u64>) -> Result<u64> {
        let mut candidate = SERVER_INDEX + 1;
        for &u in used.range(candidate..) {
            if u != candidate {
                break;
            }
            candidate += 1;
        }
        if candidate > self.last_index() {
            return Err(Error::PoolExhausted {
                pool: self.v4.to_string(),
                size: self.capacity(),
            });
        }
        Ok(candidate)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pool(v4: &str) -> AddressPool {
        AddressPool::new(v4.parse().expect("v4"), "fd15:91::/64".parse().expect("v6"))
    }

    #[test]
    fn allocates_lowest_free_and_reuses_freed() {
        let p = pool("10.15.91.0/24");
        assert_eq!(p.capacity(), 253);
        let mut used = BTreeSet::new();
        assert_eq!(p.next_free(&used).expect("free"), 2);
        used.extend([2, 3, 5]);
        assert_eq!(p.next_free(&used).expect("free"), 4);
        used.insert(4);
        assert_eq!(p.next_free(&used).expect("free"), 6);
        assert_eq!(
            p.addresses(6),
            (
                "10.15.91.6".parse().expect("a"),
                "fd15:91::6".parse().expect("a")
            )
        );
        assert_eq!(
            p.server_addresses().0,
            "10.15.91.1".parse::<Ipv4Addr>().expect("a")
        );
    }

    #[test]
    fn addresses_map_back_to_indices() {
        let p = pool("10.15.91.0/24");
        for i in [2u64, 77, 254] {
            let (v4, v6) = p.addresses(i);
            assert_eq!(p.index_of(v4.into()), Some(i));
            assert_eq!(p.index_of(v6.into()), Some(i));
        }
        for outside in [
            "10.15.91.1",
            "10.15.91.0",
            "10.15.91.255",
            "10.15.92.2",
            "fd15:91::1",
            "::1",
        ] {
            assert_eq!(p.index_of(outside.parse().expect("ip")), None, "{outside}");
        }
        assert_eq!(
            p.index_of("::ffff:10.15.91.9".parse().expect("ip")),
            Some(9)
        );
    }

    #[test]
    fn full_pool_is_a_clear_error() {
        let p = pool("10.0.0.0/29"); // .1 server, .2-.6 clients, .7 broadcast
        assert_eq!(p.capacity(), 5);
        let used: BTreeSet<u64> = (2..=6).collect();
        let err = p.next_free(&used).expect_err("full");
        assert_eq!(err.code(), "pool_exhausted");
        assert!(err.to_string().contains("10.0.0.0/29"), "{err}");
    }
}
