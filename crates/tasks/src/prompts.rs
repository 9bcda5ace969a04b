//! The arithmetic prompt, built in this one place: [`AnswerPrompt`] (the `<answer>N</answer>` format: its
//! instruction and worked-example answers) and [`ArithmeticPrompts`], the arithmetic task as a [`Task`].

use temper_chat::Message;

use crate::arithmetic::{ArithmeticProblem, ArithmeticTask};
use crate::error::Result;
use crate::task::{Problem, Task};

/// The instruction of the `<answer>` format without `<think>`, the arithmetic task's default system message. It
/// names no example number: a fixed `42` example in the instruction made SmolLM2-135M answer 42 to everything;
/// the format is shown by the worked-example turns.
pub const ARITHMETIC_INSTRUCTION: &str = "Answer with only the final number inside <answer> </answer> tags.";

/// The instruction of the `<think>` + `<answer>` format (the seed's
/// [`THINK_ANSWER_FORMAT`](temper_rewards::THINK_ANSWER_FORMAT)).
const THINK_INSTRUCTION: &str = "Think step by step inside <think> </think> tags, then give only the final answer \
                                 inside <answer> </answer> tags, for example: <think>reasoning</think> <answer>42</answer>";

/// The prompt format the accuracy rewards read: the final answer inside `<answer>N</answer>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AnswerPrompt {
    /// Also ask for the reasoning inside `<think>…</think>` (the seed's
    /// [`THINK_ANSWER_FORMAT`](temper_rewards::THINK_ANSWER_FORMAT)).
    pub think: bool,
}

impl Default for AnswerPrompt {
    fn default() -> AnswerPrompt {
        AnswerPrompt { think: true }
    }
}

impl AnswerPrompt {
    /// The format instruction: [`ARITHMETIC_INSTRUCTION`], or the `<think>` one.
    pub fn instruction(&self) -> &'static str {
        if self.think { THINK_INSTRUCTION } else { ARITHMETIC_INSTRUCTION }
    }

    /// A plain-text prompt: the instruction, the question, and an open `Answer:` line
    /// ([`plain_prompt`](crate::plain_prompt) of [`chat`](Self::chat)).
    pub fn plain(&self, question: &str) -> String {
        crate::render::plain_prompt(&self.chat(question)).expect("system and user turns always have a plain form")
    }

    /// A chat prompt: the instruction as the system message, the question as the user message.
    pub fn chat(&self, question: &str) -> Vec<Message> {
        self.chat_with_examples(question, &[])
    }

    /// The assistant turn of a worked example in the rewarded format: `<answer>12</answer>`, or with `think`
    /// `<think>3 * 4 = 12</think> <answer>12</answer>`.
    pub fn worked(&self, example: &ArithmeticProblem) -> String {
        if self.think {
            format!("<think>{example}</think> <answer>{}</answer>", example.answer)
        } else {
            format!("<answer>{}</answer>", example.answer)
        }
    }

    /// A few-shot chat prompt: the instruction as the system message, then each example as a user question and
    /// its [`worked`](Self::worked) assistant answer, then the question as the last user message.
    pub fn chat_with_examples(&self, question: &str, examples: &[ArithmeticProblem]) -> Vec<Message> {
        self.messages(self.instruction(), question, examples)
    }

    /// [`chat_with_examples`](Self::chat_with_examples) with another system instruction.
    pub fn messages(&self, instruction: &str, question: &str, examples: &[ArithmeticProblem]) -> Vec<Message> {
        let mut out = vec![Message::system(instruction)];
        for e in examples {
            out.push(Message::user(e.question()));
            out.push(Message::assistant(self.worked(e)));
        }
        out.push(Message::user(question.trim()));
        out
    }
}

/// Worked examples per prompt by default.
pub(crate) const DEFAULT_SHOTS: usize = 1;
/// The assistant-turn prefill of the arithmetic task by default: it primes a small model into the rewarded format.
pub(crate) const DEFAULT_PREFILL: &str = "<answer>";

/// The arithmetic task as a [`Task`]: the generator's problems in the [`AnswerPrompt`] format, each with
/// `shots` worked examples from the example split shown as earlier chat turns.
///
/// ```
/// use temper_tasks::{ArithmeticConfig, ArithmeticPrompts, ArithmeticTask, Task, ARITHMETIC_INSTRUCTION};
/// let prompts = ArithmeticPrompts::new(ArithmeticTask::new(ArithmeticConfig::default(), 7)?, false);
/// let p = &prompts.held_out(1)?[0];
/// assert_eq!(p.messages.len(), 4); // instruction, one worked example (question, answer), the question
/// assert_eq!(p.messages[0].content, ARITHMETIC_INSTRUCTION);
/// assert_eq!((p.id.as_str(), p.prefill.as_str()), ("arithmetic/held_out/0", "<answer>"));
/// # Ok::<(), temper_tasks::TaskError>(())
/// ```
#[derive(Debug, Clone)]
pub struct ArithmeticPrompts {
    /// The problem generator.
    pub task: ArithmeticTask,
    /// The answer format.
    pub format: AnswerPrompt,
    /// Worked examples shown before each question (default 1).
    pub shots: usize,
    /// The system instruction (default: the format's).
    pub instruction: String,
    /// Text the assistant turn starts with (default `<answer>`).
    pub prefill: String,
}

