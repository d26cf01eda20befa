//! The filtering resolver against real DNS clients (`dig` and raw wire-format queries) on loopback
//! ports, forwarding to a real upstream (a small hickory-server) over plain DNS and DNS-over-TLS
//! with a certificate from a test CA.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hickory_server::Server;
use hickory_server::net::runtime::Time;
use hickory_server::proto::op::{
    Edns, Header, HeaderCounts, Message, Metadata, Query, ResponseCode,
};
use hickory_server::proto::rr::rdata::{A, AAAA, TXT};
use hickory_server::proto::rr::{Name, RData, Record, RecordType};
use hickory_server::server::{Request, RequestHandler, ResponseHandler, ResponseInfo};
use hickory_server::zone_handler::MessageResponseBuilder;
use mistborn_core::dns::{
    BlockedAnswer, DnsHandler, DnsServer, DnsState, Filter, FilterBuilder, LocalHost, LocalZone,
    QueryLogger, Upstream, UpstreamConfig, UpstreamProtocol, parse_list,
};
use tokio::net::{TcpListener, UdpSocket};

// ---------------------------------------------------------------- the upstream

/// Answers any name: A 192.0.2.1, AAAA 2001:db8::1, `big.example-up.test` TXT of ~4 KB, `nx.example-up.test`
/// NXDOMAIN. Counts the queries it sees per name.
#[derive(Clone, Default)]
struct FakeUpstream {
    seen: Arc<Mutex<HashMap<String, usize>>>,
}

impl FakeUpstream {
    fn count(&self, name: &str) -> usize {
        self.seen.lock().unwrap().get(name).copied().unwrap_or(0)
    }
    fn total(&self) -> usize {
        self.seen.lock().unwrap().values().sum()
    }
}

#[async_trait::async_trait]
impl RequestHandler for FakeUpstream {
    async fn handle_request<R: ResponseHandler, T: Time>(
        &self,
        request: &Request,
        mut rh: R,
    ) -> ResponseInfo {
        let q = &request.queries.queries()[0];
        let name = q.name().to_string();
        *self.seen.lock().unwrap().entry(name.clone()).or_default() += 1;
        let mut edns = Edns::new();
        if let Some(e) = &request.edns {
            edns.set_max_payload(e.max_payload().max(512));
        }
        let mut b = MessageResponseBuilder::from_message_request(request);
        if request.edns.is_some() {
            b.edns(&edns);
        }
        let mut meta = Metadata::response_from_request(&request.metadata);
        meta.authoritative = true;
        let owner: Name = q.name().into();
        let mut records = Vec::new();
        if name == "nx.example-up.test." {
            meta.response_code = ResponseCode::NXDomain;
        } else if name == "big.example-up.test." && q.query_type() == RecordType::TXT {
            for i in 0..40 {
                let text = format!("{i:02}-{}", "x".repeat(100));
                records.push(Record::from_rdata(
                    owner.clone(),
                    300,
                    RData::TXT(TXT::new(vec![text])),
                ));
            }
        } else if q.query_type() == RecordType::A {
            records.push(Record::from_rdata(
                owner,
                300,
                RData::A(A::new(192, 0, 2, 1)),
            ));
        } else if q.query_type() == RecordType::AAAA {
            let v6 = Ipv6Addr::from_str("2001:db8::1").unwrap();
            records.push(Record::from_rdata(owner, 300, RData::AAAA(AAAA(v6))));
        }
        let fallback = Header {
            metadata: meta,
            counts: HeaderCounts::default(),
        };
        rh.send_response(b.build(meta, records.iter(), [], [], []))
            .await
            .unwrap_or_else(|_| ResponseInfo::from(fallback))
    }
}

struct UpstreamServer {
    fake: FakeUpstream,
    plain: SocketAddr,
    tls: SocketAddr,
    ca_pem: String,
    _server: tokio::task::JoinHandle<()>,
}

