//! Integration tests of temper-tokenizer: SmolLM2 ids and chat prompts against transformers' outputs, tokenizer.json loading, errors.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use serde_json::Value;
use temper_gguf::{GgufFile, GgufValue, GgufWriter};
use temper_tokenizer::{ChatTemplate, Message, Role, Tokenizer, TokenizerError};

const TESTDATA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../testdata");

/// The SmolLM2 GGUF in the asset cache, or `None` when `TEMPER_SKIP_ASSETS=1` and it is absent.
fn smollm2_gguf() -> Option<PathBuf> {
    let home = match std::env::var_os("TEMPER_HOME") {
        Some(h) => PathBuf::from(h),
        None => PathBuf::from(std::env::var_os("HOME").expect("HOME is set")).join(".cache/temper"),
    };
    let path = home.join("smollm2/SmolLM2-135M-Instruct.Q4_1.gguf");
    if path.exists() {
        return Some(path);
    }
    if std::env::var("TEMPER_SKIP_ASSETS").as_deref() == Ok("1") {
        return None;
    }
    panic!(
        "{} is missing: run `temper fetch smollm2` (or set TEMPER_SKIP_ASSETS=1 to skip)",
        path.display()
    );
}

/// The SmolLM2 tokenizer, built once for all tests.
fn smollm2() -> Option<&'static Tokenizer> {
    static TOK: OnceLock<Tokenizer> = OnceLock::new();
    let path = smollm2_gguf()?;
    Some(TOK.get_or_init(|| {
        let gguf = GgufFile::open(&path).expect("open SmolLM2 GGUF");
        Tokenizer::from_gguf(&gguf).expect("SmolLM2 tokenizer")
    }))
}

fn jsonl(path: &Path) -> Vec<Value> {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    text.lines()
        .enumerate()
        .map(|(i, l)| {
            serde_json::from_str(l).unwrap_or_else(|e| panic!("{}:{}: {e}", path.display(), i + 1))
        })
        .collect()
}

fn ids(v: &Value) -> Vec<u32> {
    v.as_array()
        .expect("id list")
        .iter()
        .map(|x| x.as_u64().expect("id") as u32)
        .collect()
}

fn str_of<'a>(v: &'a Value, key: &str) -> &'a str {
    v[key]
        .as_str()
        .unwrap_or_else(|| panic!("{key} is a string"))
}

/// Checks every line of a `{text, ids, decoded}` file; returns how many lines were checked.
fn check_lines(tok: &Tokenizer, path: &Path) -> usize {
    let lines = jsonl(path);
    for (i, line) in lines.iter().enumerate() {
        let text = str_of(line, "text");
        let want = ids(&line["ids"]);
        let got = tok.encode(text).expect("encode");
        assert_eq!(got, want, "{}:{}: ids of {text:?}", path.display(), i + 1);
        if let Some(tokens) = line["tokens"].as_array() {
            let got: Vec<String> = got
                .iter()
                .map(|&id| tok.id_to_token(id).expect("token"))
                .collect();
            let want: Vec<&str> = tokens.iter().map(|t| t.as_str().expect("token")).collect();
            assert_eq!(
                got,
                want,
                "{}:{}: tokens of {text:?}",
                path.display(),
                i + 1
            );
        }
        assert_eq!(
            tok.decode(&want, false).expect("decode"),
            str_of(line, "decoded"),
            "{}:{}",
            path.display(),
            i + 1
        );
        if line.get("decoded_skip_special").is_some() {
            assert_eq!(
                tok.decode(&want, true).expect("decode"),
                str_of(line, "decoded_skip_special"),
                "{}:{}",
                path.display(),
                i + 1
            );
        }
    }
    lines.len()
}

#[test]
fn smollm2_matches_every_public_tokenization() {
    let Some(tok) = smollm2() else { return };
    let n = check_lines(tok, &Path::new(TESTDATA).join("smollm2/tok_public.jsonl"));
    assert_eq!(n, 10);
}

#[test]
fn smollm2_matches_the_reference_on_tricky_strings() {
    let Some(tok) = smollm2() else { return };
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/extra_tok.jsonl");
    let n = check_lines(tok, &path);
    assert_eq!(n, 329);
    // the two traps of the GGUF-derived tokenizer
    assert_eq!(tok.encode("  12").expect("encode"), [256, 33, 34]);
    assert_eq!(tok.encode(" ½").expect("encode"), [216, 16738]);
}

