//! The fuzz targets: each takes arbitrary bytes, feeds them to one of Temper's readers of untrusted input and
//! returns an *outcome* — a short text naming what happened (which error, or what was read) with the numbers
//! taken out. The driver keeps inputs that reach an outcome not seen before (a cheap stand-in for coverage).
//! A target must never panic, hang or allocate without bound; the driver catches all three.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use temper_chat::{Message, Role};
use temper_gguf::GgufFile;
use temper_tokenizer::{ChatTemplate, Tokenizer};
use temper_tools::Format;

/// Every target, by name, with the tokens its mutator splices in.
pub const TARGETS: &[(&str, &[&[u8]])] = &[
    (
        "gguf",
        &[
            b"GGUF",
            b"tokenizer.ggml.tokens",
            b"tokenizer.ggml.model",
            b"gpt2",
            b"general.alignment",
            b"\x09\0\0\0",
        ],
    ),
    (
        "tokenizer_text",
        &[
            b"<|im_start|>",
            b"<|im_end|>",
            b"<|endoftext|>",
            b"[CLS]",
            b"\xf0\x9f\x98\x80",
            b"  \n",
        ],
    ),
    (
        "tokenizer_json",
        &[
            b"\"model\"",
            b"\"vocab\"",
            b"\"merges\"",
            b"\"added_tokens\"",
            b"\"type\"",
            b"\"BPE\"",
            b"null",
        ],
    ),
    (
        "chat_messages",
        &[
            b"{\"role\": \"user\", \"content\": \"\"}",
            b"\"assistant\"",
            b"\"tool\"",
            b"\"system\"",
            b"\"tool_calls\"",
            b"{{",
            b"{%",
        ],
    ),
    (
        "chat_template",
        &[
            b"{% for m in messages %}",
            b"{% endfor %}",
            b"{{ m['content'] }}",
            b"{% macro f() %}{{ f() }}{% endmacro %}",
            b"range(1000000)",
            b"|tojson",
            b"{% if %}",
            b"loop.index",
        ],
    ),
    (
        "verdict",
        &[
            b"[[A]]",
            b"[[B]]",
            b"[[C]]",
            b"tie",
            b"Rating: [[",
            b"]]",
            b"yes",
            b"no",
            b"10",
        ],
    ),
    (
        "labels_jsonl",
        &[
            b"\"id\"",
            b"\"label\"",
            b"\"prompt\"",
            b"\"response_a\"",
            b"\"response_b\"",
            b"\"template\"",
            b"\n",
            b"null",
            b"1e999",
        ],
    ),
    (
        "data_jsonl",
        &[
            b"\"prompt\"",
            b"\"completion\"",
            b"\"chosen\"",
            b"\"rejected\"",
            b"\"messages\"",
            b"\"question\"",
            b"\"answer\"",
            b"####",
            b"\n",
        ],
    ),
    (
        "toml_config",
        &[
            b"[train]",
            b"[lora]",
            b"steps = ",
            b"batch_size = ",
            b"learning_rate = ",
            b"nan",
            b"inf",
            b"[[rewards]]",
            b"\n",
        ],
    ),
    (
        "tool_calls",
        &[
            b"<tool_call>",
            b"</tool_call>",
            b"<|python_tag|>",
            b"[f(x=1)]",
            b"{\"name\":",
            b"\"arguments\":",
            b"```json",
            b"\\u",
        ],
    ),
];

/// A target ready to run: the readers it needs (a tokenizer, a scratch folder) are set up once.
pub trait Target {
    /// Feeds `data` to the reader; returns the outcome (see the module doc).
    fn run(&mut self, data: &[u8]) -> String;
}

/// Builds target `name`; `scratch` is a folder of this worker's own for the files file-reading targets write.
pub fn make(name: &str, scratch: &Path) -> Result<Box<dyn Target>> {
    let file = |ext: &str| Scratch(scratch.join(format!("input.{ext}")));
    Ok(match name {
        "gguf" => Box::new(Gguf(file("gguf"))),
        "tokenizer_text" => Box::new(TokenizerText::new()?),
        "tokenizer_json" => Box::new(TokenizerJson(Scratch(scratch.join("tokenizer.json")))),
        "chat_messages" => Box::new(ChatMessages::new()?),
        "chat_template" => Box::new(ChatTemplateSource),
        "verdict" => Box::new(Verdict),
        "labels_jsonl" => Box::new(LabelsJsonl(file("jsonl"))),
        "data_jsonl" => Box::new(DataJsonl(file("jsonl"))),
        #[cfg(feature = "train")]
        "toml_config" => Box::new(TomlConfig),
        "tool_calls" => Box::new(ToolCalls),
        "self_test_hang" if self_test() => Box::new(SelfTest::Hang),
        "self_test_oom" if self_test() => Box::new(SelfTest::Oom),
        other => bail!(
            "unknown fuzz target `{other}` (known: {})",
            names().join(", ")
        ),
    })
}

