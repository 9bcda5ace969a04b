//! [`TaskSpec`], the `[task]` table of a trainer's TOML, and [`PromptSet`], a task's training and held-out
//! prompts rendered by the one renderer.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use temper_tokenizer::Tokenizer;

use crate::arithmetic::{ArithmeticConfig, ArithmeticTask};
use crate::error::{Result, TaskError};
use crate::gsm8k::Gsm8kTask;
use crate::jsonl::JsonlTask;
use crate::prompts::{AnswerPrompt, ArithmeticPrompts, DEFAULT_PREFILL, DEFAULT_SHOTS};
use crate::render::{RenderedPrompt, render};
use crate::task::Task;

/// Where prompts come from.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum TaskSpec {
    /// The built-in seeded arithmetic task with a disjoint held-out split.
    Arithmetic {
        /// Problem generator settings (digits, operations).
        #[serde(default)]
        config: ArithmeticConfig,
        /// Number of training problems.
        #[serde(default = "d_train_n")]
        train_size: usize,
        /// Number of held-out problems.
        #[serde(default = "d_eval_n")]
        eval_size: usize,
        /// Ask for `<think>` reasoning before the answer.
        #[serde(default)]
        think: bool,
        /// Worked examples shown before the question as earlier chat turns (`What is 6 - 2?` →
        /// `<answer>4</answer>`): they show the exact rewarded format without a fixed answer to copy. Drawn per
        /// prompt from a third split of the problem space, disjoint from training and held-out problems, each with
        /// an answer different from the question's. Default 1; 0 = none.
        #[serde(default = "d_shots")]
        shots: usize,
        /// The system instruction; default "Answer with only the final number inside <answer> </answer> tags." (or
        /// the `<think>` one with `think = true`).
        #[serde(default)]
        instruction: Option<String>,
        /// Text the assistant turn starts with (the completion continues it; rewards see both). The default
        /// `<answer>` primes a small model into the rewarded format.
        #[serde(default = "d_answer_prefill")]
        prefill: String,
    },
    /// JSONL prompts with `prompt` (or `question`) and an optional `answer`.
    Jsonl {
        /// Training prompts.
        train_file: PathBuf,
        /// Held-out prompts.
        #[serde(default)]
        eval_file: Option<PathBuf>,
        /// Text the assistant turn starts with (default none).
        #[serde(default)]
        prefill: String,
    },
    /// GSM8K word problems (JSONL with `question` and an `answer` ending in `#### N`) in the `<answer>` format.
    Gsm8k {
        /// A GSM8K split file, e.g. `test.jsonl`: the held-out problems are its first `eval_size`.
        file: PathBuf,
        /// Training problems, e.g. `train.jsonl`; default: the problems of `file` after the held-out ones.
        #[serde(default)]
        train_file: Option<PathBuf>,
        /// Number of training problems (default: all there are).
        #[serde(default)]
        train_size: Option<usize>,
        /// Number of held-out problems.
        #[serde(default = "d_eval_n")]
        eval_size: usize,
        /// Ask for `<think>` reasoning before the answer.
        #[serde(default)]
        think: bool,
        /// The system instruction; default the arithmetic task's (or the `<think>` one with `think = true`).
        #[serde(default)]
        instruction: Option<String>,
        /// Text the assistant turn starts with (default none).
        #[serde(default)]
        prefill: String,
    },
}

fn d_shots() -> usize {
    DEFAULT_SHOTS
}

fn d_answer_prefill() -> String {
    DEFAULT_PREFILL.into()
}

fn d_train_n() -> usize {
    2000
}
fn d_eval_n() -> usize {
    20
}

impl Default for TaskSpec {
    fn default() -> Self {
        TaskSpec::Arithmetic {
            config: ArithmeticConfig {
                digits: 1,
                ..ArithmeticConfig::default()
            },
            train_size: d_train_n(),
            eval_size: d_eval_n(),
            think: false,
            shots: d_shots(),
            instruction: None,
            prefill: d_answer_prefill(),
        }
    }
}

/// An error of the `[task]` table.
fn in_task(e: TaskError) -> TaskError {
    TaskError::Config {
        path: PathBuf::from("[task]"),
        message: e.to_string(),
    }
}

