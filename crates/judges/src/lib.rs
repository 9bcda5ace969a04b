//! LLM-as-a-judge for Temper, and agreement between judges and humans.
//!
//! - **Seam:** [`ChatBackend`] (one method: messages → reply, from `temper-chat`, re-exported here with
//!   [`Message`], [`Role`], [`GenerationParams`] and [`ChatError`]) and [`Judge`] (pairwise
//!   [`Judge::judge_pair`] and single [`Judge::grade`]). [`LlmJudge`] builds a judge from any chat
//!   back end and a [`PromptTemplate`]: Temper's seed pairwise prompt (two 1–10 scores, `[[8 6]]`)
//!   or one of the eight MT-bench prompts read from FastChat's `judge_prompts.jsonl`.
//! - **Verdicts:** [`parse_pair_verdict`] / [`parse_rating`] are strict: a reply naming two
//!   different verdicts, or none, is [`Unparseable`] and counted, never read as A.
//! - **Position swap:** [`judge_items`] judges each pair in both orders on a bounded thread pool and
//!   reports position consistency, first-slot preference and length bias ([`JudgeSummary`]).
//! - **Back ends:** any [`ChatBackend`]. With feature `openai`, `OpenAiBackend` (from `temper-chat`) talks to
//!   any OpenAI-compatible endpoint with timeouts, retries with backoff and a `DiskCache`; the local Temper
//!   model is `temper_models::LocalChat` (models feature `chat`). Default features: none, so computing κ
//!   pulls no HTTP/TLS stack.
//! - **CHAMP:** [`champ_run`] asks a judge whether each human-annotated CHAMP solution contains an error
//!   (strict `[[YES]]`/`[[NO]]`, [`parse_yes_no`]) and measures agreement with the human annotation.
//! - **Agreement:** [`cohen_kappa`], [`fleiss_kappa`], [`krippendorff_alpha`], percent agreement,
//!   deltas, [`confusion_matrix`], seeded percentile [`bootstrap_ci`]; [`load_labels`] + [`join`] +
//!   [`report`] are `temper agree`.
//!
//! ```
//! use temper_judges::{ChatBackend, GenerationParams, Judge, LlmJudge, Message, PairItem, Winner};
//!
//! struct Fixed;
//! impl ChatBackend for Fixed {
//!     fn complete(&self, _: &[Message], _: &GenerationParams) -> Result<String, temper_judges::ChatError> {
//!         Ok("A is correct, B is not. [[9 3]]".into())
//!     }
//! }
//! let item = PairItem {
//!     id: "q1".into(), question: "2+2?".into(), answer_a: "4".into(), answer_b: "5".into(),
//!     reference: None, question_2: None, answer_a_2: None, answer_b_2: None, reference_2: None,
//! };
//! let v = LlmJudge::new(Fixed).judge_pair(&item)?;
//! assert_eq!(v.verdict.map(|v| v.winner()), Ok(Winner::A));
//!
//! let a = ["A", "B", "A", "tie"].map(temper_judges::Label::from);
//! let b = ["A", "B", "B", "tie"].map(temper_judges::Label::from);
//! assert_eq!(temper_judges::percent_agreement(&a, &b)?, Some(0.75));
//! # Ok::<(), temper_judges::JudgeError>(())
//! ```

mod bootstrap;
mod champ;
mod error;
mod judge;
mod label;
mod prompts;
mod report;
mod run;
mod stats;
mod verdict;

pub use bootstrap::{BootstrapConfig, ConfidenceInterval, bootstrap_ci, percentile};
pub use champ::{
    CHAMP_SYSTEM, ChampItem, ChampOutcome, ChampReply, ChampRunConfig, champ_items, champ_messages,
    champ_prompt, champ_run, error_label, load_champ_items, sample_order,
};
pub use error::{JudgeError, Result};
pub use judge::{Judge, LlmJudge, PairItem, PairVerdict, SingleGrade, SingleItem};
pub use label::Label;
pub use prompts::{
    PromptKind, PromptTemplate, find_template, load_prompt_templates, mtbench_template_name,
};
pub use report::{
    AgreeConfig, AgreementReport, Id, Joined, Metric, MetricReport, id_from_json, join,
    load_labels, report,
};
pub use run::{
    GradeRecord, JudgeRun, JudgeRunConfig, JudgeSummary, JudgmentRecord, Order, PairRecord,
    SwapOutcome, grade_items, judge_items, judge_pairs, load_pairs, summarize,
};
pub use stats::{
    AlphaLevel, ConfusionMatrix, KappaWeights, cohen_kappa, confusion_matrix, fleiss_kappa,
    fleiss_table, krippendorff_alpha, mean_abs_difference, mean_difference, numeric_labels,
    percent_agreement, percent_agreement_without_ties,
};
pub use temper_chat::{ChatBackend, ChatError, GenerationParams, Message, Role};
#[cfg(feature = "openai")]
pub use temper_chat::{DiskCache, ENV_API_KEY, ENV_BASE_URL, OpenAiBackend, OpenAiConfig};
pub use verdict::{
    ArenaLevel, Unparseable, Verdict, Winner, parse_pair_verdict, parse_rating, parse_yes_no,
};