async fn start_upstream() -> UpstreamServer {
    let fake = FakeUpstream::default();
    let mut server = Server::new(fake.clone());
    let udp = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let plain = udp.local_addr().unwrap();
    let tcp = TcpListener::bind(plain).await.unwrap();
    server.register_socket(udp);
    server.register_listener(tcp, Duration::from_secs(5), 65536);

    // A test CA and a certificate for "upstream.test" signed by it.
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "Mistborn test CA");
    let ca = rcgen::CertifiedIssuer::self_signed(ca_params, ca_key).unwrap();
    let leaf_key = rcgen::KeyPair::generate().unwrap();
    let leaf = rcgen::CertificateParams::new(vec!["upstream.test".to_string()])
        .unwrap()
        .signed_by(&leaf_key, &ca)
        .unwrap();
    let key = rustls::pki_types::PrivateKeyDer::try_from(leaf_key.serialize_der()).unwrap();
    let tls_config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(vec![leaf.der().clone()], key)
    .unwrap();
    let tls_listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let tls = tls_listener.local_addr().unwrap();
    server
        .register_tls_listener_with_tls_config(
            tls_listener,
            Duration::from_secs(5),
            Arc::new(tls_config),
        )
        .unwrap();
    let task = tokio::spawn(async move {
        let _ = server.block_until_done().await;
    });
    UpstreamServer {
        fake,
        plain,
        tls,
        ca_pem: ca.pem(),
        _server: task,
    }
}

// ---------------------------------------------------------------- Mistborn

const HOSTS_LIST: &str = "# hosts format\n0.0.0.0 hosts-blocked.test\n127.0.0.1 localhost\n";
const PLAIN_LIST: &str = "# plain domains\nplain-blocked.test\nallowed-parent.test\n";
const ADBLOCK_LIST: &str = "! adblock\n||adblock-blocked.test^\n@@||ok.allowed-parent.test^\n@@||ok.up.test^\n||up.test^\n";

fn filter(extra: &str) -> Filter {
    let mut b = FilterBuilder::new();
    b.add_list("hosts-list", &parse_list(HOSTS_LIST));
    b.add_list("plain-list", &parse_list(PLAIN_LIST));
    b.add_list("adblock-list", &parse_list(ADBLOCK_LIST));
    b.add_list("extra", &parse_list(extra));
    b.deny_exact("exact.deny.test");
    b.deny_wildcard("*.wild.deny.test");
    b.build()
}

fn server_host() -> LocalHost {
    LocalHost {
        v4: Some(Ipv4Addr::new(10, 15, 91, 1)),
        v6: Some(Ipv6Addr::from_str("fd15:91::1").unwrap()),
    }
}

struct Mistborn {
    state: Arc<DnsState>,
    server: DnsServer,
    addr: SocketAddr,
}

async fn start_mistborn(upstream: Option<Upstream>, answer: BlockedAnswer) -> Mistborn {
    let zone = LocalZone::new("mistborn", server_host(), &["nextcloud".to_string()]).unwrap();
    let state = Arc::new(DnsState::new(
        filter(""),
        zone,
        upstream,
        answer,
        60,
        300,
        QueryLogger::counters_only(),
    ));
    let server = DnsServer::start(
        DnsHandler::new(state.clone()),
        &["127.0.0.1:0".parse().unwrap()],
    )
    .await
    .unwrap();
    let addr = server.local_addrs()[0];
    Mistborn {
        state,
        server,
        addr,
    }
}

fn plain_upstream(u: &UpstreamServer) -> Upstream {
    let cfg = UpstreamConfig {
        protocol: UpstreamProtocol::Udp,
        address: u.plain,
        tls_name: None,
        path: None,
    };
    Upstream::new(&[cfg], None, 1000).unwrap()
}

// ---------------------------------------------------------------- clients

/// `dig` output: status and answer data lines.
struct Dig {
    status: String,
    answers: Vec<String>,
    flags: String,
    raw: String,
}