impl TaskSpec {
    /// The task this table describes; `seed` seeds the arithmetic generator. Files are read here.
    pub fn task(&self, seed: u64) -> Result<Box<dyn Task>> {
        Ok(match self {
            TaskSpec::Arithmetic {
                config,
                think,
                shots,
                instruction,
                prefill,
                ..
            } => {
                let mut t = ArithmeticPrompts::new(
                    ArithmeticTask::new(config.clone(), seed).map_err(in_task)?,
                    *think,
                );
                t.shots = *shots;
                if let Some(i) = instruction {
                    t.instruction = i.clone();
                }
                t.prefill = prefill.clone();
                Box::new(t)
            }
            TaskSpec::Jsonl {
                train_file,
                eval_file,
                prefill,
            } => Box::new(JsonlTask::open(train_file, eval_file.as_ref(), prefill)?),
            TaskSpec::Gsm8k {
                file,
                train_file,
                eval_size,
                think,
                instruction,
                prefill,
                ..
            } => {
                let default_instruction = AnswerPrompt { think: *think }.instruction();
                let instruction = instruction.as_deref().unwrap_or(default_instruction);
                let t =
                    Gsm8kTask::open(file, train_file.as_ref(), *eval_size, instruction, prefill)
                        .map_err(in_task)?;
                Box::new(t)
            }
        })
    }

    /// How many training and held-out problems the table asks for (`usize::MAX`: all a file holds).
    pub fn sizes(&self) -> (usize, usize) {
        match self {
            TaskSpec::Arithmetic {
                train_size,
                eval_size,
                ..
            } => (*train_size, *eval_size),
            TaskSpec::Jsonl { .. } => (usize::MAX, usize::MAX),
            TaskSpec::Gsm8k {
                train_size,
                eval_size,
                ..
            } => (train_size.unwrap_or(usize::MAX), *eval_size),
        }
    }
}

/// Training and held-out prompts, rendered and tokenised.
pub struct PromptSet {
    /// Training prompts.
    pub train: Vec<RenderedPrompt>,
    /// Held-out prompts.
    pub eval: Vec<RenderedPrompt>,
    /// The held-out problems `eval` was rendered from (the evaluation path renders them itself).
    pub eval_problems: Vec<crate::Problem>,
    /// Whether the prompts were rendered with the chat template.
    pub chat: bool,
}

impl PromptSet {
    /// Builds the prompts of a task table: [`TaskSpec::task`], its [`sizes`](TaskSpec::sizes), then
    /// [`from_task`](Self::from_task).
    pub fn build(task: &TaskSpec, tok: &Tokenizer, chat: bool, seed: u64) -> Result<Self> {
        let (train_n, eval_n) = task.sizes();
        Self::from_task(&*task.task(seed)?, tok, chat, train_n, eval_n)
    }

    /// Renders `train_n` training and `eval_n` held-out problems of any [`Task`] with [`render`]; errors of the
    /// task are errors of the `[task]` table.
    pub fn from_task(
        task: &dyn Task,
        tok: &Tokenizer,
        chat: bool,
        train_n: usize,
        eval_n: usize,
    ) -> Result<Self> {
        Self::from_task_with(task, chat, train_n, eval_n, &|p| render(tok, p, chat))
    }

