//! A real DNS server on loopback for tests: hickory-server with a small in-memory zone and a
//! query counter, UDP and TCP on one `127.0.0.1` port. Also a UDP socket that never answers.
//!
//! ```ignore
//! let addr = start_dns_server([("crm.example", Reply::a(["127.0.0.2"]))]).await;
//! ```
#![allow(dead_code)] // each test binary uses a part

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hickory_server::net::runtime::Time;
use hickory_server::proto::op::{Header, HeaderCounts, Metadata, ResponseCode};
use hickory_server::proto::rr::rdata::{A, AAAA, CNAME};
use hickory_server::proto::rr::{Name, RData, Record, RecordType};
use hickory_server::server::{Request, RequestHandler, ResponseHandler, ResponseInfo};
use hickory_server::zone_handler::MessageResponseBuilder;
use hickory_server::Server;
use tokio::net::{TcpListener, UdpSocket};

/// What the server answers for a name.
#[derive(Debug, Clone)]
pub enum Reply {
    /// A and AAAA records (each query type gets its family), with this TTL.
    Addresses {
        ips: Vec<IpAddr>,
        ttl: u32,
    },
    /// A CNAME to another name of the zone, answered with the target's records.
    Cname {
        target: String,
        ttl: u32,
    },
    /// Each query gets the next set of addresses, round the list (DNS rebinding).
    Alternating {
        sets: Vec<Vec<IpAddr>>,
        ttl: u32,
    },
    ServFail,
    Refused,
}

impl Reply {
    /// Addresses with a TTL of 300 s.
    pub fn addresses<'a>(ips: impl IntoIterator<Item = &'a str>) -> Reply {
        Reply::with_ttl(ips, 300)
    }

    /// Answers alternating between these sets, query after query.
    pub fn alternating(sets: &[&[&str]], ttl: u32) -> Reply {
        Reply::Alternating {
            sets: sets
                .iter()
                .map(|set| set.iter().map(|s| s.parse().expect("test IP")).collect())
                .collect(),
            ttl,
        }
    }

    pub fn with_ttl<'a>(ips: impl IntoIterator<Item = &'a str>, ttl: u32) -> Reply {
        Reply::Addresses {
            ips: ips
                .into_iter()
                .map(|s| s.parse().expect("test IP"))
                .collect(),
            ttl,
        }
    }
}

/// A running server: its address and how many queries each name received.
#[derive(Clone)]
pub struct DnsServer {
    pub addr: SocketAddr,
    counts: Arc<Mutex<HashMap<String, usize>>>,
}

impl DnsServer {
    /// Starts the server on the current tokio runtime; names not in `records` get NXDOMAIN.
    pub async fn start<'a>(records: impl IntoIterator<Item = (&'a str, Reply)>) -> DnsServer {
        let zone: HashMap<String, Reply> = records
            .into_iter()
            .map(|(name, reply)| (normal(name), reply))
            .collect();
        let counts = Arc::new(Mutex::new(HashMap::new()));
        let handler = ZoneHandler {
            zone: Arc::new(zone),
            counts: counts.clone(),
        };
        let (udp, tcp) = bind_pair().await;
        let addr = udp.local_addr().expect("udp address");
        let mut server = Server::new(handler);
        server.register_socket(udp);
        server.register_listener(tcp, Duration::from_secs(5), 4096);
        // The server's tasks live in its JoinSet: keep it alive in a task of its own.
        tokio::spawn(async move {
            let _ = server.block_until_done().await;
        });
        DnsServer { addr, counts }
    }

    /// Queries received for `name` (all types).
    pub fn queries(&self, name: &str) -> usize {
        let counts = self.counts.lock().expect("counts");
        counts.get(&normal(name)).copied().unwrap_or(0)
    }
}

/// Starts a server and returns its address (see [`DnsServer::start`]).
pub async fn start_dns_server<'a>(
    records: impl IntoIterator<Item = (&'a str, Reply)>,
) -> SocketAddr {
    DnsServer::start(records).await.addr
}

/// A UDP socket on loopback that reads queries and never answers (for timeouts).
pub async fn start_silent_server() -> SocketAddr {
    let socket = UdpSocket::bind("127.0.0.1:0").await.expect("bind udp");
    let addr = socket.local_addr().expect("udp address");
    tokio::spawn(async move {
        let mut buf = [0u8; 2048];
        while socket.recv_from(&mut buf).await.is_ok() {}
    });
    addr
}

