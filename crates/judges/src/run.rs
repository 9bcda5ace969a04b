//! Batch judging behind `temper judge`: position-swapped pairwise runs on a bounded thread pool,
//! the JSONL records, and the summary (position consistency, first-slot preference, length bias).
//!
//! Pairs file (JSONL, one object per line, blank lines skipped, unknown keys rejected):
//! `{"id": "q1", "question": "…", "answer_a": "…", "answer_b": "…"}` with optional `"reference"`
//! (reference answer, for the math templates) and, for multi-turn templates, `"question_2"`,
//! `"answer_a_2"`, `"answer_b_2"`, `"reference_2"`. `id` is a string or an integer.

use std::path::Path;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use serde::{Deserialize, Serialize};

use crate::bootstrap::{BootstrapConfig, ConfidenceInterval, bootstrap_ci};
use crate::error::{JudgeError, Result};
use crate::judge::{Judge, PairItem, PairVerdict, SingleItem};
use crate::report::{Id, id_from_json};
use crate::verdict::{Unparseable, Verdict, Winner};

/// How the two orders of a position-swapped pair relate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SwapOutcome {
    /// Both orders pick the same answer (A or B, in the original slots).
    Consistent(Winner),
    /// Both orders say tie.
    Tie,
    /// The orders disagree (including a win in one order and a tie in the other).
    Inconsistent,
    /// At least one order has no usable verdict.
    Unparseable,
}

impl SwapOutcome {
    /// Combines the verdict on (A, B) with the verdict on the swapped pair (B, A).
    pub fn combine(
        first: &std::result::Result<Verdict, Unparseable>,
        swapped: &std::result::Result<Verdict, Unparseable>,
    ) -> Self {
        match (first, swapped) {
            (Ok(v1), Ok(v2)) => {
                let (w1, w2) = (v1.winner(), v2.winner().swapped());
                match (w1, w2) {
                    (Winner::Tie, Winner::Tie) => SwapOutcome::Tie,
                    (a, b) if a == b => SwapOutcome::Consistent(a),
                    _ => SwapOutcome::Inconsistent,
                }
            }
            _ => SwapOutcome::Unparseable,
        }
    }

    /// The pair's final winner: the consistent winner; a tie for `Tie` and — as in MT-bench —
    /// for `Inconsistent`; `None` when unparseable.
    pub fn winner(self) -> Option<Winner> {
        match self {
            SwapOutcome::Consistent(w) => Some(w),
            SwapOutcome::Tie | SwapOutcome::Inconsistent => Some(Winner::Tie),
            SwapOutcome::Unparseable => None,
        }
    }
}

/// Which order the answers were shown in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Order {
    /// Answer A in slot A (as in the file).
    Ab,
    /// Swapped: answer B shown in slot A.
    Ba,
}

/// One judge call in a [`PairRecord`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JudgmentRecord {
    /// Presentation order.
    pub order: Order,
    /// The verdict as the judge wrote it (slots as presented), if it parsed.
    pub verdict: Option<Verdict>,
    /// The winner mapped back to the file's A/B, if it parsed.
    pub winner: Option<Winner>,
    /// Why the reply did not parse, if it did not.
    pub unparseable: Option<Unparseable>,
    /// The raw reply.
    pub reply: String,
}

impl JudgmentRecord {
    fn new(order: Order, v: PairVerdict) -> Self {
        let winner = v.verdict.as_ref().ok().map(|x| match order {
            Order::Ab => x.winner(),
            Order::Ba => x.winner().swapped(),
        });
        Self {
            order,
            verdict: v.verdict.as_ref().ok().copied(),
            winner,
            unparseable: v.verdict.err(),
            reply: v.reply,
        }
    }

    fn parsed(&self) -> std::result::Result<Verdict, Unparseable> {
        self.verdict
            .ok_or_else(|| self.unparseable.clone().unwrap_or(Unparseable::NoVerdict))
    }
}

