//! Tasks for Temper's trainers and evaluations: where prompts come from, and the one way they become text.
//!
//! - **One task abstraction:** a [`Task`] hands out training and held-out [`Problem`]s (id, chat messages —
//!   system instruction, worked-example turns, question —, prefill, reference answer). Implemented by
//!   [`ArithmeticPrompts`] (the seeded [`ArithmeticTask`] in the [`AnswerPrompt`] format), [`Gsm8kTask`] and
//!   [`JsonlTask`]; a new task (BFCL, an evaluation set) implements the trait and nothing else.
//! - **One renderer:** [`render`] turns a problem into a [`RenderedPrompt`] (chat template over the messages +
//!   prefill, or [`plain_prompt`]'s `Question: … / Answer: ` text); [`PromptSet`] renders a task's splits.
//! - **Config:** [`TaskSpec`] is the `[task]` TOML table (`kind = "arithmetic" | "jsonl" | "gsm8k"`).
//! - **Data:** [`read_jsonl`] (the JSONL reader every data file goes through), [`parse_prompt`], [`load_gsm8k`].
//! - **Preference pairs:** [`PreferencePair`] and [`synthetic_pairs`] (right vs typically wrong arithmetic answers
//!   with the task's own prompts).
//!
//! **Invariant:** no tensors, no model: text in, text and token ids out.
//!
//! ```
//! use temper_tasks::{ArithmeticConfig, ArithmeticPrompts, ArithmeticTask, Task, plain_prompt};
//!
//! let task = ArithmeticPrompts::new(ArithmeticTask::new(ArithmeticConfig::default(), 7)?, false);
//! let problem = &task.train(1)?[0];
//! let text = plain_prompt(&problem.messages)? + &problem.prefill;
//! assert!(text.starts_with("Answer with only the final number") && text.ends_with("\nAnswer: <answer>"));
//! # Ok::<(), temper_tasks::TaskError>(())
//! ```

mod arithmetic;
mod error;
mod gsm8k;
mod jsonl;
mod pairs;
mod prompts;
mod render;
mod rng;
mod spec;
mod task;

pub use arithmetic::{
    ArithOp, ArithmeticConfig, ArithmeticProblem, ArithmeticTask, HELD_OUT_ONE_IN, MAX_TERMS, Tail,
};
pub use error::{Result, TaskError};
pub use gsm8k::{Gsm8kExample, Gsm8kTask, load_gsm8k, read_gsm8k};
pub use jsonl::{JsonlTask, PromptExample, json_error, parse_prompt, read_jsonl, string_field};
pub use pairs::{
    MAX_SYNTHETIC_DIGITS, Mistake, PreferencePair, SyntheticSpec, SyntheticStats, allocate,
    parse_op, problem_space, synthetic_pairs, synthetic_prompt, wrong_answer,
};
pub use prompts::{ARITHMETIC_INSTRUCTION, AnswerPrompt, ArithmeticPrompts};
pub use render::{RenderedPrompt, plain_prompt, render, render_with_tools};
pub use spec::{PromptSet, TaskSpec};
pub use task::{Problem, Task};
