//! rate: a fixed-rate (open-loop) HTTP/1.1 load client for benches/load.sh.
//!
//! Request i of the run is due at `start + i / rate`, whatever the server's pace; it goes out on
//! connection `i % connections` as soon as it is due and that connection's previous response is
//! done. Its latency runs from the *due* time to the end of the response body, so a server that
//! stalls is charged for every request it held back (coordinated omission corrected, as wrk2
//! does). The first second is a warm-up, sent but not recorded. One `RESULT` line at the end.

mod args;
mod http;
mod pacer;
mod tls;

use http::Stream;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::net::TcpStream;
use tokio::time::timeout;

const WARMUP: Duration = Duration::from_secs(1);
/// A response slower than this is an error (wrk --timeout 5s), and the run gives up on requests
/// still unsent this long after its end.
const TIMEOUT: Duration = Duration::from_secs(5);

fn main() -> ExitCode {
    let args = match args::parse(std::env::args().skip(1)) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("rate: {e}\n{}", args::USAGE);
            return ExitCode::from(2);
        }
    };
    // One thread: the bench pins the client to one CPU, and one thread keeps wake-ups cheap.
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("rate: cannot start the runtime: {e}");
            return ExitCode::from(1);
        }
    };
    match runtime.block_on(run(args)) {
        Ok(line) => {
            println!("{line}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("rate: {e}");
            ExitCode::from(1)
        }
    }
}

/// Where to connect and what to send, the same for every request.
struct Target {
    addr: SocketAddr,
    tls: Option<(
        tokio_rustls::TlsConnector,
        rustls::pki_types::ServerName<'static>,
    )>,
    request: Vec<u8>,
}

impl Target {
    async fn connect(&self) -> Result<Box<dyn Stream>, String> {
        let connecting = async {
            let tcp = TcpStream::connect(self.addr)
                .await
                .map_err(|e| format!("connect to {}: {e}", self.addr))?;
            tcp.set_nodelay(true).map_err(|e| format!("nodelay: {e}"))?;
            Ok::<Box<dyn Stream>, String>(match &self.tls {
                None => Box::new(tcp),
                Some((connector, name)) => Box::new(
                    connector
                        .connect(name.clone(), tcp)
                        .await
                        .map_err(|e| format!("tls handshake with {}: {e}", self.addr))?,
                ),
            })
        };
        timeout(TIMEOUT, connecting)
            .await
            .map_err(|_| format!("connect to {}: timed out", self.addr))?
    }
}

/// The fixed schedule: request i is due at `start + i / rate`, on connection `i % connections`.
#[derive(Clone, Copy)]
struct Schedule {
    start: Instant,
    rate: f64,
    connections: u64,
    /// Requests before this one are the warm-up.
    first_recorded: u64,
    total: u64,
    /// Requests not yet sent by then are counted as errors.
    give_up: Instant,
}

impl Schedule {
    fn due(&self, i: u64) -> Instant {
        self.start + Duration::from_secs_f64(i as f64 / self.rate)
    }
}

/// One connection's record of the measured requests.
#[derive(Default)]
struct Tally {
    latencies_ns: Vec<u64>,
    errors: u64,
    last_end: Option<Instant>,
    first_error: Option<String>,
}

async fn run(a: args::Args) -> Result<String, String> {
    let via = a.proxy.as_ref().unwrap_or(&a.url);
    let addr = tokio::net::lookup_host((via.host.as_str(), via.port))
        .await
        .map_err(|e| format!("resolve {}: {e}", via.host))?
        .next()
        .ok_or_else(|| format!("{} has no address", via.host))?;
    // Through a forward proxy, the absolute form; else origin form.
    let request_target = if a.proxy.is_some() {
        format!("http://{}{}", a.url.authority, a.url.path)
    } else {
        a.url.path.clone()
    };
    let tls = if a.url.tls {
        Some((tls::connector()?, tls::server_name(&a.url.host)?))
    } else {
        None
    };
    let target = Arc::new(Target {
        addr,
        tls,
        request: http::request(&request_target, &a.url.authority),
    });

    // All connections open before the clock starts; the warm-up then warms them.
    let mut streams = Vec::with_capacity(a.connections);
    for _ in 0..a.connections {
        streams.push(target.connect().await?);
    }
    let first_recorded = (WARMUP.as_secs_f64() * a.rate).ceil() as u64;
    let measured = ((a.duration.as_secs_f64() * a.rate).round() as u64).max(1);
    let start = Instant::now() + Duration::from_millis(10);
    let schedule = Schedule {
        start,
        rate: a.rate,
        connections: a.connections as u64,
        first_recorded,
        total: first_recorded + measured,
        give_up: start + WARMUP + a.duration + TIMEOUT,
    };

    let released = pacer::Released::new(a.connections);
    let mut tasks = Vec::with_capacity(a.connections);
    for (c, stream) in streams.into_iter().enumerate() {
        tasks.push(tokio::spawn(connection(
            c as u64,
            target.clone(),
            schedule,
            released.clone(),
            stream,
        )));
    }
    let pacer = tokio::spawn(pacer::pace(
        schedule.total,
        move |i| schedule.due(i),
        released,
    ));

    let mut all = Tally::default();
    for task in tasks {
        let t = task
            .await
            .map_err(|e| format!("connection task failed: {e}"))?;
        all.latencies_ns.extend(t.latencies_ns);
        all.errors += t.errors;
        all.last_end = all.last_end.max(t.last_end);
        all.first_error = all.first_error.or(t.first_error);
    }
    pacer.await.map_err(|e| format!("pacer task failed: {e}"))?;
    if let Some(e) = &all.first_error {
        eprintln!("rate: {} errors, the first: {e}", all.errors);
    }
    Ok(report(&schedule, a.duration, all))
}