#[test]
fn smollm2_special_tokens_and_vocab() {
    let Some(tok) = smollm2() else { return };
    assert_eq!(tok.vocab_size(), 49152);
    assert_eq!(
        (tok.bos_id(), tok.eos_id(), tok.pad_id()),
        (Some(1), Some(2), Some(2))
    );
    assert_eq!(tok.token_to_id("<|im_start|>"), Some(1));
    assert_eq!(tok.token_to_id("<|endoftext|>"), Some(0));
    assert_eq!(tok.token_to_id("<empty_output>"), Some(16));
    assert_eq!(tok.token_to_id("Ġworld"), Some(905));
    assert_eq!(tok.id_to_token(17).as_deref(), Some("!"));
    assert_eq!(tok.inner().get_vocab_size(false), 49152);
    // special tokens written in the text are matched, and skipped on request when decoding
    let ids = tok
        .encode("<|im_start|>user\nhi<|im_end|>")
        .expect("encode");
    assert_eq!((ids[0], ids[ids.len() - 1]), (1, 2));
    assert_eq!(tok.decode(&ids, true).expect("decode"), "user\nhi");
    let err = tok
        .decode(&[17, 49152], false)
        .expect_err("out of vocabulary");
    assert!(
        matches!(
            err,
            TokenizerError::UnknownId {
                id: 49152,
                position: 1,
                vocab_size: 49152
            }
        ),
        "{err}"
    );
}

#[test]
fn smollm2_greedy_prompts_and_outputs() {
    let Some(tok) = smollm2() else { return };
    let template = tok.chat_template().expect("SmolLM2 has a chat template");
    let lines = jsonl(&Path::new(TESTDATA).join("smollm2/greedy_public.jsonl"));
    let mut chats = 0;
    for line in &lines {
        let prompt_text = str_of(line, "prompt_text");
        if line["chat"].as_bool() == Some(true) {
            let messages: Vec<Message> =
                serde_json::from_value(line["messages"].clone()).expect("messages");
            assert_eq!(
                template.render(&messages, true).expect("render"),
                prompt_text,
                "{}",
                line["id"]
            );
            assert_eq!(
                tok.apply_chat_template(&messages, true).expect("render"),
                prompt_text
            );
            chats += 1;
        }
        assert_eq!(
            tok.encode(prompt_text).expect("encode"),
            ids(&line["input_ids"]),
            "{}",
            line["id"]
        );
        let output = ids(&line["output_ids"]);
        assert_eq!(
            tok.decode(&output, true).expect("decode"),
            str_of(line, "text"),
            "{}",
            line["id"]
        );
        assert_eq!(
            tok.decode(&output, false).expect("decode"),
            str_of(line, "text_raw"),
            "{}",
            line["id"]
        );
    }
    assert_eq!((lines.len(), chats), (4, 2));
}

#[test]
fn chat_templates_render_like_transformers() {
    let fixture: Value = serde_json::from_str(include_str!("fixtures/chat_templates.json"))
        .expect("fixture is JSON");
    let cases = fixture["cases"].as_array().expect("cases");
    assert_eq!(cases.len(), 70);
    let (mut texts, mut errors) = (0, 0);
    for case in cases {
        let name = str_of(case, "template");
        let conversation = str_of(case, "conversation");
        let agp = case["add_generation_prompt"].as_bool().expect("bool");
        let template =
            ChatTemplate::new(str_of(&fixture["templates"], name), "<s>", "</s>").expect(name);
        let messages: Vec<Message> =
            serde_json::from_value(fixture["conversations"][conversation].clone())
                .expect("messages");
        let what = format!("{name} over {conversation} (add_generation_prompt={agp})");
        match (template.render(&messages, agp), case.get("text")) {
            (Ok(got), Some(want)) => {
                assert_eq!(got, want.as_str().expect("text"), "{what}");
                texts += 1;
            }
            (Err(err), None) => {
                let want = str_of(case, "error");
                assert!(
                    err.to_string().contains(want),
                    "{what}: error {err} should contain {want:?}"
                );
                errors += 1;
            }
            (got, _) => panic!("{what}: got {got:?}, transformers gave {case}"),
        }
    }
    assert_eq!((texts, errors), (62, 8));
}