/// One line of `temper judge`'s output: the verdict for one pair.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PairRecord {
    /// Item id.
    pub id: Id,
    /// Final winner in the file's A/B (see [`SwapOutcome::winner`]); `None` if unparseable or failed.
    pub winner: Option<Winner>,
    /// With `swap`: how the two orders relate.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub swap: Option<SwapOutcome>,
    /// The judge calls, `ab` first.
    pub judgments: Vec<JudgmentRecord>,
    /// A back-end error that stopped this pair (the run goes on).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub error: Option<String>,
}

/// Settings of a batch judging run.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JudgeRunConfig {
    /// Judge each pair in both orders (default true; MT-bench, Zheng et al. 2023, §3.4).
    pub swap: bool,
    /// Pairs judged at once by a bounded pool of threads (default 4; 1 = sequential).
    pub concurrency: usize,
    /// Bootstrap settings for the CIs of the summary rates.
    pub bootstrap: BootstrapConfig,
}

impl Default for JudgeRunConfig {
    fn default() -> Self {
        Self {
            swap: true,
            concurrency: 4,
            bootstrap: BootstrapConfig::default(),
        }
    }
}

impl JudgeRunConfig {
    /// Default settings with the given swap flag and concurrency.
    pub fn new(swap: bool, concurrency: usize) -> Self {
        Self {
            swap,
            concurrency,
            ..Self::default()
        }
    }
}

/// Counts and bias rates over a judging run.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct JudgeSummary {
    /// Pairs judged.
    pub n_pairs: usize,
    /// Final verdicts for A.
    pub a_wins: usize,
    /// Final verdicts for B.
    pub b_wins: usize,
    /// Final ties (including swap-inconsistent pairs).
    pub ties: usize,
    /// Pairs with no final verdict because a reply did not parse.
    pub unparseable_pairs: usize,
    /// Replies that did not parse (out of all judge calls).
    pub unparseable_replies: usize,
    /// Pairs stopped by a back-end error.
    pub failed: usize,
    /// With swap: pairs whose two orders agree on a winner.
    pub consistent: usize,
    /// With swap: pairs where both orders say tie.
    pub consistent_ties: usize,
    /// With swap: pairs whose two orders disagree.
    pub inconsistent: usize,
    /// With swap: (consistent + consistent_ties) / (pairs with both orders parsed).
    pub position_consistency: Option<f64>,
    /// Bootstrap CI of `position_consistency` (resampling pairs).
    pub position_consistency_ci: Option<ConfidenceInterval>,
    /// Among parsed non-tie replies, the fraction that picked whichever answer was shown first
    /// (0.5 = no position bias).
    pub first_slot_preference: Option<f64>,
    /// Bootstrap CI of `first_slot_preference`.
    pub first_slot_preference_ci: Option<ConfidenceInterval>,
    /// P(final winner is the longer answer | final verdict is not a tie and lengths differ),
    /// lengths in characters (Dubois et al. 2024's length bias).
    pub length_bias: Option<f64>,
    /// Bootstrap CI of `length_bias`.
    pub length_bias_ci: Option<ConfidenceInterval>,
    /// Pairs the length-bias rate is computed on.
    pub length_bias_pairs: usize,
}

impl std::fmt::Display for JudgeSummary {
    /// A plain-text summary for the CLI.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let rate = |v: Option<f64>, ci: Option<ConfidenceInterval>| match (v, ci) {
            (Some(v), Some(c)) => format!("{v:.4}  [{:.4}, {:.4}]", c.lo, c.hi),
            (Some(v), None) => format!("{v:.4}"),
            (None, _) => "n/a".to_string(),
        };
        writeln!(
            f,
            "pairs: {}  A: {}  B: {}  tie: {}",
            self.n_pairs, self.a_wins, self.b_wins, self.ties
        )?;
        writeln!(
            f,
            "unparseable: {} pair(s), {} reply(ies)  failed: {}",
            self.unparseable_pairs, self.unparseable_replies, self.failed
        )?;
        if self.consistent + self.consistent_ties + self.inconsistent > 0 {
            writeln!(
                f,
                "swap: consistent {}  tie {}  inconsistent {}",
                self.consistent, self.consistent_ties, self.inconsistent
            )?;
            writeln!(
                f,
                "position consistency:  {}",
                rate(self.position_consistency, self.position_consistency_ci)
            )?;
        }
        writeln!(
            f,
            "first-slot preference: {}",
            rate(self.first_slot_preference, self.first_slot_preference_ci)
        )?;
        writeln!(
            f,
            "length bias:           {} over {} pair(s)",
            rate(self.length_bias, self.length_bias_ci),
            self.length_bias_pairs
        )
    }
}