fn normal(name: &str) -> String {
    name.trim_end_matches('.').to_ascii_lowercase()
}

/// UDP and TCP on the same free port.
async fn bind_pair() -> (UdpSocket, TcpListener) {
    for _ in 0..50 {
        let udp = UdpSocket::bind("127.0.0.1:0").await.expect("bind udp");
        let port = udp.local_addr().expect("udp address").port();
        if let Ok(tcp) = TcpListener::bind(("127.0.0.1", port)).await {
            return (udp, tcp);
        }
    }
    panic!("no free port for udp and tcp on 127.0.0.1");
}

struct ZoneHandler {
    zone: Arc<HashMap<String, Reply>>,
    counts: Arc<Mutex<HashMap<String, usize>>>,
}

impl ZoneHandler {
    /// The records answering `qname`/`qtype`, following CNAMEs inside the zone.
    fn answers(
        &self,
        qname: &Name,
        qtype: RecordType,
        nth: usize,
    ) -> Option<Result<Vec<Record>, ResponseCode>> {
        let mut records = Vec::new();
        let mut name = qname.clone();
        for _ in 0..8 {
            match self.zone.get(&normal(&name.to_ascii()))? {
                Reply::ServFail => return Some(Err(ResponseCode::ServFail)),
                Reply::Refused => return Some(Err(ResponseCode::Refused)),
                Reply::Cname { target, ttl } => {
                    let target = Name::from_ascii(format!("{target}.")).expect("cname target");
                    records.push(Record::from_rdata(
                        name,
                        *ttl,
                        RData::CNAME(CNAME(target.clone())),
                    ));
                    name = target;
                }
                Reply::Addresses { .. } | Reply::Alternating { .. } => {
                    let (ips, ttl) = match self.zone.get(&normal(&name.to_ascii()))? {
                        Reply::Addresses { ips, ttl } => (ips, ttl),
                        Reply::Alternating { sets, ttl } => (&sets[nth % sets.len()], ttl),
                        _ => return None,
                    };
                    for ip in ips {
                        let data = match (ip, qtype) {
                            (IpAddr::V4(v4), RecordType::A) => RData::A(A(*v4)),
                            (IpAddr::V6(v6), RecordType::AAAA) => RData::AAAA(AAAA(*v6)),
                            _ => continue,
                        };
                        records.push(Record::from_rdata(name.clone(), *ttl, data));
                    }
                    return Some(Ok(records));
                }
            }
        }
        Some(Err(ResponseCode::ServFail))
    }
}

#[async_trait::async_trait]
impl RequestHandler for ZoneHandler {
    async fn handle_request<R: ResponseHandler, T: Time>(
        &self,
        request: &Request,
        mut response: R,
    ) -> ResponseInfo {
        let failed = || {
            let mut metadata = Metadata::response_from_request(&request.metadata);
            metadata.response_code = ResponseCode::ServFail;
            ResponseInfo::from(Header {
                metadata,
                counts: HeaderCounts::default(),
            })
        };
        let Ok(info) = request.request_info() else {
            return failed();
        };
        let qname: Name = info.query.name().into();
        let qtype = info.query.query_type();
        let nth = {
            let mut counts = self.counts.lock().expect("counts");
            let count = counts.entry(normal(&qname.to_ascii())).or_default();
            *count += 1;
            *count - 1
        };

        let builder = MessageResponseBuilder::from_message_request(request);
        let mut metadata = Metadata::response_from_request(&request.metadata);
        metadata.authoritative = true;
        metadata.recursion_available = true;
        let sent = match self.answers(&qname, qtype, nth) {
            None => {
                metadata.response_code = ResponseCode::NXDomain;
                response
                    .send_response(builder.build_no_records(metadata))
                    .await
            }
            Some(Err(code)) => {
                let msg = builder.error_msg(&request.metadata, code);
                response.send_response(msg).await
            }
            Some(Ok(records)) => {
                let msg = builder.build(metadata, records.iter(), [], [], []);
                response.send_response(msg).await
            }
        };
        sent.unwrap_or_else(|_| failed())
    }
}
