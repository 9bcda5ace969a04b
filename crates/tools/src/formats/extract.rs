//! Reading calls out of real model text: code fences, JSON (or Python-quoted JSON) values embedded in prose, and
//! the call-object shapes formats use (`{"name", "arguments"}`, Llama's `"parameters"`, OpenAI's `function` and
//! `tool_calls` wrappers, arguments given as a JSON string).

use serde_json::{Map, Value};
use temper_chat::ToolCall;

use crate::error::{Result, ToolError};
use crate::formats::pylit;

/// Most candidate `{`/`[` positions tried in one reply (bounds the work on long prose).
const MAX_CANDIDATES: usize = 64;

/// Removes Markdown code fences, line by line: a line that starts (after indentation) with ```` ``` ```` loses the
/// fence and a language tag right after it (` ```json `), and a line that ends with ```` ``` ```` loses that closing
/// fence, so the fenced content reads as part of the reply. Fences inside a line are left alone (a JSON string
/// cannot hold a new line, so a fence at a line's start is never inside one).
pub(crate) fn strip_fences(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for line in text.split_inclusive('\n') {
        let (body, newline) = match line.strip_suffix('\n') {
            Some(b) => (b.strip_suffix('\r').unwrap_or(b), "\n"),
            None => (line, ""),
        };
        let mut body = body;
        if let Some(rest) = body.trim_start().strip_prefix("```") {
            let tag = rest
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '-'))
                .unwrap_or(rest.len());
            let after = &rest[tag..];
            body = if after.is_empty() || after.starts_with(char::is_whitespace) {
                after
            } else {
                rest
            };
        }
        let trimmed = body.trim_end();
        if let Some(t) = trimmed.strip_suffix("```") {
            body = t;
        }
        out.push_str(body);
        out.push_str(newline);
    }
    out
}

/// One value (JSON first, then a lenient Python-literal reading) starting at byte `pos` of `text`; returns it and
/// the byte offset where it ends.
pub(crate) fn value_at(text: &str, pos: usize, format: &'static str) -> Result<(Value, usize)> {
    let mut stream = serde_json::Deserializer::from_str(&text[pos..]).into_iter::<Value>();
    if let Some(Ok(v)) = stream.next() {
        return Ok((v, pos + stream.byte_offset()));
    }
    let mut r = pylit::Reader::new(text, pos, format, true);
    let v = r.value(0)?;
    Ok((v, r.pos))
}

/// The calls a value holds, if it is call-shaped: a call object, an array of them, or `{"tool_calls": [...]}`.
/// `None` when the value is not a call at all (plain JSON in an answer); an error when it is one but malformed.
pub(crate) fn calls_of(
    v: &Value,
    format: &'static str,
    offset: usize,
) -> Option<Result<Vec<ToolCall>>> {
    match v {
        Value::Array(items) if !items.is_empty() && items.iter().all(is_call_object) => {
            Some(items.iter().map(|i| call_of(i, format, offset)).collect())
        }
        Value::Object(map) => {
            if let Some(tc) = map.get("tool_calls") {
                return Some(match tc {
                    Value::Array(items) => {
                        items.iter().map(|i| call_of(i, format, offset)).collect()
                    }
                    _ => Err(ToolError::parse(
                        format,
                        offset,
                        "`tool_calls` is not an array",
                    )),
                });
            }
            is_call_object(v).then(|| call_of(v, format, offset).map(|c| vec![c]))
        }
        _ => None,
    }
}

fn is_call_object(v: &Value) -> bool {
    v.as_object()
        .is_some_and(|m| m.contains_key("name") || m.get("function").is_some_and(Value::is_object))
}

fn call_of(v: &Value, format: &'static str, offset: usize) -> Result<ToolCall> {
    let err = |m: String| ToolError::parse(format, offset, m);
    let Some(map) = v.as_object() else {
        return Err(err(format!("a call must be an object, got {v}")));
    };
    let id = map
        .get("id")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let body: &Map<String, Value> = match map.get("function") {
        Some(Value::Object(f)) => f,
        _ => map,
    };
    let name = match body.get("name") {
        Some(Value::String(s)) if !s.is_empty() => s.clone(),
        Some(other) => {
            return Err(err(format!(
                "call `name` must be a non-empty string, got {other}"
            )));
        }
        None => return Err(err("call has no `name`".into())),
    };
    let args = body.get("arguments").or_else(|| body.get("parameters"));
    let arguments = match args {
        None | Some(Value::Null) => Value::Object(Map::new()),
        Some(Value::Object(_)) => args.cloned().unwrap_or_default(),
        Some(Value::String(s)) => {
            let parsed = if s.trim().is_empty() {
                Value::Object(Map::new())
            } else {
                serde_json::from_str(s)
                    .or_else(|_| pylit::parse_literal(s, format, true))
                    .map_err(|e| {
                        err(format!(
                            "arguments of `{name}` are a string that is not JSON: {e}"
                        ))
                    })?
            };
            if !parsed.is_object() {
                return Err(err(format!(
                    "arguments of `{name}` must be an object, got {parsed}"
                )));
            }
            parsed
        }
        Some(other) => {
            return Err(err(format!(
                "arguments of `{name}` must be an object, got {other}"
            )));
        }
    };
    Ok(ToolCall {
        id,
        name,
        arguments,
    })
}

