//! Integration tests of the OpenAI-compatible client (feature `openai`) against a mock server on 127.0.0.1:
//! the wire format, retries on 500/429/timeouts, malformed replies, client errors and the disk cache.

mod mock;

use serde_json::Value;
use temper_chat::*;

use mock::Reply;
use std::time::Duration;

fn fast_config(base_url: &str) -> OpenAiConfig {
    OpenAiConfig {
        api_key: Some("sk-mock".into()),
        timeout_ms: 2000,
        max_retries: 2,
        backoff_initial_ms: 10,
        backoff_max_ms: 50,
        ..OpenAiConfig::new(base_url, "mock-judge")
    }
}

fn msgs() -> Vec<Message> {
    vec![
        Message::system("You judge."),
        Message::user("[[A]] or [[B]]?"),
    ]
}

#[test]
fn tool_call_arguments_go_on_the_wire_as_a_json_string() -> Result<()> {
    let server = mock::serve(vec![Reply::Content("3")]);
    let backend = OpenAiBackend::new(fast_config(&server.base_url))?;
    let call = ToolCall {
        id: "c1".into(),
        name: "add".into(),
        arguments: serde_json::json!({"a": 1, "b": 2}),
    };
    let conversation = vec![
        Message::user("1+2?"),
        Message {
            tool_calls: vec![call],
            ..Message::assistant("")
        },
        Message::tool("c1", "3"),
    ];
    assert_eq!(
        backend.complete(&conversation, &GenerationParams::greedy(8))?,
        "3"
    );
    let seen = server.finish();
    let body: Value = serde_json::from_str(&seen[0].body).expect("request body is JSON");
    assert_eq!(
        body["messages"][0],
        serde_json::json!({"role": "user", "content": "1+2?"})
    );
    let args = &body["messages"][1]["tool_calls"][0]["function"]["arguments"];
    let decoded: Value =
        serde_json::from_str(args.as_str().expect("arguments are a string")).expect("JSON inside");
    assert_eq!(decoded, serde_json::json!({"a": 1, "b": 2}));
    assert_eq!(
        body["messages"][2],
        serde_json::json!({"role": "tool", "content": "3", "tool_call_id": "c1"})
    );
    Ok(())
}

#[test]
fn openai_backend_speaks_the_wire_format() -> Result<()> {
    let server = mock::serve(vec![
        Reply::Content("Assistant A is right. [[A]]"),
        Reply::Content("[[B]]"),
    ]);
    let backend = OpenAiBackend::new(fast_config(&server.base_url))?;
    let reply = backend.complete(&msgs(), &GenerationParams::greedy(64))?;
    assert_eq!(reply, "Assistant A is right. [[A]]");
    // top_p, stop and a non-zero seed are sent under OpenAI's names; top_k is refused before sending.
    let sampled = GenerationParams {
        max_new_tokens: 16,
        temperature: 0.7,
        top_p: Some(0.9),
        stop: vec!["END".into()],
        seed: 42,
        ..GenerationParams::default()
    };
    // `reply` also returns the endpoint's `usage` token counts.
    let counted = backend.reply(&msgs(), &sampled)?;
    assert_eq!(
        (
            counted.text.as_str(),
            counted.prompt_tokens,
            counted.completion_tokens
        ),
        ("[[B]]", Some(10), Some(5))
    );
    let e = backend
        .complete(
            &msgs(),
            &GenerationParams {
                top_k: Some(3),
                ..sampled
            },
        )
        .expect_err("top_k");
    assert!(matches!(e, ChatError::Config(_)), "{e}");
    let seen = server.finish();
    assert_eq!(seen.len(), 2);
    let body: Value = serde_json::from_str(&seen[1].body).expect("request body is JSON");
    assert_eq!(
        (
            &body["max_tokens"],
            &body["temperature"],
            &body["top_p"],
            &body["stop"],
            &body["seed"]
        ),
        (
            &serde_json::json!(16),
            &serde_json::json!(0.7),
            &serde_json::json!(0.9),
            &serde_json::json!(["END"]),
            &serde_json::json!(42)
        )
    );
    assert!(
        seen[0]
            .head
            .starts_with("POST /v1/chat/completions HTTP/1.1\r\n"),
        "{}",
        seen[0].head
    );
    assert!(
        seen[0]
            .head
            .to_ascii_lowercase()
            .contains("authorization: bearer sk-mock\r\n"),
        "{}",
        seen[0].head
    );
    let body: Value = serde_json::from_str(&seen[0].body).expect("request body is JSON");
    assert_eq!(
        body,
        serde_json::json!({
            "model": "mock-judge",
            "messages": [{"role": "system", "content": "You judge."}, {"role": "user", "content": "[[A]] or [[B]]?"}],
            "temperature": 0.0,
            "max_tokens": 64
        })
    );
    Ok(())
}

