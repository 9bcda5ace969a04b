//! Tool-call formats: how tools are described to a model, how its calls are read back ([`Format::parse`]) and
//! written ([`Format::render_calls`]), and how results are handed back. Parsing is robust to real output (code
//! fences, text before and after, single-quoted JSON, string-encoded arguments) and never panics: a reply that
//! visibly tries to call a tool but cannot be read is a [`ToolError::Parse`]; a reply with no call is an answer.

mod extract;
pub(crate) mod pylit;

use serde_json::{Value, json};
use temper_chat::ToolCall;

use crate::error::{Result, ToolError};
use crate::tool::ToolSpec;

pub use pylit::{python_repr, render_python_calls};

/// A tool-call syntax.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// OpenAI's `{"tool_calls": [{"id", "type": "function", "function": {"name", "arguments": "<JSON string>"}}]}`.
    OpenAi,
    /// Hermes / Qwen 2.5+: `<tool_call>{"name": …, "arguments": {…}}</tool_call>` blocks, tools in `<tools>` in the
    /// system prompt, results in `<tool_response>` blocks.
    Hermes,
    /// Llama 3.1 JSON tool calling: `{"name": …, "parameters": {…}}` (several separated by `;`).
    Llama3,
    /// Python-call syntax, as BFCL's prompts ask for: `[f(a=1), g(b="x")]`.
    Pythonic,
    /// A bare JSON call object `{"name": …, "arguments": {…}}`, or an array of them.
    Json,
}

impl Format {
    /// Every format.
    pub const ALL: [Format; 5] = [
        Format::OpenAi,
        Format::Hermes,
        Format::Llama3,
        Format::Pythonic,
        Format::Json,
    ];

