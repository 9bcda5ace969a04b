//! Tests of `LocalChat` (feature `chat`) on the tiny Llama of `testdata/trl-parity`: the prompt it renders
//! (prefill included), greedy replies equal to direct generation, seeded sampling, context and parameter checks,
//! a checkpoint without tokenizer, and the pairwise judge of `temper-judges` running on it.
#![cfg(feature = "chat")]

use std::path::{Path, PathBuf};

use burn::tensor::Device;
use temper_chat::{ChatBackend, GenerationParams, Message};
use temper_judges::{JudgeRunConfig, LlmJudge, PromptKind, PromptTemplate};
use temper_models::{
    GenerationConfig, Llama, LocalChat, SamplingParams, generate, load_model, render_chat_prompt,
};
use temper_tokenizer::{ChatTemplate, Tokenizer};

type Result<T, E = Box<dyn std::error::Error>> = std::result::Result<T, E>;

fn testdata(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../testdata")
        .join(rel)
}

fn tmp_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("temper-models-chat-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&d).expect("create temp dir");
    d
}

/// The tiny Llama of `testdata/trl-parity` with its word-level tokenizer.
fn tiny() -> (Llama, Tokenizer, Device) {
    let device = Device::default();
    let loaded = load_model(&testdata("trl-parity/model"), &device).expect("tiny model");
    let tok =
        Tokenizer::from_file(&testdata("trl-parity/tokenizer/tokenizer.json")).expect("tokenizer");
    (loaded.model, tok, device)
}

/// A template over the tiny vocabulary: `t7` marks a system turn, `<|user|>` any other.
const TINY_TEMPLATE: &str = "{% for m in messages %}{% if m['role'] == 'system' %}t7 {% else %}<|user|> {% endif %}\
    {{ m['content'] }} <|end|> {% endfor %}{% if add_generation_prompt %}<|assistant|> {% endif %}";

fn tiny_backend() -> LocalChat {
    let (model, tok, device) = tiny();
    let template = ChatTemplate::new(TINY_TEMPLATE, "<s>", "</s>").expect("template");
    LocalChat::new(model, tok, Some(template), device).expect("backend")
}

fn assert_send_sync<T: Send + Sync>() {}

fn greedy(max_new_tokens: usize) -> GenerationParams {
    GenerationParams {
        max_new_tokens,
        temperature: 0.0,
        ..GenerationParams::default()
    }
}

#[test]
fn local_backend_renders_prefill_and_matches_direct_generation() -> Result<()> {
    assert_send_sync::<LocalChat>();
    let backend = tiny_backend();
    let messages = [Message::system("t10"), Message::user("t11 t12 t13")];
    let template = ChatTemplate::new(TINY_TEMPLATE, "<s>", "</s>")?;
    assert_eq!(
        render_chat_prompt(&template, &messages)?,
        "t7 t10 <|end|> <|user|> t11 t12 t13 <|end|> <|assistant|> "
    );
    let mut prefilled = messages.to_vec();
    prefilled.push(Message::assistant("t40"));
    let prompt = render_chat_prompt(&template, &prefilled)?;
    assert_eq!(
        prompt,
        "t7 t10 <|end|> <|user|> t11 t12 t13 <|end|> <|assistant|> t40"
    );
    assert_eq!(backend.prompt(&prefilled)?, prompt);

    // Greedy reply == decoding what `generate` produces on the same prompt.
    let params = greedy(6);
    let reply = backend.complete(&prefilled, &params)?;
    let (model, tok, device) = tiny();
    let config = GenerationConfig {
        max_new_tokens: 6,
        sampling: SamplingParams {
            temperature: 0.0,
            top_k: None,
            top_p: None,
        },
        seed: 0,
        stop_token_ids: tok.eos_id().into_iter().collect(),
        stop_strings: vec![],
        pad_token_id: tok.pad_id().unwrap_or(0),
    };
    let gens = generate(
        &model,
        &[tok.encode(&prompt)?],
        &config,
        &device,
        None,
        |_, _| {},
    )?;
    assert_eq!(reply, tok.decode(&gens[0].output_ids, true)?.trim());
    assert!(
        !reply.is_empty() && reply.split_whitespace().count() <= 6,
        "{reply:?}"
    );
    // `reply` carries the same text with the prompt's and the completion's token counts.
    let counted = backend.reply(&prefilled, &params)?;
    assert_eq!(counted.text, reply);
    assert_eq!(counted.prompt_tokens, Some(tok.encode(&prompt)?.len()));
    assert_eq!(counted.completion_tokens, Some(gens[0].output_ids.len()));

    // Seeded sampling is reproducible.
    let hot = GenerationParams {
        max_new_tokens: 6,
        temperature: 1.0,
        ..GenerationParams::default()
    };
    let sampled = backend.complete(&messages, &hot)?;
    assert_eq!(backend.complete(&messages, &hot)?, sampled);

    // Prompts longer than the context (128 positions) are refused with the sizes.
    let long = Message::user(vec!["t20"; 125].join(" "));
    let e = backend
        .complete(&[long], &params)
        .expect_err("too long")
        .to_string();
    assert_eq!(
        e,
        "chat back end: prompt of 128 tokens + 6 new tokens exceeds the model's context of 128"
    );
    let e = backend
        .complete(
            &messages,
            &GenerationParams {
                temperature: -1.0,
                ..greedy(1)
            },
        )
        .expect_err("t<0");
    assert_eq!(
        e.to_string(),
        "invalid configuration: temperature must be >= 0, got -1"
    );
    Ok(())
}

