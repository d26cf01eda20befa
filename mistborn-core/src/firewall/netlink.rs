//! Netlink without processes: one set element in or out with rustables (the MFA hot path), and
//! the interface of the default route over rtnetlink.
//!
//! rustables sends only plain keys (no interval ends, no per-element timeouts), which is all
//! the address sets need; the interval sets of Coppercloud go through `nft` in the full replace.

use std::cell::RefCell;
use std::io;
use std::net::IpAddr;
use std::os::fd::OwnedFd;
use std::time::Duration;

use netlink_packet_core::{NLM_F_ACK, NLM_F_DUMP, NLM_F_REQUEST, NetlinkPayload};
use netlink_packet_route::link::{LinkAttribute, LinkMessage};
use netlink_packet_route::route::{RouteAttribute, RouteHeader, RouteMessage};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};
use netlink_request::netlink_request_rtnl;
use rustables::set::{SetBuilder, SetElementList};
use rustables::{Batch, MsgType, ProtocolFamily, Table};
use rustix::net::netlink::{self as nl, SocketAddrNetlink};
use rustix::net::{self as net, RecvFlags, SendFlags, SocketFlags, SocketType, sockopt};

use super::plan::ElementChange;
use super::policy::TABLE;
use super::ruleset::CarriedProbe;
use crate::error::{Error, Result};

const ENOENT: i32 = 2;
/// Keys per set-element message: a netlink attribute holds at most 64 KiB (about 4,000 IPv4 or
/// 2,300 IPv6 keys), so larger runs are split.
const KEYS_PER_MESSAGE: usize = 1000;
/// How long to wait for the kernel's acknowledgements before giving up on a batch.
const ACK_TIMEOUT: Duration = Duration::from_secs(5);
/// Socket buffers big enough for a batch of every address and its acknowledgements.
const SOCKET_BUFFER: usize = 4 << 20;
const NLMSG_ERROR: u16 = 2;
const NLMSG_DONE: u16 = 3;

thread_local! {
    /// The netfilter netlink socket batches and dumps go over, opened in the thread's network
    /// namespace and kept open. Closing it is what is slow: when the socket goes away right
    /// after a commit that deleted something, the kernel (`nft_rcv_nl_event`) waits for the
    /// pending transaction cleanup, an RCU grace period (8-16 ms at HZ=250 here), while the
    /// commit itself takes about 10 µs (bench/firewall.md).
    static SOCKET: RefCell<Option<Conn>> = const { RefCell::new(None) };
}

/// The kept socket and its receive buffer (a dump reply can be tens of KiB).
struct Conn {
    fd: OwnedFd,
    buf: Vec<u8>,
}

/// Why a batch failed: the kernel's errno for a message, or the socket itself.
#[derive(Debug)]
enum Failure {
    Kernel(i32),
    Socket(io::Error),
    Build(String),
}

fn open_socket() -> io::Result<Conn> {
    let fd = net::socket_with(
        net::AddressFamily::NETLINK,
        SocketType::RAW,
        SocketFlags::CLOEXEC,
        Some(nl::NETFILTER),
    )?;
    net::bind(&fd, &SocketAddrNetlink::new(0, 0))?;
    // Best effort: without CAP_NET_ADMIN the defaults stay (the batch then fails anyway).
    let _ = sockopt::set_socket_send_buffer_size_force(&fd, SOCKET_BUFFER);
    let _ = sockopt::set_socket_recv_buffer_size_force(&fd, SOCKET_BUFFER);
    sockopt::set_socket_timeout(&fd, sockopt::Timeout::Recv, Some(ACK_TIMEOUT))?;
    Ok(Conn {
        fd,
        buf: vec![0u8; 256 * 1024],
    })
}

