//! The seeded arithmetic problem generator: a training stream, a held-out split and a worked-example split,
//! three fixed hash partitions of the problem space that never overlap.

use std::collections::HashSet;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::error::{Result, TaskError};
use crate::rng::SplitMix64;

/// An arithmetic operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ArithOp {
    /// `a + b`.
    Add,
    /// `a - b`.
    Sub,
    /// `a * b`.
    Mul,
}

impl ArithOp {
    /// The symbol used in questions.
    pub fn symbol(self) -> char {
        match self {
            ArithOp::Add => '+',
            ArithOp::Sub => '-',
            ArithOp::Mul => '*',
        }
    }

    /// `a op b`.
    pub fn apply(self, a: i64, b: i64) -> i64 {
        match self {
            ArithOp::Add => a + b,
            ArithOp::Sub => a - b,
            ArithOp::Mul => a * b,
        }
    }

    /// The operation's code in the split hash.
    fn code(self) -> u64 {
        match self {
            ArithOp::Add => 1,
            ArithOp::Sub => 2,
            ArithOp::Mul => 3,
        }
    }
}

/// Default number of digits: 2.
fn two() -> u32 {
    2
}

/// Default operands per problem: 2 (`a op b`).
fn two_terms() -> u32 {
    2
}

/// Largest number of operands per problem.
pub const MAX_TERMS: u32 = 5;

/// Default operations: all three.
fn all_ops() -> Vec<ArithOp> {
    vec![ArithOp::Add, ArithOp::Sub, ArithOp::Mul]
}

/// What problems the arithmetic task generates.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ArithmeticConfig {
    /// Digits per operand, the difficulty knob (1..=9; 1 means 0..=9, d > 1 means exactly d digits). Default 2.
    #[serde(default = "two")]
    pub digits: u32,
    /// Operations drawn uniformly. Default: add, sub, mul.
    #[serde(default = "all_ops")]
    pub ops: Vec<ArithOp>,
    /// Whether subtraction may go below zero; when false the larger operand comes first. Default false. (With
    /// more than two terms results may be negative either way.)
    #[serde(default)]
    pub allow_negative: bool,
    /// Operands per problem, 2..=5 (default 2: `a op b`). With 3 or more the problem is an expression such as
    /// `What is 23 + 58 * 7 - 12?` whose answer follows the usual precedence (`*` before `+` and `-`, then left
    /// to right): the harder evaluation setting. More than two terms need `digits <= 3` (answers fit in `i64`).
    #[serde(default = "two_terms")]
    pub terms: u32,
}

impl Default for ArithmeticConfig {
    fn default() -> ArithmeticConfig {
        ArithmeticConfig {
            digits: two(),
            ops: all_ops(),
            allow_negative: false,
            terms: two_terms(),
        }
    }
}

/// The operations and operands after `a op b` of a longer expression (`None` past its end).
pub type Tail = [Option<(ArithOp, i64)>; (MAX_TERMS - 2) as usize];

/// One arithmetic problem `a op b = answer`, or a longer expression `a op b op₂ c … = answer`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ArithmeticProblem {
    /// Left operand.
    pub a: i64,
    /// The operation.
    pub op: ArithOp,
    /// Right operand.
    pub b: i64,
    /// The value of the expression, with `*` before `+` and `-`.
    pub answer: i64,
    /// Further operations and operands (all `None` for `a op b`).
    pub tail: Tail,
}

impl ArithmeticProblem {
    /// The two-operand problem `a op b`.
    pub fn binary(a: i64, op: ArithOp, b: i64) -> ArithmeticProblem {
        ArithmeticProblem {
            a,
            op,
            b,
            answer: op.apply(a, b),
            tail: [None; (MAX_TERMS - 2) as usize],
        }
    }