impl ArithmeticPrompts {
    /// The task's defaults: the format's instruction, one worked example, the `<answer>` prefill.
    pub fn new(task: ArithmeticTask, think: bool) -> ArithmeticPrompts {
        let format = AnswerPrompt { think };
        ArithmeticPrompts {
            task,
            format,
            shots: DEFAULT_SHOTS,
            instruction: format.instruction().to_string(),
            prefill: DEFAULT_PREFILL.to_string(),
        }
    }

    /// The problem `p` with the worked `examples` before it, named `id`.
    pub fn problem(&self, id: String, p: &ArithmeticProblem, examples: &[ArithmeticProblem]) -> Problem {
        Problem {
            id,
            messages: self.format.messages(&self.instruction, &p.question(), examples),
            prefill: self.prefill.clone(),
            reference: Some(p.reference()),
        }
    }

    /// `problems` of `split` with their worked examples.
    fn problems(&self, split: &str, problems: &[ArithmeticProblem]) -> Result<Vec<Problem>> {
        let examples = self.task.examples_for(problems, self.shots)?;
        Ok(problems
            .iter()
            .zip(examples)
            .enumerate()
            .map(|(i, (p, ex))| self.problem(format!("arithmetic/{split}/{i}"), p, &ex))
            .collect())
    }
}

impl Task for ArithmeticPrompts {
    fn name(&self) -> &str {
        "arithmetic"
    }

    fn train(&self, n: usize) -> Result<Vec<Problem>> {
        self.problems("train", &self.task.train(n))
    }

    fn held_out(&self, n: usize) -> Result<Vec<Problem>> {
        self.problems("held_out", &self.task.held_out(n)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::arithmetic::{ArithOp, ArithmeticConfig};
    use crate::render::plain_prompt;

    #[test]
    fn prompts_ask_for_the_answer_tag() {
        let p = AnswerPrompt::default();
        let plain = p.plain("What is 2 + 3?");
        assert!(plain.contains("<answer>") && plain.contains("<think>") && plain.contains("Question: What is 2 + 3?"));
        let chat = AnswerPrompt { think: false }.chat(" What is 2 + 3? ");
        assert_eq!(chat.len(), 2);
        assert_eq!((chat[0].role.as_str(), chat[1].role.as_str()), ("system", "user"));
        assert_eq!(chat[1].content, "What is 2 + 3?");
        assert!(!chat[0].content.contains("<think>"));
        // One renderer: the plain prompt is the plain form of the chat prompt.
        for think in [false, true] {
            let p = AnswerPrompt { think };
            assert_eq!(plain_prompt(&p.chat(" What is 2 + 3? ")).expect("plain"), p.plain(" What is 2 + 3? "));
        }
        assert_eq!(AnswerPrompt { think: false }.instruction(), ARITHMETIC_INSTRUCTION);
    }

    #[test]
    fn few_shot_chat_shows_the_format_before_the_question() {
        let ex = [
            ArithmeticProblem::binary(6, ArithOp::Sub, 2),
            ArithmeticProblem::binary(3, ArithOp::Mul, 4),
        ];
        let chat = AnswerPrompt { think: false }.chat_with_examples("What is 5 + 3?", &ex);
        let got: Vec<(&str, &str)> = chat.iter().map(|m| (m.role.as_str(), m.content.as_str())).collect();
        let instruction = AnswerPrompt { think: false }.instruction();
        assert_eq!(
            got,
            vec![
                ("system", instruction),
                ("user", "What is 6 - 2?"),
                ("assistant", "<answer>4</answer>"),
                ("user", "What is 3 * 4?"),
                ("assistant", "<answer>12</answer>"),
                ("user", "What is 5 + 3?"),
            ]
        );
        assert_eq!(AnswerPrompt { think: true }.worked(&ex[1]), "<think>3 * 4 = 12</think> <answer>12</answer>");
        assert_eq!(AnswerPrompt { think: true }.chat("q"), AnswerPrompt { think: true }.chat_with_examples("q", &[]));
    }

    #[test]
    fn arithmetic_prompts_are_the_generators_problems_with_their_worked_examples() -> Result<()> {
        let task = ArithmeticTask::new(ArithmeticConfig::default(), 4)?;
        let mut prompts = ArithmeticPrompts::new(task.clone(), true);
        prompts.shots = 2;
        prompts.instruction = "Solve it.".into();
        let held = task.held_out(5)?;
        let examples = task.examples_for(&held, 2)?;
        let got = prompts.held_out(5)?;
        assert_eq!(got.len(), 5);
        for (i, ((p, ex), problem)) in held.iter().zip(&examples).zip(&got).enumerate() {
            assert_eq!(problem.id, format!("arithmetic/held_out/{i}"));
            assert_eq!(problem.messages, AnswerPrompt { think: true }.messages("Solve it.", &p.question(), ex));
            assert_eq!(problem.reference.as_deref(), Some(p.reference().as_str()));
            assert_eq!(problem.prefill, "<answer>");
        }
        let train = prompts.train(3)?;
        assert_eq!(train.last().map(|p| p.id.as_str()), Some("arithmetic/train/2"));
        assert_eq!(prompts.name(), "arithmetic");
        Ok(())
    }
}
