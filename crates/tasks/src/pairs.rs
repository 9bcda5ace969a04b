//! Preference pairs: the [`PreferencePair`] record DPO and reward models train on, and synthetic arithmetic
//! pairs whose chosen answer is right and whose rejected answer is a typical mistake, their prompts rendered
//! exactly like the arithmetic task's (one renderer, one prompt).

use std::collections::BTreeMap;

use serde::Serialize;
use temper_tokenizer::Tokenizer;

use crate::arithmetic::{ArithOp, ArithmeticConfig, ArithmeticProblem, ArithmeticTask};
use crate::error::{Result, TaskError};
use crate::prompts::ArithmeticPrompts;
use crate::render::render;
use crate::rng::SplitMix64;

/// A preference pair for DPO and reward models.
#[derive(Clone, Debug, PartialEq)]
pub struct PreferencePair {
    /// The shared prompt.
    pub prompt: String,
    /// The preferred completion.
    pub chosen: String,
    /// The dispreferred completion.
    pub rejected: String,
    /// Optional reward margin (reward-model training).
    pub margin: Option<f64>,
}

/// Largest operand size [`synthetic_pairs`] enumerates (3 digits = 2.4 M problems).
pub const MAX_SYNTHETIC_DIGITS: u32 = 3;

/// The kind of wrong answer a synthetic rejected completion holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Mistake {
    /// The answer ± 1, 2 or 3 (a slip in the units digit).
    OffBySmall,
    /// The answer ± 10 (a dropped or extra carry).
    OffByTen,
    /// The result of another of `+ - *` on the same operands.
    OtherOp,
}

const MISTAKES: [Mistake; 3] = [Mistake::OffBySmall, Mistake::OffByTen, Mistake::OtherOp];

/// A wrong, non-negative answer to `p` of kind `mistake`, `pick` choosing among the candidates; falls back to
/// [`Mistake::OffBySmall`] when the kind has no candidate (e.g. `2 + 2` and `2 * 2` agree). Returns the value
/// and the kind actually used.
pub fn wrong_answer(p: &ArithmeticProblem, mistake: Mistake, pick: u64) -> (i64, Mistake) {
    let small = || {
        let k = 1 + (pick % 3) as i64;
        if (pick / 3).is_multiple_of(2) || p.answer - k < 0 {
            p.answer + k
        } else {
            p.answer - k
        }
    };
    match mistake {
        Mistake::OffBySmall => (small(), Mistake::OffBySmall),
        Mistake::OffByTen if pick.is_multiple_of(2) || p.answer < 10 => (p.answer + 10, Mistake::OffByTen),
        Mistake::OffByTen => (p.answer - 10, Mistake::OffByTen),
        Mistake::OtherOp => {
            let others: Vec<i64> = [ArithOp::Add, ArithOp::Sub, ArithOp::Mul]
                .into_iter()
                .filter(|&o| o != p.op)
                .map(|o| o.apply(p.a, p.b))
                .filter(|&v| v != p.answer && v >= 0)
                .collect();
            if others.is_empty() {
                (small(), Mistake::OffBySmall)
            } else {
                (others[(pick % others.len() as u64) as usize], Mistake::OtherOp)
            }
        }
    }
}

/// Every problem of the arithmetic task's space with `digits`-digit operands (the task's rule: 1 digit means
/// 0..=9, subtraction never goes below zero), split into (training, held-out) by the task's fixed partition.
pub fn problem_space(digits: u32, ops: &[ArithOp]) -> (Vec<ArithmeticProblem>, Vec<ArithmeticProblem>) {
    let (lo, hi) = if digits == 1 {
        (0, 9)
    } else {
        (10i64.pow(digits - 1), 10i64.pow(digits) - 1)
    };
    let mut all = Vec::new();
    for &op in ops {
        for a in lo..=hi {
            for b in lo..=hi {
                if op == ArithOp::Sub && a < b {
                    continue;
                }
                all.push(ArithmeticProblem::binary(a, op, b));
            }
        }
    }
    let (held, train): (Vec<_>, Vec<_>) = all.into_iter().partition(ArithmeticProblem::is_held_out);
    (train, held)
}

/// What [`synthetic_pairs`] builds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SyntheticSpec {
    /// Operand digits of the problems, each in 1..=[`MAX_SYNTHETIC_DIGITS`]; pairs are split evenly over them.
    pub digits: Vec<u32>,
    /// Operations of the problems.
    pub ops: Vec<ArithOp>,
    /// Training pairs to build.
    pub train_pairs: usize,
    /// Held-out pairs to build: one per distinct held-out problem, fewer when the held-out split is smaller.
    pub eval_pairs: usize,
    /// Seed of the problem order and the mistakes.
    pub seed: u64,
}

