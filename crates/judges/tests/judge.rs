//! Integration tests for temper-judges: agreement metrics against scikit-learn / statsmodels /
//! krippendorff reference numbers, MT-bench prompt loading, and (feature `openai`) pairwise judging through
//! the OpenAI-compatible back end against a mock server on 127.0.0.1 (the client's own tests are in
//! temper-chat's `tests/openai.rs`).

use std::path::{Path, PathBuf};

use serde_json::Value;
use temper_judges::*;

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
    let dir = std::env::temp_dir().join(format!("temper-judges-it-agree-{}", std::process::id()));
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

// The judge over HTTP: the mock OpenAI-compatible server of temper-chat's tests.
#[cfg(feature = "openai")]
#[path = "../../chat/tests/mock/mod.rs"]
mod mock;

#[cfg(feature = "openai")]
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

#[cfg(feature = "openai")]
#[test]
fn judge_pairs_through_the_mock_endpoint_with_swap() -> Result<()> {
    let dir = std::env::temp_dir().join(format!("temper-judges-it-pairs-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("mkdir");
    let pairs = dir.join("pairs.jsonl");
    std::fs::write(
        &pairs,
        "{\"id\": \"p1\", \"question\": \"2+2?\", \"answer_a\": \"4\", \"answer_b\": \"5\"}\n\
         {\"id\": \"p2\", \"question\": \"Capital of France?\", \"answer_a\": \"Lyon\", \"answer_b\": \"Paris\"}\n",
    )
    .expect("write pairs");
    // A judge that always answers [[A]]: every pair is inconsistent under swap.
    let server = mock::serve(vec![mock::Reply::Content("[[A]]"); 4]);
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

/// A back end that counts the calls in flight around another one (the judge runner's concurrency, seen from
/// inside).
#[cfg(feature = "openai")]
struct InFlight<B> {
    inner: B,
    now: std::sync::atomic::AtomicUsize,
    peak: std::sync::atomic::AtomicUsize,
}

#[cfg(feature = "openai")]
impl<B: ChatBackend> ChatBackend for InFlight<B> {
    fn complete(
        &self,
        messages: &[Message],
        params: &GenerationParams,
    ) -> std::result::Result<String, ChatError> {
        use std::sync::atomic::Ordering::SeqCst;
        let n = self.now.fetch_add(1, SeqCst) + 1;
        self.peak.fetch_max(n, SeqCst);
        let r = self.inner.complete(messages, params);
        self.now.fetch_sub(1, SeqCst);
        r
    }
}

/// Load: 1,000 pairs judged at the concurrency limit (8) against a server on 127.0.0.1 that fails 10% of its
/// replies (500, 429, or no reply until the client's timeout), chosen by a seeded generator per connection. Every
/// item must end judged or reported, exactly once, and the server must see each item at most 1 + max_retries
/// times.
#[cfg(feature = "openai")]
#[test]
fn a_thousand_pairs_at_the_concurrency_limit_with_ten_percent_failures() -> Result<()> {
    use std::collections::HashMap;
    use std::io::Write;
    use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
    use std::sync::{Arc, Mutex};
    use std::time::Duration;

    const ITEMS: usize = 1000;
    const CONCURRENCY: usize = 8;
    let dir = std::env::temp_dir().join(format!("temper-judges-it-load-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("mkdir");
    let pairs = dir.join("pairs.jsonl");
    let lines: String = (0..ITEMS)
        .map(|i| format!("{{\"id\": {i}, \"question\": \"Question item-{i}-end?\", \"answer_a\": \"a\", \"answer_b\": \"bb\"}}\n"))
        .collect();
    std::fs::write(&pairs, lines).expect("write pairs");

    // Per item id: whether each request the server saw for it was answered (true) or failed on purpose (false).
    let outcomes: Arc<Mutex<HashMap<usize, Vec<bool>>>> = Arc::default();
    let failed = Arc::new(AtomicUsize::new(0));
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let base_url = format!("http://{}/v1", listener.local_addr().expect("addr"));
    {
        let (outcomes, failed) = (Arc::clone(&outcomes), Arc::clone(&failed));
        std::thread::spawn(move || {
            let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
            for stream in listener.incoming() {
                let Ok(mut s) = stream else { break };
                // xorshift64: the connection's fate, 10% failing (a third each 500, 429, timeout).
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                let fate = state % 30;
                let (outcomes, failed) = (Arc::clone(&outcomes), Arc::clone(&failed));
                std::thread::spawn(move || {
                    let seen = mock::read_request(&mut s);
                    let id = seen
                        .body
                        .split("item-")
                        .nth(1)
                        .and_then(|t| t.split('-').next())
                        .and_then(|t| t.parse::<usize>().ok())
                        .expect("the request names its item");
                    let ok = fate >= 3;
                    outcomes
                        .lock()
                        .expect("lock")
                        .entry(id)
                        .or_default()
                        .push(ok);
                    let (status, body) = match fate {
                        0 => (500, "{\"error\": \"overloaded\"}".to_string()),
                        1 => (429, "{\"error\": \"slow down\"}".to_string()),
                        2 => {
                            failed.fetch_add(1, SeqCst);
                            std::thread::sleep(Duration::from_millis(1500));
                            return;
                        }
                        _ => (
                            200,
                            serde_json::json!({"choices": [{"message": {"content": "[[A]]"}}]})
                                .to_string(),
                        ),
                    };
                    if !ok {
                        failed.fetch_add(1, SeqCst);
                    }
                    let head = format!(
                        "HTTP/1.1 {status} Mock\r\nContent-Length: {}\r\nRetry-After: 0\r\nConnection: close\r\n\r\n",
                        body.len()
                    );
                    let _ = s.write_all(format!("{head}{body}").as_bytes());
                });
            }
        });
    }
    let config = OpenAiConfig {
        timeout_ms: 500,
        max_retries: 1,
        backoff_initial_ms: 5,
        backoff_max_ms: 20,
        ..OpenAiConfig::new(base_url, "mock-judge")
    };
    let backend = InFlight {
        inner: OpenAiBackend::new(config)?,
        now: AtomicUsize::new(0),
        peak: AtomicUsize::new(0),
    };
    let judge = LlmJudge::new(backend);
    let rss_before = mock::peak_rss_kb();
    let started = std::time::Instant::now();
    let run = judge_pairs(&pairs, &judge, &JudgeRunConfig::new(false, CONCURRENCY))?;
    let took = started.elapsed();
    let rss_grown_kb = mock::peak_rss_kb().saturating_sub(rss_before);

    // None lost, none duplicated, input order kept.
    assert_eq!(run.records.len(), ITEMS);
    let ids: Vec<String> = run.records.iter().map(|r| r.id.clone()).collect();
    assert_eq!(ids, (0..ITEMS).map(|i| i.to_string()).collect::<Vec<_>>());
    let outcomes = outcomes.lock().expect("lock").clone();
    let (mut judged, mut reported) = (0, 0);
    for (i, r) in run.records.iter().enumerate() {
        let seen = outcomes.get(&i).map(Vec::as_slice).unwrap_or_default();
        assert!(
            !seen.is_empty() && seen.len() <= 2,
            "item {i}: {} requests (1 + max_retries = 2)",
            seen.len()
        );
        match (&r.error, r.winner) {
            (None, Some(Winner::A)) => {
                assert_eq!(r.judgments.len(), 1, "item {i}");
                assert_eq!(
                    seen.last(),
                    Some(&true),
                    "item {i} judged from a failed reply"
                );
                judged += 1;
            }
            (Some(e), None) => {
                assert_eq!(seen.len(), 2, "item {i} reported before its retry: {e}");
                reported += 1;
            }
            other => panic!("item {i} neither judged nor reported: {other:?}"),
        }
    }
    let requests: usize = outcomes.values().map(Vec::len).sum();
    let failures = failed.load(SeqCst);
    let peak = judge.backend().peak.load(SeqCst);
    eprintln!(
        "load: {ITEMS} items, {requests} requests, {failures} failed on purpose, {judged} judged, {reported} reported, \
         peak {peak} in flight, {took:?}, peak RSS +{rss_grown_kb} kB"
    );
    assert_eq!(judged + reported, ITEMS);
    assert!(
        reported > 0 && judged > 900,
        "judged {judged}, reported {reported}"
    );
    assert!(
        (ITEMS + 50..ITEMS + 200).contains(&requests),
        "{requests} requests for about 10% retried"
    );
    assert_eq!(
        peak, CONCURRENCY,
        "the runner keeps exactly `concurrency` calls in flight at its peak"
    );
    assert!(
        rss_grown_kb < 64 * 1024,
        "peak RSS grew by {rss_grown_kb} kB"
    );
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}
