//! The tool loop over any [`ChatBackend`]: tools described in the system prompt in a [`Format`] → reply → parse →
//! validate → execute → hand the results back → repeat, until a plain answer, a stop tool, or a step limit. Every
//! turn is recorded in a [`Transcript`] (one JSON object a line).
//!
//! The seam returns text, so tools always travel in the prompt; how the calls and results go back into the
//! conversation is [`TurnStyle`]: as structured `tool_calls` + `tool` messages (for chat templates and endpoints
//! that know tools), or as plain text turns (for templates that do not).

use std::io::Write;
use std::path::Path;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use temper_chat::{ChatBackend, GenerationParams, Message, Role, ToolCall};

use crate::error::{Result, ToolError};
use crate::formats::Format;
use crate::tool::{Registry, Tool, ToolSpec};

/// How calls and results are written back into the conversation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TurnStyle {
    /// The assistant turn carries its text outside the calls as `content` and the calls as `tool_calls`; each
    /// result is a `tool` message answering its call's id (what HF tool-aware templates and OpenAI endpoints read).
    Structured,
    /// The assistant turn is the model's reply verbatim; all results come back in one `user` turn written by
    /// [`Format::render_results`] (for chat templates with no tool role).
    Text,
}

/// Settings of one loop.
#[derive(Debug, Clone, PartialEq)]
pub struct LoopConfig {
    /// The call syntax the model is asked for and read in.
    pub format: Format,
    /// How calls and results go back into the conversation.
    pub turns: TurnStyle,
    /// Most model replies before the loop gives up.
    pub max_steps: usize,
    /// A registered tool whose call ends the loop with its arguments (not executed), e.g. [`StopTool`].
    pub stop_tool: Option<String>,
    /// Generation settings of every reply.
    pub params: GenerationParams,
}

impl LoopConfig {
    /// `format` with structured turns, 8 steps, no stop tool, greedy replies of up to 512 tokens.
    pub fn new(format: Format) -> LoopConfig {
        LoopConfig {
            format,
            turns: TurnStyle::Structured,
            max_steps: 8,
            stop_tool: None,
            params: GenerationParams::greedy(512),
        }
    }
}

/// A tool that ends the loop: the model calls it with `{"answer": "…"}`.
pub struct StopTool {
    spec: ToolSpec,
}

impl StopTool {
    /// A stop tool named `name`.
    pub fn new(name: impl Into<String>) -> StopTool {
        StopTool {
            spec: ToolSpec::new(
                name,
                "Call when you are done, with your final answer.",
                json!({"type": "object", "properties": {"answer": {"type": "string", "description": "The final answer."}},
                       "required": ["answer"], "additionalProperties": false}),
            ),
        }
    }
}

impl Tool for StopTool {
    fn spec(&self) -> &ToolSpec {
        &self.spec
    }
    fn call(&self, args: Value) -> Result<Value> {
        Ok(args)
    }
}

/// How a loop ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// The model answered without calling a tool (the text outside any call).
    Answer(String),
    /// The model called the stop tool with these (validated) arguments.
    Stopped(Value),
    /// `max_steps` replies were used up.
    StepLimit,
}

/// What a turn of the transcript is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TurnKind {
    /// A message given to the loop (system prompt with the tools, the user's question).
    Prompt,
    /// A model reply.
    Reply,
    /// A tool's result (or its error) handed back.
    ToolResult,
    /// The reply could not be parsed; this message tells the model why.
    ParseError,
}

/// One turn of the transcript: one JSONL line.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Turn {
    /// The reply number it belongs to (0 for the prompt).
    pub step: usize,
    /// What it is.
    pub kind: TurnKind,
    /// The message as appended to the conversation.
    pub message: Message,
    /// The model's raw reply text (replies only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub raw: Option<String>,
    /// For a tool result: whether the call succeeded (validated and ran).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ok: Option<bool>,
}

/// Every turn of a loop, in order.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Transcript {
    /// The turns.
    pub turns: Vec<Turn>,
}

impl Transcript {
    /// One JSON object a line.
    pub fn to_jsonl(&self) -> String {
        self.turns
            .iter()
            .map(|t| json!(t).to_string() + "\n")
            .collect()
    }