/// Counts of a [`synthetic_pairs`] run.
#[derive(Debug, Default, PartialEq, Serialize)]
pub struct SyntheticStats {
    /// Training pairs built.
    pub train_pairs: usize,
    /// Distinct problems among the training pairs.
    pub train_problems: usize,
    /// Held-out pairs built.
    pub eval_pairs: usize,
    /// Held-out pairs per operand size, e.g. `{"1": 25, "2": 175}`.
    pub eval_by_digits: BTreeMap<u32, usize>,
    /// Rejected answers by kind, training and held-out together.
    pub mistakes: BTreeMap<Mistake, usize>,
}

/// Splits `total` over pools of the given sizes as evenly as possible, no pool getting more than its size
/// when `cap` is set (smallest pools served first, their leftover shared by the others).
pub fn allocate(total: usize, sizes: &[usize], cap: bool) -> Vec<usize> {
    let mut order: Vec<usize> = (0..sizes.len()).collect();
    order.sort_by_key(|&i| sizes[i]);
    let mut out = vec![0; sizes.len()];
    let mut left = total;
    for (k, &i) in order.iter().enumerate() {
        let share = left.div_ceil(sizes.len() - k);
        out[i] = if cap { share.min(sizes[i]) } else { share };
        left -= out[i];
    }
    out
}

/// The arithmetic task's chat prompt for `p`, prefill included, as [`PromptSet`](crate::PromptSet) renders it
/// with the default instruction and `shots = 0` (no worked-example turns).
pub fn synthetic_prompt(tok: &Tokenizer, p: &ArithmeticProblem) -> Result<String> {
    let mut prompts = ArithmeticPrompts::new(ArithmeticTask::new(ArithmeticConfig::default(), 0)?, false);
    prompts.shots = 0;
    Ok(render(tok, &prompts.problem(format!("synthetic/{p}"), p, &[]), true)?.text)
}

/// The pair of `p`: the arithmetic task's zero-shot prompt, the right answer, a wrong one of a random kind.
fn pair_of(
    tok: &Tokenizer,
    p: &ArithmeticProblem,
    rng: &mut SplitMix64,
    stats: &mut SyntheticStats,
) -> Result<PreferencePair> {
    let kind = MISTAKES[rng.below(MISTAKES.len())];
    let (wrong, used) = wrong_answer(p, kind, rng.next_u64());
    *stats.mistakes.entry(used).or_insert(0) += 1;
    Ok(PreferencePair {
        prompt: synthetic_prompt(tok, p)?,
        chosen: format!("{}</answer>", p.answer),
        rejected: format!("{wrong}</answer>"),
        margin: None,
    })
}

/// Synthetic arithmetic pairs: chosen = the right `<answer>N</answer>` and rejected = a typical wrong number
/// (off by 1–3, off by 10, or another operation's result), each prompt the arithmetic task's chat prompt with
/// its default instruction and `<answer>` prefill and no worked examples (byte for byte
/// [`PromptSet`](crate::PromptSet)'s with `shots = 0`). Held-out pairs use only problems of the task's held-out
/// split, so they never share a problem with the training pairs. Returns training and held-out pairs (each
/// list shuffled) and their counts.
pub fn synthetic_pairs(
    tok: &Tokenizer,
    spec: &SyntheticSpec,
) -> Result<(Vec<PreferencePair>, Vec<PreferencePair>, SyntheticStats)> {
    if spec.digits.is_empty() || spec.ops.is_empty() {
        return Err(TaskError::InvalidConfig {
            field: if spec.digits.is_empty() { "digits" } else { "ops" }.into(),
            message: "synthetic pairs need at least one digits value and one operation".into(),
        });
    }
    if let Some(d) = spec.digits.iter().find(|d| !(1..=MAX_SYNTHETIC_DIGITS).contains(*d)) {
        return Err(TaskError::InvalidConfig {
            field: "digits".into(),
            message: format!("values must be in 1..={MAX_SYNTHETIC_DIGITS}, got {d}"),
        });
    }
    let mut rng = SplitMix64::new(spec.seed ^ 0x7379_6e74_6800_0001);
    let mut eval_rng = SplitMix64::new(spec.seed ^ 0x7379_6e74_6800_0002);
    let mut stats = SyntheticStats::default();
    let mut pools = Vec::new();
    for &d in &spec.digits {
        let (mut train, mut held) = problem_space(d, &spec.ops);
        rng.shuffle(&mut train);
        eval_rng.shuffle(&mut held);
        pools.push((d, train, held));
    }
    let train_n = allocate(spec.train_pairs, &pools.iter().map(|p| p.1.len()).collect::<Vec<_>>(), false);
    let eval_n = allocate(spec.eval_pairs, &pools.iter().map(|p| p.2.len()).collect::<Vec<_>>(), true);
    let (mut train, mut eval) = (Vec::new(), Vec::new());
    for ((d, pool, held), (&tn, &en)) in pools.iter().zip(train_n.iter().zip(&eval_n)) {
        // Training problems cycle through the shuffled pool: distinct until the pool is used up.
        for j in 0..tn {
            train.push(pair_of(tok, &pool[j % pool.len()], &mut rng, &mut stats)?);
        }
        stats.train_problems += tn.min(pool.len());
        for p in &held[..en] {
            eval.push(pair_of(tok, p, &mut eval_rng, &mut stats)?);
        }
        stats.eval_by_digits.insert(*d, en);
    }
    rng.shuffle(&mut train);
    eval_rng.shuffle(&mut eval);
    stats.train_pairs = train.len();
    stats.eval_pairs = eval.len();
    Ok((train, eval, stats))
}