async fn dig(server: SocketAddr, name: &str, qtype: &str, extra: &[&str]) -> Dig {
    let out = tokio::process::Command::new("dig")
        .arg(format!("@{}", server.ip()))
        .args([
            "-p",
            &server.port().to_string(),
            name,
            qtype,
            "+time=3",
            "+tries=1",
        ])
        .args(extra)
        .output()
        .await
        .expect("dig is installed (dnsutils)");
    let raw = String::from_utf8_lossy(&out.stdout).to_string();
    let status = raw
        .split("status: ")
        .nth(1)
        .and_then(|s| s.split(',').next())
        .unwrap_or("NO ANSWER")
        .to_string();
    let flags = raw
        .split("flags: ")
        .nth(1)
        .and_then(|s| s.split(';').next())
        .unwrap_or("")
        .to_string();
    let mut answers = Vec::new();
    let mut in_answer = false;
    for line in raw.lines() {
        if line.starts_with(";; ANSWER SECTION") {
            in_answer = true;
            continue;
        }
        if in_answer {
            if line.trim().is_empty() {
                break;
            }
            answers.push(
                line.split_whitespace()
                    .skip(4)
                    .collect::<Vec<_>>()
                    .join(" "),
            );
        }
    }
    Dig {
        status,
        answers,
        flags,
        raw,
    }
}

/// One query over UDP from `src` (any loopback address), parsed.
async fn udp_query(
    server: SocketAddr,
    src: IpAddr,
    name: &str,
    qtype: RecordType,
) -> Option<Message> {
    let sock = UdpSocket::bind(SocketAddr::new(src, 0)).await.unwrap();
    let mut m = Message::query();
    m.metadata.id = rand_id();
    m.metadata.recursion_desired = true;
    m.add_query(Query::query(Name::from_str(name).unwrap(), qtype));
    sock.send_to(&m.to_vec().unwrap(), server).await.unwrap();
    let mut buf = vec![0u8; 4096];
    let n = tokio::time::timeout(Duration::from_secs(2), sock.recv(&mut buf))
        .await
        .ok()?
        .ok()?;
    Message::from_vec(&buf[..n]).ok()
}

fn rand_id() -> u16 {
    static NEXT: AtomicUsize = AtomicUsize::new(1);
    NEXT.fetch_add(1, Ordering::Relaxed) as u16
}

// ---------------------------------------------------------------- tests

#[tokio::test]
async fn blocked_names_all_formats_subdomains_and_allow_exceptions() {
    let up = start_upstream().await;
    let m = start_mistborn(Some(plain_upstream(&up)), BlockedAnswer::Null).await;
    for name in [
        "hosts-blocked.test",
        "plain-blocked.test",
        "adblock-blocked.test",
        "deep.sub.hosts-blocked.test",
        "sub.plain-blocked.test",
        "x.adblock-blocked.test",
        "www.up.test",
        "exact.deny.test",
        "a.wild.deny.test",
    ] {
        let a = dig(m.addr, name, "A", &[]).await;
        assert_eq!(
            (a.status.as_str(), a.answers.clone()),
            ("NOERROR", vec!["0.0.0.0".into()]),
            "{name}: {}",
            a.raw
        );
        let aaaa = dig(m.addr, name, "AAAA", &[]).await;
        assert_eq!(aaaa.answers, vec!["::".to_string()], "{name}: {}", aaaa.raw);
        for other in ["HTTPS", "MX", "TXT", "SVCB", "CNAME"] {
            let r = dig(m.addr, name, other, &[]).await;
            assert_eq!(r.status, "NOERROR", "{name} {other}");
            assert!(r.answers.is_empty(), "{name} {other}: {}", r.raw);
        }
    }
    // Never forwarded: the upstream saw none of the blocked names, for any type.
    assert_eq!(up.fake.count("www.up.test."), 0);
    assert_eq!(up.fake.total(), 0, "blocked names reached the upstream");

    // Allow entries win over a blocked parent, and the name is then resolved upstream.
    let ok = dig(m.addr, "ok.up.test", "A", &[]).await;
    assert_eq!(ok.answers, vec!["192.0.2.1".to_string()], "{}", ok.raw);
    assert_eq!(up.fake.count("ok.up.test."), 1);
    // Not listed: the parent of a listed name, the exact-deny's subdomain, the wildcard's base.
    for name in ["a.up-not.test", "sub.exact.deny.test", "wild.deny.test"] {
        let r = dig(m.addr, name, "A", &[]).await;
        assert_eq!(
            r.answers,
            vec!["192.0.2.1".to_string()],
            "{name}: {}",
            r.raw
        );
    }
    // A name the upstream says does not exist.
    assert_eq!(
        dig(m.addr, "nx.example-up.test", "A", &[]).await.status,
        "NXDOMAIN"
    );
    let c = m.state.logger().counters().snapshot();
    assert_eq!(c.blocked, 9 * 7);
    m.server.shutdown().await;
}

