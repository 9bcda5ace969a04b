//! `temper eval` end to end: on the tiny Llama of `testdata/trl-parity` (its JSON report's schema, `--n` and `--k`
//! applied to the sample records, the same output for the same seed, flag errors) and with `openai:<model>` against
//! the mock OpenAI-compatible server of temper-chat's tests on 127.0.0.1; `temper eval --task bfcl` and `temper tools
//! run` (the tool loop with the calculator and with search over a `temper rag` index) against the same mock;
//! `temper toolformer` on the tiny model, its data read by `temper sft`.

#[path = "../../chat/tests/mock/mod.rs"]
mod mock;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

/// An HF folder with the tiny model and its tokenizer (with chat template), as a run's `final/` looks.
fn tiny_model_dir() -> PathBuf {
    let testdata = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testdata/trl-parity");
    let dir = std::env::temp_dir().join(format!("temper-eval-cli-tiny-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("mkdir");
    for (from, name) in [
        ("model/config.json", "config.json"),
        ("model/model.safetensors", "model.safetensors"),
        ("tokenizer/tokenizer.json", "tokenizer.json"),
        ("tokenizer/tokenizer_config.json", "tokenizer_config.json"),
        ("tokenizer/chat_template.jinja", "chat_template.jinja"),
    ] {
        std::fs::copy(testdata.join(from), dir.join(name)).expect("copy tiny model file");
    }
    dir
}

fn temper(args: &[&str], envs: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_temper"));
    cmd.args(args);
    for (k, v) in envs {
        cmd.env(k, v);
    }
    cmd.output().expect("run temper")
}

/// `eval --task arithmetic --model MODEL --strategy STRATEGY --n N` followed by `extra`.
fn eval_args<'a>(model: &'a str, strategy: &'a str, n: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec![
        "eval",
        "--task",
        "arithmetic",
        "--model",
        model,
        "--strategy",
        strategy,
        "--n",
        n,
    ];
    args.extend_from_slice(extra);
    args
}

