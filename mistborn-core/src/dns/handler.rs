//! The hickory-server request handler: local zone, then the filter, then the upstreams. Blocked
//! names are answered here for every query type and never forwarded. The filter, the zone and the
//! upstreams sit behind `ArcSwap`s, so a reload replaces them whole between two queries.

use std::collections::HashSet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use arc_swap::{ArcSwap, ArcSwapOption};
use hickory_server::net::runtime::Time;
use hickory_server::proto::op::{
    Edns, Header, HeaderCounts, MessageType, Metadata, OpCode, ResponseCode,
};
use hickory_server::proto::rr::rdata::{A, AAAA};
use hickory_server::proto::rr::{DNSClass, LowerName, RData, Record, RecordType};
use hickory_server::server::{Request, RequestHandler, ResponseHandler, ResponseInfo};
use hickory_server::zone_handler::MessageResponseBuilder;

use super::config::BlockedAnswer;
use super::log::{Outcome, QueryEvent, QueryLogger};
use super::matcher::{Filter, Verdict};
use super::upstream::Upstream;
use super::zone::{LocalZone, ZoneAnswer};

/// Everything the handler reads per query; swapped whole on reload.
#[derive(Debug)]
pub struct DnsState {
    filter: ArcSwap<Filter>,
    zone: ArcSwap<LocalZone>,
    upstream: ArcSwapOption<Upstream>,
    blocked_answer: BlockedAnswer,
    blocked_ttl: u32,
    local_ttl: u32,
    logger: QueryLogger,
    /// Tunnel addresses of MFA profiles without a live session: before the second factor they get
    /// the local zone and localhost names only (recursion would be a DNS tunnel to the internet).
    pending: ArcSwap<HashSet<IpAddr>>,
}

impl DnsState {
    /// State with an initial filter, zone and (optional) upstream.
    pub fn new(
        filter: Filter,
        zone: LocalZone,
        upstream: Option<Upstream>,
        blocked_answer: BlockedAnswer,
        blocked_ttl: u32,
        local_ttl: u32,
        logger: QueryLogger,
    ) -> Self {
        Self {
            filter: ArcSwap::from_pointee(filter),
            zone: ArcSwap::from_pointee(zone),
            upstream: ArcSwapOption::new(upstream.map(Arc::new)),
            blocked_answer,
            blocked_ttl,
            local_ttl,
            logger,
            pending: ArcSwap::from_pointee(HashSet::new()),
        }
    }

    /// Replaces the set of addresses waiting for their second factor.
    pub fn set_pending(&self, pending: HashSet<IpAddr>) {
        self.pending.store(Arc::new(pending));
    }

    /// Replaces the filter atomically: each query sees the old one or the new one, whole.
    pub fn set_filter(&self, filter: Filter) {
        self.filter.store(Arc::new(filter));
        // An upstream answer cached while a name was allowed must not outlive a new block; the
        // filter runs before the cache, so only newly *allowed* names need a fresh lookup.
        if let Some(u) = self.upstream.load().as_ref() {
            u.clear_cache();
        }
    }

    /// The filter in force.
    pub fn filter(&self) -> Arc<Filter> {
        self.filter.load_full()
    }

    /// Replaces the local zone.
    pub fn set_zone(&self, zone: LocalZone) {
        self.zone.store(Arc::new(zone));
    }

    /// Replaces the upstreams.
    pub fn set_upstream(&self, upstream: Option<Upstream>) {
        self.upstream.store(upstream.map(Arc::new));
    }

    /// The query logger (counters).
    pub fn logger(&self) -> &QueryLogger {
        &self.logger
    }
}

/// The [`RequestHandler`] given to hickory's `Server`.
#[derive(Debug, Clone)]
pub struct DnsHandler {
    state: Arc<DnsState>,
}

impl DnsHandler {
    /// A handler over shared state.
    pub fn new(state: Arc<DnsState>) -> Self {
        Self { state }
    }
}