    /// The format's name: `openai`, `hermes`, `llama3`, `pythonic`, `json`.
    pub fn name(self) -> &'static str {
        match self {
            Format::OpenAi => "openai",
            Format::Hermes => "hermes",
            Format::Llama3 => "llama3",
            Format::Pythonic => "pythonic",
            Format::Json => "json",
        }
    }

    /// The format named `name`.
    pub fn parse_name(name: &str) -> Result<Format> {
        Format::ALL
            .into_iter()
            .find(|f| f.name() == name)
            .ok_or_else(|| {
                ToolError::InvalidInput(format!(
                    "unknown tool-call format `{name}`; expected one of {}",
                    Format::ALL.map(Format::name).join(", ")
                ))
            })
    }

    /// The system-prompt text that describes `tools` and how to call them in this format.
    pub fn system_prompt(self, tools: &[ToolSpec]) -> String {
        let lines = |f: &dyn Fn(&ToolSpec) -> Value| {
            tools
                .iter()
                .map(|t| f(t).to_string())
                .collect::<Vec<_>>()
                .join("\n")
        };
        match self {
            Format::Hermes => format!(
                "# Tools\n\nYou may call one or more functions to assist with the user query.\n\nYou are provided with \
                 function signatures within <tools></tools> XML tags:\n<tools>\n{}\n</tools>\n\nFor each function \
                 call, return a json object with function name and arguments within <tool_call></tool_call> XML \
                 tags:\n<tool_call>\n{{\"name\": <function-name>, \"arguments\": <args-json-object>}}\n</tool_call>",
                lines(&ToolSpec::openai_json)
            ),
            Format::Llama3 => format!(
                "Given the following functions, please respond with a JSON for a function call with its proper \
                 arguments that best answers the given prompt.\n\nRespond in the format {{\"name\": function name, \
                 \"parameters\": dictionary of argument name and its value}}. Do not use variables.\n\n{}",
                lines(&ToolSpec::openai_json)
            ),
            Format::Pythonic => format!(
                "You can call functions. To call one or more, reply with only a Python list of calls with keyword \
                 arguments and literal values, like [func_name1(param1=value1, param2=value2), func_name2(param=value)], \
                 and nothing else. If no function fits, or a required argument is missing from the question, say \
                 so in plain text instead.\n\nThe functions, as JSON:\n{}",
                lines(&|t: &ToolSpec| json!(t))
            ),
            Format::Json => format!(
                "You can call functions. To call one, reply with only a JSON object {{\"name\": <function name>, \
                 \"arguments\": <object of arguments>}}; to call several, a JSON array of such objects. If you need \
                 no function, answer in plain text.\n\nThe functions, as JSON:\n{}",
                lines(&|t: &ToolSpec| json!(t))
            ),
            Format::OpenAi => format!(
                "You can call functions. To call them, reply with only a JSON object {{\"tool_calls\": [{{\"id\": \
                 <id>, \"type\": \"function\", \"function\": {{\"name\": <name>, \"arguments\": <JSON-encoded \
                 arguments string>}}}}]}}. If you need no function, answer in plain text.\n\nThe tools:\n{}",
                lines(&ToolSpec::openai_json)
            ),
        }
    }

    /// The assistant text that makes `calls` in this format (what [`Format::parse`] reads back).
    pub fn render_calls(self, calls: &[ToolCall]) -> String {
        let named = |c: &ToolCall, key: &str| {
            let mut m = serde_json::Map::new();
            m.insert("name".into(), Value::String(c.name.clone()));
            m.insert(key.into(), c.arguments.clone());
            Value::Object(m)
        };
        match self {
            Format::Hermes => calls
                .iter()
                .map(|c| format!("<tool_call>\n{}\n</tool_call>", named(c, "arguments")))
                .collect::<Vec<_>>()
                .join("\n"),
            Format::Llama3 => calls
                .iter()
                .map(|c| named(c, "parameters").to_string())
                .collect::<Vec<_>>()
                .join("; "),
            Format::Pythonic => render_python_calls(calls),
            Format::Json => match calls {
                [one] => named(one, "arguments").to_string(),
                _ => {
                    Value::Array(calls.iter().map(|c| named(c, "arguments")).collect()).to_string()
                }
            },
            Format::OpenAi => {
                let wire: Vec<Value> = calls
                    .iter()
                    .map(|c| {
                        json!({"id": c.id, "type": "function",
                               "function": {"name": c.name, "arguments": c.arguments.to_string()}})
                    })
                    .collect();
                json!({ "tool_calls": wire }).to_string()
            }
        }
    }

    /// The text of one user turn that hands `results` (call, result) back to a model whose chat template has no
    /// tool role: `<tool_response>` blocks for Hermes, one `name → result` line per call otherwise.
    pub fn render_results(self, results: &[(ToolCall, Value)]) -> String {
        match self {
            Format::Hermes => results
                .iter()
                .map(|(c, r)| {
                    format!(
                        "<tool_response>\n{}\n</tool_response>",
                        json!({"name": c.name, "content": r})
                    )
                })
                .collect::<Vec<_>>()
                .join("\n"),
            _ => results
                .iter()
                .map(|(c, r)| format!("Result of {}: {r}", c.name))
                .collect::<Vec<_>>()
                .join("\n"),
        }
    }

    /// Reads a model reply: the calls it makes (none for a plain answer) and the text around them.
    pub fn parse(self, text: &str) -> Result<Reply> {
        let (calls, content) = match self {
            Format::Hermes => hermes(text)?,
            Format::Pythonic => pythonic(text)?,
            Format::Llama3 => {
                extract::json_calls(text.replace("<|python_tag|>", "").as_str(), self.name())?
            }
            Format::Json | Format::OpenAi => extract::json_calls(text, self.name())?,
        };
        Ok(Reply { content, calls })
    }
}

/// A parsed model reply.
#[derive(Debug, Clone, PartialEq)]
pub struct Reply {
    /// The text outside the calls (the whole reply when there is no call), trimmed.
    pub content: String,
    /// The calls, in order (ids as given by the model, often empty).
    pub calls: Vec<ToolCall>,
}

const OPEN: &str = "<tool_call>";
const CLOSE: &str = "</tool_call>";