/// The targets' names (with the self-test ones when `TEMPER_FUZZ_SELF_TEST=1`).
pub fn names() -> Vec<&'static str> {
    let mut names: Vec<&'static str> = TARGETS
        .iter()
        .map(|(n, _)| *n)
        // Without the `train` feature (no burn to build) the configs cannot be read.
        .filter(|n| cfg!(feature = "train") || *n != "toml_config")
        .collect();
    if self_test() {
        names.extend(SELF_TEST_TARGETS);
    }
    names
}

/// Targets that misbehave on purpose, so that the driver's tests can check it reports a hang and an
/// out-of-memory and goes on. They exist only when the environment variable `TEMPER_FUZZ_SELF_TEST` is `1`
/// (set by `fuzz/tests/supervisor.rs`), so a normal run can never reach them. They have no corpus folder: their
/// seeds are [`SELF_TEST_SEEDS`], and they misbehave on inputs starting with `bad`.
pub const SELF_TEST_TARGETS: &[&str] = &["self_test_hang", "self_test_oom"];

/// The seed corpus of the self-test targets: one harmless input, then one that misbehaves.
pub const SELF_TEST_SEEDS: &[&[u8]] = &[b"ok", b"bad"];

fn self_test() -> bool {
    std::env::var_os("TEMPER_FUZZ_SELF_TEST").is_some_and(|v| v == "1")
}

/// See [`SELF_TEST_TARGETS`].
enum SelfTest {
    /// Sleeps forever.
    Hang,
    /// Allocates 1 MiB after 1 MiB, and touches it, until the allocator refuses.
    Oom,
}

impl Target for SelfTest {
    fn run(&mut self, data: &[u8]) -> String {
        if !data.starts_with(b"bad") {
            return "ok".into();
        }
        match self {
            SelfTest::Hang => loop {
                std::thread::sleep(std::time::Duration::from_secs(1));
            },
            SelfTest::Oom => {
                let mut held: Vec<Vec<u8>> = Vec::new();
                loop {
                    held.push(vec![1u8; 1 << 20]);
                    std::hint::black_box(&held);
                }
            }
        }
    }
}

/// The outcome text of a result: `ok <what>` or the error's message, digits removed (so that `line 3` and
/// `line 4` are one outcome) and cut to 80 characters.
fn outcome<T, E: std::fmt::Display>(
    r: &std::result::Result<T, E>,
    ok: impl FnOnce(&T) -> String,
) -> String {
    let text = match r {
        Ok(v) => format!("ok {}", ok(v)),
        Err(e) => format!("err {e}"),
    };
    text.chars()
        .filter(|c| !c.is_ascii_digit())
        .take(80)
        .collect()
}

/// `n` as its power-of-two bucket, so that outcomes tell sizes apart without one outcome per size.
fn bucket(n: usize) -> u32 {
    usize::BITS - n.leading_zeros()
}

/// A file of the scratch folder that file-reading targets write each input to.
struct Scratch(PathBuf);

impl Scratch {
    fn write(&self, data: &[u8]) -> &Path {
        // A scratch file that cannot be written is a broken machine, not a finding: stop the worker loudly.
        if let Err(e) = std::fs::write(&self.0, data) {
            eprintln!("fuzz: cannot write {}: {e}", self.0.display());
            std::process::exit(2);
        }
        &self.0
    }
}

/// GGUF files: header, metadata, every small tensor dequantized, and the tokenizer built from the vocabulary.
struct Gguf(Scratch);

impl Target for Gguf {
    fn run(&mut self, data: &[u8]) -> String {
        let path = self.0.write(data);
        let file = GgufFile::open(path);
        let Ok(gguf) = &file else {
            return outcome(&file, |_| String::new());
        };
        let mut tensors = 0;
        for t in gguf.tensors() {
            if t.n_bytes() <= 1 << 20 && gguf.tensor_f32(&t.name).is_ok() {
                tensors += 1;
            }
        }
        let tok = Tokenizer::from_gguf(gguf);
        outcome(&tok, |t| {
            format!(
                "tokenizer {} tensors {}",
                bucket(t.vocab_size()),
                bucket(tensors)
            )
        })
    }
}

/// Arbitrary text through real tokenizers (SmolLM2's byte-level BPE from its GGUF, MiniLM's WordPiece from its
/// tokenizer.json): encode, decode what was encoded, and decode the input's bytes read as token ids.
struct TokenizerText {
    tokenizers: Vec<Tokenizer>,
}