/// Sends `bytes` (a finalized batch, or one dump request) and reads the replies up to the one
/// that ends it: the acknowledgement of message `last`, or the end of a dump. Every other
/// message is handed to `each`. Replies arrive in order, so a success leaves nothing unread;
/// after any failure the socket is dropped (it may still hold replies).
fn transact(
    bytes: &[u8],
    last: u32,
    each: &mut dyn FnMut(&[u8]),
) -> std::result::Result<(), Failure> {
    SOCKET.with(|cell| {
        let mut slot = cell.borrow_mut();
        if slot.is_none() {
            *slot = Some(open_socket().map_err(Failure::Socket)?);
        }
        let r = slot.as_mut().map_or(
            Err(Failure::Socket(io::ErrorKind::NotConnected.into())),
            |conn| exchange(conn, bytes, last, each),
        );
        if r.is_err() {
            *slot = None;
        }
        r
    })
}

fn exchange(
    conn: &mut Conn,
    bytes: &[u8],
    last: u32,
    each: &mut dyn FnMut(&[u8]),
) -> std::result::Result<(), Failure> {
    let Conn { fd, buf } = conn;
    let sent = net::send(&*fd, bytes, SendFlags::empty()).map_err(|e| Failure::Socket(e.into()))?;
    if sent != bytes.len() {
        return Err(Failure::Socket(io::Error::other(format!(
            "netlink sent {sent} of {} bytes",
            bytes.len()
        ))));
    }
    loop {
        let (n, whole) = net::recv(&*fd, &mut buf[..], RecvFlags::TRUNC)
            .map_err(|e| Failure::Socket(e.into()))?;
        if n == 0 {
            return Err(Failure::Socket(io::ErrorKind::UnexpectedEof.into()));
        }
        if whole > n {
            return Err(Failure::Socket(io::Error::other(format!(
                "netlink reply of {whole} bytes truncated to {n}"
            ))));
        }
        let mut off = 0;
        while let Some(h) = buf.get(off..n).filter(|b| b.len() >= 16) {
            let len = (u32::from_ne_bytes([h[0], h[1], h[2], h[3]]) as usize).min(h.len());
            let kind = u16::from_ne_bytes([h[4], h[5]]);
            let seq = u32::from_ne_bytes([h[8], h[9], h[10], h[11]]);
            match kind {
                NLMSG_ERROR if h.len() >= 20 => {
                    let errno = i32::from_ne_bytes([h[16], h[17], h[18], h[19]]);
                    if errno != 0 {
                        return Err(Failure::Kernel(errno.abs()));
                    }
                    if seq >= last {
                        return Ok(());
                    }
                }
                NLMSG_DONE => return Ok(()),
                _ => each(&h[..len]),
            }
            if len < 16 {
                break;
            }
            off += (len + 3) & !3;
        }
    }
}

/// Appends one netlink attribute (padded to 4 bytes).
fn put_attr(out: &mut Vec<u8>, kind: u16, data: &[u8]) {
    let len = 4 + data.len();
    out.extend_from_slice(&u16::try_from(len).unwrap_or(u16::MAX).to_ne_bytes());
    out.extend_from_slice(&kind.to_ne_bytes());
    out.extend_from_slice(data);
    out.resize(out.len() + (4 - len % 4) % 4, 0);
}

/// The attributes in `data`: (type without the nested/byte-order flags, payload).
fn attrs(mut data: &[u8]) -> impl Iterator<Item = (u16, &[u8])> {
    std::iter::from_fn(move || {
        let len = usize::from(u16::from_ne_bytes([*data.first()?, *data.get(1)?]));
        let kind = u16::from_ne_bytes([*data.get(2)?, *data.get(3)?]) & 0x3fff;
        let payload = data.get(4..len)?;
        data = data.get((len + 3) & !3..).unwrap_or(&[]);
        Some((kind, payload))
    })
}

fn be_u64(b: &[u8]) -> u64 {
    b.get(..8)
        .and_then(|b| <[u8; 8]>::try_from(b).ok())
        .map_or(0, u64::from_be_bytes)
}

