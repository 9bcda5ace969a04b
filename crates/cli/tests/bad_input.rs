//! Bad input everywhere: one table of `temper` invocations with missing files, empty files, wrong TOML types,
//! NaN / inf / negative values, JSONL lines that do not parse and a tokenizer that does not belong to its model.
//!
//! The rule every case is held to: a non-zero exit; no `panicked` in stderr; the error is one line starting with
//! `error: ` that names the file and the line or field (anyhow's cause chain is joined on that line with `: `) —
//! the last line of stderr for Temper's own errors (exit 1), the first for clap's argument errors (exit 2, followed
//! by clap's usage hint); and the case's output file or folder is not created.

use std::path::{Path, PathBuf};
use std::process::Command;

/// One invocation: arguments and files (both with `{D}` for the case's folder), the exit code, the substrings the
/// error line must contain. Every case points its output (`--out`, `output_dir`) at `{D}/out`, which must not exist
/// afterwards.
struct Case {
    args: Vec<String>,
    files: Vec<(String, String)>,
    code: i32,
    want: Vec<String>,
}

fn case(args: &[&str], code: i32, want: &[&str]) -> Case {
    Case {
        args: args.iter().map(|s| s.to_string()).collect(),
        files: Vec::new(),
        code,
        want: want.iter().map(|s| s.to_string()).collect(),
    }
}

impl Case {
    fn file(mut self, name: &str, text: &str) -> Self {
        self.files.push((name.to_string(), text.to_string()));
        self
    }
}

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn temper_home() -> PathBuf {
    std::env::var_os("TEMPER_HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var_os("HOME").expect("HOME is set")).join(".cache/temper")
        })
}

/// `{D}/tiny`: the tiny TRL-parity model with its own tokenizer; `{D}/mismatch`: the same weights with MiniLM's
/// BERT tokenizer (30,522 ids for a 320-row embedding).
fn make_models(dir: &Path) {
    let trl = repo().join("testdata/trl-parity");
    for (name, tokenizer) in [
        ("tiny", trl.join("tokenizer/tokenizer.json")),
        ("mismatch", temper_home().join("minilm/tokenizer.json")),
    ] {
        let m = dir.join(name);
        std::fs::create_dir_all(&m).expect("mkdir");
        for f in ["config.json", "model.safetensors"] {
            std::fs::copy(trl.join("model").join(f), m.join(f)).expect("copy the tiny model");
        }
        for f in ["chat_template.jinja", "tokenizer_config.json"]
            .into_iter()
            .filter(|_| name == "tiny")
        {
            std::fs::copy(trl.join("tokenizer").join(f), m.join(f))
                .expect("copy the tiny tokenizer's files");
        }
        std::fs::copy(&tokenizer, m.join("tokenizer.json"))
            .expect("copy a tokenizer (is minilm fetched?)");
    }
}

