//! The one task abstraction: a [`Task`] hands out training and held-out [`Problem`]s, each a conversation ready
//! for the one renderer ([`render`](crate::render)).

use serde::{Deserialize, Serialize};
use temper_chat::Message;

use crate::error::Result;

/// One problem of a task: the conversation a model continues and what rewards compare its answer with.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Problem {
    /// Stable name of the problem within its task, e.g. `arithmetic/held_out/3`.
    pub id: String,
    /// The conversation: an optional system instruction, worked-example turns (user question, assistant answer),
    /// then the question as the last user message.
    pub messages: Vec<Message>,
    /// Text the assistant turn starts with (the completion continues it; rewards see both).
    #[serde(default)]
    pub prefill: String,
    /// Reference answer given to rewards.
    #[serde(default)]
    pub reference: Option<String>,
}

impl Problem {
    /// A problem that is a single user message, e.g. a prompt read from a JSONL file.
    pub fn question(id: impl Into<String>, question: impl Into<String>, reference: Option<String>) -> Problem {
        Problem {
            id: id.into(),
            messages: vec![Message::user(question)],
            prefill: String::new(),
            reference,
        }
    }
}

/// A source of problems with a training split and a held-out split that never share a problem.
///
/// Generators (the arithmetic task) return exactly `n` problems or an error; file-backed tasks (JSONL, GSM8K)
/// return their first `n`, or all of them when they have fewer (pass `usize::MAX` for all). Implementing this
/// trait is all a new task (BFCL, an evaluation set) needs: [`render`](crate::render) and
/// [`PromptSet`](crate::PromptSet) turn any task's problems into prompts.
pub trait Task {
    /// A short name, used in problem ids and messages (`arithmetic`, `gsm8k`, `jsonl`).
    fn name(&self) -> &str;

    /// Up to `n` training problems, deterministic for a given task.
    fn train(&self, n: usize) -> Result<Vec<Problem>>;

    /// Up to `n` held-out problems, deterministic for a given task and disjoint from [`train`](Self::train).
    fn held_out(&self, n: usize) -> Result<Vec<Problem>>;
}

impl<T: Task + ?Sized> Task for &T {
    fn name(&self) -> &str {
        (**self).name()
    }
    fn train(&self, n: usize) -> Result<Vec<Problem>> {
        (**self).train(n)
    }
    fn held_out(&self, n: usize) -> Result<Vec<Problem>> {
        (**self).held_out(n)
    }
}

impl<T: Task + ?Sized> Task for Box<T> {
    fn name(&self) -> &str {
        (**self).name()
    }
    fn train(&self, n: usize) -> Result<Vec<Problem>> {
        (**self).train(n)
    }
    fn held_out(&self, n: usize) -> Result<Vec<Problem>> {
        (**self).held_out(n)
    }
}