/// A dump request for the table (`kind`: an `NFT_MSG_GET*`), with `attrs` as filter.
fn dump_request(kind: u32, attrs: &[(u16, &[u8])]) -> Vec<u8> {
    use rustables::sys::{NFNL_SUBSYS_NFTABLES, NLM_F_DUMP, NLM_F_REQUEST};
    const NFPROTO_INET: u8 = 1;
    let mut body = vec![NFPROTO_INET, 0, 0, 0]; // nfgenmsg: family, NFNETLINK_V0, res_id
    for (k, v) in attrs {
        put_attr(&mut body, *k, v);
    }
    let mut msg = Vec::with_capacity(16 + body.len());
    let len = u32::try_from(16 + body.len()).unwrap_or(u32::MAX);
    msg.extend_from_slice(&len.to_ne_bytes());
    msg.extend_from_slice(&(((NFNL_SUBSYS_NFTABLES << 8) | kind) as u16).to_ne_bytes());
    msg.extend_from_slice(&((NLM_F_REQUEST | NLM_F_DUMP) as u16).to_ne_bytes());
    msg.extend_from_slice(&1u32.to_ne_bytes()); // seq
    msg.extend_from_slice(&0u32.to_ne_bytes()); // pid: the kernel
    msg.extend_from_slice(&body);
    msg
}

/// Runs a dump, handing each reply's attributes (after the nfgenmsg) to `each`. No table (or
/// set): nothing.
fn dump(what: &str, request: &[u8], each: &mut dyn FnMut(&[u8])) -> Result<()> {
    let mut payload = |m: &[u8]| each(m.get(20..).unwrap_or(&[]));
    match transact(request, u32::MAX, &mut payload) {
        Ok(()) | Err(Failure::Kernel(ENOENT)) => Ok(()),
        Err(e) => Err(Error::Firewall(format!("reading {what}: {}", describe(&e)))),
    }
}

/// The counter expression's (packets, bytes) among an element's or object's attributes.
fn counter_values(data: &[u8]) -> (u64, u64) {
    use rustables::sys::{NFTA_COUNTER_BYTES, NFTA_COUNTER_PACKETS};
    let (mut packets, mut bytes) = (0, 0);
    for (k, v) in attrs(data) {
        if k == NFTA_COUNTER_PACKETS {
            packets = be_u64(v);
        } else if k == NFTA_COUNTER_BYTES {
            bytes = be_u64(v);
        }
    }
    (packets, bytes)
}

/// A named counter of the table with its values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct NamedCounter {
    pub name: String,
    pub packets: u64,
    pub bytes: u64,
}

/// The table's named counters, read in one netlink dump. The nft CLI would first load the whole
/// ruleset with every set element (seconds with a 100k-CIDR list), the dump takes milliseconds.
pub(crate) fn read_counters() -> Result<Vec<NamedCounter>> {
    use rustables::sys::{
        NFT_MSG_GETOBJ, NFT_OBJECT_COUNTER, NFTA_OBJ_DATA, NFTA_OBJ_NAME, NFTA_OBJ_TABLE,
        NFTA_OBJ_TYPE,
    };
    let table = format!("{TABLE}\0");
    let request = dump_request(
        NFT_MSG_GETOBJ,
        &[
            (NFTA_OBJ_TABLE, table.as_bytes()),
            (NFTA_OBJ_TYPE, &NFT_OBJECT_COUNTER.to_be_bytes()),
        ],
    );
    let mut out = Vec::new();
    dump("the table's counters", &request, &mut |m| {
        let (mut name, mut values) = (None, (0, 0));
        for (kind, v) in attrs(m) {
            if kind == NFTA_OBJ_NAME {
                name = Some(
                    String::from_utf8_lossy(v)
                        .trim_end_matches('\0')
                        .to_string(),
                );
            } else if kind == NFTA_OBJ_DATA {
                values = counter_values(v);
            }
        }
        if let Some(name) = name {
            out.push(NamedCounter {
                name,
                packets: values.0,
                bytes: values.1,
            });
        }
    })?;
    Ok(out)
}

/// One element of a counting set: its key (the raw bytes, each part of a concatenation padded
/// to 4) and its counter.
pub(crate) struct CountedKey {
    pub key: Vec<u8>,
    pub packets: u64,
    pub bytes: u64,
}

