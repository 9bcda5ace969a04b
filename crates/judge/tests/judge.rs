//! Integration tests for temper-judge: agreement metrics against scikit-learn / statsmodels /
//! krippendorff reference numbers, MT-bench prompt loading, and the OpenAI-compatible back end
//! against a mock server on 127.0.0.1.

use std::path::{Path, PathBuf};

use serde_json::Value;
use temper_judge::*;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

fn reference() -> Value {
    let text = std::fs::read_to_string(fixture("agreement_reference.json"))
        .expect("read reference fixture");
    serde_json::from_str(&text).expect("reference fixture is JSON")
}

fn labels(v: &Value) -> Vec<Label> {
    serde_json::from_value(v.clone()).expect("labels")
}

fn check(case: &str, metric: &str, got: Option<f64>, want: &Value) {
    match (got, want.as_f64()) {
        (Some(g), Some(w)) => assert!(
            (g - w).abs() < 1e-9,
            "{case}/{metric}: got {g}, reference {w}"
        ),
        (None, None) => {}
        (g, _) => panic!("{case}/{metric}: got {g:?}, reference {want}"),
    }
}

#[test]
fn pair_metrics_match_sklearn_statsmodels_krippendorff() -> Result<()> {
    let r = reference();
    let cases = r["pairs"].as_array().expect("pairs");
    assert_eq!(cases.len(), 5);
    let mut checked = 0;
    for c in cases {
        let name = c["name"].as_str().expect("name");
        let (a, b) = (labels(&c["a"]), labels(&c["b"]));
        let ties = c.get("tie_labels").map(labels).unwrap_or_default();
        for m in Metric::ALL {
            let Some(want) = c.get(m.name()) else {
                continue;
            };
            let got = match m.compute(&a, &b, &ties) {
                Ok(v) => v,
                Err(e) => panic!("{name}/{m}: {e}"),
            };
            check(name, m.name(), got, want);
            checked += 1;
        }
        let cm = confusion_matrix(&a, &b)?;
        assert_eq!(cm.labels, labels(&c["labels"]), "{name}: label order");
        let want_cm: Vec<Vec<u64>> =
            serde_json::from_value(c["confusion_matrix"].clone()).expect("cm");
        assert_eq!(cm.counts, want_cm, "{name}: confusion matrix");
    }
    // Reference values present: binary 10, nominal3 8, ordinal10 10, ordinal_gaps 10,
    // degenerate 7 (all None there).
    assert_eq!(checked, 10 + 8 + 10 + 10 + 7);
    Ok(())
}

#[test]
fn krippendorff_alpha_with_missing_matches_reference() -> Result<()> {
    let r = reference();
    for c in r["alpha"].as_array().expect("alpha") {
        let name = c["name"].as_str().expect("name");
        let data: Vec<Vec<Option<Label>>> =
            serde_json::from_value(c["data"].clone()).expect("data");
        for (level, key) in [
            (AlphaLevel::Nominal, "alpha_nominal"),
            (AlphaLevel::Ordinal, "alpha_ordinal"),
            (AlphaLevel::Interval, "alpha_interval"),
        ] {
            check(name, key, krippendorff_alpha(&data, level)?, &c[key]);
        }
    }
    // Krippendorff (2011) prints these rounded to 3 places for his example.
    let ex: Vec<Vec<Option<Label>>> =
        serde_json::from_value(r["alpha"][0]["data"].clone()).expect("data");
    let nominal = krippendorff_alpha(&ex, AlphaLevel::Nominal)?.expect("defined");
    assert!((nominal - 0.743).abs() < 5e-4);
    Ok(())
}

#[test]
fn fleiss_kappa_matches_statsmodels() -> Result<()> {
    let r = reference();
    for c in r["fleiss"].as_array().expect("fleiss") {
        let table: Vec<Vec<u64>> = serde_json::from_value(c["table"].clone()).expect("table");
        check(
            c["name"].as_str().expect("name"),
            "fleiss_kappa",
            fleiss_kappa(&table)?,
            &c["fleiss_kappa"],
        );
    }
    Ok(())
}

