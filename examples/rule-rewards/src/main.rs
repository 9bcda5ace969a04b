//! `temper-rewards` alone: score a few completions of one arithmetic question with the answer-accuracy rule
//! (numeric match against the reference), the `<think>…</think> <answer>…</answer>` format rule, and their
//! weighted sum — the rewards Temper's GRPO example trains with. Run: `cargo run -p example-rule-rewards`.

use temper_rewards::{AnswerAccuracy, FormatReward, MatchMode, Result, Reward, RewardInput, THINK_ANSWER_FORMAT};

/// The question every completion answers, and its reference answer.
const PROMPT: &str = "What is 12 * 12?";
const REFERENCE: &str = "144";

/// Completions to score: right and well-formed, right in another notation but unformatted, wrong, and no answer.
const COMPLETIONS: [&str; 4] = [
    "<think>12*12 = 144</think> <answer>144</answer>",
    "<answer>1.44e2</answer>",
    "<think>12*12 = 124</think> <answer>124</answer>",
    "I don't know.",
];

/// Weight of the format reward in the sum (the answer counts 1).
const FORMAT_WEIGHT: f64 = 0.1;

/// One completion's scores.
#[derive(Debug, Clone, PartialEq)]
struct Scored {
    completion: &'static str,
    accuracy: f64,
    format: f64,
    total: f64,
}

/// Scores every completion in [`COMPLETIONS`] with each rule and their weighted sum.
fn run() -> Result<Vec<Scored>> {
    let accuracy = AnswerAccuracy::new(MatchMode::Numeric);
    let format = FormatReward::new(THINK_ANSWER_FORMAT)?;
    let batch: Vec<RewardInput<'_>> = COMPLETIONS.iter().map(|c| RewardInput::new(PROMPT, c, REFERENCE)).collect();
    let acc = accuracy.score(&batch)?;
    let fmt = format.score(&batch)?;
    Ok(COMPLETIONS
        .iter()
        .zip(acc.iter().zip(&fmt))
        .map(|(&completion, (&accuracy, &format))| Scored {
            completion,
            accuracy,
            format,
            total: accuracy + FORMAT_WEIGHT * format,
        })
        .collect())
}

fn main() -> Result<()> {
    println!("{PROMPT} (reference {REFERENCE})");
    println!("{:>8} {:>6} {:>5}  completion", "accuracy", "format", "total");
    for s in run()? {
        println!("{:>8} {:>6} {:>5.2}  {}", s.accuracy, s.format, s.total, s.completion);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scores_are_the_rules_one_and_zero() {
        let scored = run().expect("score");
        let acc: Vec<f64> = scored.iter().map(|s| s.accuracy).collect();
        let fmt: Vec<f64> = scored.iter().map(|s| s.format).collect();
        // 1.44e2 is numerically 144; 124 is wrong; no <answer> tag scores 0.
        assert_eq!(acc, vec![1.0, 1.0, 0.0, 0.0]);
        // Only the completions with both tags in order match the format.
        assert_eq!(fmt, vec![1.0, 0.0, 1.0, 0.0]);
        let total: Vec<f64> = scored.iter().map(|s| s.total).collect();
        assert_eq!(total, vec![1.1, 1.0, 0.1, 0.0]);
    }
}