/// The elements of a set with counters, in one netlink dump (milliseconds where `nft -j list
/// set` takes seconds for a full set). No table or set: nothing.
pub(crate) fn read_counted(set: &str) -> Result<Vec<CountedKey>> {
    use rustables::sys::{
        NFT_MSG_GETSETELEM, NFTA_DATA_VALUE, NFTA_EXPR_DATA, NFTA_EXPR_NAME, NFTA_LIST_ELEM,
        NFTA_SET_ELEM_EXPR, NFTA_SET_ELEM_EXPRESSIONS, NFTA_SET_ELEM_KEY,
        NFTA_SET_ELEM_LIST_ELEMENTS, NFTA_SET_ELEM_LIST_SET, NFTA_SET_ELEM_LIST_TABLE,
    };
    let (table, name) = (format!("{TABLE}\0"), format!("{set}\0"));
    let request = dump_request(
        NFT_MSG_GETSETELEM,
        &[
            (NFTA_SET_ELEM_LIST_TABLE, table.as_bytes()),
            (NFTA_SET_ELEM_LIST_SET, name.as_bytes()),
        ],
    );
    let counter_of = |expr: &[u8]| {
        let mut is_counter = false;
        let mut values = (0, 0);
        for (k, v) in attrs(expr) {
            if k == NFTA_EXPR_NAME {
                is_counter = v.starts_with(b"counter");
            } else if k == NFTA_EXPR_DATA {
                values = counter_values(v);
            }
        }
        is_counter.then_some(values)
    };
    let mut out = Vec::new();
    dump(&format!("set {set}"), &request, &mut |m| {
        let elements = attrs(m).filter(|(k, _)| *k == NFTA_SET_ELEM_LIST_ELEMENTS);
        for (_, list) in elements {
            for (_, elem) in attrs(list).filter(|(k, _)| *k == NFTA_LIST_ELEM) {
                let (mut key, mut values) = (None, (0, 0));
                for (k, v) in attrs(elem) {
                    if k == NFTA_SET_ELEM_KEY {
                        key = attrs(v)
                            .find(|(k, _)| *k == NFTA_DATA_VALUE)
                            .map(|(_, d)| d);
                    } else if k == NFTA_SET_ELEM_EXPR {
                        values = counter_of(v).unwrap_or(values);
                    } else if k == NFTA_SET_ELEM_EXPRESSIONS {
                        for (_, e) in attrs(v).filter(|(k, _)| *k == NFTA_LIST_ELEM) {
                            values = counter_of(e).unwrap_or(values);
                        }
                    }
                }
                if let Some(key) = key {
                    out.push(CountedKey {
                        key: key.to_vec(),
                        packets: values.0,
                        bytes: values.1,
                    });
                }
            }
        }
    })?;
    Ok(out)
}

/// An address at the start of a key (4 or 16 bytes).
pub(crate) fn key_addr(key: &[u8], v6: bool) -> Option<IpAddr> {
    if v6 {
        <[u8; 16]>::try_from(key.get(..16)?).map(IpAddr::from).ok()
    } else {
        <[u8; 4]>::try_from(key.get(..4)?).map(IpAddr::from).ok()
    }
}

/// `inet_proto . inet_service` at `at` in a key: (protocol, port).
pub(crate) fn key_proto_port(key: &[u8], at: usize) -> Option<(u8, u16)> {
    let k = key.get(at..at + 6)?;
    Some((k[0], u16::from_be_bytes([k[4], k[5]])))
}

/// The elements of a probe-pair set (`ipv4_addr . inet_proto . inet_service`, or the IPv6 one)
/// with their counters.
pub(crate) fn read_probes(set: &str, v6: bool) -> Result<Vec<CarriedProbe>> {
    let alen = if v6 { 16 } else { 4 };
    Ok(read_counted(set)?
        .into_iter()
        .filter_map(|e| {
            let source = key_addr(&e.key, v6)?;
            let (protocol, port) = key_proto_port(&e.key, alen)?;
            Some(CarriedProbe {
                source,
                protocol,
                port,
                packets: e.packets,
                bytes: e.bytes,
            })
        })
        .collect())
}