#[test]
fn agree_end_to_end_on_files() -> Result<()> {
    let r = reference();
    let c = &r["pairs"][2]; // ordinal10
    let dir = std::env::temp_dir().join(format!("temper-judge-it-agree-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("mkdir");
    let write = |name: &str, key: &str, skip: usize| -> PathBuf {
        let lines: Vec<String> = c[key]
            .as_array()
            .expect("labels")
            .iter()
            .enumerate()
            .map(|(i, l)| serde_json::json!({"id": format!("q{i}"), "label": l}).to_string())
            .collect();
        // File b lacks item `skip` and has an extra id.
        let mut lines: Vec<String> = lines
            .into_iter()
            .enumerate()
            .filter(|(i, _)| *i != skip)
            .map(|(_, l)| l)
            .collect();
        if key == "b" {
            lines.push(r#"{"id": "extra", "label": 3}"#.to_string());
        }
        let p = dir.join(name);
        std::fs::write(&p, lines.join("\n")).expect("write");
        p
    };
    let pa = write("a.jsonl", "a", usize::MAX);
    let pb = write("b.jsonl", "b", 5);
    let joined = join(&load_labels(&pa)?, &load_labels(&pb)?);
    assert_eq!(joined.only_in_a, ["q5"]);
    assert_eq!(joined.only_in_b, ["extra"]);
    let cfg = AgreeConfig::default();
    let rep = report(&joined, &cfg)?;
    assert_eq!(rep.n_items, 39);
    // Reference on the same 39 items: recompute directly, and check every CI brackets its value.
    for m in &rep.metrics {
        let v = m
            .value
            .unwrap_or_else(|| panic!("{} undefined: {:?}", m.metric, m.note));
        assert_eq!(
            Some(v),
            m.metric.compute(&joined.a, &joined.b, &cfg.tie_labels)?
        );
        let ci = m.ci.unwrap_or_else(|| panic!("{} has no CI", m.metric));
        assert!(
            ci.lo <= v + 1e-12 && v <= ci.hi + 1e-12,
            "{}: {v} outside {ci:?}",
            m.metric
        );
        assert!(ci.valid_resamples >= 990, "{}: {ci:?}", m.metric);
    }
    let json = serde_json::to_value(&rep).expect("report serializes");
    assert_eq!(json["metrics"][0]["metric"], "mean_difference");
    assert_eq!(json["only_in_b"][0], "extra");
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

#[test]
fn mtbench_prompts_load_and_render() -> Result<()> {
    let all = load_prompt_templates(&fixture("judge_prompts.jsonl"))?;
    let names: Vec<&str> = all.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "pair-v2",
            "pair-v2-multi-turn",
            "pair-math-v1",
            "pair-math-v1-multi-turn",
            "single-v1",
            "single-math-v1",
            "single-v1-multi-turn",
            "single-math-v1-multi-turn"
        ]
    );
    for kind in [PromptKind::Pairwise, PromptKind::Single] {
        for reference in [false, true] {
            for multi in [false, true] {
                let t = find_template(&all, mtbench_template_name(kind, reference, multi))?;
                assert_eq!(t.kind, kind);
                let ph = t.placeholders();
                assert_eq!(
                    ph.iter().any(|p| p.starts_with("ref_answer")),
                    reference,
                    "{}: {ph:?}",
                    t.name
                );
                assert_eq!(
                    ph.iter().any(|p| p.ends_with("_2")),
                    multi,
                    "{}: {ph:?}",
                    t.name
                );
            }
        }
    }
    let pair_math = find_template(&all, "pair-math-v1")?;
    assert_eq!(pair_math.output_format, "[[A]]");
    assert_eq!(
        pair_math.placeholders(),
        ["question", "ref_answer_1", "answer_a", "answer_b"]
    );
    let item = PairItem {
        id: "m1".into(),
        question: "What is 3*4?".into(),
        answer_a: "12".into(),
        answer_b: "7".into(),
        reference: Some("12".into()),
        question_2: None,
        answer_a_2: None,
        answer_b_2: None,
        reference_2: None,
    };
    let msgs = pair_math.render(&item.id, |f| item.field(f))?;
    assert!(
        msgs[0].content.contains("\"[[C]]\" for a tie"),
        "{}",
        msgs[0].content
    );
    assert!(
        msgs[1]
            .content
            .contains("[The Start of Reference Answer]\n12\n[The End of Reference Answer]")
    );
    let multi = find_template(&all, "pair-v2-multi-turn")?;
    let e = multi
        .render(&item.id, |f| item.field(f))
        .expect_err("no second turn")
        .to_string();
    assert!(e.contains("`question_2`") && e.contains("m1"), "{e}");
    assert!(
        find_template(&all, "pair-v9")
            .expect_err("unknown")
            .to_string()
            .contains("pair-v2, ")
    );
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// A mock OpenAI-compatible server on 127.0.0.1:0. It serves a fixed script of replies, one per
// connection (each handled on its own thread so a hanging reply does not block the next one),
// and stops after the script is used up or 20 s, whichever comes first.

mod mock {
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

    fn read_request(s: &mut TcpStream) -> Seen {
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
}

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
fn openai_backend_speaks_the_wire_format() -> Result<()> {
    let server = mock::serve(vec![Reply::Content("Assistant A is right. [[A]]")]);
    let backend = OpenAiBackend::new(fast_config(&server.base_url))?;
    let reply = backend.complete(
        &msgs(),
        &GenParams {
            temperature: 0.0,
            max_tokens: 64,
        },
    )?;
    assert_eq!(reply, "Assistant A is right. [[A]]");
    let seen = server.finish();
    assert_eq!(seen.len(), 1);
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
    assert_eq!(backend.complete(&msgs(), &GenParams::default())?, "[[B]]");
    assert_eq!(server.finish().len(), 4);

    // Retries exhausted: 1 + 2 attempts, all 503.
    let server = mock::serve(vec![Reply::Status(503, "busy", None); 3]);
    let backend = OpenAiBackend::new(fast_config(&server.base_url))?;
    match backend.complete(&msgs(), &GenParams::default()) {
        Err(JudgeError::Http {
            message, attempts, ..
        }) => {
            assert_eq!(attempts, 3);
            assert!(message.contains("HTTP 503: busy"), "{message}");
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
        .complete(&msgs(), &GenParams::default())
        .expect_err("times out");
    assert!(
        started.elapsed() < Duration::from_millis(1400),
        "timeout not enforced: {:?}",
        started.elapsed()
    );
    assert!(matches!(err, JudgeError::Http { attempts: 1, .. }), "{err}");
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
    let p = GenParams::default();
    let e1 = backend.complete(&msgs(), &p).expect_err("truncated JSON");
    assert!(
        matches!(&e1, JudgeError::MalformedReply { message, .. } if message.starts_with("not JSON")),
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
        matches!(&e4, JudgeError::Http { attempts: 1, message, .. } if message.contains("HTTP 401")),
        "{e4}"
    );
    assert_eq!(server.finish().len(), 4);
    Ok(())
}

#[test]
fn openai_backend_caches_replies_on_disk() -> Result<()> {
    let dir = std::env::temp_dir().join(format!("temper-judge-it-cache-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let server = mock::serve(vec![Reply::Content("[[8 6]]"), Reply::Content("[[2 9]]")]);
    let cfg = OpenAiConfig {
        cache_dir: Some(dir.clone()),
        ..fast_config(&server.base_url)
    };
    let backend = OpenAiBackend::new(cfg.clone())?;
    let p = GenParams::default();
    assert_eq!(backend.complete(&msgs(), &p)?, "[[8 6]]");
    // Same request again, from a fresh back end: served from disk, the server sees nothing.
    assert_eq!(OpenAiBackend::new(cfg)?.complete(&msgs(), &p)?, "[[8 6]]");
    assert_eq!(server.seen_now(), 1);
    // A different request is a miss.
    assert_eq!(
        backend.complete(
            &msgs(),
            &GenParams {
                max_tokens: 10,
                ..p
            }
        )?,
        "[[2 9]]"
    );
    assert_eq!(server.finish().len(), 2);
    let files = std::fs::read_dir(&dir).map(|d| d.count()).unwrap_or(0);
    assert_eq!(files, 2);
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

#[test]
fn judge_pairs_through_the_mock_endpoint_with_swap() -> Result<()> {
    let dir = std::env::temp_dir().join(format!("temper-judge-it-pairs-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("mkdir");
    let pairs = dir.join("pairs.jsonl");
    std::fs::write(
        &pairs,
        "{\"id\": \"p1\", \"question\": \"2+2?\", \"answer_a\": \"4\", \"answer_b\": \"5\"}\n\
         {\"id\": \"p2\", \"question\": \"Capital of France?\", \"answer_a\": \"Lyon\", \"answer_b\": \"Paris\"}\n",
    )
    .expect("write pairs");
    // A judge that always answers [[A]]: every pair is inconsistent under swap.
    let server = mock::serve(vec![Reply::Content("[[A]]"); 4]);
    let all = load_prompt_templates(&fixture("judge_prompts.jsonl"))?;
    let judge = LlmJudge::new(OpenAiBackend::new(fast_config(&server.base_url))?)
        .with_pair_template(find_template(&all, "pair-v2")?.clone())?;
    let run = judge_pairs(&pairs, &judge, &JudgeRunConfig::new(true, 2))?;
    let seen = server.finish();
    assert_eq!(seen.len(), 4);
    assert!(
        seen.iter()
            .all(|s| s.body.contains("[The Start of Assistant A's Answer]"))
    );
    assert_eq!(run.summary.inconsistent, 2);
    assert_eq!(run.summary.position_consistency, Some(0.0));
    assert_eq!(run.summary.first_slot_preference, Some(1.0));
    assert_eq!(
        run.records
            .iter()
            .map(|r| r.id.as_str())
            .collect::<Vec<_>>(),
        ["p1", "p2"]
    );
    assert!(run.records.iter().all(|r| r.winner == Some(Winner::Tie)));
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}