    /// Writes [`Transcript::to_jsonl`] to `path` through a temporary file beside it and a rename, so a reader never
    /// sees half a transcript.
    pub fn write_jsonl(&self, path: &Path) -> Result<()> {
        let io = |source| ToolError::Io {
            path: path.to_path_buf(),
            source,
        };
        let name = path.file_name().ok_or_else(|| {
            io(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "not a file name",
            ))
        })?;
        let tmp = path.with_file_name(format!(".{}.tmp", name.to_string_lossy()));
        let mut f = std::fs::File::create(&tmp).map_err(io)?;
        f.write_all(self.to_jsonl().as_bytes()).map_err(io)?;
        f.sync_all().map_err(io)?;
        std::fs::rename(&tmp, path).map_err(io)
    }

    fn push(
        &mut self,
        step: usize,
        kind: TurnKind,
        message: &Message,
        raw: Option<&str>,
        ok: Option<bool>,
    ) {
        self.turns.push(Turn {
            step,
            kind,
            message: message.clone(),
            raw: raw.map(str::to_string),
            ok,
        });
    }
}

/// The end of a loop.
#[derive(Debug, Clone, PartialEq)]
pub struct LoopRun {
    /// How it ended.
    pub outcome: Outcome,
    /// The conversation as it stands (the prompt with the tools first).
    pub messages: Vec<Message>,
    /// Every turn.
    pub transcript: Transcript,
    /// Model replies used.
    pub steps: usize,
}

/// Puts the format's tool description into the system prompt (appended to an existing system message, or as a new
/// first message).
pub fn with_tools(mut messages: Vec<Message>, format: Format, tools: &[ToolSpec]) -> Vec<Message> {
    let block = format.system_prompt(tools);
    match messages.first_mut() {
        Some(m) if m.role == Role::System => m.content = format!("{}\n\n{block}", m.content),
        _ => messages.insert(0, Message::system(block)),
    }
    messages
}

/// One tool result handed back to the model.
#[derive(Debug, Clone, PartialEq)]
pub struct ToolResult {
    /// The call (with its id).
    pub call: ToolCall,
    /// The result, or `{"error": "…"}`.
    pub value: Value,
    /// Whether the call validated and ran.
    pub ok: bool,
}

/// What one model reply leads to — the step shared by [`run_tool_loop`] and by on-line RL rollouts, where the
/// [`Step::observation`] text is what comes from tools (the tokens to mask out of the loss).
#[derive(Debug, Clone, PartialEq)]
pub enum Step {
    /// No call: a plain answer (the text outside any call); the episode is over.
    Answer(String),
    /// The stop tool was called with these validated arguments (after the calls before it ran); over.
    Stopped {
        /// The text outside the calls.
        content: String,
        /// Every call of the reply.
        calls: Vec<ToolCall>,
        /// The stop tool's arguments.
        arguments: Value,
    },
    /// Calls were made and run; their results go back to the model.
    Results {
        /// The text outside the calls.
        content: String,
        /// The calls.
        calls: Vec<ToolCall>,
        /// One result per call, in order.
        results: Vec<ToolResult>,
    },
    /// The reply could not be parsed; the text tells the model why.
    Unreadable(String),
}

impl Step {
    /// The text that goes back to the model as one turn when the episode goes on (all results rendered by
    /// [`Format::render_results`], or the parse error); `None` when it is over.
    pub fn observation(&self, format: Format) -> Option<String> {
        match self {
            Step::Answer(_) | Step::Stopped { .. } => None,
            Step::Unreadable(text) => Some(text.clone()),
            Step::Results { results, .. } => {
                let pairs: Vec<(ToolCall, Value)> = results
                    .iter()
                    .map(|r| (r.call.clone(), r.value.clone()))
                    .collect();
                Some(format.render_results(&pairs))
            }
        }
    }
}