impl TokenizerText {
    fn new() -> Result<TokenizerText> {
        let home = temper_assets::home();
        let gguf_path = home.join("smollm2/SmolLM2-135M-Instruct.Q4_1.gguf");
        let gguf = GgufFile::open(&gguf_path)
            .with_context(|| format!("{} (run `temper fetch smollm2`)", gguf_path.display()))?;
        let smollm2 = Tokenizer::from_gguf(&gguf)?;
        let minilm_path = home.join("minilm/tokenizer.json");
        let minilm = Tokenizer::from_file(&minilm_path)
            .with_context(|| format!("{} (run `temper fetch minilm`)", minilm_path.display()))?;
        Ok(TokenizerText {
            tokenizers: vec![smollm2, minilm],
        })
    }
}

impl Target for TokenizerText {
    fn run(&mut self, data: &[u8]) -> String {
        let text = String::from_utf8_lossy(data);
        let ids: Vec<u32> = data
            .chunks(2)
            .map(|c| u32::from(c[0]) | (u32::from(*c.get(1).unwrap_or(&0)) << 8))
            .collect();
        let mut out = String::new();
        for tok in &self.tokenizers {
            let encoded = tok.encode(&text);
            if let Ok(enc) = &encoded {
                let back = tok.decode(enc, false);
                out.push_str(&outcome(&back, |s| bucket(s.len()).to_string()));
            }
            out.push_str(&outcome(&encoded, |e| bucket(e.len()).to_string()));
            let decoded = tok.decode(&ids, data.first().is_some_and(|b| b & 1 == 1));
            out.push_str(&outcome(&decoded, |s| bucket(s.len()).to_string()));
        }
        out
    }
}

/// Arbitrary `tokenizer.json` files (and a chat template read from a `tokenizer_config.json` is not involved:
/// the scratch folder holds only the one file).
struct TokenizerJson(Scratch);

impl Target for TokenizerJson {
    fn run(&mut self, data: &[u8]) -> String {
        let path = self.0.write(data);
        let tok = Tokenizer::from_file(path);
        let Ok(t) = &tok else {
            return outcome(&tok, |_| String::new());
        };
        let enc = t.encode("Hello, world! 12 <|im_start|>");
        let dec = enc.as_ref().map(|ids| t.decode(ids, true));
        outcome(&tok, |t| format!("vocab {}", bucket(t.vocab_size())))
            + &outcome(&enc, |e| bucket(e.len()).to_string())
            + &outcome(&dec, |_| String::new())
    }
}

/// Arbitrary conversations rendered by real chat templates (SmolLM2's and the test fixtures').
struct ChatMessages {
    templates: Vec<ChatTemplate>,
}

