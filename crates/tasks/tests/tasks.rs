//! Integration tests for temper-tasks with temper-rewards: the GSM8K loader on a fixture scored by the rule
//! rewards, end-to-end scoring and voting on the arithmetic task, and the arithmetic config from TOML.

use std::path::{Path, PathBuf};

use temper_rewards::{
    AnswerAccuracy, LastNumberAccuracy, MatchMode, Reward, RewardInput, argmax_score, canonical_answer,
    extract_answer, maj_at_k, majority_vote,
};
use temper_tasks::{AnswerPrompt, ArithOp, ArithmeticConfig, ArithmeticTask, load_gsm8k};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

/// Test bodies use `?` on errors of both crates.
type TestResult = Result<(), Box<dyn std::error::Error>>;

#[test]
fn gsm8k_fixture_loads_and_scores() -> TestResult {
    let examples = load_gsm8k(&fixture("gsm8k_sample.jsonl"))?;
    let answers: Vec<&str> = examples.iter().map(|e| e.answer.as_str()).collect();
    assert_eq!(answers, ["72", "10", "18", "3", "1000"]);
    assert!(examples[0].question.starts_with("Natalia sold clips"));
    assert!(
        examples[2].question.contains('\u{2019}'),
        "unicode apostrophe decoded"
    );

    // Completions a model might write, against the full solution as reference.
    let completions = [
        "<think>48/2 = 24, 48 + 24 = 72</think><answer>72</answer>",
        "<think>12/60*50</think><answer>$10.00</answer>",
        "<think>16-3-4 = 9, 9*2 = 18</think><answer>eighteen</answer>",
        "It takes 3 bolts, maybe 4.",
        "<answer>1,000</answer>",
    ];
    let batch: Vec<RewardInput<'_>> = examples
        .iter()
        .zip(completions)
        .map(|(e, c)| RewardInput::new(&e.question, c, &e.solution))
        .collect();
    assert_eq!(
        AnswerAccuracy::new(MatchMode::Numeric).score(&batch)?,
        [1.0, 1.0, 0.0, 0.0, 1.0]
    );
    assert_eq!(
        AnswerAccuracy::new(MatchMode::Exact).score(&batch)?,
        [1.0, 0.0, 0.0, 0.0, 0.0]
    );
    assert_eq!(LastNumberAccuracy.score(&batch)?, [1.0, 1.0, 1.0, 0.0, 1.0]);
    Ok(())
}

#[test]
fn arithmetic_task_end_to_end_with_voting() -> TestResult {
    let task = ArithmeticTask::new(
        ArithmeticConfig {
            digits: 2,
            ..ArithmeticConfig::default()
        },
        11,
    )?;
    let problems = task.held_out(25)?;
    let prompt = AnswerPrompt::default();
    let accuracy = AnswerAccuracy::new(MatchMode::Numeric);
    let mut samples = Vec::new();
    let mut references = Vec::new();
    for p in &problems {
        let question = prompt.plain(&p.question());
        // Four "samples": right, off by one, right but spelled as a decimal, no answer.
        let texts = [
            format!("<think>{p}</think><answer>{}</answer>", p.answer),
            format!("<answer>{}</answer>", p.answer + 1),
            format!("<answer>{}.0</answer>", p.answer),
            "I am not sure.".to_string(),
        ];
        let reference = p.reference();
        let batch: Vec<RewardInput<'_>> = texts
            .iter()
            .map(|t| RewardInput::new(&question, t, &reference))
            .collect();
        let scores = accuracy.score(&batch)?;
        assert_eq!(scores, [1.0, 0.0, 1.0, 0.0], "{p}");
        assert_eq!(argmax_score(&scores)?, 0);
        let votes: Vec<Option<String>> = texts
            .iter()
            .map(|t| extract_answer(t).map(canonical_answer))
            .collect();
        assert_eq!(majority_vote(&votes), Some((p.reference(), 2)), "{p}");
        samples.push(votes);
        references.push(p.reference());
    }
    // maj@1 takes the first sample (right), maj@2 ties right/wrong and the first wins, all four vote 2:1.
    for k in 1..=4 {
        assert_eq!(maj_at_k(&samples, &references, k)?, 1.0, "maj@{k}");
    }
    let wrong_first: Vec<Vec<Option<String>>> = samples
        .iter()
        .map(|s| vec![s[1].clone(), s[0].clone()])
        .collect();
    assert_eq!(maj_at_k(&wrong_first, &references, 1)?, 0.0);
    Ok(())
}

#[test]
fn arithmetic_config_from_toml() {
    // (toml, expected config or a piece of the error)
    let ok: &[(&str, ArithmeticConfig)] = &[
        ("", ArithmeticConfig::default()),
        (
            "digits = 1\nops = [\"add\", \"mul\"]\n",
            ArithmeticConfig {
                digits: 1,
                ops: vec![ArithOp::Add, ArithOp::Mul],
                allow_negative: false,
                terms: 2,
            },
        ),
        (
            "allow_negative = true\n",
            ArithmeticConfig {
                allow_negative: true,
                ..ArithmeticConfig::default()
            },
        ),
        (
            "terms = 3\n",
            ArithmeticConfig {
                terms: 3,
                ..ArithmeticConfig::default()
            },
        ),
    ];
    for (text, want) in ok {
        let got: ArithmeticConfig = toml::from_str(text).expect(text);
        assert_eq!(&got, want, "{text:?}");
    }
    let bad: &[(&str, &str)] = &[
        ("digit = 2\n", "unknown field `digit`"),
        ("ops = [\"div\"]\n", "unknown variant `div`"),
    ];
    for (text, want) in bad {
        let err = toml::from_str::<ArithmeticConfig>(text)
            .expect_err(text)
            .to_string();
        assert!(err.contains(want), "{text:?}: {err}");
    }
}
