//! Untrusted model files: a chat template runs with no file access and within limits of fuel, recursion and
//! output size; oversized tokenizer files and vocabularies are refused before they cost memory.

use std::path::PathBuf;

use temper_gguf::{GgufFile, GgufValue, GgufWriter};
use temper_tokenizer::{
    ChatTemplate, MAX_CONFIG_BYTES, MAX_TOKENIZER_JSON_BYTES, MAX_VOCAB, Message,
    TEMPLATE_MAX_OUTPUT, Tokenizer, TokenizerError,
};

fn render(source: &str) -> Result<String, TokenizerError> {
    ChatTemplate::new(source, "<s>", "</s>")?.render(&[Message::user("hi")], true)
}

fn render_err(source: &str) -> String {
    render(source).expect_err(source).to_string()
}

fn tmpdir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("temper-untrusted-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&d).expect("mkdir");
    d
}

#[test]
fn a_loop_that_would_run_for_hours_runs_out_of_fuel() {
    let t0 = std::time::Instant::now();
    let e = render_err(
        "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}",
    );
    assert!(e.contains("fuel"), "{e}");
    // 2,000,000 instructions, not 10^10
    assert!(t0.elapsed().as_secs() < 30, "took {:?}", t0.elapsed());
}

#[test]
fn unbounded_recursion_stops_at_the_recursion_limit() {
    let e = render_err("{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}");
    assert!(e.contains("recursion"), "{e}");
    // a template that includes itself
    let e = render_err("x{% include \"chat_template\" %}");
    assert!(e.contains("recursion"), "{e}");
}

#[test]
fn output_past_the_cap_is_an_error_not_a_huge_string() {
    let e = render_err("{% for i in range(100000) %}{{ 'x' * 1000 }}{% endfor %}");
    assert!(
        e.contains(&format!("limit of {TEMPLATE_MAX_OUTPUT} bytes")),
        "{e}"
    );
    // just under the cap is fine
    let ok =
        render("{% for i in range(1000) %}{{ 'x' * 1000 }}{% endfor %}").expect("1 MB renders");
    assert_eq!(ok.len(), 1_000_000);
}

#[test]
fn templates_cannot_read_files() {
    let secret = tmpdir("files").join("secret.txt");
    std::fs::write(&secret, "SECRET").expect("write");
    let path = secret.display().to_string();
    for source in [
        format!("{{% include \"{path}\" %}}"),
        format!("{{% import \"{path}\" as s %}}"),
        format!("{{% extends \"{path}\" %}}"),
        "{% include \"../../../../../../etc/passwd\" %}".to_owned(),
    ] {
        let e = render_err(&source);
        assert!(
            e.contains("not found") || e.contains("template"),
            "{source}: {e}"
        );
        assert!(!e.contains("SECRET"), "{e}");
    }
}

#[test]
fn fuel_is_ample_for_long_conversations() {
    let fixture = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/chat_templates.json"
    ))
    .expect("fixture");
    let json: serde_json::Value = serde_json::from_str(&fixture).expect("json");
    let source = json["templates"]["smollm2"]
        .as_str()
        .expect("smollm2 template");
    let template = ChatTemplate::new(source, "", "<|im_end|>").expect("compiles");
    let messages: Vec<Message> = (0..5_000)
        .map(|i| {
            if i % 2 == 0 {
                Message::user(format!("question {i}"))
            } else {
                Message::assistant("answer")
            }
        })
        .collect();
    let text = template
        .render(&messages, true)
        .expect("5,000 messages render within the fuel");
    assert_eq!(text.matches("<|im_start|>").count(), 5_002);
}

#[test]
fn an_oversized_tokenizer_json_is_refused_before_it_is_read() {
    let d = tmpdir("big-json");
    let path = d.join("tokenizer.json");
    // a sparse file: its size says 128 MiB + 1, no memory or disk is spent
    let f = std::fs::File::create(&path).expect("create");
    f.set_len(MAX_TOKENIZER_JSON_BYTES + 1).expect("set_len");
    let e = Tokenizer::from_file(&path)
        .expect_err("too big")
        .to_string();
    assert!(
        e.contains(&path.display().to_string()) && e.contains("more than the"),
        "{e}"
    );
}

#[test]
fn an_oversized_tokenizer_config_is_refused_before_it_is_read() {
    let d = tmpdir("big-config");
    std::fs::write(
        d.join("tokenizer.json"),
        r#"{"version":"1.0","truncation":null,"padding":null,"added_tokens":[],"normalizer":null,
        "pre_tokenizer":{"type":"Whitespace"},"post_processor":null,"decoder":null,
        "model":{"type":"WordLevel","vocab":{"a":0,"[UNK]":1},"unk_token":"[UNK]"}}"#,
    )
    .expect("write");
    Tokenizer::from_file(&d.join("tokenizer.json")).expect("a small tokenizer.json loads");
    let config = d.join("tokenizer_config.json");
    std::fs::File::create(&config)
        .and_then(|f| f.set_len(MAX_CONFIG_BYTES + 1))
        .expect("sparse config");
    let e = Tokenizer::from_file(&d.join("tokenizer.json"))
        .expect_err("config too big")
        .to_string();
    assert!(
        e.contains("tokenizer_config.json") && e.contains("more than the"),
        "{e}"
    );
}

#[test]
fn a_gguf_vocabulary_past_the_cap_is_refused() {
    let tokens = GgufValue::Array(
        (0..=MAX_VOCAB)
            .map(|_| GgufValue::String("a".into()))
            .collect(),
    );
    let mut w = GgufWriter::new();
    w.metadata("tokenizer.ggml.model", GgufValue::String("gpt2".into()))
        .metadata("tokenizer.ggml.tokens", tokens)
        .metadata("tokenizer.ggml.merges", GgufValue::Array(vec![]));
    let path = tmpdir("big-vocab").join("vocab.gguf");
    w.write(&path).expect("write");
    let gguf = GgufFile::open(&path).expect("a valid GGUF");
    let e = Tokenizer::from_gguf(&gguf)
        .expect_err("vocabulary too big")
        .to_string();
    assert!(
        e.contains("tokenizer.ggml.tokens") && e.contains("more than the"),
        "{e}"
    );
    std::fs::remove_file(&path).ok();
}

#[test]
fn a_tokenizer_json_that_makes_the_tokenizers_crate_panic_is_an_error() {
    // found by `cargo xtask fuzz` (target tokenizer_json): a `decoder` object cut short makes tokenizers 0.22 panic
    let fixture = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/fuzz_decoder_panic.json"
    );
    let d = tmpdir("decoder-panic");
    let path = d.join("tokenizer.json");
    std::fs::copy(fixture, &path).expect("copy");
    let e = Tokenizer::from_file(&path)
        .expect_err("malformed")
        .to_string();
    assert!(
        e.contains("tokenizer.json: cannot build the tokenizer")
            && e.contains("failed on the file"),
        "{e}"
    );
}
