//! What the load benches share: the trivial target they measure against,
//! run in a child process (the bench binary again, with `FH_BENCH_TARGET`
//! set) so the generator's CPU is measured alone, and CPU time from /proc.

use std::future::Future;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};

use bytes::Bytes;

/// Set in the child that serves the target.
pub const TARGET_ENV: &str = "FH_BENCH_TARGET";

/// A bench's `main`: serves the target when this process is its child;
/// otherwise (unless cargo only lists benches) starts the target and runs
/// `bench` against it on a multi-threaded runtime.
pub fn bench_against_target<F: Future<Output = ()>>(bench: impl FnOnce(SocketAddr) -> F) {
    if std::env::var_os(TARGET_ENV).is_some() {
        serve_target();
        return;
    }
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let target = start_target();
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime")
        .block_on(bench(target.addr));
}

/// The child process: a trivial hyper HTTP/1.1 server answering every
/// request with a small JSON body; prints its port, serves until killed.
fn serve_target() {
    use hyper::server::conn::http1;
    use hyper::service::service_fn;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("target runtime");
    runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        println!("{}", listener.local_addr().expect("addr").port());
        let body = Bytes::from_static(br#"{"merchant_id":"M001","degraded":[]}"#);
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let _ = stream.set_nodelay(true);
            let body = body.clone();
            tokio::spawn(async move {
                let service = service_fn(move |_request| {
                    let body = body.clone();
                    async move {
                        let mut response = hyper::Response::new(http_body_util::Full::new(body));
                        response.headers_mut().insert(
                            http::header::CONTENT_TYPE,
                            http::HeaderValue::from_static("application/json"),
                        );
                        Ok::<_, std::convert::Infallible>(response)
                    }
                });
                let _ = http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                    .await;
            });
        }
    });
}

/// The target's child process, killed when this is dropped (a bench that
/// panics unwinds through it, so no target outlives its bench).
pub struct Target {
    child: Child,
    /// Where it listens.
    pub addr: SocketAddr,
}

impl Drop for Target {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts the target in a child process (this binary again).
fn start_target() -> Target {
    let mut child = Command::new(std::env::current_exe().expect("own path"))
        .env(TARGET_ENV, "1")
        .stdout(Stdio::piped())
        .spawn()
        .expect("target process starts");
    let stdout = child.stdout.take().expect("piped");
    let mut line = String::new();
    BufReader::new(stdout)
        .read_line(&mut line)
        .expect("target prints its port");
    let port = line.trim().parse::<u16>().ok();
    let target = Target {
        child,
        addr: SocketAddr::from(([127, 0, 0, 1], port.unwrap_or(0))),
    };
    assert!(port.is_some(), "the target printed {line:?}, not a port");
    target
}

/// CPU seconds (user + system) of this process, and of its waited-for
/// children, from /proc (clock ticks of 1/100 s).
pub fn cpu_seconds() -> (f64, f64) {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let fields: Vec<f64> = stat
        .rsplit_once(") ")
        .map(|(_, rest)| {
            rest.split_whitespace()
                .map(|f| f.parse().unwrap_or(0.0))
                .collect()
        })
        .unwrap_or_default();
    let at = |i: usize| fields.get(i).copied().unwrap_or(0.0) / 100.0;
    (at(11) + at(12), at(13) + at(14))
}