fn hermes(text: &str) -> Result<(Vec<ToolCall>, String)> {
    let mut calls = Vec::new();
    let mut content = String::new();
    let mut rest = text;
    let mut base = 0;
    while let Some(i) = rest.find(OPEN) {
        content.push_str(&rest[..i]);
        let body_start = i + OPEN.len();
        // An unclosed block (generation stopped at `</tool_call>` or ran out) runs to the end.
        let (body, next) = match rest[body_start..].find(CLOSE) {
            Some(j) => (
                &rest[body_start..body_start + j],
                body_start + j + CLOSE.len(),
            ),
            None => (&rest[body_start..], rest.len()),
        };
        let offset = base + body_start;
        let body = extract::strip_fences(body);
        let trimmed = body.trim();
        if trimmed.is_empty() {
            return Err(ToolError::parse(
                "hermes",
                offset,
                "empty <tool_call> block",
            ));
        }
        let value = extract::value_at(trimmed, 0, "hermes")
            .and_then(|(v, end)| {
                if trimmed[end..].trim().is_empty() {
                    Ok(v)
                } else {
                    Err(ToolError::parse(
                        "hermes",
                        offset + end,
                        "text after the call inside <tool_call>",
                    ))
                }
            })
            .map_err(|e| shift(e, offset))?;
        match extract::calls_of(&value, "hermes", offset) {
            Some(found) => calls.extend(found?),
            None => {
                return Err(ToolError::parse(
                    "hermes",
                    offset,
                    format!("<tool_call> holds no call object: {value}"),
                ));
            }
        }
        base += next;
        rest = &rest[next..];
    }
    content.push_str(rest);
    Ok((calls, extract::tidy(&content)))
}

/// Moves a parse error's offset from a sub-slice to the whole reply.
fn shift(e: ToolError, by: usize) -> ToolError {
    match e {
        ToolError::Parse {
            format,
            offset,
            message,
        } if offset < by => ToolError::Parse {
            format,
            offset: offset + by,
            message,
        },
        other => other,
    }
}

/// Where a Python call list starts: a `[` followed by a (dotted) name and `(`, or by `]` when the whole reply is
/// `[]`.
fn pythonic_start(text: &str) -> Option<usize> {
    if text.trim() == "[]" {
        return text.find('[');
    }
    text.match_indices('[').map(|(i, _)| i).find(|&i| {
        let mut r = pylit::Reader::new(text, i + 1, "pythonic", false);
        r.ws();
        if r.ident().is_none() {
            return false;
        }
        while text[r.pos..].starts_with('.') {
            r.pos += 1;
            if r.ident().is_none() {
                return false;
            }
        }
        r.ws();
        text[r.pos..].starts_with('(')
    })
}

fn pythonic(text: &str) -> Result<(Vec<ToolCall>, String)> {
    let text = extract::strip_fences(text);
    if let Some(start) = pythonic_start(&text) {
        let mut r = pylit::Reader::new(&text, start, "pythonic", false);
        let calls = r.call_list()?;
        let content = format!("{}{}", &text[..start], &text[r.pos..]);
        return Ok((calls, extract::tidy(&content)));
    }
    // No brackets: a reply made only of calls, `f(a=1)` or `f(a=1), g(b=2)` (also one a line or `;`-separated), is
    // read as those calls; anything else is prose.
    Ok(bare_calls(text.trim()).map_or_else(
        || (Vec::new(), extract::tidy(&text)),
        |calls| (calls, String::new()),
    ))
}