#[tokio::test]
async fn nxdomain_mode_blocks_every_type() {
    let m = start_mistborn(None, BlockedAnswer::Nxdomain).await;
    for qtype in ["A", "AAAA", "HTTPS", "TXT"] {
        let r = dig(m.addr, "sub.plain-blocked.test", qtype, &[]).await;
        assert_eq!(r.status, "NXDOMAIN", "{qtype}: {}", r.raw);
    }
    // No upstream configured: other names are refused, never resolved elsewhere.
    assert_eq!(dig(m.addr, "free.test", "A", &[]).await.status, "REFUSED");
}

#[tokio::test]
async fn local_zone_names() {
    let m = start_mistborn(None, BlockedAnswer::Null).await;
    for name in [
        "home.mistborn",
        "dns.mistborn",
        "nextcloud.mistborn",
        "HOME.Mistborn.",
    ] {
        let a = dig(m.addr, name, "A", &[]).await;
        assert_eq!(
            a.answers,
            vec!["10.15.91.1".to_string()],
            "{name}: {}",
            a.raw
        );
        assert!(a.flags.contains("aa"), "{name}: authoritative: {}", a.flags);
        let aaaa = dig(m.addr, name, "AAAA", &[]).await;
        assert_eq!(aaaa.answers, vec!["fd15:91::1".to_string()], "{name}");
        let mx = dig(m.addr, name, "MX", &[]).await;
        assert_eq!(
            (mx.status.as_str(), mx.answers.len()),
            ("NOERROR", 0),
            "{name}"
        );
    }
    for name in ["other.mistborn", "a.home.mistborn"] {
        assert_eq!(
            dig(m.addr, name, "A", &[]).await.status,
            "NXDOMAIN",
            "{name}"
        );
    }
    // Over TCP too.
    let tcp = dig(m.addr, "home.mistborn", "A", &["+tcp"]).await;
    assert_eq!(tcp.answers, vec!["10.15.91.1".to_string()]);
}

/// `localhost` and the special-use names are answered here, never forwarded and never blocked,
/// even when a list or a rule names them (RFC 6761, 6762, 7686, 6303).
#[tokio::test]
async fn special_use_names_are_answered_locally() {
    let up = start_upstream().await;
    let m = start_mistborn(Some(plain_upstream(&up)), BlockedAnswer::Nxdomain).await;
    let mut b = FilterBuilder::new();
    b.add_list(
        "bad",
        &parse_list("localhost\n||x.localhost^\n0.0.0.0 printer.local\n"),
    );
    b.deny_exact("localhost");
    b.deny_wildcard("*.localhost");
    m.state.set_filter(b.build());
    for name in ["localhost", "LOCALHOST.", "app.localhost"] {
        let a = dig(m.addr, name, "A", &[]).await;
        assert_eq!(
            a.answers,
            vec!["127.0.0.1".to_string()],
            "{name}: {}",
            a.raw
        );
        let aaaa = dig(m.addr, name, "AAAA", &[]).await;
        assert_eq!(aaaa.answers, vec!["::1".to_string()], "{name}");
    }
    for name in [
        "printer.local",
        "x.invalid",
        "abcdef.onion",
        "nas.home.arpa",
        "2.91.15.10.in-addr.arpa",
    ] {
        let r = dig(m.addr, name, "A", &[]).await;
        assert_eq!(r.status, "NXDOMAIN", "{name}: {}", r.raw);
    }
    for name in [
        "localhost.",
        "app.localhost.",
        "printer.local.",
        "x.invalid.",
    ] {
        assert_eq!(up.fake.count(name), 0, "{name} was forwarded");
    }
    // An ordinary name still goes upstream.
    let r = dig(m.addr, "localhost.example-up.test", "A", &[]).await;
    assert_eq!(r.answers, vec!["192.0.2.1".to_string()], "{}", r.raw);
}

