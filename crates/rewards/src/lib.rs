//! Rewards for Temper's trainers: rule rewards on decoded completions, weighted sums and test-time scaling. The
//! tasks they score (arithmetic, GSM8K) live in `temper-tasks`.
//!
//! - **Seam:** [`Reward`] scores a batch of [`RewardInput`] (prompt, completion, optional reference), one `f64`
//!   per item, with blanket impls for `&T`, `Box<T>` and `Arc<T>`; [`FnReward`] adapts a closure and
//!   [`WeightedSum`] combines rewards. The neural reward model implements the same trait in the train crate.
//! - **Answers:** [`extract_answer`] (last `<answer>…</answer>`), [`gsm8k_final_answer`] (`#### N`),
//!   [`last_number`] (fallback extractor) and [`Number`] (exact-rational equivalence: `1,000` = `1e3`,
//!   `3/4` = `0.75`, `%` only against `%`); [`extract_final_answer`] reads real outputs for evaluation (`#### 1,234`,
//!   `$12.50`, `The answer is 7.`, `\boxed{}`, tags, last number) and [`FinalAnswerAccuracy`] scores them.
//! - **Rule rewards:** [`AnswerAccuracy`] (exact or numeric), [`LastNumberAccuracy`], [`FormatReward`] (whole
//!   completion regex), [`LengthPenalty`] (linear with a cap, or DAPO's overlong soft penalty); [`RewardSpec`]
//!   is their serde config (`[[reward]] kind = "answer_accuracy"`), [`build_weighted_sum`] builds a list.
//! - **Test-time scaling:** [`argmax_score`] (best-of-N: the index of the best-scored sample),
//!   [`majority_vote`], [`weighted_vote`], [`pass_at_k`], [`maj_at_k`] and the verifier-guided beam [`search`]
//!   over a [`StepProposer`] and a [`Verifier`]; [`RewardVerifier`] makes any [`Reward`] a verifier.
//!
//! **Invariant:** no tensors, no model, no tokenizer: everything here is text in, numbers out.
//!
//! ```
//! use temper_rewards::{build_weighted_sum, MatchMode, Reward, RewardInput, RewardSpec, THINK_ANSWER_FORMAT};
//!
//! let reward = build_weighted_sum(&[
//!     RewardSpec::AnswerAccuracy { weight: 1.0, mode: MatchMode::Numeric },
//!     RewardSpec::Format { weight: 0.1, regex: THINK_ANSWER_FORMAT.into(), dot_all: true },
//! ])?;
//! let batch = [
//!     RewardInput::new("What is 12 * 12?", "<think>12*12 = 144</think> <answer>144</answer>", "144"),
//!     RewardInput::new("What is 12 * 12?", "<answer>1,44</answer>", "144"),
//! ];
//! assert_eq!(reward.score(&batch)?, vec![1.1, 0.0]);
//! # Ok::<(), temper_rewards::RewardError>(())
//! ```

mod answer;
mod error;
mod final_answer;
mod reward;
mod rules;
mod search;
mod spec;
mod tts;

pub use answer::{
    Number, canonical_answer, extract_answer, gsm8k_final_answer, last_number, normalize_text,
    numbers_equivalent, parse_number, reference_answer,
};
pub use error::{Result, RewardError};
pub use final_answer::{FinalAnswerAccuracy, answer_matches, extract_final_answer};
pub use reward::{FnReward, Reward, RewardInput, ScoreBreakdown, WeightedSum, score_checked};
pub use rules::{
    AnswerAccuracy, FormatReward, LastNumberAccuracy, LengthPenalty, LengthUnit, MatchMode,
    THINK_ANSWER_FORMAT,
};
pub use search::{RewardVerifier, SearchConfig, SearchResult, StepProposer, Verifier, search};
pub use spec::{RewardSpec, build_weighted_sum};
pub use tts::{argmax_score, maj_at_k, majority_vote, mean_pass_at_k, pass_at_k, weighted_vote};
