//! A fake HTTP source for the lag tests, modelled on the recording fake
//! upstream of `tests/fixtures/real` (decoded source 127.0.0.9): it serves
//! only the fake file, chooses its reply by `?mode=`, keeps connections
//! alive and records every request head it receives.
//! Included by the lag tests with `#[path = "lag_fake_http.rs"] mod fake_http;`.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// The file the fake serves (its ID decodes to 127.0.0.9).
pub const FAKE_FILE: &str = "fwAACWsGtv2AG8RbAAABXgut8A0000.txt";

/// A running fake; stops when dropped.
pub struct FakeHttp {
    /// Where it listens.
    pub addr: SocketAddr,
    /// Accepted connections.
    pub accepted: Arc<AtomicUsize>,
    /// Request heads received, in order.
    pub requests: Arc<Mutex<Vec<String>>>,
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
    /// Request heads so far.
    pub fn requests(&self) -> Vec<String> {
        self.requests.lock().unwrap().clone()
    }
}

/// Starts the fake on an already bound listener.
pub fn start(listener: TcpListener) -> FakeHttp {
    let addr = listener.local_addr().unwrap();
    let accepted = Arc::new(AtomicUsize::new(0));
    let requests = Arc::new(Mutex::new(Vec::new()));
    let (acc, reqs) = (accepted.clone(), requests.clone());
    let task = tokio::spawn(async move {
        let mut conns = tokio::task::JoinSet::new();
        loop {
            let Ok((s, _)) = listener.accept().await else {
                return;
            };
            acc.fetch_add(1, Ordering::SeqCst);
            conns.spawn(serve(s, reqs.clone()));
        }
    });
    FakeHttp {
        addr,
        accepted,
        requests,
        task,
    }
}

const COMMON: &str = "Server: fake\r\nDate: Mon, 01 Jan 2024 00:00:00 GMT\r\nContent-Type: text/x-fake\r\n\
X-Custom: hello\r\nSet-Cookie: a=b\r\nLast-Modified: Mon, 01 Jan 2024 00:00:00 GMT\r\nETag: \"fake-etag\"\r\n\
Connection: keep-alive\r\nKeep-Alive: timeout=5\r\n";

async fn serve(mut s: TcpStream, reqs: Arc<Mutex<Vec<String>>>) {
    let mut buf = Vec::new();
    loop {
        let end = loop {
            if let Some(p) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break p;
            }
            let mut chunk = [0u8; 4096];
            match s.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        };
        let head = String::from_utf8_lossy(&buf[..end]).into_owned();
        buf.drain(..end + 4);
        reqs.lock().unwrap().push(head.clone());
        let line = head.lines().next().unwrap_or("");
        let is_head = line.starts_with("HEAD ");
        let target = line.split(' ').nth(1).unwrap_or("");
        let mode = target
            .split_once('?')
            .map(|(_, q)| q)
            .unwrap_or("")
            .split('&')
            .find_map(|kv| kv.strip_prefix("mode="))
            .unwrap_or("200")
            .to_string();
        let body_of = |b: &'static str| if is_head { "" } else { b };
        let reply: Vec<u8> = if !target.contains(FAKE_FILE) {
            format!(
                "HTTP/1.1 404 Not Found\r\n{COMMON}Content-Length: 9\r\n\r\n{}",
                body_of("not found")
            )
            .into_bytes()
        } else {
            match mode.as_str() {
                "500" => format!("HTTP/1.1 500 Internal Server Error\r\n{COMMON}Content-Length: 5\r\n\r\n{}", body_of("error")).into_bytes(),
                "302" => format!("HTTP/1.1 302 Found\r\n{COMMON}Content-Length: 0\r\nLocation: http://127.0.0.9:8888/elsewhere\r\n\r\n").into_bytes(),
                "chunked" => format!("HTTP/1.1 200 OK\r\n{COMMON}Transfer-Encoding: chunked\r\n\r\n{}", if is_head { "" } else { "5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n" }).into_bytes(),
                "abort" => {
                    let mut v = format!("HTTP/1.1 200 OK\r\n{COMMON}Content-Length: 100000\r\n\r\n").into_bytes();
                    v.extend_from_slice(&[b'x'; 1000]);
                    let _ = s.write_all(&v).await;
                    let _ = s.flush().await;
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    return;
                }
                "slow" => {
                    let v = format!("HTTP/1.1 200 OK\r\n{COMMON}Content-Length: 11\r\n\r\nhello");
                    let _ = s.write_all(v.as_bytes()).await;
                    tokio::time::sleep(Duration::from_secs(3)).await;
                    let _ = s.write_all(b" world").await;
                    continue;
                }
                _ => format!("HTTP/1.1 200 OK\r\n{COMMON}Content-Length: 11\r\n\r\n{}", body_of("hello world")).into_bytes(),
            }
        };
        if s.write_all(&reply).await.is_err() {
            return;
        }
    }
}
