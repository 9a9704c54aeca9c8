//! rust-proxy: the lab's HTTP/1.1 reverse proxy on Tokio and hyper. It
//! forwards every request to one upstream over pooled keep-alive
//! connections and behaves as the proxy contract in DESIGN.md requires.

mod body;
mod chunked;
mod config;
mod gate;
mod head;
mod headers;
mod proxy;
mod upstream;

use std::convert::Infallible;
use std::io::Write as _;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use http::HeaderValue;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::{TcpListener, TcpStream};
use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::watch;

use crate::body::Answer;
use crate::config::Config;
use crate::gate::{Gate, Shared};
use crate::head::Limits;
use crate::proxy::Proxy;
use crate::upstream::Pool;

/// Set to 1, the gate in front of hyper is left out. It exists only to
/// measure what the gate costs: without it the proxy does not meet the
/// contract (no head, idle or body deadlines, no refusal of what hyper
/// accepts or answers itself, no interim answers).
const MEASURE_NO_GATE: &str = "PROXYLAB_MEASURE_NO_GATE";

const VERSION: &str = match option_env!("PROXYLAB_VERSION") {
    Some(v) => v,
    None => env!("CARGO_PKG_VERSION"),
};

/// How long in-flight requests may run after SIGTERM.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// hyper's own default; it also bounds how much of a response is queued
/// for a slow client.
const SERVER_BUFFER: usize = 8192 + 4096 * 100;

/// How often idle upstream connections past their timeout are closed.
const PRUNE_EVERY: Duration = Duration::from_secs(5);

fn main() -> ExitCode {
    tune_allocator();
    let mut stderr = std::io::stderr();
    if std::env::args_os().len() > 1 {
        let _ = writeln!(
            stderr,
            "rust-proxy: takes no arguments; configure it with environment variables"
        );
        return ExitCode::from(2);
    }
    // A value that is not UTF-8 is passed on as text that cannot parse, so
    // it is reported rather than taken for unset.
    let cfg = match Config::from_env(|name| {
        std::env::var_os(name).map(|v| v.to_string_lossy().into_owned())
    }) {
        Ok(c) => c,
        Err(e) => {
            let _ = writeln!(stderr, "rust-proxy: {e}");
            return ExitCode::from(2);
        }
    };
    // available_parallelism follows the affinity mask and the cgroup CPU
    // quota, which is what the lab's cpusets set.
    let workers = cfg.workers.unwrap_or_else(|| {
        std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
    });
    // One worker runs everything on the main thread: with a single CPU a
    // separate worker thread would only add hand-offs between the two.
    let built = if workers == 1 {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(workers)
            .enable_all()
            .build()
    };
    let rt = match built {
        Ok(rt) => rt,
        Err(e) => {
            let _ = writeln!(stderr, "rust-proxy: {e}");
            return ExitCode::from(1);
        }
    };
    let code = rt.block_on(run(cfg, workers));
    // Whatever is still running past the grace period is abandoned.
    rt.shutdown_timeout(Duration::from_millis(100));
    code
}

/// hyper sizes its field slots by `max_headers` and allocates them for
/// every head it parses, request and response alike: with the byte limit
/// as the only limit that is over 128 KiB, twice, per head. With glibc's
/// defaults each such block goes back to the kernel (`brk`) when freed and
/// its pages fault in again on the next head, and every allocation or
/// release of a block this large first merges all of the "fast" free
/// lists of small blocks (`malloc_consolidate`). With these settings the
/// large blocks are reused from the heap, and small blocks live in the
/// per-thread cache and the ordinary bins, which need no such merging.
/// The slots are never written beyond the fields a head has, so resident
/// memory grows only by what the largest heads fill.
fn tune_allocator() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets allocator parameters; it is called before
    // any other thread exists.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 4 << 20);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 16 << 20);
        libc::mallopt(libc::M_MXFAST, 0);
    }
}