impl ChatMessages {
    fn new() -> Result<ChatMessages> {
        let fixture = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../crates/tokenizer/tests/fixtures/chat_templates.json");
        let text =
            std::fs::read_to_string(&fixture).with_context(|| fixture.display().to_string())?;
        let json: serde_json::Value =
            serde_json::from_str(&text).with_context(|| fixture.display().to_string())?;
        let Some(sources) = json.get("templates").and_then(|t| t.as_object()) else {
            bail!("{}: no \"templates\" object", fixture.display());
        };
        let templates = sources
            .iter()
            .filter_map(|(name, src)| Some((name, src.as_str()?)))
            .map(|(name, src)| {
                ChatTemplate::new(src, "<s>", "</s>").with_context(|| format!("template {name}"))
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(ChatMessages { templates })
    }
}

/// The input as a conversation: a JSON list of messages when it is one, else its text split at `\n\n` into turns
/// of rotating roles.
fn messages_of(data: &[u8]) -> Vec<Message> {
    if let Ok(m) = serde_json::from_slice::<Vec<Message>>(data) {
        return m;
    }
    let roles = [Role::System, Role::User, Role::Assistant, Role::Tool];
    String::from_utf8_lossy(data)
        .split("\n\n")
        .enumerate()
        .map(|(i, part)| Message::new(roles[i % roles.len()], part))
        .collect()
}

impl Target for ChatMessages {
    fn run(&mut self, data: &[u8]) -> String {
        let messages = messages_of(data);
        let add_prompt = data.last().is_some_and(|b| b & 1 == 1);
        self.templates
            .iter()
            .map(|t| {
                outcome(&t.render(&messages, add_prompt), |s| {
                    bucket(s.len()).to_string()
                })
            })
            .collect::<Vec<_>>()
            .join("|")
    }
}

/// Arbitrary template sources (as a model file may carry), compiled and rendered with a fixed conversation.
struct ChatTemplateSource;

impl Target for ChatTemplateSource {
    fn run(&mut self, data: &[u8]) -> String {
        let source = String::from_utf8_lossy(data);
        let template = ChatTemplate::new(&source, "<s>", "</s>");
        let Ok(t) = &template else {
            return outcome(&template, |_| String::new());
        };
        let messages = [
            Message::system("Be brief."),
            Message::user("What is 2+2?"),
            Message::assistant("4"),
        ];
        outcome(&t.render(&messages, true), |s| bucket(s.len()).to_string())
    }
}

/// Judge replies: pairwise verdicts, ratings, yes/no.
struct Verdict;

impl Target for Verdict {
    fn run(&mut self, data: &[u8]) -> String {
        let reply = String::from_utf8_lossy(data);
        [
            outcome(&temper_judges::parse_pair_verdict(&reply), |v| {
                format!("{:?}", v.winner())
            }),
            outcome(&temper_judges::parse_rating(&reply), |r| {
                format!("{}", r.is_finite())
            }),
            outcome(&temper_judges::parse_yes_no(&reply), |b| b.to_string()),
        ]
        .join("|")
    }
}

/// The judges' JSONL readers: labels, pairs, CHAMP items, prompt templates.
struct LabelsJsonl(Scratch);

impl Target for LabelsJsonl {
    fn run(&mut self, data: &[u8]) -> String {
        let path = self.0.write(data);
        [
            outcome(&temper_judges::load_labels(path), |v| {
                bucket(v.len()).to_string()
            }),
            outcome(&temper_judges::load_pairs(path), |v| {
                bucket(v.len()).to_string()
            }),
            outcome(&temper_judges::load_champ_items(path), |v| {
                bucket(v.len()).to_string()
            }),
            outcome(&temper_judges::load_prompt_templates(path), |v| {
                bucket(v.len()).to_string()
            }),
        ]
        .join("|")
    }
}

/// The training and task data readers: prompts, SFT examples, preference pairs, GSM8K.
struct DataJsonl(Scratch);

impl Target for DataJsonl {
    fn run(&mut self, data: &[u8]) -> String {
        let path = self.0.write(data);
        #[cfg_attr(not(feature = "train"), allow(unused_mut))]
        let mut outcomes = vec![
            outcome(
                &temper_tasks::read_jsonl(path, temper_tasks::parse_prompt),
                |v| bucket(v.len()).to_string(),
            ),
            outcome(&temper_tasks::read_gsm8k(data, path), |v| {
                bucket(v.len()).to_string()
            }),
        ];
        #[cfg(feature = "train")]
        outcomes.extend([
            outcome(
                &temper_tasks::read_jsonl(path, temper_train::parse_sft),
                |v| bucket(v.len()).to_string(),
            ),
            outcome(
                &temper_tasks::read_jsonl(path, temper_train::parse_preference),
                |v| bucket(v.len()).to_string(),
            ),
        ]);
        outcomes.join("|")
    }
}

/// Every trainer's TOML config, parsed and validated.
#[cfg(feature = "train")]
struct TomlConfig;

#[cfg(feature = "train")]
fn config<T: serde::de::DeserializeOwned>(
    text: &str,
    check: fn(&T) -> temper_train::Result<()>,
) -> String {
    let parsed = temper_train::parse_toml::<T>(text, Path::new("fuzz.toml"));
    let checked = parsed.as_ref().map(check);
    match checked {
        Ok(r) => outcome(&r, |_| String::new()),
        Err(_) => outcome(&parsed, |_| String::new()),
    }
}

#[cfg(feature = "train")]
impl Target for TomlConfig {
    fn run(&mut self, data: &[u8]) -> String {
        use temper_train::{
            CemRunConfig, DpoRunConfig, GrpoRunConfig, PpoRunConfig, RlooRunConfig, RmRunConfig,
            SftRunConfig, TrainError,
        };
        let text = String::from_utf8_lossy(data);
        [
            config::<SftRunConfig>(&text, |c| {
                c.train.validate().map_err(|message| TrainError::Config {
                    path: PathBuf::from("fuzz.toml"),
                    message,
                })
            }),
            config::<DpoRunConfig>(&text, DpoRunConfig::validate),
            config::<GrpoRunConfig>(&text, GrpoRunConfig::validate),
            config::<PpoRunConfig>(&text, PpoRunConfig::validate),
            config::<RlooRunConfig>(&text, RlooRunConfig::validate),
            config::<RmRunConfig>(&text, RmRunConfig::validate),
            config::<CemRunConfig>(&text, CemRunConfig::validate),
        ]
        .join("|")
    }
}

/// Model replies through every tool-call format's parser.
struct ToolCalls;

impl Target for ToolCalls {
    fn run(&mut self, data: &[u8]) -> String {
        let text = String::from_utf8_lossy(data);
        Format::ALL
            .iter()
            .map(|f| outcome(&f.parse(&text), |r| bucket(r.calls.len()).to_string()))
            .collect::<Vec<_>>()
            .join("|")
    }
}