    /// The expression `a op b` followed by `tail`, its answer computed with precedence.
    pub fn expression(a: i64, op: ArithOp, b: i64, tail: Tail) -> ArithmeticProblem {
        let mut p = ArithmeticProblem::binary(a, op, b);
        p.tail = tail;
        p.answer = p.evaluate();
        p
    }

    /// The value with the usual precedence: products first, then sums and differences left to right.
    fn evaluate(&self) -> i64 {
        // Each additive term is a running product; `sign` is the operator before the term.
        let mut total = 0i64;
        let (mut sign, mut term) = (1i64, self.a);
        for (op, x) in std::iter::once((self.op, self.b)).chain(self.tail.iter().flatten().copied())
        {
            match op {
                ArithOp::Mul => term *= x,
                ArithOp::Add | ArithOp::Sub => {
                    total += sign * term;
                    sign = if op == ArithOp::Add { 1 } else { -1 };
                    term = x;
                }
            }
        }
        total + sign * term
    }

    /// The expression as written, e.g. `23 + 58 * 7`.
    pub fn expression_text(&self) -> String {
        let mut s = format!("{} {} {}", self.a, self.op.symbol(), self.b);
        for (op, x) in self.tail.iter().flatten() {
            s += &format!(" {} {x}", op.symbol());
        }
        s
    }

    /// The question, e.g. `What is 23 + 58?`.
    pub fn question(&self) -> String {
        format!("What is {}?", self.expression_text())
    }

    /// The reference answer as text, e.g. `81`.
    pub fn reference(&self) -> String {
        self.answer.to_string()
    }

    /// Whether the problem belongs to the held-out split. The split is a fixed hash partition of the problem
    /// space (about 1 in [`HELD_OUT_ONE_IN`]), independent of seeds and sizes, so no training stream can ever
    /// produce a held-out problem.
    pub fn is_held_out(&self) -> bool {
        self.split_hash().is_multiple_of(HELD_OUT_ONE_IN)
    }

    /// Whether the problem belongs to the worked-example split: another fixed hash partition (about 1 in
    /// [`HELD_OUT_ONE_IN`]), disjoint from both the held-out split and every training stream, so a one-shot
    /// example shown in a prompt is never a training or held-out question.
    pub fn is_example(&self) -> bool {
        self.split_hash() % HELD_OUT_ONE_IN == 1
    }

    /// The seed-independent hash the splits are cut from.
    fn split_hash(&self) -> u64 {
        let key = (self.a as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15)
            ^ (self.b as u64).wrapping_mul(0xC2B2_AE3D_27D4_EB4F)
            ^ self.op.code().wrapping_mul(0x1656_67B1_9E37_79F9);
        // Two-operand problems hash as before; each further term is mixed in.
        let key = self.tail.iter().flatten().fold(key, |k, (op, x)| {
            SplitMix64::new(k ^ op.code()).next_u64()
                ^ (*x as u64).wrapping_mul(0xD6E8_FEB8_6659_FD93)
        });
        SplitMix64::new(key).next_u64()
    }
}

impl fmt::Display for ArithmeticProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} = {}", self.expression_text(), self.answer)
    }
}

/// About one problem in this many is held out.
pub const HELD_OUT_ONE_IN: u64 = 10;

/// Salt of the training stream of a seed.
const TRAIN_STREAM: u64 = 0x7472_6169_6e00_0001;
/// Salt of the held-out stream of a seed.
const HELD_OUT_STREAM: u64 = 0x6865_6c64_6f75_7402;
/// Salt of the worked-example stream of a seed.
const EXAMPLE_STREAM: u64 = 0x6578_616d_706c_6503;

/// The seeded arithmetic task: a training stream and a held-out split that never overlap.
///
/// ```
/// use temper_tasks::{ArithmeticConfig, ArithmeticTask};
/// let task = ArithmeticTask::new(ArithmeticConfig::default(), 7)?;
/// let train = task.train(100);
/// let test = task.held_out(20)?;
/// assert!(test.iter().all(|p| !train.contains(p)));
/// assert_eq!(train, ArithmeticTask::new(ArithmeticConfig::default(), 7)?.train(100));
/// # Ok::<(), temper_tasks::TaskError>(())
/// ```
#[derive(Debug, Clone)]
pub struct ArithmeticTask {
    config: ArithmeticConfig,
    seed: u64,
}

