//! Integration tests for temper-rewards: reward configs parsed from TOML and pass@k against exact Python reference
//! numbers (the GSM8K loader and the arithmetic task's end-to-end test are in temper-tasks' tests).

use std::path::{Path, PathBuf};

use serde::Deserialize;
use temper_rewards::*;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

/// The shape a trainer config gives its rewards: a `[[reward]]` array.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    reward: Vec<RewardSpec>,
}

fn parse(text: &str) -> Result<Config, String> {
    toml::from_str::<Config>(text).map_err(|e| e.to_string())
}

const SEED_CONFIG: &str = r#"
[[reward]]
kind = "answer_accuracy"
weight = 1.0
mode = "numeric"

[[reward]]
kind = "format"
weight = 0.25
regex = '^<think>.*?</think>\s*<answer>.*?</answer>$'

[[reward]]
kind = "overlong_penalty"
unit = "words"
max_len = 12
cache_len = 4

[[reward]]
kind = "length_penalty"
weight = 0.5
target = 60
per_unit = 0.01
cap = 0.2

[[reward]]
kind = "last_number_accuracy"
weight = 0.0
"#;

#[test]
fn toml_config_parses_builds_and_scores() -> Result<()> {
    let config = parse(SEED_CONFIG).map_err(|m| RewardError::InvalidConfig {
        field: "toml".into(),
        message: m,
    })?;
    assert_eq!(
        config.reward,
        vec![
            RewardSpec::AnswerAccuracy {
                weight: 1.0,
                mode: MatchMode::Numeric
            },
            RewardSpec::Format {
                weight: 0.25,
                regex: THINK_ANSWER_FORMAT.into(),
                dot_all: true
            },
            RewardSpec::OverlongPenalty {
                weight: 1.0,
                unit: LengthUnit::Words,
                max_len: 12,
                cache_len: 4
            },
            RewardSpec::LengthPenalty {
                weight: 0.5,
                unit: LengthUnit::Chars,
                target: 60,
                per_unit: 0.01,
                cap: 0.2
            },
            RewardSpec::LastNumberAccuracy { weight: 0.0 },
        ]
    );
    let sum = build_weighted_sum(&config.reward)?;
    // (completion, reference, expected total, expected per-part scores)
    let cases: &[(&str, &str, f64, [f64; 5])] = &[
        // 42 chars, 3 words: right answer, right format, no length penalty.
        (
            "<think>6*7 = 42</think><answer>42</answer>",
            "#### 42",
            1.25,
            [1.0, 1.0, 0.0, 0.0, 1.0],
        ),
        // Right answer without the format; the last number is 42 too but that reward weighs 0.
        (
            "<answer>42</answer> so 42",
            "42",
            1.0,
            [1.0, 0.0, 0.0, 0.0, 1.0],
        ),
        // 15 words (> L_max = 12) and 70 chars (10 past the target): -1 and -0.5 * 0.1.
        (
            "<think>a b c d e f g h i j k l</think> <answer>41</answer> lorem ipsum",
            "42",
            -1.05,
            [0.0, 0.0, -1.0, -0.1, 0.0],
        ),
        // 10 words: 2 into the soft band of 4 → -0.5.
        (
            "<think>1 2 3 4 5 6 7 8 9</think> <answer>42</answer>",
            "42",
            0.75,
            [1.0, 1.0, -0.5, 0.0, 1.0],
        ),
    ];
    for (completion, reference, total, parts) in cases {
        let batch = [RewardInput::new("What is 6 * 7?", completion, reference)];
        let b = sum.score_parts(&batch)?;
        let got: Vec<f64> = b.parts.iter().map(|(_, _, s)| s[0]).collect();
        for (g, w) in got.iter().zip(parts) {
            assert!(
                (g - w).abs() < 1e-12,
                "{completion:?}: parts {got:?}, want {parts:?}"
            );
        }
        assert!(
            (b.total[0] - total).abs() < 1e-12,
            "{completion:?}: total {}, want {total}",
            b.total[0]
        );
    }
    let names: Vec<&str> = sum.parts.iter().map(|(_, r)| r.name()).collect();
    assert_eq!(
        names,
        [
            "answer_accuracy",
            "format",
            "overlong_penalty",
            "length_penalty",
            "last_number_accuracy"
        ]
    );
    Ok(())
}

#[test]
fn toml_config_errors() {
    // (config, a piece of the expected error message)
    let cases: &[(&str, &str)] = &[
        (
            "[[reward]]\nkind = \"answer_accuracy\"\nweigth = 1.0\n",
            "unknown field `weigth`",
        ),
        (
            "[[reward]]\nkind = \"format\"\nregex = \"x\"\nmode = \"exact\"\n",
            "unknown field `mode`",
        ),
        (
            "[[reward]]\nkind = \"neural\"\n",
            "unknown variant `neural`",
        ),
        ("[[reward]]\nweight = 1.0\n", "missing field `kind`"),
        ("[[reward]]\nkind = \"format\"\n", "missing field `regex`"),
        (
            "[[reward]]\nkind = \"answer_accuracy\"\nmode = \"fuzzy\"\n",
            "unknown variant `fuzzy`",
        ),
        (
            "[[reward]]\nkind = \"overlong_penalty\"\nmax_len = -3\ncache_len = 1\n",
            "integer `-3`, expected usize",
        ),
    ];
    for (text, want) in cases {
        let err = parse(text).expect_err(text);
        assert!(err.contains(want), "{text:?}: {err}");
    }
    // Parsing succeeds but building checks the values and names the field.
    let build_cases: &[(&str, &str)] = &[
        (
            "[[reward]]\nkind = \"answer_accuracy\"\n[[reward]]\nkind = \"format\"\nregex = \"<answer>(\"\n",
            "field `reward[1].regex`: invalid regex \"<answer>(\"",
        ),
        (
            "[[reward]]\nkind = \"overlong_penalty\"\nmax_len = 8\ncache_len = 16\n",
            "field `reward[0].cache_len`: must be <= max_len (8), got 16",
        ),
        (
            "[[reward]]\nkind = \"length_penalty\"\ntarget = 1\nper_unit = 0.1\ncap = -1.0\n",
            "field `reward[0].cap`: must be finite and >= 0, got -1",
        ),
    ];
    for (text, want) in build_cases {
        let config = parse(text).expect("parses");
        let err = build_weighted_sum(&config.reward).expect_err(text);
        assert!(err.to_string().starts_with(want), "{text:?}: {err}");
    }
}

#[derive(Deserialize)]
struct PassCase {
    n: usize,
    c: usize,
    k: usize,
    pass_at_k: f64,
}

#[derive(Deserialize)]
struct PassFixture {
    cases: Vec<PassCase>,
}

#[test]
fn pass_at_k_matches_exact_python_reference() -> Result<()> {
    let text = std::fs::read_to_string(fixture("pass_at_k.json")).expect("read pass@k fixture");
    let fixture: PassFixture = serde_json::from_str(&text).expect("pass@k fixture is JSON");
    assert_eq!(fixture.cases.len(), 18);
    for case in &fixture.cases {
        let got = pass_at_k(case.n, case.c, case.k)?;
        assert!(
            (got - case.pass_at_k).abs() < 1e-12,
            "pass@{} with n = {}, c = {}: got {got}, reference {}",
            case.k,
            case.n,
            case.c,
            case.pass_at_k
        );
    }
    Ok(())
}