#[test]
fn smollm2_gguf_template_is_the_one_in_the_fixture() {
    let Some(path) = smollm2_gguf() else { return };
    let gguf = GgufFile::open(&path).expect("open");
    let fixture: Value = serde_json::from_str(include_str!("fixtures/chat_templates.json"))
        .expect("fixture is JSON");
    assert_eq!(
        gguf.get_str("tokenizer.chat_template").expect("template"),
        str_of(&fixture["templates"], "smollm2")
    );
}

#[test]
fn exported_hf_files_reload_with_the_same_special_tokens_template_and_ids() {
    let Some(tok) = smollm2() else { return };
    let dir = std::env::temp_dir().join(format!("temper-tok-export-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("tmp dir");
    let files = tok.hf_files(Some(8192)).expect("hf files");
    let names: Vec<&str> = files.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        ["tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "chat_template.jinja"]
    );
    for (name, bytes) in &files {
        std::fs::write(dir.join(name), bytes).expect("write");
    }
    let back = Tokenizer::from_file(&dir.join("tokenizer.json")).expect("reload");
    assert_eq!((back.bos_id(), back.eos_id(), back.pad_id()), (tok.bos_id(), tok.eos_id(), tok.pad_id()));
    let original = tok.chat_template().expect("template").original_source();
    assert_eq!(back.chat_template().expect("reloaded template").original_source(), original);
    let fixture: Value = serde_json::from_str(include_str!("fixtures/chat_templates.json")).expect("fixture is JSON");
    assert_eq!(original, str_of(&fixture["templates"], "smollm2"), "the template is the GGUF's, byte for byte");
    let config: Value =
        serde_json::from_slice(&std::fs::read(dir.join("tokenizer_config.json")).expect("config")).expect("JSON");
    assert_eq!(config["model_max_length"], 8192);
    assert_eq!(config["eos_token"], "<|im_end|>");
    let messages = [Message::system("Be brief."), Message::user("What is 2 + 3?")];
    for text in ["  12 apples", "<|im_start|>user\nHi ½<|im_end|>", "caf\u{e9} \u{1F600}"] {
        assert_eq!(back.encode(text).expect("encode"), tok.encode(text).expect("encode"), "{text:?}");
    }
    assert_eq!(
        back.apply_chat_template(&messages, true).expect("render"),
        tok.apply_chat_template(&messages, true).expect("render")
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn gguf_metadata_is_the_original_files_and_rebuilds_the_same_tokenizer() {
    let Some(path) = smollm2_gguf() else { return };
    let Some(tok) = smollm2() else { return };
    let original = GgufFile::open(&path).expect("open");
    let meta = tok.gguf_metadata().expect("metadata");
    for (key, value) in &meta {
        if key == "tokenizer.ggml.add_bos_token" || key == "tokenizer.ggml.add_space_prefix" {
            continue;
        }
        assert_eq!(Some(value), original.get(key), "{key} differs from the original GGUF's");
    }
    let out = std::env::temp_dir().join(format!("temper-tok-gguf-{}.gguf", std::process::id()));
    let mut w = GgufWriter::new();
    for (key, value) in meta {
        w.metadata(&key, value);
    }
    w.write(&out).expect("write");
    let back = Tokenizer::from_gguf(&GgufFile::open(&out).expect("reopen")).expect("rebuild");
    assert!(check_lines(&back, &Path::new(TESTDATA).join("smollm2/tok_public.jsonl")) > 0, "the fixture has lines");
    let _ = std::fs::remove_file(&out);
}

#[test]
fn word_level_tokenizer_json_reproduces_trl_inputs() {
    let dir = Path::new(TESTDATA).join("trl-parity/tokenizer");
    let tok = Tokenizer::from_file(&dir.join("tokenizer.json")).expect("load");
    assert_eq!(
        (tok.bos_id(), tok.eos_id(), tok.pad_id()),
        (Some(1), Some(2), Some(0))
    );
    assert_eq!(tok.vocab_size(), 320);
    assert_eq!(tok.token_to_id("<|assistant|>"), Some(5));
    let template = tok
        .chat_template()
        .expect("chat_template.jinja is picked up");
    assert!(
        template.source().contains("{% if true %}"),
        "generation markers are rewritten"
    );

    let sft: Value = serde_json::from_str(
        &std::fs::read_to_string(Path::new(TESTDATA).join("trl-parity/sft.json"))
            .expect("sft.json"),
    )
    .expect("JSON");
    let mut checked = 0;
    for case in sft["cases"].as_array().expect("cases") {
        for row in case["input_ids"].as_array().expect("rows") {
            let row: Vec<u32> = ids(row).into_iter().filter(|&id| id != 0).collect(); // drop padding
            let text = tok.decode(&row, false).expect("decode");
            assert_eq!(tok.encode(&text).expect("encode"), row, "{text:?}");
            if case["dataset_kind"] == "conversational" {
                // rebuild the conversation from the ids and render it as TRL did
                let mut messages = Vec::new();
                for turn in text
                    .split("<|end|>")
                    .map(str::trim)
                    .filter(|t| !t.is_empty())
                {
                    let (role, content) = match turn.strip_prefix("<|user|> ") {
                        Some(c) => (Role::User, c),
                        None => (
                            Role::Assistant,
                            turn.strip_prefix("<|assistant|> ").expect("assistant turn"),
                        ),
                    };
                    messages.push(Message::new(role, content));
                }
                let rendered = template.render(&messages, false).expect("render");
                assert_eq!(tok.encode(&rendered).expect("encode"), row, "{rendered:?}");
                checked += 1;
            }
        }
    }
    assert_eq!(checked, 6);
}

/// A tiny byte-level GGUF vocabulary: `Ġ`, `ĠĠ`, digits, `a`, `b`, `ab` and one control token.
fn tiny_gguf(pre: &str, merges: &[&str]) -> GgufWriter {
    let tokens = ["<|end|>", "Ġ", "ĠĠ", "1", "2", "a", "b", "ab", "Ġa", "Ċ"];
    let mut w = GgufWriter::new();
    let strings = |xs: &[&str]| {
        GgufValue::Array(
            xs.iter()
                .map(|s| GgufValue::String(s.to_string()))
                .collect(),
        )
    };
    w.metadata("tokenizer.ggml.model", GgufValue::String("gpt2".into()))
        .metadata("tokenizer.ggml.pre", GgufValue::String(pre.into()))
        .metadata("tokenizer.ggml.tokens", strings(&tokens))
        .metadata("tokenizer.ggml.merges", strings(merges))
        .metadata(
            "tokenizer.ggml.token_type",
            GgufValue::Array(
                tokens
                    .iter()
                    .enumerate()
                    .map(|(i, _)| GgufValue::I32(if i == 0 { 3 } else { 1 }))
                    .collect(),
            ),
        )
        .metadata("tokenizer.ggml.eos_token_id", GgufValue::U32(0))
        .metadata(
            "tokenizer.chat_template",
            GgufValue::String(
                "{% for m in messages %}{{ m.content }}{{ eos_token }}{% endfor %}".into(),
            ),
        );
    w
}

fn open_tiny(name: &str, w: &GgufWriter) -> Result<Tokenizer, TokenizerError> {
    let path = std::env::temp_dir().join(format!(
        "temper-tokenizer-test-{}-{name}.gguf",
        std::process::id()
    ));
    w.write(&path).expect("write");
    let result = GgufFile::open(&path)
        .map_err(TokenizerError::from)
        .and_then(|g| Tokenizer::from_gguf(&g));
    std::fs::remove_file(&path).ok();
    result
}

#[test]
fn digit_split_is_what_makes_smollm_differ_from_gpt2() {
    let merges = ["Ġ Ġ", "a b", "Ġ a"];
    let smollm = open_tiny("smollm", &tiny_gguf("smollm", &merges)).expect("smollm");
    let gpt2 = open_tiny("gpt2", &tiny_gguf("gpt-2", &merges)).expect("gpt-2");
    // "  12": digits are split off first, so the two spaces form one word and merge into ĠĠ
    assert_eq!(smollm.encode("  12").expect("encode"), [2, 3, 4]);
    assert_eq!(gpt2.encode("  12").expect("encode"), [1, 1, 3, 4]);
    // everything else is plain byte-level BPE; bytes with no token ('z', 'é') are dropped
    for tok in [&smollm, &gpt2] {
        assert_eq!(tok.encode("ab a\nz<|end|>é").expect("encode"), [7, 8, 9, 0]);
        assert_eq!(
            tok.decode(&[7, 8, 9, 0], false).expect("decode"),
            "ab a\n<|end|>"
        );
        assert_eq!(tok.decode(&[7, 8, 9, 0], true).expect("decode"), "ab a\n");
        assert_eq!(
            (tok.bos_id(), tok.eos_id(), tok.pad_id(), tok.vocab_size()),
            (None, Some(0), None, 10)
        );
        let text = tok
            .apply_chat_template(
                &[Message::user("x"), Message::assistant("y")],
                false,
            )
            .expect("render");
        assert_eq!(text, "x<|end|>y<|end|>");
    }
}

#[test]
fn bad_gguf_vocabularies_are_reported_with_key_and_index() {
    let err = open_tiny("merge", &tiny_gguf("smollm", &["Ġ Ġ", "ab"])).expect_err("bad merge");
    assert!(
        matches!(
            &err,
            TokenizerError::BadGgufVocab {
                key: "tokenizer.ggml.merges",
                index: 1,
                ..
            }
        ),
        "{err}"
    );
    assert!(
        err.to_string()
            .contains("tokenizer.ggml.merges[1]: \"ab\" is not two tokens"),
        "{err}"
    );

    let err = open_tiny("pre", &tiny_gguf("llama-bpe", &[])).expect_err("unsupported pre");
    assert!(
        err.to_string()
            .contains("tokenizer.ggml.pre = \"llama-bpe\" is not supported"),
        "{err}"
    );

    let mut w = tiny_gguf("smollm", &[]);
    w.metadata("tokenizer.ggml.bos_token_id", GgufValue::U32(99));
    let err = open_tiny("bos", &w).expect_err("bos out of range");
    assert!(
        err.to_string()
            .contains("tokenizer.ggml.bos_token_id = 99 is not a token id (vocabulary of 10)"),
        "{err}"
    );

    let mut w = GgufWriter::new();
    w.metadata("tokenizer.ggml.model", GgufValue::String("gpt2".into()));
    let err = open_tiny("missing", &w).expect_err("no tokens");
    assert!(
        err.to_string()
            .contains("metadata key \"tokenizer.ggml.tokens\" is missing"),
        "{err}"
    );

    let mut w = GgufWriter::new();
    w.metadata("tokenizer.ggml.model", GgufValue::String("llama".into()));
    let err = open_tiny("spm", &w).expect_err("sentencepiece");
    assert!(
        matches!(
            err,
            TokenizerError::Unsupported {
                key: "tokenizer.ggml.model",
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn tokenizer_json_errors_name_the_file() {
    let err = Tokenizer::from_file(Path::new("/nonexistent/tokenizer.json")).expect_err("missing");
    assert!(
        err.to_string()
            .starts_with("/nonexistent/tokenizer.json: cannot read the file"),
        "{err}"
    );

    let dir =
        std::env::temp_dir().join(format!("temper-tokenizer-test-{}-cfg", std::process::id()));
    std::fs::create_dir_all(&dir).expect("mkdir");
    let src = Path::new(TESTDATA).join("trl-parity/tokenizer/tokenizer.json");
    std::fs::copy(&src, dir.join("tokenizer.json")).expect("copy");
    // no config beside it: no special ids, no template
    let tok = Tokenizer::from_file(&dir.join("tokenizer.json")).expect("load");
    assert_eq!(
        (tok.bos_id(), tok.eos_id(), tok.chat_template().is_none()),
        (None, None, true)
    );
    assert!(matches!(
        tok.apply_chat_template(&[], true),
        Err(TokenizerError::NoChatTemplate)
    ));
    // a config with AddedToken-style entries and a named template list
    std::fs::write(
        dir.join("tokenizer_config.json"),
        r#"{"eos_token": {"content": "</s>"}, "chat_template": [{"name": "default", "template": "{{ messages[0].content }}{{ eos_token }}"}]}"#,
    )
    .expect("write");
    let tok = Tokenizer::from_file(&dir.join("tokenizer.json")).expect("load");
    assert_eq!(tok.eos_id(), Some(2));
    assert_eq!(
        tok.apply_chat_template(&[Message::user("t7")], false)
            .expect("render"),
        "t7</s>"
    );
    // a special token that is not in the vocabulary
    std::fs::write(
        dir.join("tokenizer_config.json"),
        r#"{"bos_token": "<bos>"}"#,
    )
    .expect("write");
    let err = Tokenizer::from_file(&dir.join("tokenizer.json")).expect_err("unknown bos");
    assert!(
        err.to_string()
            .contains("tokenizer_config.json: bos_token \"<bos>\" is not a token"),
        "{err}"
    );
    std::fs::write(dir.join("tokenizer_config.json"), "{ not json").expect("write");
    let err = Tokenizer::from_file(&dir.join("tokenizer.json")).expect_err("bad json");
    assert!(matches!(err, TokenizerError::Config { .. }), "{err}");
    std::fs::remove_dir_all(&dir).ok();
}