impl ArithmeticTask {
    /// Checks `config` (`digits` in 1..=9, at least one op) and keeps the seed.
    pub fn new(config: ArithmeticConfig, seed: u64) -> Result<ArithmeticTask> {
        if !(1..=9).contains(&config.digits) {
            return Err(TaskError::InvalidConfig {
                field: "digits".to_string(),
                message: format!("must be in 1..=9, got {}", config.digits),
            });
        }
        if !(2..=MAX_TERMS).contains(&config.terms) {
            return Err(TaskError::InvalidConfig {
                field: "terms".to_string(),
                message: format!("must be in 2..={MAX_TERMS}, got {}", config.terms),
            });
        }
        if config.terms > 2 && config.digits > 3 {
            return Err(TaskError::InvalidConfig {
                field: "digits".to_string(),
                message: format!(
                    "must be at most 3 with {} terms (answers must fit in 64 bits), got {}",
                    config.terms, config.digits
                ),
            });
        }
        if config.ops.is_empty() {
            return Err(TaskError::InvalidConfig {
                field: "ops".to_string(),
                message: "is empty".to_string(),
            });
        }
        Ok(ArithmeticTask { config, seed })
    }

    /// The config.
    pub fn config(&self) -> &ArithmeticConfig {
        &self.config
    }

    /// The first `n` problems of the training stream (drawn with replacement, never held out, never a worked
    /// example).
    pub fn train(&self, n: usize) -> Vec<ArithmeticProblem> {
        let mut rng = SplitMix64::new(self.seed ^ TRAIN_STREAM);
        let mut out = Vec::with_capacity(n);
        while out.len() < n {
            let p = self.draw(&mut rng);
            if !p.is_held_out() && !p.is_example() {
                out.push(p);
            }
        }
        out
    }

    /// `shots` worked examples for each of `questions`, from the example split ([`ArithmeticProblem::is_example`])
    /// and their own seed stream: distinct within a prompt, and each with an answer different from its question's,
    /// so copying the example's answer is always wrong. Deterministic in the seed and the questions.
    /// Errors when the example split cannot supply them (e.g. one digit and one op with several shots).
    ///
    /// ```
    /// use temper_tasks::{ArithmeticConfig, ArithmeticTask};
    /// let task = ArithmeticTask::new(ArithmeticConfig::default(), 7)?;
    /// let questions = task.held_out(5)?;
    /// let shots = task.examples_for(&questions, 2)?;
    /// for (q, ex) in questions.iter().zip(&shots) {
    ///     assert_eq!(ex.len(), 2);
    ///     assert!(ex.iter().all(|e| e.is_example() && e.answer != q.answer));
    /// }
    /// # Ok::<(), temper_tasks::TaskError>(())
    /// ```
    pub fn examples_for(
        &self,
        questions: &[ArithmeticProblem],
        shots: usize,
    ) -> Result<Vec<Vec<ArithmeticProblem>>> {
        let mut rng = SplitMix64::new(self.seed ^ EXAMPLE_STREAM);
        questions
            .iter()
            .map(|q| {
                let picked = self.draw_distinct(&mut rng, shots, |e| e.is_example() && e.answer != q.answer);
                if picked.len() < shots {
                    return Err(TaskError::InvalidInput {
                        what: "ArithmeticTask::examples_for",
                        message: format!(
                            "found only {} worked examples for `{}` with {} digit(s) and ops {:?}, asked for {shots}",
                            picked.len(),
                            q.question(),
                            self.config.digits,
                            self.config.ops
                        ),
                    });
                }
                Ok(picked)
            })
            .collect()
    }