fn element_list(
    table: &Table,
    name: &str,
    addrs: &[IpAddr],
) -> std::result::Result<SetElementList, rustables::error::BuilderError> {
    // SetBuilder does not copy the table's family into the element list it makes: set it.
    let mut elems = if addrs.first().is_some_and(IpAddr::is_ipv6) {
        let mut b = SetBuilder::<std::net::Ipv6Addr>::new(name, table)?;
        for a in addrs {
            if let IpAddr::V6(a) = a {
                b.add(a);
            }
        }
        b.finish().1
    } else {
        let mut b = SetBuilder::<std::net::Ipv4Addr>::new(name, table)?;
        for a in addrs {
            if let IpAddr::V4(a) = a {
                b.add(a);
            }
        }
        b.finish().1
    };
    elems.family = ProtocolFamily::Inet;
    Ok(elems)
}

/// One transaction: each run of changes to the same set in the same direction becomes one
/// message (split at [`KEYS_PER_MESSAGE`]).
fn send(changes: &[ElementChange]) -> std::result::Result<(), Failure> {
    let table = Table::new(ProtocolFamily::Inet).with_name(TABLE);
    let mut batch = Batch::new();
    let mut messages = 0u32;
    let key = |c: &ElementChange| (c.set.set_name(c.address.is_ipv6()), c.add);
    for run in changes.chunk_by(|a, b| key(a) == key(b)) {
        let (name, add) = key(&run[0]);
        let addrs: Vec<IpAddr> = run.iter().map(|c| c.address).collect();
        for part in addrs.chunks(KEYS_PER_MESSAGE) {
            let elems =
                element_list(&table, name, part).map_err(|e| Failure::Build(e.to_string()))?;
            batch.add(&elems, if add { MsgType::Add } else { MsgType::Del });
            messages += 1;
        }
    }
    // rustables numbers the batch start 0 and the messages 1..=n.
    transact(&batch.finalize(), messages, &mut |_| {})
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
        Err(Failure::Kernel(ENOENT)) if changes.len() > 1 => {
            for c in changes {
                match send(std::slice::from_ref(c)) {
                    Ok(()) => {}
                    Err(Failure::Kernel(ENOENT)) if !c.add => {}
                    Err(e) => return Err(element_error(c, &e)),
                }
            }
            Ok(())
        }
        Err(Failure::Kernel(ENOENT)) if !changes[0].add => Ok(()),
        Err(e) => Err(element_error(&changes[0], &e)),
    }
}

fn describe(e: &Failure) -> String {
    match e {
        Failure::Kernel(n) => io::Error::from_raw_os_error(*n).to_string(),
        Failure::Socket(e) => format!("netlink: {e}"),
        Failure::Build(e) => e.clone(),
    }
}

fn element_error(c: &ElementChange, e: &Failure) -> Error {
    Error::Firewall(format!(
        "{} {} {} set {}: {}",
        if c.add { "adding" } else { "removing" },
        c.address,
        if c.add { "to" } else { "from" },
        c.set.set_name(c.address.is_ipv6()),
        describe(e)
    ))
}

/// The name of the interface carrying the IPv4 default route (lowest metric) in this network
/// namespace, if there is one.
pub(crate) fn default_route_interface() -> io::Result<Option<String>> {
    default_route_interface_of(AddressFamily::Inet)
}

/// The same for the IPv6 default route (often learned from router advertisements, and not
/// always on the IPv4 one's interface).
pub(crate) fn default_route_interface_v6() -> io::Result<Option<String>> {
    default_route_interface_of(AddressFamily::Inet6)
}

fn default_route_interface_of(family: AddressFamily) -> io::Result<Option<String>> {
    let mut msg = RouteMessage::default();
    msg.header.address_family = family;
    let replies = netlink_request_rtnl(
        RouteNetlinkMessage::GetRoute(msg),
        Some(NLM_F_REQUEST | NLM_F_DUMP),
    )?;
    let mut best: Option<(u32, u32)> = None; // (metric, ifindex)
    for reply in replies {
        let NetlinkPayload::InnerMessage(RouteNetlinkMessage::NewRoute(r)) = reply.payload else {
            continue;
        };
        if r.header.destination_prefix_length != 0 || r.header.address_family != family {
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
