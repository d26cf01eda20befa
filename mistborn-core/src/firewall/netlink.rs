//! Netlink without processes: one set element in or out with rustables (the MFA hot path), and
//! the interface of the default route over rtnetlink.
//!
//! rustables sends only plain keys (no interval ends, no per-element timeouts), which is all
//! the address sets need; the interval sets of Coppercloud go through `nft` in the full replace.

use std::io;
use std::net::IpAddr;

use netlink_packet_core::{NLM_F_ACK, NLM_F_DUMP, NLM_F_REQUEST, NetlinkPayload};
use netlink_packet_route::link::{LinkAttribute, LinkMessage};
use netlink_packet_route::route::{RouteAttribute, RouteHeader, RouteMessage};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};
use netlink_request::netlink_request_rtnl;
use rustables::set::SetBuilder;
use rustables::{Batch, MsgType, ProtocolFamily, Table};

use super::plan::ElementChange;
use super::policy::TABLE;
use crate::error::{Error, Result};

const ENOENT: i32 = 2;

fn send(changes: &[ElementChange]) -> std::result::Result<(), rustables::error::QueryError> {
    let table = Table::new(ProtocolFamily::Inet).with_name(TABLE);
    let mut batch = Batch::new();
    for c in changes {
        let v6 = c.address.is_ipv6();
        let name = c.set.set_name(v6);
        // SetBuilder does not copy the table's family into the element list it makes: set it.
        let mut elems = match c.address {
            IpAddr::V4(a) => {
                let mut b = SetBuilder::<std::net::Ipv4Addr>::new(name, &table)?;
                b.add(&a);
                b.finish().1
            }
            IpAddr::V6(a) => {
                let mut b = SetBuilder::<std::net::Ipv6Addr>::new(name, &table)?;
                b.add(&a);
                b.finish().1
            }
        };
        elems.family = ProtocolFamily::Inet;
        batch.add(&elems, if c.add { MsgType::Add } else { MsgType::Del });
    }
    batch.send()
}

fn errno(e: &rustables::error::QueryError) -> Option<i32> {
    match e {
        rustables::error::QueryError::NetlinkError(m) => Some(m.error.abs()),
        _ => None,
    }
}

/// Adds and removes elements of the address sets in one netlink transaction. Removing an element
/// that is already gone is fine.
pub(crate) fn send_elements(changes: &[ElementChange]) -> Result<()> {
    if changes.is_empty() {
        return Ok(());
    }
    match send(changes) {
        Ok(()) => Ok(()),
        // One missing element fails the whole batch: redo one by one, ignoring the missing.
        Err(e) if errno(&e) == Some(ENOENT) && changes.len() > 1 => {
            for c in changes {
                match send(std::slice::from_ref(c)) {
                    Ok(()) => {}
                    Err(e) if errno(&e) == Some(ENOENT) && !c.add => {}
                    Err(e) => return Err(element_error(c, &e)),
                }
            }
            Ok(())
        }
        Err(e) if errno(&e) == Some(ENOENT) && !changes[0].add => Ok(()),
        Err(e) => Err(element_error(&changes[0], &e)),
    }
}

fn element_error(c: &ElementChange, e: &rustables::error::QueryError) -> Error {
    let detail = match errno(e) {
        Some(n) => io::Error::from_raw_os_error(n).to_string(),
        None => e.to_string(),
    };
    Error::Firewall(format!(
        "{} {} {} set {}: {detail}",
        if c.add { "adding" } else { "removing" },
        c.address,
        if c.add { "to" } else { "from" },
        c.set.set_name(c.address.is_ipv6())
    ))
}

/// The name of the interface carrying the IPv4 default route (lowest metric) in this network
/// namespace, if there is one.
pub(crate) fn default_route_interface() -> io::Result<Option<String>> {
    let mut msg = RouteMessage::default();
    msg.header.address_family = AddressFamily::Inet;
    let replies = netlink_request_rtnl(
        RouteNetlinkMessage::GetRoute(msg),
        Some(NLM_F_REQUEST | NLM_F_DUMP),
    )?;
    let mut best: Option<(u32, u32)> = None; // (metric, ifindex)
    for reply in replies {
        let NetlinkPayload::InnerMessage(RouteNetlinkMessage::NewRoute(r)) = reply.payload else {
            continue;
        };
        if r.header.destination_prefix_length != 0 || r.header.address_family != AddressFamily::Inet
        {
            continue;
        }
        let mut table = u32::from(r.header.table);
        let mut oif = None;
        let mut metric = 0;
        for a in &r.attributes {
            match a {
                RouteAttribute::Table(t) => table = *t,
                RouteAttribute::Oif(i) => oif = Some(*i),
                RouteAttribute::Priority(p) => metric = *p,
                _ => {}
            }
        }
        if table != u32::from(RouteHeader::RT_TABLE_MAIN) {
            continue;
        }
        if let Some(i) = oif
            && best.is_none_or(|(m, _)| metric < m)
        {
            best = Some((metric, i));
        }
    }
    let Some((_, index)) = best else {
        return Ok(None);
    };
    let mut msg = LinkMessage::default();
    msg.header.index = index;
    let replies = netlink_request_rtnl(
        RouteNetlinkMessage::GetLink(msg),
        Some(NLM_F_REQUEST | NLM_F_ACK),
    )?;
    for reply in replies {
        if let NetlinkPayload::InnerMessage(RouteNetlinkMessage::NewLink(l)) = reply.payload {
            return Ok(l.attributes.iter().find_map(|a| match a {
                LinkAttribute::IfName(n) => Some(n.clone()),
                _ => None,
            }));
        }
    }
    Ok(None)
}