/// Runs one case in a fresh folder: its error line, or a description of what broke the rule.
fn run(i: usize, c: &Case) -> Result<String, String> {
    let dir = std::env::temp_dir().join(format!("temper-bad-input-{}-{i}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("mkdir");
    let d = dir.display().to_string();
    let fill = |s: &str| s.replace("{D}", &d);
    for (name, text) in &c.files {
        std::fs::write(dir.join(name), fill(text)).expect("write a case file");
    }
    let args: Vec<String> = c.args.iter().map(|a| fill(a)).collect();
    if args
        .iter()
        .any(|a| a.contains(&format!("{d}/tiny")) || a.contains(&format!("{d}/mismatch")))
        || c.files
            .iter()
            .any(|(_, t)| t.contains("{D}/tiny") || t.contains("{D}/mismatch"))
    {
        make_models(&dir);
    }
    let out = Command::new(env!("CARGO_BIN_EXE_temper"))
        .args(&args)
        .current_dir(&dir)
        .env("TEMPER_JUDGE_BASE_URL", "http://127.0.0.1:9/v1")
        .env_remove("TEMPER_JUDGE_API_KEY")
        .output()
        .expect("run temper");
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    let error_line = if c.code == 2 {
        lines.first()
    } else {
        lines.last()
    };
    let mut problems = Vec::new();
    if out.status.code() != Some(c.code) {
        problems.push(format!("exit {:?}, want {}", out.status.code(), c.code));
    }
    if stderr.contains("panicked") {
        problems.push("panicked".into());
    }
    match error_line {
        Some(l) if l.starts_with("error: ") => {
            for w in &c.want {
                if !l.contains(&fill(w)) {
                    problems.push(format!("error line lacks {:?}", fill(w)));
                }
            }
        }
        _ => problems.push("no `error: ` line where the rule puts it".into()),
    }
    if c.code == 1 && lines.iter().filter(|l| l.starts_with("error")).count() != 1 {
        problems.push("more than one error line".into());
    }
    if dir.join("out").exists() {
        problems.push("{D}/out was written".into());
    }
    let _ = std::fs::remove_dir_all(&dir);
    if problems.is_empty() {
        Ok(format!(
            "temper {}\n    {}",
            args.join(" ").replace(&d, "{D}"),
            error_line.unwrap_or(&"").replace(&d, "{D}")
        ))
    } else {
        Err(format!(
            "temper {}: {}\n--- stderr:\n{stderr}",
            args.join(" "),
            problems.join("; ")
        ))
    }
}

const SFT_DATA: &str = "{\"prompt\": \"1+1=\", \"completion\": \"2\"}\n";
const PAIRS_DATA: &str = "{\"prompt\": \"1+1=\", \"chosen\": \"2\", \"rejected\": \"3\"}\n";

/// The trainers with the top of a valid config (without `[train]`) and the files it names.
fn trainers() -> Vec<(&'static str, &'static str)> {
    vec![
        (
            "sft",
            "model = \"{D}/tiny\"\ntrain_file = \"{D}/data.jsonl\"\n",
        ),
        (
            "rm",
            "model = \"{D}/tiny\"\ntrain_file = \"{D}/data.jsonl\"\n",
        ),
        (
            "dpo",
            "model = \"{D}/tiny\"\ntrain_file = \"{D}/data.jsonl\"\n",
        ),
        ("grpo", ""),
        ("rloo", ""),
        ("ppo", ""),
        ("cem", ""),
    ]
}

fn data_for(cmd: &str) -> &'static str {
    if cmd == "sft" { SFT_DATA } else { PAIRS_DATA }
}

fn cases() -> Vec<Case> {
    let mut v = vec![
        case(&["nosuch"], 2, &["unrecognized subcommand", "nosuch"]),
        case(&["fetch", "nosuch"], 1, &["nosuch"]),
        case(&["tokenize", "--model", "{D}/none.gguf", "--text", "hi"], 1, &["{D}/none.gguf"]),
        case(&["tokenize", "--model", "{D}/empty.gguf", "--text", "hi"], 1, &["{D}/empty.gguf"]).file("empty.gguf", ""),
        case(&["generate", "--model", "smollm2", "--prompt", "hi", "--seed", "-1"], 2, &["'-1'", "--seed"]),
        case(&["generate", "--model", "smollm2", "--prompt", "hi", "--temperature", "-1"], 1, &["--temperature"]),
        case(&["generate", "--model", "smollm2", "--prompt", "hi", "--temperature", "NaN"], 1, &["--temperature"]),
        case(&["generate", "--model", "smollm2", "--prompt", "hi", "--top-p", "1.5"], 1, &["--top-p"]),
        case(&["generate", "--model", "{D}/none.gguf", "--prompt", "hi"], 1, &["{D}/none.gguf"]),
        case(&["generate", "--model", "{D}/empty.gguf", "--prompt", "hi"], 1, &["{D}/empty.gguf"]).file("empty.gguf", ""),
        case(&["generate", "--model", "{D}/mismatch", "--prompt", "hi"], 1, &["{D}/mismatch/tokenizer.json", "vocab_size is 320"]),
        case(&["export", "--model", "{D}/none", "--out", "{D}/out"], 1, &["{D}/none"]),
        case(&["export", "--model", "{D}/empty.gguf", "--out", "{D}/out", "--format", "gguf"], 1, &["{D}/empty.gguf"])
            .file("empty.gguf", ""),
        case(&["export", "--model", "{D}/tiny", "--out", "{D}/out", "--format", "gguf", "--quant", "q3"], 1, &["q3"]),
        case(&["make-pairs", "--model", "{D}/tiny", "--task", "{D}/none.jsonl", "--out", "{D}/out"], 1, &["{D}/none.jsonl"]),
        case(&["make-pairs", "--model", "{D}/tiny", "--task", "{D}/bad.jsonl", "--out", "{D}/out"], 1, &["{D}/bad.jsonl:2"])
            .file("bad.jsonl", "{\"prompt\": \"1+1=\"}\n{\"prompt\": \n"),
        case(&["make-pairs", "--model", "{D}/tiny", "--temperature", "-1", "--out", "{D}/out"], 1, &["temperature"]),
        case(&["make-pairs", "--model", "{D}/tiny", "--config", "{D}/p.toml", "--out", "{D}/out"], 1, &["{D}/p.toml", "line 1, column 15 (`num_prompts`)"])
            .file("p.toml", "num_prompts = \"many\"\n"),
        case(&["make-pairs", "--synthetic-wrong", "--model", "{D}/tiny", "--ops", "add,pow", "--out", "{D}/out"], 1, &["--ops", "pow"]),
        case(&["judge", "--pairs", "{D}/none.jsonl", "--judge", "openai:m", "--out", "{D}/out"], 1, &["{D}/none.jsonl"]),
        case(&["judge", "--pairs", "{D}/empty.jsonl", "--judge", "openai:m", "--out", "{D}/out"], 1, &["{D}/empty.jsonl", "no pairs"])
            .file("empty.jsonl", ""),
        case(&["judge", "--pairs", "{D}/bad.jsonl", "--judge", "openai:m", "--out", "{D}/out"], 1, &["{D}/bad.jsonl:2: invalid type: integer `5`, expected a string (column 23)"])
            .file("bad.jsonl", "{\"id\": 1, \"question\": \"q\", \"answer_a\": \"a\", \"answer_b\": \"b\"}\n{\"id\": 2, \"question\": 5}\n"),
        case(&["judge", "--pairs", "{D}/p.jsonl", "--judge", "openai:m", "--temperature", "-0.5", "--out", "{D}/out"], 1, &["--temperature"])
            .file("p.jsonl", "{\"id\": 1, \"question\": \"q\", \"answer_a\": \"a\", \"answer_b\": \"b\"}\n"),
        case(&["agree", "--a", "{D}/none.jsonl", "--b", "{D}/l.jsonl"], 1, &["{D}/none.jsonl"]).file("l.jsonl", "{\"id\": 1, \"label\": \"A\"}\n"),
        case(&["agree", "--a", "{D}/empty.jsonl", "--b", "{D}/l.jsonl"], 1, &["{D}/empty.jsonl: no labels"])
            .file("empty.jsonl", "")
            .file("l.jsonl", "{\"id\": 1, \"label\": \"A\"}\n"),
        case(&["agree", "--a", "{D}/bad.jsonl", "--b", "{D}/l.jsonl"], 1, &["{D}/bad.jsonl:2: `id` must be a string or an integer"])
            .file("bad.jsonl", "{\"id\": 1, \"label\": \"A\"}\n{\"id\": [1], \"label\": \"B\"}\n")
            .file("l.jsonl", "{\"id\": 1, \"label\": \"A\"}\n"),
        case(&["champ-agreement", "--judge", "openai:m", "--data", "{D}/none.json", "--out", "{D}/out"], 1, &["{D}/none.json"]),
        case(&["champ-agreement", "--judge", "openai:m", "--data", "{D}/empty.json", "--out", "{D}/out"], 1, &["{D}/empty.json"])
            .file("empty.json", ""),
        case(&["eval", "--task", "gsm8k", "--model", "{D}/tiny", "--data", "{D}/none.jsonl", "--out", "{D}/out"], 1, &["{D}/none.jsonl"]),
        case(&["eval", "--task", "gsm8k", "--model", "{D}/tiny", "--data", "{D}/bad.jsonl", "--out", "{D}/out"], 1, &["{D}/bad.jsonl:1"])
            .file("bad.jsonl", "{\"question\": 7}\n"),
        case(&["eval", "--task", "arithmetic", "--model", "{D}/tiny", "--temperature", "-1", "--strategy", "best-of-n", "--n", "2", "--out", "{D}/out"], 1, &["temperature"]),
        case(&["eval", "--task", "arithmetic", "--model", "{D}/mismatch", "--out", "{D}/out"], 1, &["vocab_size is 320"]),
        case(&["eval", "--task", "arithmetic", "--model", "{D}/tiny", "--tools", "calculator,shell", "--out", "{D}/out"], 1, &["--tools[1]: unknown tool `shell`"]),
        case(&["eval", "--task", "arithmetic", "--model", "{D}/tiny", "--tools", "calculator", "--max-calls", "0", "--out", "{D}/out"], 1, &["--max-calls"]),
        case(&["rag", "index", "{D}/none", "--index", "{D}/out"], 1, &["{D}/none"]),
        case(&["rag", "query", "what", "--index", "{D}/none"], 1, &["{D}/none"]),
        case(&["tools", "run", "--prompt", "hi", "--model", "{D}/none", "--transcript", "{D}/out"], 1, &["{D}/none"]),
        case(&["tools", "run", "--prompt", "hi", "--model", "{D}/tiny", "--index", "{D}/none", "--transcript", "{D}/out"], 1, &["{D}/none"]),
        case(&["tools", "run", "--prompt", "hi", "--model", "{D}/mismatch", "--transcript", "{D}/out"], 1, &["vocab_size is 320"]),
        case(&["tools", "run", "--prompt", "hi", "--model", "{D}/tiny", "--max-steps", "-1"], 2, &["--max-steps"]),
        case(&["toolformer", "--model", "{D}/tiny", "--data", "{D}/none.jsonl", "--out", "{D}/out"], 1, &["{D}/none.jsonl"]),
        case(&["toolformer", "--model", "{D}/tiny", "--data", "{D}/bad.jsonl", "--out", "{D}/out"], 1, &["{D}/bad.jsonl:2", "`text`"])
            .file("bad.jsonl", "{\"text\": \"t12 t40\"}\n{\"prompt\": \"p\", \"completion\": \"c\"}\n"),
        case(&["toolformer", "--model", "{D}/tiny", "--data", "{D}/t.jsonl", "--skip", "5", "--out", "{D}/out"], 1, &["{D}/t.jsonl", "no texts"])
            .file("t.jsonl", "{\"text\": \"t12 t40\"}\n"),
        case(&["toolformer", "--model", "{D}/tiny", "--data", "{D}/t.jsonl", "--heldout", "3", "--out", "{D}/out"], 1, &["--heldout", "--data gsm8k"])
            .file("t.jsonl", "{\"text\": \"t12 t40\"}\n"),
        case(&["toolformer", "--model", "{D}/tiny", "--data", "{D}/t.jsonl", "--tau-s", "1.5", "--out", "{D}/out"], 1, &["--tau-s", "1.5"]),
        case(&["toolformer", "--model", "{D}/tiny", "--data", "{D}/t.jsonl", "--tau-f", "NaN", "--out", "{D}/out"], 1, &["--tau-f", "NaN"]),
        case(&["toolformer", "--model", "{D}/tiny", "--data", "{D}/t.jsonl", "--top-k", "0", "--out", "{D}/out"], 1, &["--top-k"]),
        case(&["toolformer", "--model", "{D}/tiny", "--data", "{D}/t.jsonl", "--calls", "0", "--out", "{D}/out"], 1, &["--calls"]),
        case(&["toolformer", "--model", "{D}/tiny", "--data", "{D}/t.jsonl", "--temperature", "-1", "--out", "{D}/out"], 1, &["--temperature"]),
        case(&["toolformer", "--model", "{D}/tiny", "--data", "{D}/t.jsonl", "--top-k", "-2", "--out", "{D}/out"], 2, &["unexpected argument '-2'"]),
        case(&["toolformer", "--model", "{D}/mismatch", "--data", "{D}/t.jsonl", "--out", "{D}/out"], 1, &["vocab_size is 320"])
            .file("t.jsonl", "{\"text\": \"t12 t40\"}\n"),
        case(&["toolformer", "--data", "{D}/t.jsonl", "--from-calls", "{D}/calls.jsonl", "--out", "{D}/out"], 1, &["{D}/calls.jsonl:1", "`text` = 5"])
            .file("t.jsonl", "{\"text\": \"t12 t40\"}\n")
            .file("calls.jsonl", "{\"text\": 5, \"position\": 1, \"at\": 4, \"p_start\": 0.5, \"generated\": \"[C(1)]\", \"samples\": 1}\n"),
        case(&["toolformer", "--data", "{D}/t.jsonl", "--from-calls", "{D}/calls.jsonl", "--out", "{D}/out"], 1, &["{D}/calls.jsonl:1", "position"])
            .file("t.jsonl", "{\"text\": \"t12 t40\"}\n")
            .file("calls.jsonl", "{\"text\": 0}\n"),
    ];
    for (cmd, top) in trainers() {
        let train = |body: &str| format!("{top}[train]\noutput_dir = \"{{D}}/out\"\n{body}\n");
        let line = top.lines().count() + 3;
        v.push(case(
            &[cmd, "--config", "{D}/none.toml"],
            1,
            &["{D}/none.toml"],
        ));
        for (body, want) in [
            (
                "steps = \"ten\"",
                vec![format!(
                    "line {line}, column 9 (`train.steps`): invalid type: string \"ten\", expected usize"
                )],
            ),
            (
                "steps = -5",
                vec![format!(
                    "line {line}, column 9 (`train.steps`): invalid value: integer `-5`, expected usize"
                )],
            ),
            ("learning_rate = nan", vec!["train.learning_rate".into()]),
            ("learning_rate = inf", vec!["train.learning_rate".into()]),
            ("learning_rate = -1e-5", vec!["train.learning_rate".into()]),
            ("batch_size = 0", vec!["train.batch_size".into()]),
            ("max_grad_norm = -1.0", vec!["train.max_grad_norm".into()]),
            ("adam_epsilon = nan", vec!["train.adam_epsilon".into()]),
            (
                "lerning_rate = 1e-5",
                vec!["unknown field `lerning_rate`".into()],
            ),
        ] {
            let mut want = want;
            want.push("{D}/c.toml".into());
            let want: Vec<&str> = want.iter().map(String::as_str).collect();
            v.push(
                case(&[cmd, "--config", "{D}/c.toml"], 1, &want)
                    .file("c.toml", &train(body))
                    .file("data.jsonl", data_for(cmd)),
            );
        }
    }
    for cmd in ["sft", "rm", "dpo"] {
        let top = "model = \"{D}/tiny\"\ntrain_file = \"{D}/data.jsonl\"\n[train]\noutput_dir = \"{D}/out\"\nsteps = 1\n";
        let missing = if cmd == "dpo" {
            "needs train_file"
        } else {
            "line 1, column 1: missing field"
        };
        v.push(
            case(
                &[cmd, "--config", "{D}/empty.toml"],
                1,
                &["{D}/empty.toml", missing],
            )
            .file("empty.toml", ""),
        );
        v.push(case(&[cmd, "--config", "{D}/c.toml"], 1, &["{D}/data.jsonl"]).file("c.toml", top));
        v.push(
            case(
                &[cmd, "--config", "{D}/c.toml"],
                1,
                &["{D}/data.jsonl", "no examples"],
            )
            .file("c.toml", top)
            .file("data.jsonl", ""),
        );
        v.push(
            case(&[cmd, "--config", "{D}/c.toml"], 1, &["{D}/data.jsonl:2"])
                .file("c.toml", top)
                .file(
                    "data.jsonl",
                    &format!("{}{{\"prompt\": [1, 2]}}\n", data_for(cmd)),
                ),
        );
        v.push(
            case(
                &[cmd, "--config", "{D}/c.toml"],
                1,
                &["{D}/mismatch/tokenizer.json", "vocab_size is 320"],
            )
            .file("c.toml", &top.replace("{D}/tiny", "{D}/mismatch"))
            .file("data.jsonl", data_for(cmd)),
        );
    }
    for (cmd, body, want) in [
        (
            "grpo",
            "[rollout.generation]\ntemperature = -1.0",
            "rollout.generation.temperature",
        ),
        (
            "rloo",
            "[rollout.generation]\ntop_p = nan",
            "rollout.generation.top_p",
        ),
        (
            "ppo",
            "[rollout.generation]\nmax_new_tokens = 0",
            "rollout.generation.max_new_tokens",
        ),
        (
            "cem",
            "[rollout]\nmodel = \"{D}/mismatch\"\n[train]\nsteps = 1",
            "vocab_size is 320",
        ),
        ("grpo", "[grpo]\nbeta = nan", "beta"),
        (
            "grpo",
            "[rollout.tools]\ntools = [\"shell\"]",
            "rollout.tools.tools[0]: unknown tool `shell`",
        ),
        (
            "rloo",
            "[rollout.tools]\ntools = [\"calculator\"]\nformat = \"pythonic\"",
            "rollout.tools.format",
        ),
        (
            "ppo",
            "[rollout.tools]\ntools = [\"calculator\"]\nmax_calls = 0",
            "rollout.tools.max_calls",
        ),
        (
            "cem",
            "[rollout.tools]\ntools = []",
            "rollout.tools.tools is empty",
        ),
        (
            "grpo",
            "[rollout.tools]\ntool = [\"calculator\"]",
            "unknown field `tool`",
        ),
        ("ppo", "[ppo]\ngamma = 1.5", "gamma"),
        (
            "dpo",
            "model = \"{D}/tiny\"\ntrain_file = \"{D}/data.jsonl\"\n[dpo]\nbeta = nan",
            "beta",
        ),
        (
            "dpo",
            "model = \"{D}/tiny\"\ntrain_file = \"{D}/data.jsonl\"\n[dpo]\nbeta = -0.1",
            "beta",
        ),
        (
            "dpo",
            "model = \"{D}/tiny\"\ntrain_file = \"{D}/data.jsonl\"\n[eval_task.generation]\ntop_p = 2.0",
            "eval_task.generation.top_p",
        ),
        (
            "sft",
            "model = \"{D}/tiny\"\ntrain_file = \"{D}/data.jsonl\"\n[eval_task]\ntask = { kind = \"nosuch\" }",
            "nosuch",
        ),
    ] {
        let text = format!("{body}\n");
        let text = if text.contains("[train]") {
            text.replace("[train]", "[train]\noutput_dir = \"{D}/out\"")
        } else {
            format!("{text}[train]\noutput_dir = \"{{D}}/out\"\n")
        };
        v.push(
            case(&[cmd, "--config", "{D}/c.toml"], 1, &[want])
                .file("c.toml", &text)
                .file("data.jsonl", PAIRS_DATA),
        );
    }
    v
}

#[test]
fn every_subcommand_fails_cleanly_on_bad_input() {
    let cases = cases();
    let mut failures = Vec::new();
    for (i, c) in cases.iter().enumerate() {
        match run(i, c) {
            // `cargo test -p temper-cli --test bad_input -- --nocapture` lists every case with its error.
            Ok(shown) => eprintln!("{shown}"),
            Err(broken) => failures.push(broken),
        }
    }
    eprintln!("{} bad-input cases, {} failed", cases.len(), failures.len());
    assert!(
        failures.is_empty(),
        "{} of {} cases broke the rule:\n\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n\n")
    );
}