#[tokio::test]
async fn forwards_plain_with_cache_and_tcp_fallback() {
    let up = start_upstream().await;
    let m = start_mistborn(Some(plain_upstream(&up)), BlockedAnswer::Null).await;
    for _ in 0..3 {
        let r = dig(m.addr, "cached.example-up.test", "A", &[]).await;
        assert_eq!(r.answers, vec!["192.0.2.1".to_string()], "{}", r.raw);
    }
    assert_eq!(
        up.fake.count("cached.example-up.test."),
        1,
        "the cache answers repeats"
    );

    // ~4.4 KB of TXT: too big for UDP both between Mistborn and the upstream (EDNS 1232) and
    // between the client and Mistborn (no EDNS: 512 bytes).
    let udp = dig(
        m.addr,
        "big.example-up.test",
        "TXT",
        &["+noedns", "+ignore"],
    )
    .await;
    assert!(udp.flags.contains("tc"), "truncated over UDP: {}", udp.raw);
    let full = dig(m.addr, "big.example-up.test", "TXT", &["+noedns"]).await;
    assert_eq!(full.answers.len(), 40, "dig retried over TCP: {}", full.raw);
    let tcp = dig(m.addr, "big.example-up.test", "TXT", &["+tcp"]).await;
    assert_eq!(tcp.answers.len(), 40);
    assert!(up.fake.count("big.example-up.test.") >= 1);
}

#[tokio::test]
async fn forwards_over_dns_over_tls_with_a_test_ca() {
    let up = start_upstream().await;
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, &up.ca_pem).unwrap();
    let tls = UpstreamConfig {
        protocol: UpstreamProtocol::Tls,
        address: up.tls,
        tls_name: Some("upstream.test".into()),
        path: None,
    };
    let upstream = Upstream::new(std::slice::from_ref(&tls), Some(&ca), 100).unwrap();
    let m = start_mistborn(Some(upstream), BlockedAnswer::Null).await;
    let r = dig(m.addr, "via-tls.example-up.test", "A", &[]).await;
    assert_eq!(r.answers, vec!["192.0.2.1".to_string()], "{}", r.raw);
    assert_eq!(up.fake.count("via-tls.example-up.test."), 1);
    m.server.shutdown().await;

    // Without the test CA the certificate is not trusted: SERVFAIL, and nothing falls back to
    // plain DNS.
    let untrusted = Upstream::new(&[tls], None, 100).unwrap();
    let m = start_mistborn(Some(untrusted), BlockedAnswer::Null).await;
    let r = dig(m.addr, "untrusted.example-up.test", "A", &["+time=8"]).await;
    assert_eq!(r.status, "SERVFAIL", "{}", r.raw);
    assert_eq!(up.fake.count("untrusted.example-up.test."), 0);
}