/// Connection `c`: requests c, c + N, c + 2N, … each sent once due and the previous one is done.
async fn connection(
    c: u64,
    target: Arc<Target>,
    s: Schedule,
    released: Arc<pacer::Released>,
    stream: Box<dyn Stream>,
) -> Tally {
    let mut tally = Tally::default();
    let mut stream = Some(stream);
    let mut buf = Vec::with_capacity(16 * 1024);
    let mut i = c;
    while i < s.total {
        released.wait(i, c as usize).await;
        let due = s.due(i);
        if Instant::now() >= s.give_up {
            // the server fell so far behind that the rest would only be timeouts
            let left = (i.max(s.first_recorded)..s.total)
                .filter(|j| j % s.connections == c)
                .count() as u64;
            tally.errors += left;
            tally.first_error.get_or_insert_with(|| {
                format!("{left} requests never sent: the server fell behind by over {TIMEOUT:?}")
            });
            break;
        }
        let outcome = send(&target, &mut stream, &mut buf).await;
        let end = Instant::now();
        if i >= s.first_recorded {
            match outcome {
                Ok(status) => {
                    tally
                        .latencies_ns
                        .push(end.duration_since(due).as_nanos() as u64);
                    tally.last_end = Some(end);
                    if status >= 400 {
                        tally.errors += 1;
                        tally
                            .first_error
                            .get_or_insert_with(|| format!("status {status}"));
                    }
                }
                Err(e) => {
                    tally.errors += 1;
                    tally.first_error.get_or_insert(e);
                }
            }
        }
        i += s.connections;
    }
    tally
}

/// One request and its response; reconnects when the connection is gone, and sends once more
/// when a kept-alive connection turns out to have been closed while idle.
async fn send(
    target: &Target,
    stream: &mut Option<Box<dyn Stream>>,
    buf: &mut Vec<u8>,
) -> Result<u16, String> {
    let mut reused = stream.is_some();
    loop {
        let s = match stream {
            Some(s) => s,
            None => stream.insert(target.connect().await?),
        };
        let result = timeout(TIMEOUT, http::exchange(s.as_mut(), &target.request, buf)).await;
        match result {
            Ok(Ok(response)) => {
                if response.close {
                    *stream = None;
                }
                return Ok(response.status);
            }
            Ok(Err(e)) => {
                *stream = None;
                let idle_close = match &e {
                    http::Error::ClosedBeforeResponse => true,
                    http::Error::Io(io) => matches!(
                        io.kind(),
                        std::io::ErrorKind::BrokenPipe | std::io::ErrorKind::ConnectionReset
                    ),
                    http::Error::Malformed(_) => false,
                };
                if !(reused && idle_close) {
                    return Err(e.to_string());
                }
                reused = false;
            }
            Err(_) => {
                *stream = None;
                return Err(format!("no response within {TIMEOUT:?}"));
            }
        }
    }
}

fn report(s: &Schedule, duration: Duration, mut all: Tally) -> String {
    let lat = &mut all.latencies_ns;
    lat.sort_unstable();
    let window_start = s.due(s.first_recorded);
    // Over capacity, the responses run on past the end of the schedule: the rate is what was served.
    let elapsed = all.last_end.map_or(duration, |end| {
        end.duration_since(window_start).max(duration)
    });
    let ms = |q: f64| -> String {
        if lat.is_empty() {
            return "nan".into();
        }
        let rank = ((q * lat.len() as f64).ceil() as usize).clamp(1, lat.len());
        format!("{:.3}", lat[rank - 1] as f64 / 1e6)
    };
    format!(
        "RESULT rate_target={:.0} requests={} errors={} rate_achieved={:.0} p50_ms={} p90_ms={} p99_ms={} p999_ms={} max_ms={}",
        s.rate,
        lat.len(),
        all.errors,
        lat.len() as f64 / elapsed.as_secs_f64(),
        ms(0.5),
        ms(0.9),
        ms(0.99),
        ms(0.999),
        ms(1.0),
    )
}