#[test]
fn generation_params_reach_the_sampler() -> Result<()> {
    let backend = tiny_backend();
    let messages = [Message::system("t10"), Message::user("t11 t12 t13")];
    let hot = GenerationParams {
        max_new_tokens: 6,
        temperature: 1.0,
        ..GenerationParams::default()
    };
    // The seed is the request's: the same seed gives the same reply, top_k = 1 is greedy.
    let seeded = GenerationParams {
        seed: 11,
        ..hot.clone()
    };
    assert_eq!(
        backend.complete(&messages, &seeded)?,
        backend.complete(&messages, &seeded)?
    );
    let top1 = GenerationParams {
        top_k: Some(1),
        ..hot.clone()
    };
    assert_eq!(
        backend.complete(&messages, &top1)?,
        backend.complete(&messages, &greedy(6))?
    );
    // A stop string present in the greedy reply ends it there (the stop string is kept).
    let full = backend.complete(&messages, &greedy(6))?;
    let first = full.split_whitespace().next().expect("a word").to_string();
    let stopped = backend.complete(
        &messages,
        &GenerationParams {
            stop: vec![first.clone()],
            ..greedy(6)
        },
    )?;
    assert_eq!(stopped, first, "full reply {full:?}");
    // Invalid parameters are refused with the field's name.
    let e = backend
        .complete(
            &messages,
            &GenerationParams {
                top_p: Some(2.0),
                ..hot
            },
        )
        .expect_err("top_p")
        .to_string();
    assert!(e.starts_with("invalid configuration: top_p"), "{e}");
    Ok(())
}

#[test]
fn local_backend_needs_a_tokenizer_and_runs_the_pairwise_judge() -> Result<()> {
    let device = Device::default();
    let loaded = load_model(&testdata("trl-parity/model"), &device)?;
    let e = LocalChat::from_loaded(loaded, device)
        .err()
        .map(|e| format!("{e:#}"));
    assert!(
        e.as_deref()
            .is_some_and(|e| e.ends_with("has no tokenizer (add tokenizer.json to its folder)")),
        "{e:?}"
    );

    // The pairwise judge on the tiny model: it cannot write `[[A]]`, so every reply is unparseable.
    let template = PromptTemplate {
        name: "tiny".into(),
        kind: PromptKind::Pairwise,
        system_prompt: "t8".into(),
        prompt_template: "{question} t9 {answer_a} t10 {answer_b}".into(),
        output_format: "[[A]]".into(),
        description: String::new(),
        category: String::new(),
    };
    let judge = LlmJudge::new(tiny_backend())
        .with_pair_template(template)?
        .with_params(greedy(4));
    let dir = tmp_dir("pairs");
    let pairs = dir.join("pairs.jsonl");
    std::fs::write(
        &pairs,
        "{\"id\": \"a\", \"question\": \"t30\", \"answer_a\": \"t31\", \"answer_b\": \"t32 t33\"}\n\
         {\"id\": 2, \"question\": \"t40\", \"answer_a\": \"t41\", \"answer_b\": \"t42\"}\n",
    )?;
    let run = temper_judges::judge_pairs(&pairs, &judge, &JudgeRunConfig::new(true, 2))?;
    let s = &run.summary;
    assert_eq!(
        (
            s.n_pairs,
            s.unparseable_replies,
            s.unparseable_pairs,
            s.failed
        ),
        (2, 4, 2, 0)
    );
    assert_eq!(
        run.records.iter().map(|r| r.judgments.len()).sum::<usize>(),
        4
    );
    assert_eq!(run.to_jsonl().lines().count(), 2);
    std::fs::remove_dir_all(&dir)?;
    Ok(())
}

/// A chat template that reads `tools` (Qwen2.5's, testdata/chat-templates) gets the tool schemas from
/// `take_tools` and renders them itself, as transformers does; a template without `tools` declines them.
#[test]
fn a_template_that_reads_tools_takes_them_and_renders_them() -> Result<()> {
    let dir = testdata("chat-templates");
    let qwen = ChatTemplate::new(
        &std::fs::read_to_string(dir.join("qwen2_5.jinja"))?,
        "",
        "<|im_end|>",
    )?;
    let spec: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("conversations.json"))?)?;
    let expected: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("expected.json"))?)?;
    let tools = spec["tools"].as_array().ok_or("tools")?.clone();
    let messages: Vec<Message> =
        serde_json::from_value(spec["conversations"][0]["messages"].clone())?;
    let (model, tok, device) = tiny();
    let backend = LocalChat::new(model, tok, Some(qwen), device)?;
    let before = backend.prompt(&messages)?;
    assert!(!before.contains("<tools>"), "{before}");
    assert!(backend.take_tools(&tools));
    assert_eq!(
        backend.prompt(&messages)?,
        expected["rendered"][0].as_str().ok_or("text")?
    );
    assert!(
        !tiny_backend().take_tools(&tools),
        "the tiny template has no `tools`"
    );
    Ok(())
}
