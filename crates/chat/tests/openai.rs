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
    let call = ToolCall { id: "c1".into(), name: "add".into(), arguments: serde_json::json!({"a": 1, "b": 2}) };
    let conversation = vec![
        Message::user("1+2?"),
        Message { tool_calls: vec![call], ..Message::assistant("") },
        Message::tool("c1", "3"),
    ];
    assert_eq!(backend.complete(&conversation, &GenerationParams::greedy(8))?, "3");
    let seen = server.finish();
    let body: Value = serde_json::from_str(&seen[0].body).expect("request body is JSON");
    assert_eq!(body["messages"][0], serde_json::json!({"role": "user", "content": "1+2?"}));
    let args = &body["messages"][1]["tool_calls"][0]["function"]["arguments"];
    let decoded: Value = serde_json::from_str(args.as_str().expect("arguments are a string")).expect("JSON inside");
    assert_eq!(decoded, serde_json::json!({"a": 1, "b": 2}));
    assert_eq!(body["messages"][2], serde_json::json!({"role": "tool", "content": "3", "tool_call_id": "c1"}));
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
        (counted.text.as_str(), counted.prompt_tokens, counted.completion_tokens),
        ("[[B]]", Some(10), Some(5))
    );
    let e = backend
        .complete(&msgs(), &GenerationParams { top_k: Some(3), ..sampled })
        .expect_err("top_k");
    assert!(matches!(e, ChatError::Config(_)), "{e}");
    let seen = server.finish();
    assert_eq!(seen.len(), 2);
    let body: Value = serde_json::from_str(&seen[1].body).expect("request body is JSON");
    assert_eq!(
        (&body["max_tokens"], &body["temperature"], &body["top_p"], &body["stop"], &body["seed"]),
        (&serde_json::json!(16), &serde_json::json!(0.7), &serde_json::json!(0.9), &serde_json::json!(["END"]), &serde_json::json!(42))
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
    assert_eq!(backend.complete(&msgs(), &GenerationParams::greedy(2048))?, "[[B]]");
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
            assert!(!message.contains("sk-mock"), "the API key leaked into an error: {message}");
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
