//! Links, addresses and routes over rtnetlink (no `ip` commands): what wireguard-control leaves out.

use std::io;

use ipnet::IpNet;
use netlink_packet_core::{NLM_F_ACK, NLM_F_CREATE, NLM_F_EXCL, NLM_F_REQUEST, NetlinkPayload};
use netlink_packet_route::address::{AddressAttribute, AddressMessage, AddressScope};
use netlink_packet_route::link::{InfoKind, LinkAttribute, LinkFlags, LinkInfo, LinkMessage};
use netlink_packet_route::route::{
    RouteAddress, RouteAttribute, RouteHeader, RouteMessage, RouteProtocol, RouteScope, RouteType,
};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};
use netlink_request::netlink_request_rtnl;

/// The kind of an existing link.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum LinkKind {
    /// A kernel WireGuard device.
    WireGuard,
    /// A TUN device (how wireguard-go shows up).
    Tun,
    /// Anything else.
    Other(String),
}

/// An existing link.
#[derive(Debug, Clone)]
pub(crate) struct Link {
    pub index: u32,
    pub kind: LinkKind,
}

/// Errno of an I/O error, if it carries one.
pub(crate) fn errno(e: &io::Error) -> Option<i32> {
    e.raw_os_error()
}

const EEXIST: i32 = 17;
const ENODEV: i32 = 19;

/// The link called `name` in this network namespace, if any.
pub(crate) fn get_link(name: &str) -> io::Result<Option<Link>> {
    let mut msg = LinkMessage::default();
    msg.attributes.push(LinkAttribute::IfName(name.to_string()));
    let replies = match netlink_request_rtnl(
        RouteNetlinkMessage::GetLink(msg),
        Some(NLM_F_REQUEST | NLM_F_ACK),
    ) {
        Ok(r) => r,
        Err(e) if errno(&e) == Some(ENODEV) => return Ok(None),
        Err(e) => return Err(e),
    };
    for reply in replies {
        if let NetlinkPayload::InnerMessage(RouteNetlinkMessage::NewLink(link)) = reply.payload {
            let kind = link
                .attributes
                .iter()
                .find_map(|a| match a {
                    LinkAttribute::LinkInfo(infos) => infos.iter().find_map(|i| match i {
                        LinkInfo::Kind(k) => Some(k.clone()),
                        _ => None,
                    }),
                    _ => None,
                })
                .map_or(LinkKind::Other("unknown".into()), |k| match k {
                    InfoKind::Wireguard => LinkKind::WireGuard,
                    InfoKind::Tun => LinkKind::Tun,
                    other => LinkKind::Other(format!("{other:?}").to_lowercase()),
                });
            return Ok(Some(Link {
                index: link.header.index,
                kind,
            }));
        }
    }
    Ok(None)
}

/// Creates a kernel WireGuard link; an existing one is fine. Fails with EOPNOTSUPP when the kernel
/// has no WireGuard module.
pub(crate) fn create_wireguard_link(name: &str) -> io::Result<()> {
    let mut msg = LinkMessage::default();
    msg.attributes.push(LinkAttribute::IfName(name.to_string()));
    msg.attributes
        .push(LinkAttribute::LinkInfo(vec![LinkInfo::Kind(
            InfoKind::Wireguard,
        )]));
    ok_if_exists(netlink_request_rtnl(
        RouteNetlinkMessage::NewLink(msg),
        Some(NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL),
    ))
}

/// Deletes a link (used to undo a probe).
pub(crate) fn delete_link(index: u32) -> io::Result<()> {
    let mut msg = LinkMessage::default();
    msg.header.index = index;
    netlink_request_rtnl(
        RouteNetlinkMessage::DelLink(msg),
        Some(NLM_F_REQUEST | NLM_F_ACK),
    )
    .map(|_| ())
}

/// Sets the link up.
pub(crate) fn set_up(index: u32) -> io::Result<()> {
    let mut msg = LinkMessage::default();
    msg.header.index = index;
    msg.header.flags = LinkFlags::Up;
    msg.header.change_mask = LinkFlags::Up;
    netlink_request_rtnl(
        RouteNetlinkMessage::SetLink(msg),
        Some(NLM_F_REQUEST | NLM_F_ACK),
    )
    .map(|_| ())
}

fn ok_if_exists(r: io::Result<Vec<impl Sized>>) -> io::Result<()> {
    match r {
        Ok(_) => Ok(()),
        Err(e) if errno(&e) == Some(EEXIST) => Ok(()),
        Err(e) => Err(e),
    }
}

fn family(net: &IpNet) -> AddressFamily {
    match net {
        IpNet::V4(_) => AddressFamily::Inet,
        IpNet::V6(_) => AddressFamily::Inet6,
    }
}

/// Adds `addr` (host address with the subnet's prefix) to the link; present already is fine.
pub(crate) fn add_address(index: u32, addr: IpNet) -> io::Result<()> {
    let mut msg = AddressMessage::default();
    msg.header.family = family(&addr);
    msg.header.prefix_len = addr.prefix_len();
    msg.header.scope = AddressScope::Universe;
    msg.header.index = index;
    msg.attributes.push(AddressAttribute::Local(addr.addr()));
    msg.attributes.push(AddressAttribute::Address(addr.addr()));
    ok_if_exists(netlink_request_rtnl(
        RouteNetlinkMessage::NewAddress(msg),
        Some(NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL),
    ))
}

/// Routes `subnet` to the link (the kernel usually made this prefix route already when the
/// address went on an up link; then this is a no-op).
pub(crate) fn add_route(index: u32, subnet: IpNet) -> io::Result<()> {
    let subnet = subnet.trunc();
    let mut msg = RouteMessage::default();
    msg.header.address_family = family(&subnet);
    msg.header.destination_prefix_length = subnet.prefix_len();
    msg.header.table = RouteHeader::RT_TABLE_MAIN;
    msg.header.protocol = RouteProtocol::Kernel;
    msg.header.scope = RouteScope::Link;
    msg.header.kind = RouteType::Unicast;
    msg.attributes
        .push(RouteAttribute::Destination(RouteAddress::from(
            subnet.network(),
        )));
    msg.attributes.push(RouteAttribute::Oif(index));
    if subnet.addr().is_ipv6() {
        // The metric the kernel gives IPv6 prefix routes, so an existing one is recognised.
        msg.attributes.push(RouteAttribute::Priority(256));
    }
    ok_if_exists(netlink_request_rtnl(
        RouteNetlinkMessage::NewRoute(msg),
        Some(NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL),
    ))
}

/// Link up, addresses, subnet routes.
pub(crate) fn configure(index: u32, addresses: &[IpNet]) -> io::Result<()> {
    set_up(index)?;
    for a in addresses {
        add_address(index, *a)?;
    }
    for a in addresses {
        add_route(index, *a)?;
    }
    Ok(())
}
