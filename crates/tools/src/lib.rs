//! `temper-tools`: function calling for Temper — the [`Tool`] seam and [`Registry`] (arguments checked against a
//! JSON schema before a tool runs), tool-call [`Format`]s (parse and render), built-in tools with no network
//! ([`builtins`]), the tool loop over any `temper_chat::ChatBackend` ([`run_tool_loop`]), and BFCL v4 loading and
//! scoring with BFCL's AST checker ([`bfcl`]), and Toolformer's filtering rule ([`toolformer`]).
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
    LoopConfig, LoopRun, Outcome, StopTool, Transcript, Turn, TurnKind, TurnStyle, run_tool_loop,
    with_tools,
};