    /// Like [`from_task`](Self::from_task), each problem rendered by `render_one` (e.g. with tool descriptions);
    /// `eval_problems` stay as the task wrote them. `chat` records how `render_one` renders.
    pub fn from_task_with(
        task: &dyn Task,
        chat: bool,
        train_n: usize,
        eval_n: usize,
        render_one: &dyn Fn(&crate::Problem) -> Result<RenderedPrompt>,
    ) -> Result<Self> {
        let eval = task.held_out(eval_n).map_err(in_task)?;
        let train = task.train(train_n).map_err(in_task)?;
        let render_all = |xs: Vec<crate::Problem>| -> Result<Vec<RenderedPrompt>> {
            xs.iter().map(render_one).collect()
        };
        Ok(Self {
            train: render_all(train)?,
            eval: render_all(eval.clone())?,
            eval_problems: eval,
            chat,
        })
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;
    use std::path::Path;

    use super::*;
    use crate::prompts::ARITHMETIC_INSTRUCTION;

    fn tokenizer() -> Tokenizer {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../testdata/trl-parity/tokenizer/tokenizer.json");
        Tokenizer::from_file(&path).expect("tiny tokenizer")
    }

    /// `Question: What is a op b?\nAnswer: ` blocks of a plain prompt: (question, answer text) pairs.
    fn blocks(text: &str) -> Vec<(String, String)> {
        text.split("Question: ")
            .skip(1)
            .map(|b| {
                let (q, a) = b.split_once("\nAnswer: ").expect("answer line");
                (q.to_string(), a.trim_end().to_string())
            })
            .collect()
    }

    #[test]
    fn default_arithmetic_prompts_show_one_worked_example_that_is_never_the_question() -> Result<()>
    {
        let tok = tokenizer();
        let task = TaskSpec::default();
        let set = PromptSet::build(&task, &tok, false, 3)?;
        let TaskSpec::Arithmetic { config, .. } = &task else {
            unreachable!("the default task is arithmetic")
        };
        let t = ArithmeticTask::new(config.clone(), 3)?;
        let eval_questions: HashSet<String> =
            t.held_out(20)?.iter().map(|p| p.question()).collect();
        let train_questions: HashSet<String> = t.train(2000).iter().map(|p| p.question()).collect();
        assert_eq!((set.train.len(), set.eval.len()), (2000, 20));
        let mut example_answers = HashSet::new();
        for p in set.train.iter().chain(&set.eval) {
            assert!(
                p.text
                    .starts_with(&format!("{ARITHMETIC_INSTRUCTION}\n\nQuestion: ")),
                "{}",
                p.text
            );
            assert!(p.text.ends_with("\nAnswer: <answer>"), "{}", p.text);
            assert_eq!(p.prefill, "<answer>");
            let b = blocks(&p.text);
            assert_eq!(b.len(), 2, "one example, then the question: {}", p.text);
            let (ex_q, ex_a) = &b[0];
            let reference = p.reference.as_deref().expect("arithmetic has references");
            assert_ne!(ex_q, &b[1].0);
            assert!(
                !eval_questions.contains(ex_q) && !train_questions.contains(ex_q),
                "{ex_q} is a question"
            );
            let n = ex_a
                .strip_prefix("<answer>")
                .and_then(|a| a.strip_suffix("</answer>"))
                .expect("worked format");
            assert_ne!(
                n, reference,
                "the example gives away the answer in {}",
                p.text
            );
            example_answers.insert(n.to_string());
        }
        assert!(
            example_answers.len() >= 10,
            "example answers {example_answers:?}"
        );
        for p in &set.eval {
            assert!(eval_questions.contains(&blocks(&p.text)[1].0));
        }
        Ok(())
    }

    #[test]
    fn chat_prompts_put_the_example_in_earlier_turns_and_zero_shots_remove_it() -> Result<()> {
        let tok = tokenizer();
        let one = PromptSet::build(&TaskSpec::default(), &tok, true, 0)?;
        let zero_task = match TaskSpec::default() {
            TaskSpec::Arithmetic {
                config,
                train_size,
                eval_size,
                think,
                instruction,
                prefill,
                ..
            } => TaskSpec::Arithmetic {
                config,
                train_size,
                eval_size,
                think,
                shots: 0,
                instruction,
                prefill,
            },
            other => other,
        };
        let zero = PromptSet::build(&zero_task, &tok, true, 0)?;
        for (a, b) in one.eval.iter().zip(&zero.eval) {
            // The tiny model's template renders `<|user|> … <|end|> <|assistant|> …`.
            assert_eq!(a.text.matches("<|user|>").count(), 2, "{}", a.text);
            assert_eq!(b.text.matches("<|user|>").count(), 1, "{}", b.text);
            // The instruction names the tags once; the worked example closes one more.
            assert_eq!(a.text.matches("</answer>").count(), 2, "{}", a.text);
            assert_eq!(b.text.matches("</answer>").count(), 1, "{}", b.text);
            assert!(
                a.text.ends_with("<|assistant|> <answer>")
                    && b.text.ends_with("<|assistant|> <answer>")
            );
            assert_eq!(a.reference, b.reference);
            assert!(a.ids.len() > b.ids.len());
        }
        Ok(())
    }

    #[test]
    fn task_tables_parse_from_toml_and_bad_ones_name_the_field() -> Result<()> {
        let gsm8k: TaskSpec =
            toml::from_str("kind = \"gsm8k\"\nfile = \"test.jsonl\"\neval_size = 50\n")
                .expect("gsm8k");
        assert_eq!(gsm8k.sizes(), (usize::MAX, 50));
        let fixture =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/gsm8k_sample.jsonl");
        let spec = TaskSpec::Gsm8k {
            file: fixture.clone(),
            train_file: None,
            train_size: Some(2),
            eval_size: 1,
            think: false,
            instruction: None,
            prefill: String::new(),
        };
        let set = PromptSet::build(&spec, &tokenizer(), false, 0)?;
        assert_eq!((set.train.len(), set.eval.len()), (2, 1));
        assert!(
            set.eval[0].text.starts_with(&format!(
                "{ARITHMETIC_INSTRUCTION}\n\nQuestion: Natalia sold clips"
            )),
            "{}",
            set.eval[0].text
        );
        assert_eq!(set.eval[0].reference.as_deref(), Some("72"));
        let err = toml::from_str::<TaskSpec>("kind = \"gsm8k\"\nfile = \"t.jsonl\"\nshots = 1\n")
            .expect_err("no shots");
        assert!(err.to_string().contains("unknown field `shots`"), "{err}");
        let big = TaskSpec::Arithmetic {
            config: ArithmeticConfig {
                digits: 10,
                ..ArithmeticConfig::default()
            },
            train_size: 1,
            eval_size: 1,
            think: false,
            shots: 0,
            instruction: None,
            prefill: String::new(),
        };
        let err = PromptSet::build(&big, &tokenizer(), false, 0)
            .err()
            .expect("10 digits");
        assert_eq!(
            err.to_string(),
            "config [task]: field `digits`: must be in 1..=9, got 10"
        );
        Ok(())
    }
}