#[test]
fn openai_backend_retries_500_429_and_timeouts() -> Result<()> {
    let server = mock::serve(vec![
        Reply::Status(500, r#"{"error": {"message": "overloaded"}}"#, None),
        Reply::Status(429, r#"{"error": {"message": "rate limited"}}"#, Some("0")),
        Reply::Hang(Duration::from_millis(1500)),
        Reply::Content("[[B]]"),
    ]);
    let cfg = OpenAiConfig {
        timeout_ms: 400,
        max_retries: 3,
        ..fast_config(&server.base_url)
    };
    let backend = OpenAiBackend::new(cfg)?;
    assert_eq!(
        backend.complete(&msgs(), &GenerationParams::greedy(2048))?,
        "[[B]]"
    );
    assert_eq!(server.finish().len(), 4);

    // Retries exhausted: 1 + 2 attempts, all 503.
    let server = mock::serve(vec![Reply::Status(503, "busy", None); 3]);
    let backend = OpenAiBackend::new(fast_config(&server.base_url))?;
    match backend.complete(&msgs(), &GenerationParams::greedy(2048)) {
        Err(ChatError::Http {
            message, attempts, ..
        }) => {
            assert_eq!(attempts, 3);
            assert!(message.contains("HTTP 503: busy"), "{message}");
            assert!(
                !message.contains("sk-mock"),
                "the API key leaked into an error: {message}"
            );
        }
        other => panic!("expected an HTTP error, got {other:?}"),
    }
    assert_eq!(server.finish().len(), 3);

    // A hang with no retries left is a timeout error.
    let server = mock::serve(vec![Reply::Hang(Duration::from_millis(1500))]);
    let cfg = OpenAiConfig {
        timeout_ms: 300,
        max_retries: 0,
        ..fast_config(&server.base_url)
    };
    let started = std::time::Instant::now();
    let err = OpenAiBackend::new(cfg)?
        .complete(&msgs(), &GenerationParams::greedy(2048))
        .expect_err("times out");
    assert!(
        started.elapsed() < Duration::from_millis(1400),
        "timeout not enforced: {:?}",
        started.elapsed()
    );
    assert!(matches!(err, ChatError::Http { attempts: 1, .. }), "{err}");
    assert!(err.to_string().to_lowercase().contains("timeout"), "{err}");
    server.finish();
    Ok(())
}

#[test]
fn openai_backend_rejects_malformed_and_client_errors_without_retrying() -> Result<()> {
    let server = mock::serve(vec![
        Reply::Status(200, "{\"choices\": [", None),
        Reply::Status(200, r#"{"choices": []}"#, None),
        Reply::Status(
            200,
            r#"{"choices": [{"message": {"role": "assistant", "content": null}}]}"#,
            None,
        ),
        Reply::Status(401, r#"{"error": {"message": "bad key"}}"#, None),
    ]);
    let backend = OpenAiBackend::new(fast_config(&server.base_url))?;
    let p = GenerationParams::greedy(2048);
    let e1 = backend.complete(&msgs(), &p).expect_err("truncated JSON");
    assert!(
        matches!(&e1, ChatError::MalformedReply { message, .. } if message.starts_with("not JSON")),
        "{e1}"
    );
    for _ in 0..2 {
        let e = backend.complete(&msgs(), &p).expect_err("no content");
        assert!(
            e.to_string()
                .contains("no string at choices[0].message.content"),
            "{e}"
        );
    }
    let e4 = backend.complete(&msgs(), &p).expect_err("401");
    assert!(
        matches!(&e4, ChatError::Http { attempts: 1, message, .. } if message.contains("HTTP 401")),
        "{e4}"
    );
    assert_eq!(server.finish().len(), 4);
    Ok(())
}

#[test]
fn openai_backend_caches_replies_on_disk() -> Result<()> {
    let dir = std::env::temp_dir().join(format!("temper-chat-it-cache-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let server = mock::serve(vec![Reply::Content("[[8 6]]"), Reply::Content("[[2 9]]")]);
    let cfg = OpenAiConfig {
        cache_dir: Some(dir.clone()),
        ..fast_config(&server.base_url)
    };
    let backend = OpenAiBackend::new(cfg.clone())?;
    let p = GenerationParams::greedy(2048);
    assert_eq!(backend.complete(&msgs(), &p)?, "[[8 6]]");
    // Same request again, from a fresh back end: served from disk, the server sees nothing.
    assert_eq!(OpenAiBackend::new(cfg)?.complete(&msgs(), &p)?, "[[8 6]]");
    assert_eq!(server.seen_now(), 1);
    // A different request is a miss.
    assert_eq!(
        backend.complete(
            &msgs(),
            &GenerationParams {
                max_new_tokens: 10,
                ..p.clone()
            }
        )?,
        "[[2 9]]"
    );
    assert_eq!(server.finish().len(), 2);
    let files: Vec<String> = std::fs::read_dir(&dir)
        .expect("cache dir")
        .map(|e| std::fs::read_to_string(e.expect("entry").path()).expect("cache entry"))
        .collect();
    assert_eq!(files.len(), 2);
    // The API key is never written to the cache.
    assert!(files.iter().all(|f| !f.contains("sk-mock")), "{files:?}");
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

// Untrusted servers: replies written byte by byte by a server the test controls.

/// Serves every connection to a fresh 127.0.0.1 port with `handler` (connection number, stream, request as seen),
/// each on its own thread; returns the base URL and the number of connections accepted so far.
fn serve_raw(
    handler: impl Fn(usize, std::net::TcpStream, mock::Seen) + Send + Sync + 'static,
) -> (String, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    let base_url = format!("http://{}/v1", listener.local_addr().expect("addr"));
    let count = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&count);
    let handler = Arc::new(handler);
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut s) = stream else { break };
            let n = counter.fetch_add(1, Ordering::SeqCst);
            let handler = Arc::clone(&handler);
            std::thread::spawn(move || {
                let seen = mock::read_request(&mut s);
                handler(n, s, seen);
            });
        }
    });
    (base_url, count)
}

fn http_reply(status: u16, body: &[u8]) -> Vec<u8> {
    let mut out = format!(
        "HTTP/1.1 {status} Raw\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    out.extend_from_slice(body);
    out
}

fn requests(count: &std::sync::atomic::AtomicUsize) -> usize {
    count.load(std::sync::atomic::Ordering::SeqCst)
}

#[test]
fn hostile_json_replies_are_errors_and_never_retried() -> Result<()> {
    let nested = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (
            br#"{"choices": [{"message": {"content": 42}}]}"#.to_vec(),
            "no string at choices[0].message.content",
        ),
        (
            br#"{"choices": {"0": {"message": {"content": "x"}}}}"#.to_vec(),
            "no string at choices[0]",
        ),
        (b"{}".to_vec(), "no string at choices[0]"),
        (b"null".to_vec(), "no string at choices[0]"),
        (b"[]".to_vec(), "no string at choices[0]"),
        (b"".to_vec(), "not JSON"),
        (
            br#"{"choices": [{"message": {"content": "x"}}], "usage": {"prompt_tokens": 1e999}}"#
                .to_vec(),
            "not JSON",
        ),
        (
            b"{\"choices\": [{\"message\": {\"content\": \"\xff\xfe\"}}]}".to_vec(),
            "not UTF-8",
        ),
        (nested.into_bytes(), "not JSON"),
    ];
    let n = cases.len();
    let bodies: Vec<Vec<u8>> = cases.iter().map(|(b, _)| b.clone()).collect();
    let (base_url, count) = serve_raw(move |i, mut s, _| {
        use std::io::Write;
        let _ = s.write_all(&http_reply(200, &bodies[i % bodies.len()]));
    });
    let backend = OpenAiBackend::new(fast_config(&base_url))?;
    for (i, (_, want)) in cases.iter().enumerate() {
        let e = backend
            .complete(&msgs(), &GenerationParams::greedy(8))
            .expect_err(want);
        assert!(
            matches!(e, ChatError::MalformedReply { .. }),
            "case {i}: {e}"
        );
        assert!(
            e.to_string().contains(want),
            "case {i}: want {want:?} in {e}"
        );
        assert_eq!(requests(&count), i + 1, "case {i} was retried");
    }
    assert_eq!(requests(&count), n);
    // Huge but valid counts in `usage` are dropped, not wrapped.
    let (base_url, _) = serve_raw(|_, mut s, _| {
        use std::io::Write;
        let body = br#"{"choices": [{"message": {"content": "ok"}}], "usage": {"prompt_tokens": 18446744073709551616, "completion_tokens": -5}}"#;
        let _ = s.write_all(&http_reply(200, body));
    });
    let r =
        OpenAiBackend::new(fast_config(&base_url))?.reply(&msgs(), &GenerationParams::greedy(8))?;
    assert_eq!(
        (r.text.as_str(), r.prompt_tokens, r.completion_tokens),
        ("ok", None, None)
    );
    Ok(())
}

#[test]
fn an_endless_body_is_cut_at_the_size_cap_in_bounded_memory() -> Result<()> {
    let (base_url, count) = serve_raw(|_, mut s, _| {
        use std::io::Write;
        // No Content-Length: the body runs until the connection closes, i.e. until the client hangs up.
        let _ = s.write_all(
            b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n\r\n",
        );
        let chunk = vec![b' '; 1 << 20];
        for _ in 0..1024 {
            if s.write_all(&chunk).is_err() {
                return;
            }
        }
    });
    let before = mock::peak_rss_kb();
    let e = OpenAiBackend::new(fast_config(&base_url))?
        .complete(&msgs(), &GenerationParams::greedy(8))
        .expect_err("endless body");
    let grown_mb = mock::peak_rss_kb().saturating_sub(before) / 1024;
    eprintln!("endless body: peak RSS +{grown_mb} MB, error: {e}");
    assert!(matches!(e, ChatError::MalformedReply { .. }), "{e}");
    assert!(
        e.to_string()
            .contains(&format!("longer than {MAX_REPLY_BYTES} bytes")),
        "{e}"
    );
    assert_eq!(requests(&count), 1, "a too-long reply is not retried");
    // The cap is 4 MiB; the server offered 1 GiB.
    assert!(grown_mb < 64, "peak RSS grew by {grown_mb} MB");
    Ok(())
}

#[test]
fn a_trickling_server_hits_the_total_time_cap_and_retries_are_bounded() -> Result<()> {
    let (base_url, count) = serve_raw(|_, mut s, _| {
        use std::io::Write;
        let _ = s.write_all(
            b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n",
        );
        // One byte every 20 ms: each read succeeds, so only the whole-call timeout can stop it.
        for _ in 0..500 {
            if s.write_all(b" ").and_then(|()| s.flush()).is_err() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    });
    let cfg = OpenAiConfig {
        timeout_ms: 300,
        max_retries: 2,
        ..fast_config(&base_url)
    };
    let started = std::time::Instant::now();
    let e = OpenAiBackend::new(cfg)?
        .complete(&msgs(), &GenerationParams::greedy(8))
        .expect_err("trickle");
    let took = started.elapsed();
    assert!(matches!(e, ChatError::Http { attempts: 3, .. }), "{e}");
    assert!(e.to_string().to_lowercase().contains("timeout"), "{e}");
    // 3 attempts of 300 ms plus two backoffs of at most 50 ms.
    assert!(took < Duration::from_millis(2500), "took {took:?}");
    assert_eq!(requests(&count), 3);
    Ok(())
}

/// A tracing subscriber that keeps every event's fields as text.
struct Capture(std::sync::Arc<std::sync::Mutex<String>>);

impl Capture {
    fn push(&self, visit: &dyn Fn(&mut dyn tracing::field::Visit)) {
        struct Fields(String);
        impl tracing::field::Visit for Fields {
            fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
                self.0.push_str(&format!("{}={value:?} ", field.name()));
            }
        }
        let mut f = Fields(String::new());
        visit(&mut f);
        if let Ok(mut log) = self.0.lock() {
            log.push_str(&f.0);
            log.push('\n');
        }
    }
}

impl tracing::Subscriber for Capture {
    fn enabled(&self, _: &tracing::Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, span: &tracing::span::Attributes<'_>) -> tracing::span::Id {
        self.push(&|v| span.record(v));
        tracing::span::Id::from_u64(1)
    }
    fn record(&self, _: &tracing::span::Id, values: &tracing::span::Record<'_>) {
        self.push(&|v| values.record(v));
    }
    fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}
    fn event(&self, event: &tracing::Event<'_>) {
        self.push(&|v| event.record(v));
    }
    fn enter(&self, _: &tracing::span::Id) {}
    fn exit(&self, _: &tracing::span::Id) {}
}

#[test]
fn the_api_key_never_reaches_errors_logs_debug_output_or_the_cache() -> Result<()> {
    const KEY: &str = "sk-secret-7f3a9c";
    let dir = std::env::temp_dir().join(format!("temper-chat-it-key-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    // A hostile server that echoes the request head (with `Authorization: Bearer <key>`) back: in 500 bodies on
    // even connections, as the reply content on odd ones.
    let (base_url, count) = serve_raw(|i, mut s, seen| {
        use std::io::Write;
        let reply = if i % 2 == 0 {
            http_reply(500, seen.head.as_bytes())
        } else {
            let content = serde_json::json!({"choices": [{"message": {"content": seen.head}}]});
            http_reply(200, content.to_string().as_bytes())
        };
        let _ = s.write_all(&reply);
    });
    let cfg = OpenAiConfig {
        api_key: Some(KEY.into()),
        max_retries: 1,
        cache_dir: Some(dir.clone()),
        ..fast_config(&base_url)
    };
    let log = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    let backend = OpenAiBackend::new(cfg.clone())?;
    let (first, second) = tracing::subscriber::with_default(Capture(log.clone()), || {
        let p = GenerationParams::greedy(8);
        // 500 (echo, retried) then 200 whose content is the echo.
        let first = backend.complete(&msgs(), &p);
        // 500, 500: the error carries the echoed body.
        let no_retry = OpenAiBackend::new(OpenAiConfig {
            max_retries: 0,
            cache_dir: None,
            ..cfg.clone()
        })
        .and_then(|b| b.complete(&msgs(), &GenerationParams::greedy(9)));
        (first, no_retry)
    });
    let first = first?;
    assert!(
        first.contains("authorization: Bearer <redacted>")
            || first.contains("Authorization: Bearer <redacted>"),
        "{first}"
    );
    let err = second.expect_err("500").to_string();
    assert!(
        err.contains("HTTP 500") && err.contains("<redacted>"),
        "{err}"
    );
    assert_eq!(requests(&count), 3);
    let log = log.lock().expect("log").clone();
    assert!(log.contains("retrying"), "the retry was logged: {log}");
    let cached: Vec<String> = std::fs::read_dir(&dir)
        .expect("cache dir")
        .map(|e| std::fs::read_to_string(e.expect("entry").path()).expect("cache entry"))
        .collect();
    assert_eq!(cached.len(), 1);
    for (what, text) in [
        ("reply", first),
        ("error", err),
        ("log", log),
        ("cache", cached.concat()),
        ("Debug of the config", format!("{cfg:?}")),
        ("Debug of the backend", format!("{backend:?}")),
    ] {
        assert!(
            !text.contains(KEY),
            "the API key leaked into the {what}: {text}"
        );
    }
    assert!(format!("{cfg:?}").contains("api_key: Some(\"<redacted>\")"));
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

#[test]
fn an_https_server_with_a_self_signed_certificate_is_refused() -> Result<()> {
    use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
    use std::io::{Read, Write};
    let cert = CertificateDer::from(include_bytes!("data/self-signed-cert.der").to_vec());
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(
        include_bytes!("data/self-signed-key.der").to_vec(),
    ));
    let tls = std::sync::Arc::new(
        rustls::ServerConfig::builder_with_provider(std::sync::Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .expect("protocol versions")
        .with_no_client_auth()
        .with_single_cert(vec![cert], key)
        .expect("server certificate"),
    );
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let base_url = format!("https://{}/v1", listener.local_addr().expect("addr"));
    let server = std::thread::spawn(move || -> bool {
        let Ok((tcp, _)) = listener.accept() else {
            return false;
        };
        let conn = rustls::ServerConnection::new(tls).expect("server connection");
        let mut stream = rustls::StreamOwned::new(conn, tcp);
        let mut buf = [0u8; 4096];
        // A client that accepted the certificate gets a valid reply: the test then fails below.
        if stream.read(&mut buf).is_ok_and(|n| n > 0) {
            let body = br#"{"choices": [{"message": {"content": "[[A]]"}}]}"#;
            let _ = stream.write_all(&http_reply(200, body));
            return true;
        }
        false
    });
    let e = OpenAiBackend::new(fast_config(&base_url))?
        .complete(&msgs(), &GenerationParams::greedy(8))
        .expect_err("a self-signed certificate must be refused");
    assert!(
        !server.join().expect("server thread"),
        "the client read a reply over an unverified connection"
    );
    let text = e.to_string();
    eprintln!("self-signed server: {text}");
    assert!(
        matches!(e, ChatError::Http { attempts: 1, .. }),
        "refused once, not retried: {text}"
    );
    assert!(
        text.contains("invalid peer certificate: UnknownIssuer"),
        "{text}"
    );
    Ok(())
}
