//! A mock OpenAI-compatible server on 127.0.0.1:0, shared by the tests of `temper-chat` (the client) and
//! `temper-judges` (a judge over HTTP). It serves a fixed script of replies, one per connection (each handled on
//! its own thread so a hanging reply does not block the next one), and stops after the script is used up or
//! 20 s, whichever comes first.

#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// One scripted reply.
#[derive(Clone)]
pub enum Reply {
    /// 200 with a real chat-completion body whose message content is this.
    Content(&'static str),
    /// Any status with a raw body and optional Retry-After seconds.
    Status(u16, &'static str, Option<&'static str>),
    /// Read the request, then say nothing for this long and close.
    Hang(Duration),
}

/// A request as the server saw it.
#[derive(Debug, Clone)]
pub struct Seen {
    pub head: String,
    pub body: String,
}

pub struct Server {
    pub base_url: String,
    seen: Arc<Mutex<Vec<Seen>>>,
    handle: Option<JoinHandle<()>>,
}

impl Server {
    /// Waits for the script to finish (or the 20 s deadline) and returns what was received.
    pub fn finish(mut self) -> Vec<Seen> {
        if let Some(h) = self.handle.take() {
            h.join().expect("mock server thread");
        }
        self.seen.lock().expect("lock").clone()
    }

    /// Requests received so far.
    pub fn seen_now(&self) -> usize {
        self.seen.lock().expect("lock").len()
    }
}

fn completion(content: &str) -> String {
    serde_json::json!({
        "id": "chatcmpl-mock",
        "object": "chat.completion",
        "created": 1_700_000_000,
        "model": "mock-judge",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15}
    })
    .to_string()
}

/// Reads one request (head and `Content-Length` body) from `s`.
pub fn read_request(s: &mut TcpStream) -> Seen {
    s.set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        match s.read(&mut chunk) {
            Ok(0) | Err(_) => break buf.len(),
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
    let len: usize = head
        .lines()
        .find_map(|l| {
            l.to_ascii_lowercase()
                .strip_prefix("content-length:")
                .map(|v| v.trim().parse().unwrap_or(0))
        })
        .unwrap_or(0);
    while buf.len() < head_end + len {
        match s.read(&mut chunk) {
            Ok(0) | Err(_) => break,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
    Seen {
        head,
        body: String::from_utf8_lossy(&buf[head_end..]).to_string(),
    }
}

fn respond(mut s: TcpStream, reply: Reply, seen: Arc<Mutex<Vec<Seen>>>) {
    let req = read_request(&mut s);
    seen.lock().expect("lock").push(req);
    let (status, body, retry_after) = match reply {
        Reply::Content(c) => (200, completion(c), None),
        Reply::Status(code, body, ra) => (code, body.to_string(), ra),
        Reply::Hang(d) => {
            std::thread::sleep(d);
            return;
        }
    };
    let mut out = format!(
        "HTTP/1.1 {status} Mock\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n",
        body.len()
    );
    if let Some(ra) = retry_after {
        out.push_str(&format!("Retry-After: {ra}\r\n"));
    }
    out.push_str("\r\n");
    out.push_str(&body);
    let _ = s.write_all(out.as_bytes());
    let _ = s.flush();
}

/// Starts a server that serves `script` in order, one reply per connection.
pub fn serve(script: Vec<Reply>) -> Server {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    let base_url = format!("http://{}/v1", listener.local_addr().expect("addr"));
    listener.set_nonblocking(true).expect("nonblocking");
    let seen = Arc::new(Mutex::new(Vec::new()));
    let seen2 = Arc::clone(&seen);
    let handle = std::thread::spawn(move || {
        let deadline = Instant::now() + Duration::from_secs(20);
        let mut workers = Vec::new();
        let mut script = script.into_iter();
        let mut next = script.next();
        while let Some(reply) = next.take() {
            if Instant::now() > deadline {
                break;
            }
            match listener.accept() {
                Ok((s, _)) => {
                    s.set_nonblocking(false).expect("blocking");
                    let seen = Arc::clone(&seen2);
                    workers.push(std::thread::spawn(move || respond(s, reply, seen)));
                    next = script.next();
                }
                Err(_) => {
                    std::thread::sleep(Duration::from_millis(5));
                    next = Some(reply);
                }
            }
        }
        for w in workers {
            let _ = w.join();
        }
    });
    Server {
        base_url,
        seen,
        handle: Some(handle),
    }
}

/// Peak resident memory of this process (`VmHWM` of `/proc/self/status`, kB).
pub fn peak_rss_kb() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmHWM")
}