/// The calls of a text that is nothing but calls separated by `,`, `;` or new lines.
fn bare_calls(text: &str) -> Option<Vec<ToolCall>> {
    let mut r = pylit::Reader::new(text, 0, "pythonic", false);
    let mut calls = Vec::new();
    loop {
        calls.push(r.call().ok()?);
        r.ws();
        if r.pos == text.len() {
            return Some(calls);
        }
        if text[r.pos..].starts_with([',', ';']) {
            r.pos += 1;
            r.ws();
        } else if !text[..r.pos]
            .trim_end_matches([' ', '\t', '\r'])
            .ends_with('\n')
        {
            return None;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call(name: &str, arguments: Value) -> ToolCall {
        ToolCall {
            id: String::new(),
            name: name.into(),
            arguments,
        }
    }

    #[test]
    fn every_format_reads_back_what_it_renders_parallel_calls_included() -> Result<()> {
        let calls = vec![
            call("add", json!({"a": 1, "b": 2.5})),
            call("pkg.echo", json!({"s": "x\"y'\n", "l": [true, null]})),
        ];
        for f in Format::ALL {
            let text = f.render_calls(&calls);
            let reply = f.parse(&text)?;
            assert_eq!(reply.calls.len(), 2, "{f:?}: {text}");
            for (got, want) in reply.calls.iter().zip(&calls) {
                assert_eq!(
                    (&got.name, &got.arguments),
                    (&want.name, &want.arguments),
                    "{f:?}: {text}"
                );
            }
            assert_eq!(reply.content, "", "{f:?}");
            assert_eq!(Format::parse_name(f.name())?, f);
            // A reply with no call is an answer, whatever the format.
            assert_eq!(
                f.parse("The answer is 4.")?,
                Reply {
                    content: "The answer is 4.".into(),
                    calls: vec![]
                }
            );
        }
        assert!(Format::parse_name("xml").is_err());
        Ok(())
    }

    #[test]
    fn hermes_reads_real_output() -> Result<()> {
        let text = "Let me compute that.\n<tool_call>\n```json\n{\"name\": \"add\", \"arguments\": \"{\\\"a\\\": 1}\"}\n```\n</tool_call>\n<tool_call>{'name': 'add', 'arguments': {'a': 2}}";
        let reply = Format::Hermes.parse(text)?;
        assert_eq!(reply.content, "Let me compute that.");
        assert_eq!(
            reply
                .calls
                .iter()
                .map(|c| c.arguments["a"].clone())
                .collect::<Vec<_>>(),
            [json!(1), json!(2)]
        );
        for (bad, says) in [
            ("<tool_call></tool_call>", "empty"),
            (
                "<tool_call>{\"name\": \"f\", \"arguments\": {</tool_call>",
                "hermes tool call",
            ),
            ("<tool_call>{\"x\": 1}</tool_call>", "no call object"),
            (
                "<tool_call>{\"name\": \"f\"} and more</tool_call>",
                "text after the call",
            ),
        ] {
            let e = Format::Hermes.parse(bad).expect_err(bad);
            assert!(e.to_string().contains(says), "{bad}: {e}");
        }
        Ok(())
    }

    #[test]
    fn pythonic_reads_real_output() -> Result<()> {
        let reply = Format::Pythonic
            .parse("```python\n[calculate_triangle_area(base=10, height=5)]\n```")?;
        assert_eq!(
            reply.calls,
            vec![call(
                "calculate_triangle_area",
                json!({"base": 10, "height": 5})
            )]
        );
        let reply = Format::Pythonic.parse("I will call [f(x=[1, 2])] now.")?;
        assert_eq!(
            (reply.calls.len(), reply.content.as_str()),
            (1, "I will call  now.")
        );
        assert_eq!(
            Format::Pythonic.parse("math.sqrt(x=2)")?.calls,
            vec![call("math.sqrt", json!({"x": 2}))]
        );
        assert!(Format::Pythonic.parse("[]")?.calls.is_empty());
        // Prose with brackets is prose; a list of calls that breaks off is an error.
        assert!(
            Format::Pythonic
                .parse("See [1] and f(x) = x^2.")?
                .calls
                .is_empty()
        );
        let e = Format::Pythonic
            .parse("[f(a=1), g(b='x'")
            .expect_err("unclosed");
        assert!(
            matches!(
                e,
                ToolError::Parse {
                    format: "pythonic",
                    ..
                }
            ),
            "{e}"
        );
        Ok(())
    }

    #[test]
    fn system_prompts_carry_every_tool() {
        let tools = [
            ToolSpec::new("add", "Adds.", json!({"type": "object"})),
            ToolSpec::new("neg", "Negates.", json!({"type": "object"})),
        ];
        for f in Format::ALL {
            let p = f.system_prompt(&tools);
            assert!(
                p.contains("\"add\"") && p.contains("\"neg\"") && p.contains("Negates."),
                "{f:?}: {p}"
            );
        }
        assert!(
            Format::Hermes
                .system_prompt(&tools)
                .contains("<tools>\n{\"function\"")
        );
        let r = Format::Hermes.render_results(&[(call("add", json!({})), json!(3))]);
        assert_eq!(
            r,
            "<tool_response>\n{\"content\":3,\"name\":\"add\"}\n</tool_response>"
        );
    }
}
