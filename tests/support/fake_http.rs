//! A fake HTTP peer for the proxy tests: it accepts connections on a bound
//! listener, counts them, records every request head, and answers each
//! request with the [`Step`]s a test's reply function chooses (usually by
//! `?mode=`). Keep-alive is the default: after the steps the connection
//! waits for its next request unless a step closed it.
//!
//! [`recording_source`] is the fake upstream the lag tests share, modelled
//! on the recording fake source of `tests/fixtures/real` (decoded source
//! 127.0.0.9).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

use super::read_request_head;

/// One request as the fake received it.
pub struct Request {
    /// The request head, up to (not including) the blank line.
    pub head: String,
}

impl Request {
    /// The request target (path and query).
    pub fn target(&self) -> &str {
        self.head.split(' ').nth(1).unwrap_or("")
    }

    /// Whether the method is HEAD.
    pub fn is_head(&self) -> bool {
        self.head.starts_with("HEAD ")
    }

    /// The `mode=` query parameter, if any.
    pub fn mode(&self) -> Option<&str> {
        self.target()
            .split_once('?')
            .map_or("", |(_, q)| q)
            .split('&')
            .find_map(|kv| kv.strip_prefix("mode="))
    }
}

/// What the fake does for one request, in order.
pub enum Step {
    /// Write these bytes (a failed write closes the connection).
    Write(Vec<u8>),
    /// Pause.
    Sleep(Duration),
    /// Close the connection (FIN).
    Close,
    /// Reset the connection (RST instead of FIN).
    Reset,
}

/// A running fake; stops when dropped.
pub struct FakeHttp {
    /// Where it listens.
    pub addr: SocketAddr,
    accepted: Arc<AtomicUsize>,
    used: Arc<AtomicUsize>,
    requests: Arc<Mutex<Vec<String>>>,
    task: JoinHandle<()>,
}

impl Drop for FakeHttp {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl FakeHttp {
    /// Number of accepted connections.
    pub fn accepted(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }

    /// Accepted connections that carried at least one request (a port
    /// probe's connect is accepted, never used).
    pub fn used(&self) -> usize {
        self.used.load(Ordering::SeqCst)
    }

    /// Request heads so far, in order.
    pub fn requests(&self) -> Vec<String> {
        self.requests.lock().unwrap().clone()
    }
}

/// Starts a fake on an already bound listener; `reply` decides the steps
/// for each request.
pub fn spawn<F>(listener: TcpListener, reply: F) -> FakeHttp
where
    F: Fn(&Request) -> Vec<Step> + Send + Sync + 'static,
{
    let addr = listener.local_addr().unwrap();
    let accepted = Arc::new(AtomicUsize::new(0));
    let used = Arc::new(AtomicUsize::new(0));
    let requests = Arc::new(Mutex::new(Vec::new()));
    let (acc, u, reqs, reply) = (
        accepted.clone(),
        used.clone(),
        requests.clone(),
        Arc::new(reply),
    );
    let task = tokio::spawn(async move {
        let mut conns = tokio::task::JoinSet::new();
        while let Ok((s, _)) = listener.accept().await {
            acc.fetch_add(1, Ordering::SeqCst);
            conns.spawn(serve(s, u.clone(), reqs.clone(), reply.clone()));
        }
    });
    FakeHttp {
        addr,
        accepted,
        used,
        requests,
        task,
    }
}

async fn serve<F>(
    mut s: TcpStream,
    used: Arc<AtomicUsize>,
    reqs: Arc<Mutex<Vec<String>>>,
    reply: Arc<F>,
) where
    F: Fn(&Request) -> Vec<Step>,
{
    let mut buf = Vec::new();
    let mut first = true;
    while let Some(head) = read_request_head(&mut s, &mut buf).await {
        if std::mem::take(&mut first) {
            used.fetch_add(1, Ordering::SeqCst);
        }
        reqs.lock().unwrap().push(head.clone());
        for step in reply(&Request { head }) {
            match step {
                Step::Write(bytes) => {
                    if s.write_all(&bytes).await.is_err() {
                        return;
                    }
                }
                Step::Sleep(d) => tokio::time::sleep(d).await,
                Step::Close => return,
                Step::Reset => {
                    let _ = socket2::SockRef::from(&s).set_linger(Some(Duration::ZERO));
                    return;
                }
            }
        }
    }
}

/// The file [`recording_source`] serves (its ID decodes to 127.0.0.9).
pub const FAKE_FILE: &str = "fwAACWsGtv2AG8RbAAABXgut8A0000.txt";

const COMMON: &str = "Server: fake\r\nDate: Mon, 01 Jan 2024 00:00:00 GMT\r\nContent-Type: text/x-fake\r\n\
X-Custom: hello\r\nSet-Cookie: a=b\r\nLast-Modified: Mon, 01 Jan 2024 00:00:00 GMT\r\nETag: \"fake-etag\"\r\n\
Connection: keep-alive\r\nKeep-Alive: timeout=5\r\n";

/// The lag tests' fake source: serves only [`FAKE_FILE`] (anything else is
/// 404) and answers by `?mode=`: `500`, `302`, `chunked`, `abort` (a cut
/// body, then close), `slow` (half the body, 3 s, the rest), otherwise 200.
pub fn recording_source(listener: TcpListener) -> FakeHttp {
    spawn(listener, |req| {
        let body = |b: &'static str| if req.is_head() { "" } else { b };
        if !req.target().contains(FAKE_FILE) {
            return vec![Step::Write(
                format!(
                    "HTTP/1.1 404 Not Found\r\n{COMMON}Content-Length: 9\r\n\r\n{}",
                    body("not found")
                )
                .into_bytes(),
            )];
        }
        let text = match req.mode().unwrap_or("200") {
            "500" => format!("HTTP/1.1 500 Internal Server Error\r\n{COMMON}Content-Length: 5\r\n\r\n{}", body("error")),
            "302" => format!("HTTP/1.1 302 Found\r\n{COMMON}Content-Length: 0\r\nLocation: http://127.0.0.9:8888/elsewhere\r\n\r\n"),
            "chunked" => format!("HTTP/1.1 200 OK\r\n{COMMON}Transfer-Encoding: chunked\r\n\r\n{}", body("5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n")),
            "abort" => {
                let mut v = format!("HTTP/1.1 200 OK\r\n{COMMON}Content-Length: 100000\r\n\r\n").into_bytes();
                v.extend_from_slice(&[b'x'; 1000]);
                return vec![Step::Write(v), Step::Sleep(Duration::from_millis(50)), Step::Close];
            }
            "slow" => {
                return vec![
                    Step::Write(format!("HTTP/1.1 200 OK\r\n{COMMON}Content-Length: 11\r\n\r\nhello").into_bytes()),
                    Step::Sleep(Duration::from_secs(3)),
                    Step::Write(b" world".to_vec()),
                ];
            }
            _ => format!("HTTP/1.1 200 OK\r\n{COMMON}Content-Length: 11\r\n\r\n{}", body("hello world")),
        };
        vec![Step::Write(text.into_bytes())]
    })
}