/// True when the text at `pos` (a `{` or `[`) visibly starts a call object — `{"name"` / `{'name'` /
/// `{"function"` / `{"tool_calls"`, or a list of such — so a failure to read it is a malformed call, not prose.
fn looks_like_call(text: &str, pos: usize) -> bool {
    let rest = text[pos..].trim_start_matches(['[', '{', ' ', '\n', '\t', '\r']);
    ["name", "function", "tool_calls"].iter().any(|k| {
        rest.strip_prefix(['"', '\''])
            .is_some_and(|r| r.starts_with(k) && r[k.len()..].starts_with(['"', '\'']))
    })
}

/// Every call in JSON-ish `text`: the call-shaped values found left to right (objects separated by anything: new
/// lines, `;`, prose). Returns the calls and the text outside them. A value that visibly starts a call but cannot
/// be read is an error.
pub(crate) fn json_calls(text: &str, format: &'static str) -> Result<(Vec<ToolCall>, String)> {
    let text = strip_fences(text);
    let mut calls = Vec::new();
    let mut content = String::new();
    let mut pos = 0;
    let mut tried = 0;
    while let Some(i) = text[pos..].find(['{', '[']).map(|i| i + pos) {
        if tried == MAX_CANDIDATES {
            break;
        }
        tried += 1;
        match value_at(&text, i, format) {
            Ok((v, end)) => match calls_of(&v, format, i) {
                Some(found) => {
                    calls.extend(found?);
                    content.push_str(&text[pos..i]);
                    pos = end;
                }
                None => {
                    content.push_str(&text[pos..end]);
                    pos = end;
                }
            },
            Err(e) if looks_like_call(&text, i) => return Err(e),
            Err(_) => {
                content.push_str(&text[pos..=i]);
                pos = i + 1;
            }
        }
    }
    content.push_str(&text[pos..]);
    Ok((calls, tidy(&content)))
}

/// The text left around calls: trailing spaces and runs of blank lines removed, trimmed; empty when only
/// separators (`;`, `,`) remain.
pub(crate) fn tidy(content: &str) -> String {
    if content
        .chars()
        .all(|c| c.is_whitespace() || c == ';' || c == ',')
    {
        return String::new();
    }
    let mut out: Vec<&str> = Vec::new();
    for line in content.lines().map(str::trim_end) {
        if !(line.is_empty() && out.last().is_some_and(|l| l.is_empty())) {
            out.push(line);
        }
    }
    out.join("\n").trim().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn fences_prose_and_separators_around_json_calls() -> Result<()> {
        let text = "Sure, calling it.\n```json\n{\"name\": \"add\", \"arguments\": {\"a\": 1}}\n```\nDone.";
        let (calls, content) = json_calls(text, "json")?;
        assert_eq!(
            (calls.len(), calls[0].arguments.clone()),
            (1, json!({"a": 1}))
        );
        assert_eq!(content, "Sure, calling it.\n\nDone.");
        let (calls, content) = json_calls(
            "{\"name\": \"f\", \"parameters\": {}}; {\"name\": \"g\", \"parameters\": {\"x\": \"1\"}}",
            "llama3",
        )?;
        assert_eq!(
            calls.iter().map(|c| c.name.as_str()).collect::<Vec<_>>(),
            ["f", "g"]
        );
        assert_eq!(content, "");
        // Single quotes and Python/JSON keywords are recovered; string-encoded arguments are decoded.
        let (calls, _) = json_calls(
            "{'name': 'f', 'arguments': {'ok': true, 'n': None}}",
            "json",
        )?;
        assert_eq!(calls[0].arguments, json!({"ok": true, "n": null}));
        let (calls, _) = json_calls(
            r#"{"tool_calls": [{"id": "c9", "type": "function", "function": {"name": "f", "arguments": "{\"a\": [1]}"}}]}"#,
            "openai",
        )?;
        assert_eq!(
            (calls[0].id.as_str(), &calls[0].arguments),
            ("c9", &json!({"a": [1]}))
        );
        // JSON that is not a call is part of the answer.
        let (calls, content) = json_calls("The answer is {\"x\": 1} and [1, 2].", "json")?;
        assert!(calls.is_empty());
        assert_eq!(content, "The answer is {\"x\": 1} and [1, 2].");
        Ok(())
    }

    #[test]
    fn fences_are_stripped_only_at_line_ends() {
        assert_eq!(strip_fences("```json\n{\"a\": 1}\n```"), "\n{\"a\": 1}\n");
        assert_eq!(strip_fences("  ```python [f(a=1)]```\nok"), " [f(a=1)]\nok");
        assert_eq!(strip_fences("```f(a=1)```"), "f(a=1)");
        // A fence inside a string stays.
        assert_eq!(strip_fences("{\"s\": \"```x```\"}"), "{\"s\": \"```x```\"}");
    }

    #[test]
    fn a_visible_but_broken_call_is_an_error() {
        for (text, says) in [
            ("{\"name\": \"f\", \"arguments\": {\"a\": 1}", "expected"),
            ("{\"name\": 3}", "non-empty string"),
            ("{\"name\": \"f\", \"arguments\": [1]}", "must be an object"),
            ("{\"name\": \"f\", \"arguments\": \"{oops\"}", "not JSON"),
            ("{\"tool_calls\": 1}", "not an array"),
        ] {
            let e = json_calls(text, "json").expect_err(text);
            assert!(e.to_string().contains(says), "{text}: {e}");
        }
    }
}
