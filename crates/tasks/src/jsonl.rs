//! JSONL data: the generic reader every Temper data file goes through (errors name `path:line` and the field),
//! prompts with optional reference answers, and [`JsonlTask`], prompt files as a [`Task`].

use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::error::{Result, TaskError};
use crate::task::{Problem, Task};

/// Reads a JSONL file, parsing each non-empty line (a JSON object) with `parse`; errors name `path:line`. A file
/// without examples is an error.
pub fn read_jsonl<T>(
    path: &Path,
    mut parse: impl FnMut(&Value) -> std::result::Result<T, String>,
) -> Result<Vec<T>> {
    let text = std::fs::read_to_string(path).map_err(|source| TaskError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let err = |message: String| TaskError::Data {
            path: path.to_path_buf(),
            line: i + 1,
            message,
        };
        let v: Value = serde_json::from_str(line)
            .map_err(|e| err(format!("invalid JSON: {}", json_error(&e))))?;
        if !v.is_object() {
            return Err(err("expected a JSON object".into()));
        }
        out.push(parse(&v).map_err(err)?);
    }
    if out.is_empty() {
        return Err(TaskError::Data {
            path: path.to_path_buf(),
            line: 0,
            message: "no examples in file".into(),
        });
    }
    Ok(out)
}

/// A serde_json error on one JSONL line, as `what (column C)`: its own "at line 1 column C" would contradict the
/// file's line number in front of it.
pub fn json_error(e: &serde_json::Error) -> String {
    let text = e.to_string();
    let what = text.split(" at line ").next().unwrap_or(&text);
    format!("{what} (column {})", e.column())
}

/// The string field `name` of a JSON object: `None` when absent or null, numbers as their text (except for
/// `prompt`), an error naming the field for anything else.
pub fn string_field(v: &Value, name: &str) -> std::result::Result<Option<String>, String> {
    match v.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(Value::Number(n)) if name != "prompt" => Ok(Some(n.to_string())),
        Some(other) => Err(format!("field `{name}` must be a string, got {other}")),
    }
}

/// A prompt for on-line RL (GRPO, RLOO, PPO, CEM) with an optional reference answer for rewards.
#[derive(Clone, Debug, PartialEq)]
pub struct PromptExample {
    /// The prompt text (already rendered, or a user message when `chat` is used).
    pub prompt: String,
    /// Reference answer given to rewards (`answer`, `reference` or `solution` field).
    pub reference: Option<String>,
}

/// Parses one prompt line: `prompt` (or `question`) and an optional `answer`/`reference`/`solution`.
pub fn parse_prompt(v: &Value) -> std::result::Result<PromptExample, String> {
    let prompt = match string_field(v, "prompt")? {
        Some(p) => p,
        None => {
            string_field(v, "question")?.ok_or("missing string field `prompt` (or `question`)")?
        }
    };
    let mut reference = None;
    for name in ["answer", "reference", "solution"] {
        if let Some(r) = string_field(v, name)? {
            reference = Some(r);
            break;
        }
    }
    Ok(PromptExample { prompt, reference })
}

/// Prompt files as a [`Task`]: every prompt is one user message (rendered as written in plain mode), with the
/// file's reference answer and a shared prefill.
#[derive(Clone, Debug)]
pub struct JsonlTask {
    train: Vec<PromptExample>,
    eval: Vec<PromptExample>,
    prefill: String,
}

impl JsonlTask {
    /// Reads the training prompts and, when given, the held-out prompts ([`read_jsonl`] + [`parse_prompt`]).
    pub fn open(
        train_file: &Path,
        eval_file: Option<&PathBuf>,
        prefill: &str,
    ) -> Result<JsonlTask> {
        Ok(JsonlTask {
            train: read_jsonl(train_file, parse_prompt)?,
            eval: match eval_file {
                Some(p) => read_jsonl(p, parse_prompt)?,
                None => Vec::new(),
            },
            prefill: prefill.to_string(),
        })
    }

    /// The first `n` of `xs` as problems of `split`.
    fn problems(&self, split: &str, xs: &[PromptExample], n: usize) -> Vec<Problem> {
        xs.iter()
            .take(n)
            .enumerate()
            .map(|(i, x)| Problem {
                prefill: self.prefill.clone(),
                ..Problem::question(
                    format!("jsonl/{split}/{i}"),
                    x.prompt.clone(),
                    x.reference.clone(),
                )
            })
            .collect()
    }
}

impl Task for JsonlTask {
    fn name(&self) -> &str {
        "jsonl"
    }

    fn train(&self, n: usize) -> Result<Vec<Problem>> {
        Ok(self.problems("train", &self.train, n))
    }

    fn held_out(&self, n: usize) -> Result<Vec<Problem>> {
        Ok(self.problems("held_out", &self.eval, n))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(name: &str, text: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("temper-tasks-jsonl-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("tmp");
        let p = dir.join(name);
        std::fs::write(&p, text).expect("write");
        p
    }

    #[test]
    fn prompts_parse_and_errors_name_the_line_and_field() {
        let p = write("numeric.jsonl", "{\"question\":\"q\",\"answer\":42}\n");
        assert_eq!(
            read_jsonl(&p, parse_prompt).expect("numeric answer")[0]
                .reference
                .as_deref(),
            Some("42")
        );
        let cases = [
            (
                "bad_json.jsonl",
                "{\"prompt\":\"ok\"}\n{not json}\n",
                ":2: invalid JSON",
            ),
            ("array.jsonl", "[1]\n", ":1: expected a JSON object"),
            (
                "no_prompt.jsonl",
                "{\"answer\":\"1\"}\n",
                ":1: missing string field `prompt` (or `question`)",
            ),
            (
                "number_prompt.jsonl",
                "{\"prompt\":3}\n",
                ":1: field `prompt` must be a string, got 3",
            ),
            ("empty.jsonl", "\n\n", "empty.jsonl: no examples in file"),
        ];
        for (name, text, want) in cases {
            let e = read_jsonl(&write(name, text), parse_prompt)
                .expect_err(name)
                .to_string();
            assert!(e.contains(want) && e.contains(name), "{e}");
        }
        let e = read_jsonl(Path::new("/nonexistent/p.jsonl"), parse_prompt)
            .expect_err("missing")
            .to_string();
        assert!(e.starts_with("/nonexistent/p.jsonl: "), "{e}");
    }

    #[test]
    fn jsonl_task_hands_out_the_files_prompts_in_order() -> Result<()> {
        let train = write(
            "train.jsonl",
            "{\"prompt\":\" a \",\"answer\":\"1\"}\n\n{\"question\":\"b\"}\n",
        );
        let eval = write("eval.jsonl", "{\"prompt\":\"c\",\"solution\":\"3\"}\n");
        let task = JsonlTask::open(&train, Some(&eval), "<answer>")?;
        let got = task.train(usize::MAX)?;
        assert_eq!(got.len(), 2);
        assert_eq!(
            got[0],
            Problem {
                prefill: "<answer>".into(),
                ..Problem::question("jsonl/train/0", " a ", Some("1".into()))
            }
        );
        assert_eq!(got[1].reference, None);
        assert_eq!(task.train(1)?.len(), 1);
        assert_eq!(task.held_out(5)?[0].reference.as_deref(), Some("3"));
        assert!(JsonlTask::open(&train, None, "")?.held_out(5)?.is_empty());
        Ok(())
    }
}