/// The result of a batch run: one record per pair (in input order) and the summary.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct JudgeRun {
    /// One record per pair, in the input order.
    pub records: Vec<PairRecord>,
    /// Counts and rates.
    pub summary: JudgeSummary,
}

impl JudgeRun {
    /// The final winners as agreement labels (`"A"`, `"B"`, `"tie"`), skipping pairs without one,
    /// so a run can be compared with human labels by [`crate::join`] and [`crate::report`].
    pub fn labels(&self) -> Vec<(Id, crate::label::Label)> {
        self.records
            .iter()
            .filter_map(|r| {
                r.winner
                    .map(|w| (r.id.clone(), crate::label::Label::from(w.as_str())))
            })
            .collect()
    }

    /// The records as JSONL (one line per pair, newline-terminated).
    pub fn to_jsonl(&self) -> String {
        let mut s = String::new();
        for r in &self.records {
            // Serializing plain data structs cannot fail.
            s.push_str(&serde_json::to_string(r).unwrap_or_default());
            s.push('\n');
        }
        s
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPair {
    id: serde_json::Value,
    question: String,
    answer_a: String,
    answer_b: String,
    #[serde(default)]
    reference: Option<String>,
    #[serde(default)]
    question_2: Option<String>,
    #[serde(default)]
    answer_a_2: Option<String>,
    #[serde(default)]
    answer_b_2: Option<String>,
    #[serde(default)]
    reference_2: Option<String>,
}

/// Reads a pairs JSONL file (format in the module doc). Errors name the file and line.
pub fn load_pairs(path: &Path) -> Result<Vec<PairItem>> {
    let text = std::fs::read_to_string(path).map_err(|source| JudgeError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let mut out: Vec<PairItem> = Vec::new();
    let mut seen = std::collections::HashMap::new();
    for (i, line) in text.lines().enumerate() {
        let err = |message: String| JudgeError::Parse {
            path: path.to_path_buf(),
            line: i + 1,
            message,
        };
        if line.trim().is_empty() {
            continue;
        }
        let r: RawPair =
            serde_json::from_str(line).map_err(|e| err(crate::report::json_line_error(&e)))?;
        let id = id_from_json(&r.id)
            .ok_or_else(|| err(format!("`id` must be a string or an integer, got {}", r.id)))?;
        if let Some(prev) = seen.insert(id.clone(), i + 1) {
            return Err(err(format!(
                "duplicate id {id:?} (first seen on line {prev})"
            )));
        }
        out.push(PairItem {
            id,
            question: r.question,
            answer_a: r.answer_a,
            answer_b: r.answer_b,
            reference: r.reference,
            question_2: r.question_2,
            answer_a_2: r.answer_a_2,
            answer_b_2: r.answer_b_2,
            reference_2: r.reference_2,
        });
    }
    Ok(out)
}

fn judge_one<J: Judge + ?Sized>(judge: &J, item: &PairItem, swap: bool) -> PairRecord {
    let mut rec = PairRecord {
        id: item.id.clone(),
        winner: None,
        swap: None,
        judgments: Vec::new(),
        error: None,
    };
    let first = match judge.judge_pair(item) {
        Ok(v) => JudgmentRecord::new(Order::Ab, v),
        Err(e) => {
            rec.error = Some(e.to_string());
            return rec;
        }
    };
    rec.winner = first.winner;
    rec.judgments.push(first);
    if swap {
        match judge.judge_pair(&item.swapped()) {
            Ok(v) => {
                let second = JudgmentRecord::new(Order::Ba, v);
                let outcome = SwapOutcome::combine(&rec.judgments[0].parsed(), &second.parsed());
                rec.swap = Some(outcome);
                rec.winner = outcome.winner();
                rec.judgments.push(second);
            }
            Err(e) => {
                rec.winner = None;
                rec.error = Some(e.to_string());
            }
        }
    }
    rec
}

/// Runs `f` on every item on a bounded pool of `workers` threads; results in input order.
/// A worker that panics leaves `None` in its slot.
pub(crate) fn bounded_map<T: Sync, R: Send>(
    items: &[T],
    workers: usize,
    f: impl Fn(&T) -> R + Sync,
) -> Vec<Option<R>> {
    let workers = workers.clamp(1, items.len().max(1));
    let next = AtomicUsize::new(0);
    let slots: Mutex<Vec<Option<R>>> = Mutex::new((0..items.len()).map(|_| None).collect());
    std::thread::scope(|s| {
        for _ in 0..workers {
            s.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(item) = items.get(i) else { break };
                    let r = f(item);
                    if let Ok(mut g) = slots.lock() {
                        g[i] = Some(r);
                    }
                }
            });
        }
    });
    slots.into_inner().unwrap_or_else(|p| p.into_inner())
}