    /// `n` distinct held-out problems from their own seed stream. Errors when the problem space has fewer than
    /// `n` held-out problems to find (e.g. one digit and one op).
    pub fn held_out(&self, n: usize) -> Result<Vec<ArithmeticProblem>> {
        let mut rng = SplitMix64::new(self.seed ^ HELD_OUT_STREAM);
        let out = self.draw_distinct(&mut rng, n, ArithmeticProblem::is_held_out);
        if out.len() < n {
            return Err(TaskError::InvalidInput {
                what: "ArithmeticTask::held_out",
                message: format!(
                    "found only {} distinct held-out problems with {} digit(s) and ops {:?}, asked for {n}",
                    out.len(),
                    self.config.digits,
                    self.config.ops
                ),
            });
        }
        Ok(out)
    }

    /// Up to `n` distinct problems from `rng` that `accept` takes, in draw order, giving up after
    /// `10_000 + 1_000·n` draws (a problem space too small for `n` returns fewer).
    fn draw_distinct(
        &self,
        rng: &mut SplitMix64,
        n: usize,
        accept: impl Fn(&ArithmeticProblem) -> bool,
    ) -> Vec<ArithmeticProblem> {
        let mut seen = HashSet::new();
        let mut out = Vec::with_capacity(n);
        for _ in 0..10_000 + 1_000 * n {
            if out.len() == n {
                break;
            }
            let p = self.draw(rng);
            if accept(&p) && seen.insert(p) {
                out.push(p);
            }
        }
        out
    }