/// An operation by name: `add`/`+`, `sub`/`-`, `mul`/`*` (surrounding spaces ignored).
pub fn parse_op(s: &str) -> Result<ArithOp> {
    Ok(match s.trim() {
        "add" | "+" => ArithOp::Add,
        "sub" | "-" => ArithOp::Sub,
        "mul" | "*" => ArithOp::Mul,
        other => {
            return Err(TaskError::InvalidConfig {
                field: "ops".into(),
                message: format!("unknown operation `{other}` (expected add, sub or mul)"),
            });
        }
    })
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;
    use std::path::Path;

    use super::*;
    use crate::spec::{PromptSet, TaskSpec};

    fn tokenizer() -> Tokenizer {
        let path = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../../testdata/trl-parity/tokenizer/tokenizer.json"));
        Tokenizer::from_file(path).expect("fixture tokenizer")
    }

    fn problem(a: i64, op: ArithOp, b: i64) -> ArithmeticProblem {
        ArithmeticProblem::binary(a, op, b)
    }

    /// `(question, chosen, rejected)` of a pair, read back from its text.
    fn parse(pair: &PreferencePair) -> (ArithmeticProblem, i64, i64) {
        let q = pair.prompt.split("What is ").nth(1).and_then(|s| s.split('?').next()).expect("question");
        let t: Vec<&str> = q.split(' ').collect();
        let op = parse_op(t[1]).expect("op");
        let p = problem(t[0].parse().expect("a"), op, t[2].parse().expect("b"));
        let num = |s: &str| s.strip_suffix("</answer>").expect("tag").parse::<i64>().expect("number");
        (p, num(&pair.chosen), num(&pair.rejected))
    }

    #[test]
    fn wrong_answers_follow_their_kind() {
        use ArithOp::*;
        use Mistake::*;
        // (problem, kind, pick) -> (wrong answer, kind used)
        let cases = [
            (problem(3, Add, 4), OffBySmall, 0, (8, OffBySmall)),
            (problem(3, Add, 4), OffBySmall, 3, (6, OffBySmall)),
            (problem(3, Add, 4), OffBySmall, 5, (4, OffBySmall)),
            (problem(1, Sub, 1), OffBySmall, 4, (2, OffBySmall)), // 0 - 2 < 0: goes up instead
            (problem(23, Add, 58), OffByTen, 0, (91, OffByTen)),
            (problem(23, Add, 58), OffByTen, 1, (71, OffByTen)),
            (problem(2, Mul, 3), OffByTen, 1, (16, OffByTen)), // below 10: only up
            (problem(7, Mul, 3), OtherOp, 0, (10, OtherOp)),
            (problem(7, Mul, 3), OtherOp, 1, (4, OtherOp)),
            (problem(3, Add, 7), OtherOp, 0, (21, OtherOp)), // 3 - 7 < 0 is not offered
            (problem(2, Add, 2), OtherOp, 1, (0, OtherOp)), // 2 * 2 is the answer: only 2 - 2 is offered
            (problem(0, Add, 0), OtherOp, 1, (2, OffBySmall)), // 0 + 0 = 0 - 0 = 0 * 0: falls back
        ];
        for (p, kind, pick, want) in cases {
            let got = wrong_answer(&p, kind, pick);
            assert_eq!(got, want, "{p} {kind:?} pick {pick}");
            assert_ne!(got.0, p.answer);
        }
    }

    #[test]
    fn allocation_is_even_and_respects_pool_sizes() {
        assert_eq!(allocate(10, &[100, 100], false), vec![5, 5]);
        assert_eq!(allocate(11, &[100, 100], false), vec![6, 5]);
        assert_eq!(allocate(200, &[25, 2000], true), vec![25, 175]);
        assert_eq!(allocate(200, &[25, 2000], false), vec![100, 100]);
        assert_eq!(allocate(50, &[20, 10], true), vec![20, 10]);
    }

    #[test]
    fn problem_space_matches_the_task() {
        let (train, held) = problem_space(1, &[ArithOp::Add, ArithOp::Sub, ArithOp::Mul]);
        // 100 sums, 55 differences (a >= b), 100 products.
        assert_eq!(train.len() + held.len(), 255);
        assert!(held.iter().all(ArithmeticProblem::is_held_out));
        assert!(train.iter().all(|p| !p.is_held_out()));
        // Every problem the task's own streams produce is in the matching part.
        let task = ArithmeticTask::new(ArithmeticConfig { digits: 1, ..ArithmeticConfig::default() }, 3).expect("task");
        assert!(task.train(300).iter().all(|p| train.contains(p)));
        assert!(task.held_out(held.len()).expect("held").iter().all(|p| held.contains(p)));
    }

    #[test]
    fn prompts_are_the_arithmetic_tasks_own() {
        let tok = tokenizer();
        // The task without worked-example turns (`shots = 0`), as the synthetic pairs render it.
        let toml = "kind = \"arithmetic\"\nshots = 0\n[config]\ndigits = 1\n";
        let task: TaskSpec = toml::from_str(toml).expect("task");
        let set = PromptSet::build(&task, &tok, true, 5).expect("prompts");
        let task = ArithmeticTask::new(ArithmeticConfig { digits: 1, ..ArithmeticConfig::default() }, 5).expect("task");
        for (rendered, p) in set.train.iter().zip(task.train(3)) {
            assert_eq!(synthetic_prompt(&tok, &p).expect("render"), rendered.text);
        }
    }

    #[test]
    fn synthetic_pairs_are_right_vs_wrong_with_a_disjoint_held_out_split() {
        let tok = tokenizer();
        let spec = SyntheticSpec {
            digits: vec![1, 2],
            ops: vec![ArithOp::Add, ArithOp::Sub, ArithOp::Mul],
            train_pairs: 300,
            eval_pairs: 120,
            seed: 11,
        };
        let (train, eval, stats) = synthetic_pairs(&tok, &spec).expect("pairs");
        assert_eq!((train.len(), eval.len()), (300, 120));
        assert_eq!(stats.eval_by_digits.values().sum::<usize>(), 120);
        // The 1-digit held-out split has 255 / 10 ± a few problems; the 2-digit one supplies the rest.
        let one = stats.eval_by_digits[&1];
        assert!((15..=40).contains(&one), "{one} one-digit held-out problems");
        assert_eq!(stats.mistakes.values().sum::<usize>(), 420);
        assert!(stats.mistakes.values().all(|&n| n > 60), "{:?}", stats.mistakes);
        let mut train_problems = HashSet::new();
        for pair in &train {
            let (p, chosen, rejected) = parse(pair);
            assert_eq!(chosen, p.answer, "{}", pair.prompt);
            assert!(rejected != p.answer && rejected >= 0, "{p}: {rejected}");
            assert!(!p.is_held_out());
            train_problems.insert(p);
        }
        assert_eq!(train_problems.len(), stats.train_problems);
        let mut eval_problems = HashSet::new();
        for pair in &eval {
            let (p, chosen, rejected) = parse(pair);
            assert_eq!(chosen, p.answer);
            assert_ne!(rejected, p.answer);
            assert!(p.is_held_out() && !train_problems.contains(&p));
            assert!(eval_problems.insert(p), "held-out problem {p} repeated");
        }
        // Seeded: the same spec gives the same pairs; another seed gives others.
        let (again, _, _) = synthetic_pairs(&tok, &spec).expect("pairs");
        assert_eq!(again, train);
        let (other, _, _) = synthetic_pairs(&tok, &SyntheticSpec { seed: 12, ..spec }).expect("pairs");
        assert_ne!(other, train);
    }

    #[test]
    fn bad_specs_are_errors() {
        let tok = tokenizer();
        let spec = |digits: Vec<u32>| SyntheticSpec {
            digits,
            ops: vec![ArithOp::Add],
            train_pairs: 4,
            eval_pairs: 0,
            seed: 0,
        };
        let e = synthetic_pairs(&tok, &spec(vec![4])).expect_err("4 digits").to_string();
        assert!(e.contains("1..=3") && e.contains('4'), "{e}");
        assert!(synthetic_pairs(&tok, &spec(vec![])).is_err());
        assert!(parse_op("div").expect_err("div").to_string().contains("`div`"));
    }
}