/// Judges every pair (both orders with `config.swap`) on a bounded pool of `config.concurrency`
/// threads. A back-end error on one pair is recorded in that pair's record and the run goes on.
pub fn judge_items<J: Judge + Sync + ?Sized>(
    items: &[PairItem],
    judge: &J,
    config: &JudgeRunConfig,
) -> JudgeRun {
    let records: Vec<PairRecord> = bounded_map(items, config.concurrency, |item| {
        judge_one(judge, item, config.swap)
    })
    .into_iter()
    .zip(items)
    .map(|(r, item)| {
        r.unwrap_or_else(|| PairRecord {
            id: item.id.clone(),
            winner: None,
            swap: None,
            judgments: vec![],
            error: Some("worker thread panicked".into()),
        })
    })
    .collect();
    let summary = summarize(items, &records, &config.bootstrap);
    JudgeRun { records, summary }
}

/// One line of a single-grading run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GradeRecord {
    /// Item id.
    pub id: Id,
    /// The parsed rating, if the reply had exactly one.
    pub rating: Option<f64>,
    /// Why the reply did not parse, if it did not.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub unparseable: Option<Unparseable>,
    /// The raw reply (empty on error).
    pub reply: String,
    /// A back-end error for this item.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub error: Option<String>,
}

/// Grades every item on a bounded pool of `concurrency` threads; records in input order.
pub fn grade_items<J: Judge + Sync + ?Sized>(
    items: &[SingleItem],
    judge: &J,
    concurrency: usize,
) -> Vec<GradeRecord> {
    bounded_map(items, concurrency, |item| match judge.grade(item) {
        Ok(g) => GradeRecord {
            id: item.id.clone(),
            rating: g.rating.as_ref().ok().copied(),
            unparseable: g.rating.err(),
            reply: g.reply,
            error: None,
        },
        Err(e) => GradeRecord {
            id: item.id.clone(),
            rating: None,
            unparseable: None,
            reply: String::new(),
            error: Some(e.to_string()),
        },
    })
    .into_iter()
    .zip(items)
    .map(|(r, item)| {
        r.unwrap_or_else(|| GradeRecord {
            id: item.id.clone(),
            rating: None,
            unparseable: None,
            reply: String::new(),
            error: Some("worker thread panicked".into()),
        })
    })
    .collect()
}

/// Loads a pairs file and judges it: [`load_pairs`] then [`judge_items`].
pub fn judge_pairs<J: Judge + Sync + ?Sized>(
    pairs_jsonl: &Path,
    judge: &J,
    config: &JudgeRunConfig,
) -> Result<JudgeRun> {
    if config.concurrency == 0 {
        return Err(JudgeError::Config("concurrency must be >= 1".into()));
    }
    config.bootstrap.validate()?;
    Ok(judge_items(&load_pairs(pairs_jsonl)?, judge, config))
}