    /// One problem from `rng`.
    fn draw(&self, rng: &mut SplitMix64) -> ArithmeticProblem {
        let d = self.config.digits;
        let (lo, hi) = if d == 1 {
            (0, 9)
        } else {
            (10u64.pow(d - 1), 10u64.pow(d) - 1)
        };
        let op = self.config.ops[rng.range(0, self.config.ops.len() as u64 - 1) as usize];
        // Operands are below 10^9, so they and their products fit in i64.
        let mut a = rng.range(lo, hi) as i64;
        let mut b = rng.range(lo, hi) as i64;
        if self.config.terms > 2 {
            let mut tail: Tail = [None; (MAX_TERMS - 2) as usize];
            for slot in tail.iter_mut().take(self.config.terms as usize - 2) {
                let op = self.config.ops[rng.range(0, self.config.ops.len() as u64 - 1) as usize];
                *slot = Some((op, rng.range(lo, hi) as i64));
            }
            return ArithmeticProblem::expression(a, op, b, tail);
        }
        if op == ArithOp::Sub && !self.config.allow_negative && a < b {
            std::mem::swap(&mut a, &mut b);
        }
        ArithmeticProblem::binary(a, op, b)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generator_is_deterministic_and_seed_dependent() -> Result<()> {
        let task = ArithmeticTask::new(ArithmeticConfig::default(), 42)?;
        assert_eq!(task.train(50), task.train(50));
        assert_eq!(task.train(50)[..20], task.train(20)[..]);
        assert_eq!(task.held_out(30)?, task.held_out(30)?);
        let other = ArithmeticTask::new(ArithmeticConfig::default(), 43)?;
        assert_ne!(task.train(50), other.train(50));
        Ok(())
    }

    #[test]
    fn problems_respect_the_config() -> Result<()> {
        for digits in 1..=4u32 {
            for allow_negative in [false, true] {
                let config = ArithmeticConfig {
                    digits,
                    ops: all_ops(),
                    allow_negative,
                    terms: 2,
                };
                let task = ArithmeticTask::new(config, u64::from(digits))?;
                let (lo, hi) = if digits == 1 {
                    (0, 9)
                } else {
                    (10i64.pow(digits - 1), 10i64.pow(digits) - 1)
                };
                let mut ops = HashSet::new();
                for p in task.train(300) {
                    assert!(
                        (lo..=hi).contains(&p.a) && (lo..=hi).contains(&p.b),
                        "{p} with {digits} digits"
                    );
                    assert_eq!(p.answer, p.op.apply(p.a, p.b));
                    assert!(allow_negative || p.answer >= 0, "{p}");
                    assert_eq!(
                        p.question(),
                        format!("What is {} {} {}?", p.a, p.op.symbol(), p.b)
                    );
                    ops.insert(p.op);
                }
                assert_eq!(ops.len(), 3, "all ops drawn with {digits} digits");
            }
        }
        Ok(())
    }

    #[test]
    fn longer_expressions_follow_precedence() -> Result<()> {
        use ArithOp::{Add, Mul, Sub};
        let t = |rest: &[(ArithOp, i64)]| {
            let mut tail: Tail = [None; (MAX_TERMS - 2) as usize];
            for (slot, x) in tail.iter_mut().zip(rest) {
                *slot = Some(*x);
            }
            tail
        };
        let cases = [
            (
                ArithmeticProblem::expression(23, Add, 58, t(&[(Mul, 7), (Sub, 12)])),
                "23 + 58 * 7 - 12",
                417,
            ),
            (
                ArithmeticProblem::expression(2, Mul, 3, t(&[(Add, 4), (Mul, 5)])),
                "2 * 3 + 4 * 5",
                26,
            ),
            (
                ArithmeticProblem::expression(10, Sub, 4, t(&[(Sub, 3)])),
                "10 - 4 - 3",
                3,
            ),
            (
                ArithmeticProblem::expression(5, Sub, 2, t(&[(Mul, 3), (Add, 1), (Mul, 2)])),
                "5 - 2 * 3 + 1 * 2",
                1,
            ),
            (ArithmeticProblem::binary(6, Sub, 9), "6 - 9", -3),
        ];
        for (p, text, answer) in cases {
            assert_eq!(
                (p.expression_text(), p.answer),
                (text.to_string(), answer),
                "{p}"
            );
        }
        let config = ArithmeticConfig {
            digits: 2,
            terms: 4,
            ..ArithmeticConfig::default()
        };
        let task = ArithmeticTask::new(config, 3)?;
        let held = task.held_out(50)?;
        let train: HashSet<_> = task.train(2_000).into_iter().collect();
        assert!(
            held.iter()
                .all(|p| p.tail.iter().flatten().count() == 2 && !train.contains(p))
        );
        assert!(
            held.iter()
                .all(|p| p.question().matches(['+', '-', '*']).count() == 3)
        );
        // The two-operand stream is unchanged by the new setting.
        assert_eq!(
            ArithmeticTask::new(ArithmeticConfig::default(), 3)?.train(5)[0].tail,
            [None; 3]
        );
        for (digits, terms) in [(2, 6), (4, 3), (2, 1)] {
            let bad = ArithmeticConfig {
                digits,
                terms,
                ..ArithmeticConfig::default()
            };
            assert!(
                ArithmeticTask::new(bad, 0).is_err(),
                "digits {digits}, terms {terms}"
            );
        }
        Ok(())
    }

    #[test]
    fn splits_are_disjoint_and_held_out_is_distinct() -> Result<()> {
        for (digits, n_test) in [(1, 20), (2, 200), (3, 500)] {
            let config = ArithmeticConfig {
                digits,
                ..ArithmeticConfig::default()
            };
            for seed in [0, 1, 2] {
                let task = ArithmeticTask::new(config.clone(), seed)?;
                let train: HashSet<_> = task.train(5_000).into_iter().collect();
                let test = task.held_out(n_test)?;
                assert_eq!(
                    test.iter().collect::<HashSet<_>>().len(),
                    n_test,
                    "held-out has duplicates"
                );
                assert!(
                    test.iter().all(|p| !train.contains(p)),
                    "overlap with {digits} digits, seed {seed}"
                );
                assert!(test.iter().all(ArithmeticProblem::is_held_out));
            }
        }
        Ok(())
    }

    #[test]
    fn held_out_fraction_is_about_one_in_ten() -> Result<()> {
        let task = ArithmeticTask::new(
            ArithmeticConfig {
                digits: 3,
                ..ArithmeticConfig::default()
            },
            5,
        )?;
        let mut rng = SplitMix64::new(99);
        let n = 20_000;
        let held = (0..n).filter(|_| task.draw(&mut rng).is_held_out()).count();
        let frac = held as f64 / n as f64;
        assert!((frac - 0.1).abs() < 0.01, "held-out fraction {frac}");
        Ok(())
    }

    #[test]
    fn too_small_a_space_is_an_error() -> Result<()> {
        let config = ArithmeticConfig {
            digits: 1,
            ops: vec![ArithOp::Add],
            allow_negative: false,
            terms: 2,
        };
        let err = ArithmeticTask::new(config, 0)?
            .held_out(60)
            .expect_err("at most 100 add problems exist");
        assert!(
            err.to_string()
                .starts_with("ArithmeticTask::held_out: found only "),
            "{err}"
        );
        let bad = ArithmeticConfig {
            digits: 10,
            ..ArithmeticConfig::default()
        };
        assert_eq!(
            ArithmeticTask::new(bad, 0)
                .expect_err("10 digits")
                .to_string(),
            "field `digits`: must be in 1..=9, got 10"
        );
        Ok(())
    }

    #[test]
    fn worked_examples_come_from_a_third_split_and_never_give_the_answer() -> Result<()> {
        for (digits, n_test) in [(1, 20), (2, 200)] {
            let config = ArithmeticConfig {
                digits,
                ..ArithmeticConfig::default()
            };
            for seed in [0, 1, 2] {
                let task = ArithmeticTask::new(config.clone(), seed)?;
                let train_list = task.train(3_000);
                let train: HashSet<_> = train_list.iter().copied().collect();
                let test = task.held_out(n_test)?;
                let test_set: HashSet<_> = test.iter().copied().collect();
                assert!(
                    train_list.iter().all(|p| !p.is_example()),
                    "a training problem is an example"
                );
                for questions in [&train_list[..500], &test[..]] {
                    let shots = task.examples_for(questions, 2)?;
                    assert_eq!(shots, task.examples_for(questions, 2)?, "deterministic");
                    assert_eq!(shots.len(), questions.len());
                    for (q, ex) in questions.iter().zip(&shots) {
                        assert_eq!(ex.len(), 2);
                        assert_ne!(ex[0], ex[1], "examples of one prompt are distinct");
                        for e in ex {
                            assert!(e.is_example() && !e.is_held_out(), "{e}");
                            assert!(
                                !train.contains(e) && !test_set.contains(e),
                                "{e} is also a question"
                            );
                            assert_ne!(e.answer, q.answer, "{e} gives away the answer of {q}");
                        }
                    }
                    // Examples vary across prompts instead of repeating one fixed answer.
                    let answers: HashSet<i64> = shots.iter().flatten().map(|e| e.answer).collect();
                    assert!(
                        answers.len() >= 5,
                        "{digits} digits: only {} example answers",
                        answers.len()
                    );
                }
            }
        }
        // One digit, one op: the example split holds about 10 of the 100 problems, so 30 shots cannot be found.
        let small = ArithmeticTask::new(
            ArithmeticConfig {
                digits: 1,
                ops: vec![ArithOp::Add],
                allow_negative: false,
                terms: 2,
            },
            0,
        )?;
        let q = small.train(1);
        assert_eq!(small.examples_for(&q, 0)?, vec![Vec::new()]);
        let err = small.examples_for(&q, 30).expect_err("too few examples");
        assert!(
            err.to_string()
                .starts_with("ArithmeticTask::examples_for: found only "),
            "{err}"
        );
        Ok(())
    }
}
