//! `temper-tools`: function calling for Temper — the [`Tool`] seam and [`Registry`] (arguments checked against a
//! JSON schema before a tool runs), tool-call [`Format`]s (parse and render), built-in tools with no network
//! ([`builtins`]).
#![deny(missing_docs)]

pub mod builtins;
mod error;
mod formats;
mod tool;

pub use error::{Result, ToolError};
pub use formats::{Format, Reply, python_repr, render_python_calls};
pub use tool::{FnTool, Registry, Tool, ToolSpec, schema_for};