#[tokio::test]
async fn malformed_packets_get_formerr_or_nothing_and_the_server_keeps_answering() {
    let m = start_mistborn(None, BlockedAnswer::Null).await;
    let sock = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let mut valid = Message::query();
    valid.metadata.id = 0x4242;
    valid.add_query(Query::query(
        Name::from_str("home.mistborn.").unwrap(),
        RecordType::A,
    ));
    let valid = valid.to_vec().unwrap();
    let mut two_queries = Message::query();
    two_queries.metadata.id = 0x4343;
    two_queries.add_query(Query::query(
        Name::from_str("a.test.").unwrap(),
        RecordType::A,
    ));
    two_queries.add_query(Query::query(
        Name::from_str("b.test.").unwrap(),
        RecordType::A,
    ));
    let mut response_bit = valid.clone();
    response_bit[2] |= 0x80;
    let mut bad_label = valid.clone();
    bad_label[12] = 0xC0; // a compression pointer to nowhere
    bad_label[13] = 0xFF;
    let packets: Vec<Vec<u8>> = vec![
        vec![],
        vec![0x12],
        vec![0; 11],
        valid[..valid.len() - 3].to_vec(),
        bad_label,
        response_bit,
        two_queries.to_vec().unwrap(),
        vec![0xFF; 512],
        (0..300u32).map(|i| (i * 7919 % 251) as u8).collect(),
    ];
    for p in &packets {
        sock.send_to(p, m.addr).await.unwrap();
        let mut buf = [0u8; 4096];
        if let Ok(Ok(n)) =
            tokio::time::timeout(Duration::from_millis(300), sock.recv(&mut buf)).await
        {
            let rcode = buf[3] & 0x0F;
            assert!(n >= 12, "a reply is at least a header");
            assert!(
                rcode == 1 || rcode == 4,
                "FORMERR or NOTIMP, got rcode {rcode} for {p:?}"
            );
        }
    }
    // Still answering, over UDP and TCP.
    let ok = udp_query(
        m.addr,
        "127.0.0.1".parse().unwrap(),
        "home.mistborn.",
        RecordType::A,
    )
    .await;
    assert_eq!(ok.expect("answer").answers.len(), 1);
    assert_eq!(
        dig(m.addr, "home.mistborn", "A", &["+tcp"])
            .await
            .answers
            .len(),
        1
    );
}

#[tokio::test]
async fn reload_during_a_query_loop_never_lets_a_blocked_name_through() {
    let m = start_mistborn(None, BlockedAnswer::Null).await;
    // A big list so each rebuild takes a while and overlaps many queries.
    let big: String = (0..200_000)
        .map(|i| format!("n{i}.reload.test\n"))
        .collect();
    let stop = Arc::new(AtomicBool::new(false));
    let mut loops = Vec::new();
    for (k, name) in ["sub.plain-blocked.test.", "n199999.reload.test."]
        .into_iter()
        .enumerate()
    {
        let (stop, addr) = (stop.clone(), m.addr);
        loops.push(tokio::spawn(async move {
            let mut answered = 0usize;
            let mut i = 0usize;
            while !stop.load(Ordering::Relaxed) {
                i += 1;
                let r = udp_query(addr, "127.0.0.1".parse().unwrap(), name, RecordType::A).await;
                let r = r.unwrap_or_else(|| panic!("no answer to query {i} for {name}"));
                let a: Vec<String> = r.answers.iter().map(|a| a.data.to_string()).collect();
                // The second name is only in the big list, present from the first reload on.
                if k == 0 || answered > 0 || a == ["0.0.0.0"] {
                    assert_eq!(a, vec!["0.0.0.0".to_string()], "query {i} for {name}");
                    answered += 1;
                }
            }
            answered
        }));
    }
    let state = m.state.clone();
    let reloads = tokio::task::spawn_blocking(move || {
        let t = std::time::Instant::now();
        for _ in 0..10 {
            state.set_filter(filter(&big));
        }
        t.elapsed()
    })
    .await
    .unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    stop.store(true, Ordering::Relaxed);
    for l in loops {
        let answered = l.await.unwrap();
        assert!(answered > 10, "the loop kept getting answers ({answered})");
    }
    assert!(reloads > Duration::from_millis(1));
}