async fn run(cfg: Config, workers: usize) -> ExitCode {
    let listener = match TcpListener::bind(cfg.listen).await {
        Ok(l) => l,
        Err(e) => {
            say(format_args!("rust-proxy: listen on {}: {e}", cfg.listen));
            return ExitCode::from(1);
        }
    };
    let (mut term, mut int) = match (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) {
        (Ok(t), Ok(i)) => (t, i),
        (Err(e), _) | (_, Err(e)) => {
            say(format_args!("rust-proxy: signals: {e}"));
            return ExitCode::from(1);
        }
    };
    // The bound address is printed, not the configured one, so that a
    // caller asking for port 0 learns which port it got.
    let bound = listener.local_addr().unwrap_or(cfg.listen);
    say(format_args!(
        "proxylab-rust-proxy {VERSION} {} listen={bound} upstream={} workers={workers}",
        env!("PROXYLAB_RUSTC_VERSION"),
        cfg.upstream,
    ));

    // A panic ends the task of one connection and nothing else; its report
    // would be a log line per failing request, which the contract rules out.
    std::panic::set_hook(Box::new(|_| {}));

    let gate = std::env::var_os(MEASURE_NO_GATE).is_none_or(|v| v != "1");
    let server: &'static Server = Box::leak(Box::new(Server::new(&cfg, gate)));
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(PRUNE_EVERY);
        loop {
            tick.tick().await;
            server.proxy.pool.prune();
        }
    });
    let (stop_tx, stop_rx) = watch::channel(false);
    loop {
        tokio::select! {
            biased;
            _ = term.recv() => break,
            _ = int.recv() => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    tokio::spawn(server.serve(stream, peer, stop_rx.clone()));
                }
                // Out of descriptors or a connection reset while queued:
                // the listener itself is fine, so pause briefly and go on.
                Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
            },
        }
    }
    drop(listener);
    drop(stop_rx);
    let _ = stop_tx.send(true);
    // Every connection holds a receiver; the channel closes when the last
    // one has finished.
    let _ = tokio::time::timeout(SHUTDOWN_GRACE, stop_tx.closed()).await;
    ExitCode::SUCCESS
}

/// One line on stderr; unlike `eprintln!`, a closed stderr cannot make
/// this panic.
fn say(line: std::fmt::Arguments<'_>) {
    let _ = writeln!(std::io::stderr(), "{line}");
}

struct Server {
    http: http1::Builder,
    proxy: Proxy,
    limits: Limits,
    gate: bool,
}

impl Server {
    fn new(cfg: &Config, gate: bool) -> Server {
        let mut http = http1::Builder::new();
        http.keep_alive(true)
            // A client that shuts down its sending side after a request
            // still gets the answer.
            .half_close(true)
            // Preserving names and their case also makes hyper pass the
            // spelling on to the upstream and back; names the proxy adds
            // are written in title case.
            .preserve_header_case(true)
            .title_case_headers(true)
            // The proxy adds nothing of its own to relayed answers.
            .auto_date_header(false)
            // The gate keeps the head deadline and answers it with a 408.
            .header_read_timeout(None)
            // The byte limit is the only one on a head: every field line
            // takes at least 3 bytes (`a:` and LF), so hyper never counts
            // more fields than fit. The gate has checked the bytes
            // already; hyper's buffer must never be the one to refuse a
            // head.
            .max_headers(cfg.max_header_bytes / 3 + 1)
            .max_buf_size(SERVER_BUFFER.max(cfg.max_header_bytes * 2 + 8192));

        let authority = HeaderValue::from_str(&cfg.upstream.to_string())
            .unwrap_or_else(|_| HeaderValue::from_static("127.0.0.1"));
        Server {
            http,
            proxy: Proxy {
                pool: Pool::new(cfg.upstream, cfg.upstream_timeout),
                authority,
                timeout: cfg.upstream_timeout,
                max_body: cfg.max_body_bytes,
                interim: gate,
            },
            limits: Limits {
                max_head: cfg.max_header_bytes,
                max_body: cfg.max_body_bytes,
            },
            gate,
        }
    }

    async fn serve(
        &'static self,
        stream: TcpStream,
        peer: SocketAddr,
        stop: watch::Receiver<bool>,
    ) {
        let _ = stream.set_nodelay(true);
        let shared = Arc::new(Shared::default());
        let client = headers::client_value(peer.ip());
        let proxy = &self.proxy;
        let calls = shared.clone();
        // The gate's word on a head is taken when hyper calls the service,
        // before hyper reads past that head.
        let svc = service_fn(move |req| {
            let call = calls.next_call();
            let conn = calls.clone();
            let answer = proxy::handle(proxy, conn.clone(), client.clone(), call, req);
            async move {
                let resp = answer.await?;
                Ok::<_, Infallible>(resp.map(|b| Answer::new(b, conn)))
            }
        });
        if self.gate {
            let io = Gate::new(stream, self.limits, shared);
            drive(self.http.serve_connection(io, svc), stop).await;
        } else {
            drive(self.http.serve_connection(TokioIo::new(stream), svc), stop).await;
        }
    }
}

/// Runs a connection until it ends or shutdown begins; then lets the
/// request in flight finish and closes (an idle connection at once).
async fn drive<I, S>(conn: http1::Connection<I, S>, mut stop: watch::Receiver<bool>)
where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + 'static,
    S: hyper::service::HttpService<hyper::body::Incoming>,
    S::ResBody: 'static,
    <S::ResBody as http_body::Body>::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    tokio::pin!(conn);
    tokio::select! {
        _ = conn.as_mut() => return,
        _ = stop.changed() => {}
    }
    conn.as_mut().graceful_shutdown();
    let _ = conn.await;
}
