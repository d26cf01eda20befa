//! Address intervals for nft interval sets: real IP lists overlap, and an interval set refuses
//! overlapping elements (the whole transaction fails), so lists are merged here before rendering.

use std::fmt::Write as _;
use std::net::{Ipv4Addr, Ipv6Addr};

/// Non-overlapping, sorted, merged intervals of one family (`u128` holds both; IPv4 in the low
/// 32 bits).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Intervals {
    ranges: Vec<(u128, u128)>,
}

impl Intervals {
    /// Merges `ranges` (inclusive bounds, any order, overlaps and neighbours allowed).
    pub fn merge(mut ranges: Vec<(u128, u128)>) -> Self {
        ranges.sort_unstable();
        let mut out: Vec<(u128, u128)> = Vec::with_capacity(ranges.len());
        for (s, e) in ranges {
            match out.last_mut() {
                Some(last) if s <= last.1.saturating_add(1) => last.1 = last.1.max(e),
                _ => out.push((s, e)),
            }
        }
        Self { ranges: out }
    }

    /// The merged ranges.
    pub fn ranges(&self) -> &[(u128, u128)] {
        &self.ranges
    }

    /// How many merged ranges.
    pub fn len(&self) -> usize {
        self.ranges.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.ranges.is_empty()
    }

    /// Whether `addr` falls inside.
    pub fn contains(&self, addr: u128) -> bool {
        let i = self.ranges.partition_point(|(s, _)| *s <= addr);
        i > 0 && self.ranges[i - 1].1 >= addr
    }

    /// nft set elements, comma separated: `a`, `a/len` or `a-b`.
    pub fn render(&self, v6: bool) -> String {
        let bits = if v6 { 128 } else { 32 };
        let mut out = String::with_capacity(self.ranges.len() * 20);
        for (i, (s, e)) in self.ranges.iter().enumerate() {
            if i > 0 {
                out.push_str(", ");
            }
            let addr = |x: u128| -> String {
                if v6 {
                    Ipv6Addr::from(x).to_string()
                } else {
                    Ipv4Addr::from(u32::try_from(x).unwrap_or(u32::MAX)).to_string()
                }
            };
            let size = e - s;
            if size == 0 {
                out.push_str(&addr(*s));
            } else if (size.wrapping_add(1)).is_power_of_two() && s & size == 0 {
                let len = bits - (size.count_ones());
                let _ = write!(out, "{}/{len}", addr(*s));
            } else if size == u128::MAX {
                out.push_str("::/0");
            } else {
                let _ = write!(out, "{}-{}", addr(*s), addr(*e));
            }
        }
        out
    }
}