/// The environment that points `openai:<model>` at the mock server.
fn mock_endpoint(server: &mock::Server) -> [(&'static str, &str); 2] {
    [
        ("TEMPER_JUDGE_BASE_URL", &server.base_url),
        ("TEMPER_JUDGE_API_KEY", "sk-mock"),
    ]
}

fn json_of(out: &Output) -> Value {
    assert!(
        out.status.success(),
        "temper failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("stdout is one JSON object")
}

#[test]
fn eval_on_the_tiny_model_reports_the_schema_applies_n_and_k_and_is_reproducible() {
    let model = tiny_model_dir();
    let model = model.to_str().expect("utf-8 path");
    let out_dir = std::env::temp_dir().join(format!("temper-eval-cli-out-{}", std::process::id()));
    let out_str = out_dir.to_str().expect("utf-8 path");
    let args = eval_args(
        model,
        "majority",
        "3",
        &[
            "--k",
            "2",
            "--limit",
            "3",
            "--max-new-tokens",
            "6",
            "--temperature",
            "1.0",
            "--seed",
            "5",
            "--json",
            "--out",
            out_str,
        ],
    );
    let first = temper(&args, &[]);
    let report = json_of(&first);
    for key in [
        "task",
        "strategy",
        "n",
        "accuracy",
        "pass_at_k",
        "maj_at_k",
        "tokens",
        "problems",
    ] {
        assert!(report.get(key).is_some(), "report has `{key}`: {report}");
    }
    assert_eq!(
        (
            report["task"].as_str(),
            report["strategy"].as_str(),
            report["n"].as_u64()
        ),
        (Some("arithmetic"), Some("majority"), Some(3))
    );
    for key in ["value", "ci_low", "ci_high"] {
        assert!(report["accuracy"][key].is_f64(), "accuracy.{key}");
    }
    // --k 2: pass@k and maj@k for k = 1, 2 only; --n 3: three sample records per problem; --limit 3: three problems.
    let ks = |m: &Value| {
        m.as_object()
            .expect("map")
            .keys()
            .cloned()
            .collect::<Vec<_>>()
    };
    assert_eq!(ks(&report["pass_at_k"]), ["1", "2"]);
    assert_eq!(ks(&report["maj_at_k"]), ["1", "2"]);
    let problems = report["problems"].as_array().expect("problems");
    assert_eq!(problems.len(), 3);
    let mut tokens = 0;
    for p in problems {
        for key in ["id", "reference", "samples", "chosen", "correct"] {
            assert!(p.get(key).is_some(), "problem has `{key}`: {p}");
        }
        let samples = p["samples"].as_array().expect("samples");
        assert_eq!(samples.len(), 3, "--n 3 samples per problem");
        for s in samples {
            for key in ["answer", "correct", "tokens"] {
                assert!(s.get(key).is_some(), "sample has `{key}`: {s}");
            }
            let t = s["tokens"].as_u64().expect("tokens");
            assert!(
                (1..=6).contains(&t),
                "--max-new-tokens 6 bounds each sample, got {t}"
            );
        }
        tokens += p["tokens"].as_u64().expect("problem tokens");
    }
    assert_eq!(report["tokens"]["total"].as_u64(), Some(tokens));
    // The report file holds the same report.
    let written: Value = serde_json::from_str(
        &std::fs::read_to_string(out_dir.join("report.json")).expect("report.json"),
    )
    .expect("json");
    assert_eq!(written, report);

    // Same command, same seed: byte-identical output; another seed samples something else.
    let again = temper(&args, &[]);
    assert_eq!(first.stdout, again.stdout);
    let mut other = args.to_vec();
    let seed_at = other
        .iter()
        .position(|a| *a == "--seed")
        .expect("seed flag")
        + 1;
    other[seed_at] = "6";
    let other = json_of(&temper(&other, &[]));
    assert_ne!(other["problems"], report["problems"]);

    // Greedy: one sample per problem, pass@1 only.
    let greedy = json_of(&temper(
        &[
            "eval",
            "--task",
            "arithmetic",
            "--model",
            model,
            "--limit",
            "2",
            "--max-new-tokens",
            "4",
            "--json",
        ],
        &[],
    ));
    assert_eq!(greedy["strategy"].as_str(), Some("greedy"));
    assert!(
        greedy["problems"]
            .as_array()
            .expect("problems")
            .iter()
            .all(|p| p["samples"].as_array().map(Vec::len) == Some(1))
    );
    assert_eq!(ks(&greedy["pass_at_k"]), ["1"]);

    // Every scored strategy runs through the CLI with the rule scorer: each sample carries its score.
    for (strategy, samples) in [("best-of-n", 2), ("weighted", 2), ("search", 1)] {
        let r = json_of(&temper(
            &eval_args(
                model,
                strategy,
                "2",
                &[
                    "--limit",
                    "2",
                    "--max-new-tokens",
                    "4",
                    "--temperature",
                    "1.0",
                    "--json",
                ],
            ),
            &[],
        ));
        assert_eq!(r["strategy"].as_str(), Some(strategy));
        for p in r["problems"].as_array().expect("problems") {
            let s = p["samples"].as_array().expect("samples");
            assert!(!s.is_empty() && s.len() <= samples, "{strategy}: {p}");
            assert!(
                s.iter().all(|s| s["score"].is_f64()),
                "{strategy}: scored samples"
            );
        }
    }
}

/// The field `field` of every sample of a report, problem by problem.
fn sample_values(report: &Value, field: &str) -> Vec<Vec<Value>> {
    report["problems"]
        .as_array()
        .expect("problems")
        .iter()
        .map(|p| {
            p["samples"]
                .as_array()
                .expect("samples")
                .iter()
                .map(|s| s[field].clone())
                .collect()
        })
        .collect()
}

/// The scores of every sample of a report, problem by problem.
fn sample_scores(report: &Value) -> Vec<Vec<f64>> {
    sample_values(report, "score")
        .iter()
        .map(|p| {
            p.iter()
                .map(|s| s.as_f64().expect("every sample is scored"))
                .collect()
        })
        .collect()
}

#[test]
fn a_reward_model_from_temper_rm_scores_best_of_n_and_weighted() {
    // Train a reward model on the tiny model for two steps, as a user would with `temper rm`.
    let model = tiny_model_dir();
    let dir = std::env::temp_dir().join(format!("temper-eval-cli-rm-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("mkdir");
    std::fs::write(
        dir.join("pairs.jsonl"),
        "{\"prompt\": \"1+1=\", \"chosen\": \"2\", \"rejected\": \"3\"}\n\
         {\"prompt\": \"2+2=\", \"chosen\": \"4\", \"rejected\": \"5\"}\n",
    )
    .expect("write pairs");
    std::fs::write(
        dir.join("rm.toml"),
        format!(
            "model = \"{m}\"\ntrain_file = \"{d}/pairs.jsonl\"\n[train]\noutput_dir = \"{d}/run\"\nsteps = 2\n",
            m = model.display(),
            d = dir.display()
        ),
    )
    .expect("write config");
    let config = dir.join("rm.toml");
    let out = temper(&["rm", "--config", config.to_str().expect("utf-8")], &[]);
    assert!(
        out.status.success(),
        "temper rm: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rm = format!("rm:{}", dir.join("run/final").display());

    let model = model.to_str().expect("utf-8 path");
    let common = [
        "--limit",
        "3",
        "--max-new-tokens",
        "4",
        "--temperature",
        "1.0",
        "--seed",
        "7",
        "--json",
    ];
    let run = |strategy: &str, scorer: &str| {
        let mut extra = common.to_vec();
        extra.extend(["--scorer", scorer]);
        json_of(&temper(&eval_args(model, strategy, "3", &extra), &[]))
    };
    let best = run("best-of-n", &rm);
    assert_eq!(best["scorer"].as_str(), Some(rm.as_str()));
    let scores = sample_scores(&best);
    assert!(
        scores.iter().all(|s| s.len() == 3),
        "--n 3 gives 3 scored samples: {scores:?}"
    );
    // The reward model's scores are real numbers, not the rule scorer's 0/1, and best-of-N picks the highest.
    assert!(scores.iter().flatten().all(|x| x.is_finite()));
    assert!(
        scores.iter().flatten().any(|&x| x != 0.0 && x != 1.0),
        "{scores:?}"
    );
    for (p, s) in best["problems"]
        .as_array()
        .expect("problems")
        .iter()
        .zip(&scores)
    {
        let chosen = p["chosen_sample"].as_u64().expect("a chosen sample") as usize;
        assert!(
            s.iter().all(|&x| x <= s[chosen]),
            "best-of-n chose {chosen} of {s:?}"
        );
    }
    // Same seed, same samples: the rule scorer sees the same texts and scores them differently.
    let rule = run("best-of-n", "rule");
    assert_eq!(sample_values(&best, "text"), sample_values(&rule, "text"));
    assert_ne!(sample_scores(&rule), scores);
    // The weighted vote runs on the same scores; the same command twice gives the same report.
    let weighted = run("weighted", &rm);
    assert_eq!(sample_scores(&weighted), scores);
    assert_eq!(run("best-of-n", &rm), best);

    // A policy folder is no reward model: a clear error naming the folder.
    let out = temper(
        &eval_args(
            model,
            "best-of-n",
            "2",
            &["--scorer", &format!("rm:{model}")],
        ),
        &[],
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains(model) && !err.contains("panicked"),
        "{err}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn bad_flags_fail_with_a_clear_message() {
    let cases: &[(&[&str], &str)] = &[
        (
            &["--strategy", "greedy", "--n", "4"],
            "greedy takes exactly one sample, got n = 4",
        ),
        (&["--strategy", "best_of_n"], "unknown strategy `best_of_n`"),
        (
            &["--strategy", "majority", "--n", "2", "--k", "3"],
            "flag --k",
        ),
        (&["--n", "0"], "flag --n"),
        (
            &["--scorer", "oracle"],
            "--scorer \"oracle\": expected rule, rm:PATH or judge:SPEC",
        ),
        (
            &["--scorer", "rm:"],
            "--scorer rm: needs the folder of a reward model",
        ),
        (&["--limit", "0"], "--limit must be at least 1"),
        (&["--terms", "9"], "terms"),
        (
            &["--model", "openai:"],
            "--model openai: needs a model name",
        ),
    ];
    for (extra, want) in cases {
        let mut args = vec![
            "eval",
            "--task",
            "arithmetic",
            "--model",
            "no-such-model-here",
        ];
        if extra.contains(&"--model") {
            args.truncate(3);
        }
        args.extend_from_slice(extra);
        let out = temper(&args, &[]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?} should fail");
        assert!(
            stderr.contains(want),
            "{args:?}: expected {want:?} in {stderr}"
        );
    }
    let out = temper(&["eval", "--task", "mmlu", "--model", "x"], &[]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("mmlu"));
}

#[test]
fn eval_of_an_openai_compatible_endpoint_against_a_mock_server() {
    // Two problems × two samples: four requests; the mock counts 5 completion tokens per reply.
    let server = mock::serve(vec![
        mock::Reply::Content("81</answer>"),
        mock::Reply::Content("The answer is 81."),
        mock::Reply::Content("<answer>12</answer>"),
        mock::Reply::Content("no idea"),
    ]);
    let out = temper(
        &[
            "eval",
            "--task",
            "arithmetic",
            "--model",
            "openai:mock-model",
            "--strategy",
            "majority",
            "--n",
            "2",
            "--limit",
            "2",
            "--seed",
            "1",
            "--json",
        ],
        &mock_endpoint(&server),
    );
    let seen = server.finish();
    let report = json_of(&out);
    assert_eq!(seen.len(), 4, "n = 2 samples for each of 2 problems");
    let body: Value = serde_json::from_str(&seen[0].body).expect("request JSON");
    assert_eq!(body["model"].as_str(), Some("mock-model"));
    // The arithmetic prefill is sent as a trailing assistant message.
    let messages = body["messages"].as_array().expect("messages");
    assert_eq!(
        messages.last().map(|m| (&m["role"], &m["content"])),
        Some((&Value::from("assistant"), &Value::from("<answer>")))
    );
    let problems = report["problems"].as_array().expect("problems");
    assert_eq!(
        sample_values(&report, "answer"),
        [
            vec![Value::from("81"), Value::from("81")],
            vec![Value::from("12"), Value::Null]
        ]
    );
    assert!(
        problems
            .iter()
            .flat_map(|p| p["samples"].as_array().expect("samples"))
            .all(|s| s["tokens"].as_u64() == Some(5))
    );
    assert_eq!(report["tokens"]["total"].as_u64(), Some(20));
}

/// BFCL's simple set from the committed 20-question fixture of temper-tools (BFCL's own data layout).
fn bfcl_fixture() -> String {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tools/tests/fixtures/bfcl");
    dir.to_str().expect("utf-8 path").to_string()
}

#[test]
fn bfcl_scores_a_responses_file_per_id() {
    let dir = std::env::temp_dir().join(format!("temper-eval-bfcl-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("mkdir");
    let responses = dir.join("responses.jsonl");
    std::fs::write(
        &responses,
        concat!(
            r#"{"id": "simple_python_0", "calls": [{"name": "calculate_triangle_area", "arguments": {"base": 10, "height": 5}}]}"#,
            "\n",
            r#"{"id": "simple_python_20", "calls": [{"name": "math.gcd", "arguments": {"number1": 36, "number2": 24}}]}"#,
            "\n"
        ),
    )
    .expect("write responses");
    let data = bfcl_fixture();
    let out = temper(
        &[
            "eval",
            "--task",
            "bfcl",
            "--category",
            "simple",
            "--data",
            &data,
            "--responses",
            responses.to_str().expect("utf-8 path"),
            "--json",
        ],
        &[],
    );
    let report = json_of(&out);
    assert_eq!(
        (report["task"].as_str(), report["category"].as_str()),
        (Some("bfcl"), Some("simple"))
    );
    assert_eq!(
        (report["correct"].as_u64(), report["total"].as_u64()),
        (Some(1), Some(20))
    );
    let results = report["results"].as_array().expect("results");
    let verdict = |id: &str| {
        results
            .iter()
            .find(|r| r["id"] == id)
            .unwrap_or_else(|| panic!("a verdict for {id}"))
    };
    assert_eq!(verdict("simple_python_0")["correct"], Value::Bool(true));
    let wrong_name = verdict("simple_python_20");
    assert_eq!(wrong_name["correct"], Value::Bool(false));
    assert!(
        wrong_name["reason"]
            .as_str()
            .expect("a reason")
            .contains("wrong_func_name"),
        "{wrong_name}"
    );
    // Questions without a response are wrong, each with a reason.
    assert_eq!(
        results
            .iter()
            .filter(|r| r["reason"] == "no response")
            .count(),
        18
    );

    // A response to an id that is not in the set is an error naming the file and its line.
    std::fs::write(
        &responses,
        "{\"id\": \"simple_python_99999\", \"calls\": []}\n",
    )
    .expect("write responses");
    let out = temper(
        &[
            "eval",
            "--task",
            "bfcl",
            "--data",
            &data,
            "--responses",
            responses.to_str().expect("utf-8 path"),
        ],
        &[],
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success()
            && err.contains("responses.jsonl")
            && err.contains("simple_python_99999"),
        "{err}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn bfcl_asks_an_openai_compatible_endpoint_and_checks_its_calls() {
    let server = mock::serve(vec![
        mock::Reply::Content("[calculate_triangle_area(base=10, height=5)]"),
        mock::Reply::Content("I would need a calculator for that."),
    ]);
    let data = bfcl_fixture();
    let out = temper(
        &[
            "eval",
            "--task",
            "bfcl",
            "--category",
            "simple",
            "--data",
            &data,
            "--model",
            "openai:mock-model",
            "--limit",
            "2",
            "--json",
        ],
        &mock_endpoint(&server),
    );
    let seen = server.finish();
    let report = json_of(&out);
    assert_eq!(seen.len(), 2, "one request per question, --limit 2");
    let body: Value = serde_json::from_str(&seen[0].body).expect("request JSON");
    let system = body["messages"][0]["content"]
        .as_str()
        .expect("a system prompt with the functions");
    assert!(system.contains("calculate_triangle_area"), "{system}");
    assert_eq!(
        (report["correct"].as_u64(), report["total"].as_u64()),
        (Some(1), Some(2))
    );
    assert_eq!(report["results"][1]["correct"], Value::Bool(false));
}

// `temper tools run`: the tool loop from the command line.

#[test]
fn tools_run_calls_the_calculator_then_answers_and_writes_the_transcript() {
    let server = mock::serve(vec![
        mock::Reply::Content(
            "<tool_call>{\"name\": \"calculator\", \"arguments\": {\"expression\": \"1234*5678\"}}</tool_call>",
        ),
        mock::Reply::Content("1234 × 5678 = 7006652."),
    ]);
    let dir = std::env::temp_dir().join(format!("temper-tools-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("mkdir");
    let transcript = dir.join("transcript.jsonl");
    let out = temper(
        &[
            "tools",
            "run",
            "--model",
            "openai:mock-model",
            "--prompt",
            "What is 1234*5678?",
            "--transcript",
            transcript.to_str().expect("utf-8 path"),
            "--json",
        ],
        &mock_endpoint(&server),
    );
    let seen = server.finish();
    let report = json_of(&out);
    assert_eq!(report["outcome"], "answer");
    assert_eq!(report["answer"], "1234 × 5678 = 7006652.");
    assert_eq!(report["steps"].as_u64(), Some(2));
    assert_eq!(report["tool_results"][0]["ok"], Value::Bool(true));
    // The second request carries the call (structured, as for an endpoint) and the calculator's exact result.
    assert_eq!(seen.len(), 2);
    let body: Value = serde_json::from_str(&seen[1].body).expect("request JSON");
    let messages = body["messages"].as_array().expect("messages");
    let system = messages[0]["content"].as_str().expect("system prompt");
    assert!(
        system.contains("<tools>") && system.contains("\"calculator\""),
        "{system}"
    );
    let last = messages.last().expect("the tool's reply");
    assert_eq!(last["role"], "tool");
    let result: Value =
        serde_json::from_str(last["content"].as_str().expect("content")).expect("JSON result");
    assert_eq!(result["value"], "7006652");
    let lines: Vec<Value> = std::fs::read_to_string(&transcript)
        .expect("transcript written")
        .lines()
        .map(|l| serde_json::from_str(l).expect("each line is JSON"))
        .collect();
    let kinds: Vec<&str> = lines.iter().filter_map(|l| l["kind"].as_str()).collect();
    assert_eq!(kinds, ["prompt", "prompt", "reply", "tool_result", "reply"]);
    std::fs::remove_dir_all(&dir).expect("clean up");
}

#[test]
fn tools_run_searches_a_rag_index_and_refuses_bad_flags() {
    let root = std::env::temp_dir().join(format!("temper-tools-cli-search-{}", std::process::id()));
    let docs = root.join("docs");
    std::fs::create_dir_all(&docs).expect("mkdir");
    std::fs::write(
        docs.join("upgrade.md"),
        "# Upgrading\n\nRun apt update, then apt full-upgrade.\n",
    )
    .expect("write");
    std::fs::write(
        docs.join("boot.md"),
        "# Booting\n\nGRUB loads the kernel.\n",
    )
    .expect("write");
    let index = root.join("index");
    let (docs_s, index_s) = (
        docs.to_str().expect("utf-8"),
        index.to_str().expect("utf-8"),
    );
    let indexed = temper(&["rag", "index", docs_s, "--index", index_s], &[]);
    assert!(
        indexed.status.success(),
        "{}",
        String::from_utf8_lossy(&indexed.stderr)
    );

    let server = mock::serve(vec![
        mock::Reply::Content(
            "<tool_call>{\"name\": \"search\", \"arguments\": {\"query\": \"apt upgrade\", \"k\": 1}}</tool_call>",
        ),
        mock::Reply::Content("Run apt update, then apt full-upgrade."),
    ]);
    let base_url = server.base_url.clone();
    let envs = [
        ("TEMPER_JUDGE_BASE_URL", base_url.as_str()),
        ("TEMPER_JUDGE_API_KEY", "sk-mock"),
    ];
    let out = temper(
        &[
            "tools",
            "run",
            "--model",
            "openai:mock-model",
            "--tools",
            "search",
            "--index",
            index_s,
            "--prompt",
            "How do I upgrade?",
            "--json",
        ],
        &envs,
    );
    let seen = server.finish();
    let report = json_of(&out);
    assert_eq!(report["outcome"], "answer");
    let body: Value = serde_json::from_str(&seen[1].body).expect("request JSON");
    let last = body["messages"]
        .as_array()
        .and_then(|m| m.last())
        .expect("the tool's reply")
        .clone();
    let result: Value =
        serde_json::from_str(last["content"].as_str().expect("content")).expect("JSON result");
    assert_eq!(result["results"][0]["source"], "upgrade.md");
    assert!(
        result["results"][0]["text"]
            .as_str()
            .is_some_and(|t| t.contains("full-upgrade")),
        "{result}"
    );

    for (args, needle) in [
        (vec!["--tools", "search"], "--index"),
        (vec!["--tools", "teleport"], "unknown tool `teleport`"),
        (vec!["--format", "xml"], "--format"),
        (vec!["--turns", "sideways"], "--turns"),
        (vec!["--index", "/nonexistent/index"], "/nonexistent/index"),
    ] {
        let mut full = vec![
            "tools",
            "run",
            "--model",
            "openai:mock-model",
            "--prompt",
            "hi",
        ];
        full.extend(args.iter());
        let out = temper(&full, &envs);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            !out.status.success() && err.contains(needle) && !err.contains("panicked"),
            "{args:?}: {err}"
        );
    }
    std::fs::remove_dir_all(&root).expect("clean up");
}

/// `--tools`: the samples come from the tool rollout with the tools described and no `<answer>` prefill (the tiny
/// model never writes a call, so this checks the wiring; the rollout itself is tested in temper-train).
#[test]
fn eval_with_tools_samples_without_the_answer_prefill() {
    let model = tiny_model_dir();
    let model = model.to_str().expect("utf-8 path");
    let common = ["--limit", "2", "--max-new-tokens", "6", "--json"];
    let mut with = eval_args(model, "greedy", "1", &common);
    with.extend(["--tools", "calculator", "--max-calls", "1"]);
    let with = json_of(&temper(&with, &[]));
    let without = json_of(&temper(&eval_args(model, "greedy", "1", &common), &[]));
    let texts = |r: &Value| -> Vec<String> {
        r["problems"]
            .as_array()
            .expect("problems")
            .iter()
            .map(|p| p["samples"][0]["text"].as_str().expect("text").to_string())
            .collect()
    };
    assert!(
        texts(&without).iter().all(|t| t.starts_with("<answer>")),
        "{without}"
    );
    assert!(
        texts(&with).iter().all(|t| !t.starts_with("<answer>")),
        "{with}"
    );
    assert_eq!(with["problems"].as_array().map(Vec::len), Some(2));
}

#[test]
fn toolformer_on_the_tiny_model_writes_sft_data_that_temper_sft_trains_on() {
    let model = tiny_model_dir();
    let dir = std::env::temp_dir().join(format!("temper-toolformer-cli-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("mkdir");
    let texts = ["t12 t40 t7 t99 t150", "t8 t9 t10 t11", "t270 t61 t62"];
    let data = dir.join("t.jsonl");
    let lines: String = texts
        .iter()
        .map(|t| format!("{}\n", serde_json::json!({ "text": t })))
        .collect();
    std::fs::write(&data, lines).expect("data");
    let (m, d, out) = (
        model.display().to_string(),
        data.display().to_string(),
        dir.join("tf"),
    );
    let o = out.display().to_string();
    let run = temper(
        &[
            "toolformer",
            "--model",
            &m,
            "--data",
            &d,
            "--tau-s",
            "0",
            "--top-k",
            "2",
            "--calls",
            "3",
            "--max-call-tokens",
            "3",
            "--out",
            &o,
        ],
        &[],
    );
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let report = json_of(&run);
    // Every text has at least 2 positions past the first token, so 2 candidates each, 3 samples per candidate.
    assert_eq!(report["stats"]["texts"], 3);
    assert_eq!(report["stats"]["candidate_positions"], 6);
    assert_eq!(report["stats"]["calls_sampled"], 18);
    // The tiny word-level model writes no `Calculator(…)` call: nothing runs, the corpus comes back unchanged.
    assert_eq!(
        (
            report["stats"]["executed"].as_u64(),
            report["calls_inserted"].as_u64()
        ),
        (Some(0), Some(0))
    );
    let read = |name: &str| std::fs::read_to_string(out.join(name)).expect(name);
    let calls = read("calls.jsonl");
    assert_eq!(
        calls.lines().count() as u64,
        report["stats"]["distinct_calls"].as_u64().unwrap_or(0)
    );
    let train: Vec<Value> = read("train.jsonl")
        .lines()
        .map(|l| serde_json::from_str(l).expect("json line"))
        .collect();
    assert_eq!(
        train
            .iter()
            .map(|v| v["text"].as_str().unwrap_or(""))
            .collect::<Vec<_>>(),
        texts
    );
    assert_eq!(
        serde_json::from_str::<Value>(&read("report.json")).expect("report"),
        report
    );
    // The saved calls are re-filtered at another threshold without the model.
    let o2 = dir.join("tf2").display().to_string();
    let refilter = temper(
        &[
            "toolformer",
            "--data",
            &d,
            "--from-calls",
            &format!("{o}/calls.jsonl"),
            "--tau-f",
            "0.5",
            "--out",
            &o2,
        ],
        &[],
    );
    assert!(
        refilter.status.success(),
        "{}",
        String::from_utf8_lossy(&refilter.stderr)
    );
    assert_eq!(json_of(&refilter)["kept_at_tau_f"]["0.5"], 0);
    // `temper sft` trains on the written data as it is.
    let config = format!(
        "model = \"{m}\"\ntrain_file = \"{o}/train.jsonl\"\n[train]\noutput_dir = \"{}\"\nsteps = 1\nbatch_size = 2\nsave_steps = 100\n",
        dir.join("sft").display()
    );
    std::fs::write(dir.join("sft.toml"), config).expect("config");
    let sft = temper(
        &[
            "sft",
            "--config",
            &dir.join("sft.toml").display().to_string(),
        ],
        &[],
    );
    assert!(
        sft.status.success(),
        "{}",
        String::from_utf8_lossy(&sft.stderr)
    );
    assert!(dir.join("sft/final/model.safetensors").exists());
    let _ = std::fs::remove_dir_all(&dir);
}