/// What to send, decided before building the message.
enum Reply {
    Records {
        rcode: ResponseCode,
        authoritative: bool,
        answers: Vec<Record>,
        authorities: Vec<Record>,
    },
    Code(ResponseCode),
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

fn address_records(
    name: &LowerName,
    qtype: RecordType,
    ttl: u32,
    v4: Option<Ipv4Addr>,
    v6: Option<Ipv6Addr>,
) -> Vec<Record> {
    let rdata = match qtype {
        RecordType::A => v4.map(|a| RData::A(A(a))),
        RecordType::AAAA => v6.map(|a| RData::AAAA(AAAA(a))),
        _ => None,
    };
    rdata
        .map(|r| vec![Record::from_rdata(name.into(), ttl, r)])
        .unwrap_or_default()
}

/// `localhost` and names under it.
fn is_localhost(name: &LowerName) -> bool {
    name.iter()
        .next_back()
        .is_some_and(|l| l.eq_ignore_ascii_case(b"localhost"))
}

fn no_response(request: &Request, rcode: ResponseCode) -> ResponseInfo {
    let mut metadata = Metadata::response_from_request(&request.metadata);
    metadata.response_code = rcode;
    ResponseInfo::from(Header {
        metadata,
        counts: HeaderCounts::default(),
    })
}

#[async_trait::async_trait]
impl RequestHandler for DnsHandler {
    async fn handle_request<R: ResponseHandler, T: Time>(
        &self,
        request: &Request,
        mut response_handle: R,
    ) -> ResponseInfo {
        let start = Instant::now();
        let state = &*self.state;
        let meta = &request.metadata;
        // A response or garbage aimed at us: answering could feed a reflection loop.
        if meta.message_type != MessageType::Query {
            return no_response(request, ResponseCode::FormErr);
        }

        let mut resp_edns = None;
        if let Some(req_edns) = request.edns.as_ref() {
            let mut e = Edns::new();
            e.set_max_payload(req_edns.max_payload().max(512));
            e.set_version(0);
            e.set_dnssec_ok(req_edns.flags().dnssec_ok);
            resp_edns = Some(e);
        }
        let mut builder = MessageResponseBuilder::from_message_request(request);
        if let Some(e) = resp_edns.as_ref() {
            builder.edns(e);
        }

        let query = match request.queries.queries() {
            [q] if meta.op_code == OpCode::Query => q,
            [_] => return send_code(response_handle, builder, meta, ResponseCode::NotImp).await,
            _ => return send_code(response_handle, builder, meta, ResponseCode::FormErr).await,
        };
        let name = query.name();
        let qtype = query.query_type();
        if query.query_class() != DNSClass::IN {
            return send_code(response_handle, builder, meta, ResponseCode::Refused).await;
        }

        let (outcome, reply) = match state.zone.load().lookup(name) {
            ZoneAnswer::Host(h) => (
                Outcome::Local,
                Reply::Records {
                    rcode: ResponseCode::NoError,
                    authoritative: true,
                    answers: address_records(name, qtype, state.local_ttl, h.v4, h.v6),
                    authorities: Vec::new(),
                },
            ),
            ZoneAnswer::Apex => (Outcome::Local, Reply::Code(ResponseCode::NoError)),
            ZoneAnswer::NxDomain => (Outcome::Local, Reply::Code(ResponseCode::NXDomain)),
            ZoneAnswer::NotLocal
                if !is_localhost(name)
                    && state
                        .pending
                        .load()
                        .contains(&request.src().ip().to_canonical()) =>
            {
                (Outcome::Refused, Reply::Code(ResponseCode::Refused))
            }
            ZoneAnswer::NotLocal => {
                let filter = state.filter.load();
                match filter.check_labels(name.iter().rev()) {
                    Verdict::Blocked(reason) => {
                        let reply = match state.blocked_answer {
                            BlockedAnswer::Nxdomain => Reply::Code(ResponseCode::NXDomain),
                            BlockedAnswer::Null => Reply::Records {
                                rcode: ResponseCode::NoError,
                                authoritative: false,
                                answers: address_records(
                                    name,
                                    qtype,
                                    state.blocked_ttl,
                                    Some(Ipv4Addr::UNSPECIFIED),
                                    Some(Ipv6Addr::UNSPECIFIED),
                                ),
                                authorities: Vec::new(),
                            },
                        };
                        (Outcome::Blocked(filter.describe(reason)), reply)
                    }
                    Verdict::Pass | Verdict::Allowed => forward(state, name, qtype).await,
                }
            }
        };

        let mut metadata = Metadata::response_from_request(meta);
        metadata.recursion_available = true;
        let (rcode, answer_text, info) = match reply {
            Reply::Code(rcode) => {
                metadata.response_code = rcode;
                metadata.authoritative = matches!(outcome, Outcome::Local);
                let info = send(
                    &mut response_handle,
                    builder.build_no_records(metadata),
                    request,
                )
                .await;
                (rcode, None, info)
            }
            Reply::Records {
                rcode,
                authoritative,
                answers,
                authorities,
            } => {
                metadata.response_code = rcode;
                metadata.authoritative = authoritative;
                let text = matches!(outcome, Outcome::Forwarded).then(|| answer_text(&answers));
                let response = builder.build(metadata, answers.iter(), authorities.iter(), [], []);
                let info = send(&mut response_handle, response, request).await;
                (rcode, text, info)
            }
        };
        state.logger.record(QueryEvent {
            at_ms: now_ms(),
            client: request.src().ip(),
            name: name.clone(),
            qtype,
            outcome,
            rcode,
            answer: answer_text,
            latency_us: u32::try_from(start.elapsed().as_micros()).unwrap_or(u32::MAX),
        });
        info
    }
}

async fn forward(state: &DnsState, name: &LowerName, qtype: RecordType) -> (Outcome, Reply) {
    let Some(upstream) = state.upstream.load_full() else {
        return (Outcome::Refused, Reply::Code(ResponseCode::Refused));
    };
    match upstream.lookup(name, qtype).await {
        Ok(lookup) => (
            Outcome::Forwarded,
            Reply::Records {
                rcode: ResponseCode::NoError,
                authoritative: false,
                answers: lookup.answers().to_vec(),
                authorities: lookup.authorities().to_vec(),
            },
        ),
        Err(e) if e.is_no_records_found() => {
            let rcode = if e.is_nx_domain() {
                ResponseCode::NXDomain
            } else {
                ResponseCode::NoError
            };
            let authorities = e
                .into_soa()
                .map(|soa| vec![soa.into_record_of_rdata()])
                .unwrap_or_default();
            (
                Outcome::Forwarded,
                Reply::Records {
                    rcode,
                    authoritative: false,
                    answers: Vec::new(),
                    authorities,
                },
            )
        }
        Err(e) => {
            tracing::debug!(%name, %qtype, error = %e, "upstream lookup failed");
            (Outcome::Failed, Reply::Code(ResponseCode::ServFail))
        }
    }
}

fn answer_text(answers: &[Record]) -> String {
    let mut out = String::new();
    for r in answers.iter().take(4) {
        if !out.is_empty() {
            out.push_str(", ");
        }
        out.push_str(&r.data.to_string());
    }
    if answers.len() > 4 {
        out.push_str(", ...");
    }
    out
}

async fn send_code<R: ResponseHandler>(
    mut rh: R,
    builder: MessageResponseBuilder<'_>,
    meta: &Metadata,
    rcode: ResponseCode,
) -> ResponseInfo {
    let mut metadata = Metadata::response_from_request(meta);
    metadata.response_code = rcode;
    match rh.send_response(builder.error_msg(meta, rcode)).await {
        Ok(info) => info,
        Err(e) => {
            tracing::debug!(error = %e, "could not send a DNS error response");
            ResponseInfo::from(Header {
                metadata,
                counts: HeaderCounts::default(),
            })
        }
    }
}

async fn send<'a, R: ResponseHandler>(
    rh: &mut R,
    response: hickory_server::zone_handler::MessageResponse<
        '_,
        'a,
        impl Iterator<Item = &'a Record> + Send + 'a,
        impl Iterator<Item = &'a Record> + Send + 'a,
        impl Iterator<Item = &'a Record> + Send + 'a,
        impl Iterator<Item = &'a Record> + Send + 'a,
    >,
    request: &Request,
) -> ResponseInfo {
    match rh.send_response(response).await {
        Ok(info) => info,
        Err(e) => {
            tracing::debug!(error = %e, "could not send a DNS response");
            no_response(request, ResponseCode::ServFail)
        }
    }
}