fn ratio(num: usize, den: usize) -> Option<f64> {
    (den > 0).then(|| num as f64 / den as f64)
}

/// Per-pair contributions to the summary rates (so they can be bootstrapped over pairs).
#[derive(Default, Clone, Copy)]
struct PairRates {
    /// With swap and both orders parsed: were they consistent?
    consistent: Option<bool>,
    /// Decisive final verdict and different lengths: did the longer answer win?
    longer_won: Option<bool>,
    /// Parsed non-tie replies that picked the first slot.
    first_slot: usize,
    /// Parsed non-tie replies.
    decisive: usize,
}

fn rates_over(
    rates: &[PairRates],
    ix: &[usize],
    pick: fn(&PairRates) -> (usize, usize),
) -> Option<f64> {
    let (num, den) = ix.iter().fold((0, 0), |(n, d), &i| {
        let (a, b) = pick(&rates[i]);
        (n + a, d + b)
    });
    ratio(num, den)
}

fn consistency_counts(r: &PairRates) -> (usize, usize) {
    r.consistent.map_or((0, 0), |c| (usize::from(c), 1))
}

fn first_slot_counts(r: &PairRates) -> (usize, usize) {
    (r.first_slot, r.decisive)
}

fn length_counts(r: &PairRates) -> (usize, usize) {
    r.longer_won.map_or((0, 0), |l| (usize::from(l), 1))
}