/// Reads the model's reply `raw` (its `step`-th) in `format` and runs its calls with `registry`: calls without an
/// id get `call_{step}_{i}`; a call of `stop_tool` that validates ends the episode.
pub fn step(
    registry: &Registry,
    format: Format,
    stop_tool: Option<&str>,
    step: usize,
    raw: &str,
) -> Step {
    let reply = match format.parse(raw) {
        Ok(r) => r,
        Err(e) => {
            return Step::Unreadable(format!(
                "Your tool call could not be read: {e}. Call again in the required format, or answer in plain text."
            ));
        }
    };
    if reply.calls.is_empty() {
        return Step::Answer(reply.content);
    }
    let calls: Vec<ToolCall> = reply
        .calls
        .into_iter()
        .enumerate()
        .map(|(i, c)| ToolCall {
            id: if c.id.is_empty() {
                format!("call_{step}_{i}")
            } else {
                c.id
            },
            ..c
        })
        .collect();
    let mut results = Vec::with_capacity(calls.len());
    for call in &calls {
        let (value, ok) = registry.reply(call);
        if ok && stop_tool == Some(call.name.as_str()) {
            return Step::Stopped {
                content: reply.content,
                calls,
                arguments: value,
            };
        }
        results.push(ToolResult {
            call: call.clone(),
            value,
            ok,
        });
    }
    Step::Results {
        content: reply.content,
        calls,
        results,
    }
}

/// Runs the tool loop on `messages` with `backend`, calling tools from `registry`.
///
/// A reply that cannot be parsed, a call to an unknown tool, arguments that fail validation and a tool's own
/// failure are all fed back to the model as text (and count as a step); only the back end's errors stop the loop.
pub fn run_tool_loop<B: ChatBackend + ?Sized>(
    backend: &B,
    registry: &Registry,
    messages: Vec<Message>,
    config: &LoopConfig,
) -> Result<LoopRun> {
    if let Some(stop) = &config.stop_tool
        && !registry.contains(stop)
    {
        return Err(ToolError::Registry(format!(
            "stop tool `{stop}` is not registered"
        )));
    }
    config
        .params
        .validate()
        .map_err(|e| ToolError::InvalidInput(format!("generation parameters: {e}")))?;
    // A back end whose chat template reads `tools` describes them itself; otherwise the system prompt does.
    let schemas: Vec<Value> = registry.specs().iter().map(ToolSpec::openai_json).collect();
    let mut messages = if backend.take_tools(&schemas) {
        messages
    } else {
        with_tools(messages, config.format, &registry.specs())
    };
    let mut transcript = Transcript::default();
    for m in &messages {
        transcript.push(0, TurnKind::Prompt, m, None, None);
    }
    for n in 1..=config.max_steps {
        let raw = backend.complete(&messages, &config.params)?;
        let outcome = step(
            registry,
            config.format,
            config.stop_tool.as_deref(),
            n,
            &raw,
        );
        let said = match (&outcome, config.turns) {
            (
                Step::Stopped { content, calls, .. } | Step::Results { content, calls, .. },
                TurnStyle::Structured,
            ) => Message {
                tool_calls: calls.clone(),
                ..Message::assistant(content.clone())
            },
            _ => Message::assistant(raw.clone()),
        };
        transcript.push(n, TurnKind::Reply, &said, Some(&raw), None);
        messages.push(said);
        let done = |outcome| {
            Ok(LoopRun {
                outcome,
                messages: messages.clone(),
                transcript: transcript.clone(),
                steps: n,
            })
        };
        match (&outcome, config.turns) {
            (Step::Answer(content), _) => return done(Outcome::Answer(content.clone())),
            (Step::Stopped { arguments, .. }, _) => {
                return done(Outcome::Stopped(arguments.clone()));
            }
            (Step::Unreadable(text), _) => {
                let m = Message::user(text.clone());
                transcript.push(n, TurnKind::ParseError, &m, None, None);
                messages.push(m);
            }
            (Step::Results { results, .. }, TurnStyle::Structured) => {
                for r in results {
                    let m = Message::tool(r.call.id.clone(), r.value.to_string());
                    transcript.push(n, TurnKind::ToolResult, &m, None, Some(r.ok));
                    messages.push(m);
                }
            }
            (Step::Results { results, .. }, TurnStyle::Text) => {
                let m = Message::user(outcome.observation(config.format).unwrap_or_default());
                transcript.push(
                    n,
                    TurnKind::ToolResult,
                    &m,
                    None,
                    Some(results.iter().all(|r| r.ok)),
                );
                messages.push(m);
            }
        }
    }
    Ok(LoopRun {
        outcome: Outcome::StepLimit,
        messages,
        transcript,
        steps: config.max_steps,
    })
}
