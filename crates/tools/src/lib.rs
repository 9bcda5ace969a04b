//! `temper-tools`: function calling for Temper — the [`Tool`] seam and [`Registry`] (arguments checked against a
//! JSON schema before a tool runs), tool-call [`Format`]s (parse and render), built-in tools with no network
//! ([`builtins`]), the tool loop over any `temper_chat::ChatBackend` ([`run_tool_loop`]), and BFCL v4 loading and
//! scoring with BFCL's AST checker ([`bfcl`]), and Toolformer's filtering rule and call text ([`toolformer`]).
//!
//! ```
//! use temper_tools::{Format, builtins::builtin_registry};
//!
//! let registry = builtin_registry()?;
//! let reply = Format::Hermes
//!     .parse("Let me compute.\n<tool_call>{\"name\": \"calculator\", \"arguments\": {\"expression\": \"1/3 + 1/6\"}}</tool_call>")?;
//! assert_eq!(reply.content, "Let me compute.");
//! let result = registry.call(&reply.calls[0])?;
//! assert_eq!(result["value"], "1/2");
//! # Ok::<(), temper_tools::ToolError>(())
//! ```
#![deny(missing_docs)]

pub mod bfcl;
pub mod builtins;
mod error;
mod formats;
mod tool;
mod tool_loop;
pub mod toolformer;

pub use error::{Result, ToolError};
pub use formats::{Format, Reply, python_repr, render_python_calls};
pub use tool::{FnTool, Registry, Tool, ToolSpec, schema_for};
pub use tool_loop::{
    LoopConfig, LoopRun, Outcome, Step, StopTool, ToolResult, Transcript, Turn, TurnKind,
    TurnStyle, run_tool_loop, step, with_tools,
};