/// Computes the [`JudgeSummary`] of records judged from `items` (same order), with
/// percentile-bootstrap CIs (resampling pairs) for the three rates.
pub fn summarize(
    items: &[PairItem],
    records: &[PairRecord],
    bootstrap: &BootstrapConfig,
) -> JudgeSummary {
    let mut s = JudgeSummary {
        n_pairs: records.len(),
        a_wins: 0,
        b_wins: 0,
        ties: 0,
        unparseable_pairs: 0,
        unparseable_replies: 0,
        failed: 0,
        consistent: 0,
        consistent_ties: 0,
        inconsistent: 0,
        position_consistency: None,
        position_consistency_ci: None,
        first_slot_preference: None,
        first_slot_preference_ci: None,
        length_bias: None,
        length_bias_ci: None,
        length_bias_pairs: 0,
    };
    let mut rates = Vec::with_capacity(records.len());
    for (item, r) in items.iter().zip(records) {
        let mut pr = PairRates::default();
        if r.error.is_some() {
            s.failed += 1;
        }
        for j in &r.judgments {
            match &j.verdict {
                None => s.unparseable_replies += 1,
                Some(v) => match v.winner() {
                    Winner::A => {
                        pr.first_slot += 1;
                        pr.decisive += 1;
                    }
                    Winner::B => pr.decisive += 1,
                    Winner::Tie => {}
                },
            }
        }
        match r.swap {
            Some(SwapOutcome::Consistent(_)) => {
                s.consistent += 1;
                pr.consistent = Some(true);
            }
            Some(SwapOutcome::Tie) => {
                s.consistent_ties += 1;
                pr.consistent = Some(true);
            }
            Some(SwapOutcome::Inconsistent) => {
                s.inconsistent += 1;
                pr.consistent = Some(false);
            }
            _ => {}
        }
        match r.winner {
            Some(Winner::A) => s.a_wins += 1,
            Some(Winner::B) => s.b_wins += 1,
            Some(Winner::Tie) => s.ties += 1,
            None if r.error.is_none() => s.unparseable_pairs += 1,
            None => {}
        }
        let (la, lb) = (item.answer_a.chars().count(), item.answer_b.chars().count());
        if la != lb {
            let longer = if la > lb { Winner::A } else { Winner::B };
            if let Some(w @ (Winner::A | Winner::B)) = r.winner {
                s.length_bias_pairs += 1;
                pr.longer_won = Some(w == longer);
            }
        }
        rates.push(pr);
    }
    let all: Vec<usize> = (0..rates.len()).collect();
    let n = rates.len();
    let with_ci = |pick: fn(&PairRates) -> (usize, usize)| {
        let value = rates_over(&rates, &all, pick);
        let ci = value.and_then(|_| bootstrap_ci(n, bootstrap, |ix| rates_over(&rates, ix, pick)));
        (value, ci)
    };
    (s.position_consistency, s.position_consistency_ci) = with_ci(consistency_counts);
    (s.first_slot_preference, s.first_slot_preference_ci) = with_ci(first_slot_counts);
    (s.length_bias, s.length_bias_ci) = with_ci(length_counts);
    s
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicUsize;
    use std::time::Duration;

    use super::*;
    use crate::judge::LlmJudge;
    use crate::prompts::{PromptKind, PromptTemplate};
    use temper_chat::{ChatBackend, ChatError, GenerationParams, Message};

    fn pair(id: &str, a: &str, b: &str) -> PairItem {
        PairItem {
            id: id.into(),
            question: "Which is better?".into(),
            answer_a: a.into(),
            answer_b: b.into(),
            reference: None,
            question_2: None,
            answer_a_2: None,
            answer_b_2: None,
            reference_2: None,
        }
    }

    /// The answers as shown in slots A and B of the seed prompt.
    fn slots(messages: &[Message]) -> (String, String) {
        let u = &messages[1].content;
        let grab = |start: &str, end: &str| -> String {
            let s = u.find(start).map(|i| i + start.len()).unwrap_or(0);
            let e = u[s..].find(end).map(|i| s + i).unwrap_or(u.len());
            u[s..e].trim().to_string()
        };
        (
            grab(
                "[The Start of Assistant A's Answer]",
                "[The End of Assistant A's Answer]",
            ),
            grab(
                "[The Start of Assistant B's Answer]",
                "[The End of Assistant B's Answer]",
            ),
        )
    }

    /// A fake judge model whose reply is a function of the two shown answers.
    struct Scripted<F>(F);
    impl<F: Fn(&str, &str) -> temper_chat::Result<String>> ChatBackend for Scripted<F> {
        fn complete(
            &self,
            messages: &[Message],
            _: &GenerationParams,
        ) -> temper_chat::Result<String> {
            let (a, b) = slots(messages);
            (self.0)(&a, &b)
        }
    }

    #[test]
    fn fair_judge_is_consistent_under_swap() {
        // Prefers the answer containing "good"; equal → tie.
        let judge = LlmJudge::new(Scripted(|a: &str, b: &str| {
            Ok(match (a.contains("good"), b.contains("good")) {
                (true, false) => "A wins [[9 4]]".to_string(),
                (false, true) => "B wins [[3, 8]]".to_string(),
                _ => "same [[5 5]]".to_string(),
            })
        }));
        let items = [
            pair("1", "good", "bad answer"),
            pair("2", "bad", "good one"),
            pair("3", "meh", "meh"),
        ];
        let run = judge_items(&items, &judge, &JudgeRunConfig::new(true, 2));
        let winners: Vec<Option<Winner>> = run.records.iter().map(|r| r.winner).collect();
        assert_eq!(
            winners,
            [Some(Winner::A), Some(Winner::B), Some(Winner::Tie)]
        );
        let swaps: Vec<Option<SwapOutcome>> = run.records.iter().map(|r| r.swap).collect();
        assert_eq!(
            swaps,
            [
                Some(SwapOutcome::Consistent(Winner::A)),
                Some(SwapOutcome::Consistent(Winner::B)),
                Some(SwapOutcome::Tie)
            ]
        );
        let s = &run.summary;
        assert_eq!(
            (
                s.a_wins,
                s.b_wins,
                s.ties,
                s.consistent,
                s.consistent_ties,
                s.inconsistent
            ),
            (1, 1, 1, 2, 1, 0)
        );
        assert_eq!(s.position_consistency, Some(1.0));
        let ci = s.position_consistency_ci.expect("ci");
        assert_eq!((ci.lo, ci.hi), (1.0, 1.0));
        // 4 decisive replies, 2 picked the first slot.
        assert_eq!(s.first_slot_preference, Some(0.5));
        // Pair 1: A "good" (4 chars) beat the longer B; pair 2: B "good one" (8) beat the shorter A.
        assert_eq!((s.length_bias, s.length_bias_pairs), (Some(0.5), 2));
        // Resampling 2 pairs: the rate is 0, 0.5 or 1, so the 95% interval spans [0, 1].
        let ci = s.length_bias_ci.expect("ci");
        assert_eq!((ci.lo, ci.hi), (0.0, 1.0));
        // Resamples made only of the tied pair 3 (probability 1/27) have no eligible pair.
        assert!((900..1000).contains(&ci.valid_resamples), "{ci:?}");
        let second = &run.records[0].judgments[1];
        assert_eq!(second.order, Order::Ba);
        assert_eq!(second.verdict, Some(Verdict::Scores { a: 3.0, b: 8.0 }));
        assert_eq!(second.winner, Some(Winner::A));
        let line = run.to_jsonl();
        assert_eq!(line.lines().count(), 3);
        let first: serde_json::Value =
            serde_json::from_str(line.lines().next().unwrap_or("")).unwrap_or_default();
        assert_eq!(first["winner"], "A");
        assert_eq!(first["swap"]["consistent"], "A");
        assert_eq!(first["judgments"][1]["order"], "ba");
        let text = run.summary.to_string();
        assert!(
            text.starts_with(
                "pairs: 3  A: 1  B: 1  tie: 1\nunparseable: 0 pair(s), 0 reply(ies)  failed: 0\n"
            ),
            "{text}"
        );
        assert!(
            text.contains("position consistency:  1.0000  [1.0000, 1.0000]\n"),
            "{text}"
        );
        assert!(
            text.contains("length bias:           0.5000  [0.0000, 1.0000] over 2 pair(s)\n"),
            "{text}"
        );
        let labels: Vec<String> = run
            .labels()
            .iter()
            .map(|(id, l)| format!("{id}={l}"))
            .collect();
        assert_eq!(labels, ["1=A", "2=B", "3=tie"]);
    }

    #[test]
    fn first_slot_judge_is_inconsistent_and_ambiguous_replies_are_unparseable() {
        let always_a = LlmJudge::new(Scripted(|_: &str, _: &str| Ok("[[A]]".to_string())));
        let items = [pair("1", "x", "yy"), pair("2", "zzz", "w")];
        let run = judge_items(&items, &always_a, &JudgeRunConfig::default());
        assert!(run.records.iter().all(|r| r.swap == Some(SwapOutcome::Inconsistent) && r.winner == Some(Winner::Tie)));
        assert_eq!(run.summary.position_consistency, Some(0.0));
        assert_eq!(run.summary.first_slot_preference, Some(1.0));
        assert_eq!(run.summary.length_bias, None);

        let no_swap = judge_items(&items, &always_a, &JudgeRunConfig::new(false, 1));
        assert_eq!(no_swap.summary.a_wins, 2);
        assert_eq!(no_swap.summary.position_consistency, None);
        // Pair 1: A is shorter; pair 2: A is longer.
        assert_eq!(no_swap.summary.length_bias, Some(0.5));

        let hedging = LlmJudge::new(Scripted(|a: &str, _: &str| {
            if a == "boom" {
                Err(ChatError::Backend("model crashed".into()))
            } else {
                Ok("Either [[A]] or [[B]], hard to say".to_string())
            }
        }));
        let items = [pair("1", "x", "y"), pair("2", "boom", "y")];
        let run = judge_items(&items, &hedging, &JudgeRunConfig::default());
        assert_eq!(run.records[0].winner, None);
        assert_eq!(run.records[0].swap, Some(SwapOutcome::Unparseable));
        assert_eq!(
            run.records[0].judgments[0].unparseable,
            Some(Unparseable::Conflicting(vec![
                "[[A]]".into(),
                "[[B]]".into()
            ]))
        );
        assert_eq!(
            run.records[1].error.as_deref(),
            Some("chat back end: model crashed")
        );
        let s = &run.summary;
        assert_eq!(
            (
                s.unparseable_pairs,
                s.unparseable_replies,
                s.failed,
                s.a_wins
            ),
            (1, 2, 1, 0)
        );
    }

    #[test]
    fn pool_never_exceeds_concurrency() {
        let (now, peak) = (AtomicUsize::new(0), AtomicUsize::new(0));
        let judge = LlmJudge::new(Scripted(|_: &str, _: &str| {
            let n = now.fetch_add(1, Ordering::SeqCst) + 1;
            peak.fetch_max(n, Ordering::SeqCst);
            std::thread::sleep(Duration::from_millis(30));
            now.fetch_sub(1, Ordering::SeqCst);
            Ok("[[B]]".to_string())
        }));
        let items: Vec<PairItem> = (0..8).map(|i| pair(&i.to_string(), "a", "b")).collect();
        let run = judge_items(&items, &judge, &JudgeRunConfig::new(false, 3));
        assert_eq!(run.summary.b_wins, 8);
        let ids: Vec<&str> = run.records.iter().map(|r| r.id.as_str()).collect();
        assert_eq!(ids, ["0", "1", "2", "3", "4", "5", "6", "7"]);
        let p = peak.load(Ordering::SeqCst);
        assert!((2..=3).contains(&p), "peak in-flight {p}");
    }

    #[test]
    fn grading_and_pairs_file_errors() {
        let judge = LlmJudge::new(Scripted(|_: &str, _: &str| Ok("Rating: [[6]]".to_string())));
        let item = SingleItem {
            id: "s".into(),
            question: "q".into(),
            answer: "a".into(),
            reference: None,
            question_2: None,
            answer_2: None,
            reference_2: None,
        };
        assert!(matches!(judge.grade(&item), Err(JudgeError::Config(_))));
        let single = PromptTemplate {
            name: "s".into(),
            kind: PromptKind::Single,
            system_prompt: "grade".into(),
            prompt_template: "{question} / {answer}".into(),
            output_format: "[[rating]]".into(),
            description: String::new(),
            category: String::new(),
        };
        assert!(
            LlmJudge::new(Scripted(|_: &str, _: &str| Ok(String::new())))
                .with_pair_template(single.clone())
                .is_err()
        );
        let judge = judge.with_single_template(single).expect("single template");
        assert_eq!(judge.grade(&item).map(|g| g.rating).ok(), Some(Ok(6.0)));

        let dir = std::env::temp_dir().join(format!("temper-judges-pairs-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("mkdir");
        let p = dir.join("pairs.jsonl");
        std::fs::write(&p, "{\"id\": 1, \"question\": \"q\", \"answer_a\": \"a\", \"answer_b\": \"b\", \"reference\": \"r\"}\n\n{\"id\": \"2\", \"question\": \"q\", \"answer_a\": \"a\"}\n")
            .expect("write");
        let e = load_pairs(&p).expect_err("missing answer_b").to_string();
        assert!(
            e.starts_with(&format!("{}:3: missing field `answer_b`", p.display())),
            "{e}"
        );
        std::fs::write(&p, "{\"id\": 1, \"question\": \"q\", \"answer_a\": \"a\", \"answer_b\": \"b\", \"reference\": \"r\"}\n").expect("write");
        let got = load_pairs(&p).expect("loads");
        assert_eq!(got[0].id, "1");
        assert_eq!(got[0].field("ref_answer_1"), Some("r"));
        assert_eq!(got[0].swapped().answer_a, "b");
        assert!(judge_pairs(&p, &judge, &JudgeRunConfig::new(false, 0)).is_err());
        let _ = std::fs::remove_dir_all(&dir);

        let items: Vec<SingleItem> = ["a", "b", "c"]
            .iter()
            .map(|id| SingleItem {
                id: (*id).into(),
                ..item.clone()
            })
            .collect();
        let graded = grade_items(&items, &judge, 2);
        let got: Vec<(&str, Option<f64>)> =
            graded.iter().map(|g| (g.id.as_str(), g.rating)).collect();
        assert_eq!(got, [("a", Some(6.0)), ("b", Some(6.0)), ("c", Some(6.0))]);
    }
}
