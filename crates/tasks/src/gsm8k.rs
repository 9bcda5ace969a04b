//! GSM8K (Cobbe et al. 2021, <https://arxiv.org/abs/2110.14168>): the JSONL loader and [`Gsm8kTask`], a split
//! file's word problems as a [`Task`] in the `<answer>N</answer>` format.

use std::io::BufRead;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use temper_chat::Message;
use temper_rewards::gsm8k_final_answer;

use crate::error::{Result, TaskError};
use crate::task::{Problem, Task};

/// One GSM8K problem (Cobbe et al. 2021, <https://arxiv.org/abs/2110.14168>).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Gsm8kExample {
    /// The word problem.
    pub question: String,
    /// The worked solution as in the file, ending in `#### N`.
    pub solution: String,
    /// The final answer `N`, cleaned by [`gsm8k_final_answer`].
    pub answer: String,
}

/// A GSM8K JSONL line; other keys are ignored.
#[derive(Deserialize)]
struct Gsm8kLine {
    question: String,
    answer: String,
}

/// Reads a GSM8K JSONL file (`{"question": ..., "answer": "... #### N"}` per line; blank lines skipped).
pub fn load_gsm8k(path: &Path) -> Result<Vec<Gsm8kExample>> {
    let file = std::fs::File::open(path).map_err(|source| TaskError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    read_gsm8k(std::io::BufReader::new(file), path)
}

/// Reads GSM8K JSONL from `reader`; `path` names the source in errors (`path:line: message`).
pub fn read_gsm8k<R: BufRead>(reader: R, path: &Path) -> Result<Vec<Gsm8kExample>> {
    let mut out = Vec::new();
    for (i, line) in reader.lines().enumerate() {
        let line_no = i + 1;
        let line = line.map_err(|source| TaskError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        if line.trim().is_empty() {
            continue;
        }
        let data = |message: String| TaskError::Data {
            path: path.to_path_buf(),
            line: line_no,
            message,
        };
        let raw: Gsm8kLine =
            serde_json::from_str(&line).map_err(|e| data(crate::jsonl::json_error(&e)))?;
        let answer = gsm8k_final_answer(&raw.answer)
            .ok_or_else(|| data("field `answer` has no `#### N` final answer".to_string()))?;
        out.push(Gsm8kExample {
            question: raw.question,
            solution: raw.answer,
            answer,
        });
    }
    Ok(out)
}

/// GSM8K word problems as a [`Task`]: each problem is the instruction (system) and the question (user), its
/// reference the cleaned final answer.
#[derive(Debug, Clone)]
pub struct Gsm8kTask {
    train: Vec<Gsm8kExample>,
    held_out: Vec<Gsm8kExample>,
    /// The system instruction.
    pub instruction: String,
    /// Text the assistant turn starts with.
    pub prefill: String,
}

impl Gsm8kTask {
    /// Held-out problems are the first `eval_size` of `file` (e.g. GSM8K's `test.jsonl`); training problems
    /// are those of `train_file` (e.g. `train.jsonl`), or without it the problems of `file` after the held-out
    /// ones, so the two never share a line. Errors when either split would be empty.
    pub fn open(
        file: &Path,
        train_file: Option<&PathBuf>,
        eval_size: usize,
        instruction: &str,
        prefill: &str,
    ) -> Result<Gsm8kTask> {
        let non_empty = |path: &Path| -> Result<Vec<Gsm8kExample>> {
            let xs = load_gsm8k(path)?;
            if xs.is_empty() {
                return Err(TaskError::Data {
                    path: path.to_path_buf(),
                    line: 0,
                    message: "no examples in file".into(),
                });
            }
            Ok(xs)
        };
        let mut held_out = non_empty(file)?;
        let train = match train_file {
            Some(t) => {
                held_out.truncate(eval_size);
                non_empty(t)?
            }
            None => {
                if held_out.len() <= eval_size {
                    return Err(TaskError::InvalidConfig {
                        field: "eval_size".into(),
                        message: format!(
                            "{} holds {} problems: none left for training after {eval_size} held out (give \
                             `train_file` or a smaller `eval_size`)",
                            file.display(),
                            held_out.len()
                        ),
                    });
                }
                held_out.split_off(eval_size)
            }
        };
        Ok(Gsm8kTask {
            train,
            held_out,
            instruction: instruction.to_string(),
            prefill: prefill.to_string(),
        })
    }

    /// The first `n` of `xs` as problems of `split`.
    fn problems(&self, split: &str, xs: &[Gsm8kExample], n: usize) -> Vec<Problem> {
        xs.iter()
            .take(n)
            .enumerate()
            .map(|(i, x)| Problem {
                id: format!("gsm8k/{split}/{i}"),
                messages: vec![
                    Message::system(self.instruction.clone()),
                    Message::user(x.question.clone()),
                ],
                prefill: self.prefill.clone(),
                reference: Some(x.answer.clone()),
            })
            .collect()
    }
}

impl Task for Gsm8kTask {
    fn name(&self) -> &str {
        "gsm8k"
    }

    fn train(&self, n: usize) -> Result<Vec<Problem>> {
        Ok(self.problems("train", &self.train, n))
    }

    fn held_out(&self, n: usize) -> Result<Vec<Problem>> {
        Ok(self.problems("held_out", &self.held_out, n))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/gsm8k_sample.jsonl")
    }

    #[test]
    fn gsm8k_errors_name_file_and_line() {
        let path = Path::new("gsm8k_test.jsonl");
        let cases: &[(&str, &str)] = &[
            (
                "{\"question\":\"q\",\"answer\":\"a #### 1\"}\n{\"question\":\"q\"}\n",
                "gsm8k_test.jsonl:2: missing field `answer`",
            ),
            ("\n\n{not json}\n", "gsm8k_test.jsonl:3: "),
            (
                "{\"question\":\"q\",\"answer\":\"no marker\"}\n",
                "gsm8k_test.jsonl:1: field `answer` has no `#### N`",
            ),
        ];
        for (text, want) in cases {
            let err = read_gsm8k(text.as_bytes(), path).expect_err("malformed");
            assert!(err.to_string().starts_with(want), "{err} vs {want}");
        }
        let err = load_gsm8k(Path::new("/nonexistent/gsm8k.jsonl")).expect_err("missing file");
        assert!(
            err.to_string().starts_with("/nonexistent/gsm8k.jsonl: "),
            "{err}"
        );
    }

    #[test]
    fn gsm8k_task_holds_out_the_first_problems_and_trains_on_the_rest() -> Result<()> {
        let task = Gsm8kTask::open(&fixture(), None, 2, "Answer.", "")?;
        let held = task.held_out(usize::MAX)?;
        let train = task.train(usize::MAX)?;
        assert_eq!((held.len(), train.len()), (2, 3));
        let refs: Vec<Option<&str>> = held
            .iter()
            .chain(&train)
            .map(|p| p.reference.as_deref())
            .collect();
        assert_eq!(
            refs,
            [Some("72"), Some("10"), Some("18"), Some("3"), Some("1000")]
        );
        assert_eq!(held[0].messages[0], Message::system("Answer."));
        assert!(
            held[0].messages[1]
                .content
                .starts_with("Natalia sold clips")
        );
        assert_eq!(
            (held[1].id.as_str(), train[0].id.as_str()),
            ("gsm8k/held_out/1", "gsm8k/train/0")
        );
        assert_eq!(task.train(1)?.len(), 1);
        // With a separate training file both splits may come from files of any size.
        let both = Gsm8kTask::open(&fixture(), Some(&fixture()), 4, "Answer.", "<answer>")?;
        assert_eq!((both.held_out(10)?.len(), both.train(10)?.len()), (4, 5));
        assert_eq!(both.train(1)?[0].prefill, "<answer>");
        let err =
            Gsm8kTask::open(&fixture(), None, 5, "", "").expect_err("nothing left to train on");
        assert!(err.to_string().starts_with("field `eval_size`: "), "{err}");
        Ok(())
    }
}
