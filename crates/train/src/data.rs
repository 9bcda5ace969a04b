//! Training data in JSONL: prompt/completion, chat messages, preference pairs, and prompts with reference
//! answers (those two records and the reader, [`read_jsonl`], are `temper-tasks`'). Every error names the file,
//! the line and the field.

use serde_json::Value;
use temper_tokenizer::{Message, Role};

/// A supervised example.
#[derive(Clone, Debug, PartialEq)]
pub enum SftExample {
    /// `{"prompt": ..., "completion": ...}`: the loss is on the completion (+ EOS).
    PromptCompletion {
        /// Prompt text (or rendered chat prompt).
        prompt: String,
        /// Target text.
        completion: String,
    },
    /// `{"messages": [{"role", "content"}, ...]}`: rendered with the chat template; loss on assistant turns.
    Messages(Vec<Message>),
    /// `{"text": ...}`: language modelling on the whole text.
    Text(String),
}

/// The plain records and the JSONL reader live in `temper-tasks` (shared, not copied).
pub use temper_tasks::{PreferencePair, PromptExample, parse_prompt, read_jsonl, string_field};

fn messages(v: &Value) -> std::result::Result<Vec<Message>, String> {
    let arr = v.as_array().ok_or("field `messages` must be an array")?;
    arr.iter()
        .enumerate()
        .map(|(i, m)| {
            let role = m.get("role").and_then(Value::as_str).ok_or(format!("messages[{i}].role must be a string"))?;
            let content = m
                .get("content")
                .and_then(Value::as_str)
                .ok_or(format!("messages[{i}].content must be a string"))?;
            let Some(role) = Role::parse(role) else {
                return Err(format!("messages[{i}].role `{role}` is not system/user/assistant/tool"));
            };
            Ok(Message::new(role, content))
        })
        .collect()
}

/// Parses one SFT line.
pub fn parse_sft(v: &Value) -> std::result::Result<SftExample, String> {
    if let Some(m) = v.get("messages") {
        return messages(m).map(SftExample::Messages);
    }
    if let (Some(p), Some(c)) = (string_field(v, "prompt")?, string_field(v, "completion")?) {
        return Ok(SftExample::PromptCompletion { prompt: p, completion: c });
    }
    if let Some(t) = string_field(v, "text")? {
        return Ok(SftExample::Text(t));
    }
    Err("expected `messages`, `prompt` + `completion`, or `text`".into())
}

/// Parses one preference line: `prompt`, `chosen`, `rejected` (+ optional numeric `margin`).
pub fn parse_preference(v: &Value) -> std::result::Result<PreferencePair, String> {
    let need = |n: &str| string_field(v, n)?.ok_or(format!("missing string field `{n}`"));
    let margin = match v.get("margin") {
        None | Some(Value::Null) => None,
        Some(m) => Some(m.as_f64().ok_or("field `margin` must be a number")?),
    };
    Ok(PreferencePair {
        prompt: need("prompt")?,
        chosen: need("chosen")?,
        rejected: need("rejected")?,
        margin,
    })
}

/// A seeded, epoch-wise shuffled cursor over `len` examples; its state is two numbers.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Cursor {
    /// Number of examples.
    pub len: usize,
    /// Shuffle seed.
    pub seed: u64,
    /// Completed passes over the data.
    pub epoch: usize,
    /// Position inside the current pass.
    pub index: usize,
}

impl Cursor {
    /// A cursor at the start.
    pub fn new(len: usize, seed: u64) -> Self {
        Self { len, seed, epoch: 0, index: 0 }
    }

    fn order(&self) -> Vec<usize> {
        use rand::SeedableRng;
        use rand::seq::SliceRandom;
        let mut order: Vec<usize> = (0..self.len).collect();
        let mut rng = rand::rngs::StdRng::seed_from_u64(self.seed ^ (self.epoch as u64).wrapping_mul(0x2545_f491_4f6c_dd1d));
        order.shuffle(&mut rng);
        order
    }

    /// The next `n` example indices (wrapping into a new shuffled epoch).
    pub fn take(&mut self, n: usize) -> Vec<usize> {
        let mut out = Vec::with_capacity(n);
        let mut order = self.order();
        while out.len() < n && self.len > 0 {
            if self.index == self.len {
                self.epoch += 1;
                self.index = 0;
                order = self.order();
            }
            out.push(order[self.index]);
            self.index += 1;
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::{Result, TrainError};

    fn parse_lines<T>(text: &str, f: impl FnMut(&Value) -> std::result::Result<T, String>) -> Result<Vec<T>> {
        let dir = std::env::temp_dir().join(format!("temper-data-{}-{}", std::process::id(), text.len()));
        std::fs::create_dir_all(&dir).expect("tmp");
        let p = dir.join("d.jsonl");
        std::fs::write(&p, text).expect("write");
        let r = read_jsonl(&p, f).map_err(TrainError::from);
        std::fs::remove_dir_all(&dir).ok();
        r
    }

    #[test]
    fn every_format_parses_and_errors_name_the_line_and_field() {
        let ok = "{\"prompt\":\"a\",\"completion\":\"b\"}\n\n{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}\n{\"text\":\"t\"}\n";
        let v = parse_lines(ok, parse_sft).expect("valid");
        assert_eq!(v.len(), 3);
        assert!(matches!(v[2], SftExample::Text(ref t) if t == "t"));
        let cases = [
            ("{\"prompt\":\"a\"}\n", parse_sft as fn(&Value) -> std::result::Result<SftExample, String>, ":1:", "expected `messages`"),
            ("{\"text\":\"ok\"}\n{not json}\n", parse_sft, ":2:", "invalid JSON"),
            ("{\"messages\":[{\"role\":\"robot\",\"content\":\"x\"}]}\n", parse_sft, ":1:", "messages[0].role"),
        ];
        for (text, f, line, what) in cases {
            let e = parse_lines(text, f).expect_err(text).to_string();
            assert!(e.contains(line) && e.contains(what), "{e}");
        }
        let e = parse_lines("{\"prompt\":\"p\",\"chosen\":\"c\"}\n", parse_preference).expect_err("no rejected").to_string();
        assert!(e.contains("`rejected`"), "{e}");
        let p = parse_lines("{\"question\":\"q\",\"answer\":42}\n", parse_prompt).expect("numeric answer");
        assert_eq!(p[0].reference.as_deref(), Some("42"));
    }

    #[test]
    fn cursor_is_deterministic_and_covers_each_epoch() {
        let mut a = Cursor::new(5, 7);
        let first: Vec<usize> = a.take(5);
        let mut sorted = first.clone();
        sorted.sort();
        assert_eq!(sorted, vec![0, 1, 2, 3, 4]);
        let next = a.take(3);
        assert_eq!(a.epoch, 1);
        let mut b = Cursor::new(5, 7);
        b.take(5);
        assert_eq!(b.take(3), next, "resuming from the same state gives the same order");
    }
}
