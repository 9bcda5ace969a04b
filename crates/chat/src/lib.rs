//! `temper-chat`: the chat vocabulary shared by every Temper crate — [`Message`] and [`Role`], the
//! [`GenerationParams`] of a request, and the [`ChatBackend`] seam (one required method: messages → reply).
//!
//! It depends on neither burn nor an HTTP stack, so a crate that only speaks chat (a judge, a tool loop, a
//! retrieval pipeline) stays light. Back ends live elsewhere: the local Temper model in `temper-models` (feature
//! `chat`), an OpenAI-compatible endpoint behind this crate's `openai` feature (`OpenAiBackend` with timeouts,
//! retries and a `DiskCache` of replies; the only HTTP/TLS dependency, absent without the feature).
//!
//! ```
//! use temper_chat::{ChatBackend, ChatError, GenerationParams, Message};
//!
//! struct Echo;
//! impl ChatBackend for Echo {
//!     fn complete(&self, messages: &[Message], _: &GenerationParams) -> Result<String, ChatError> {
//!         Ok(messages.last().map(|m| m.content.clone()).unwrap_or_default())
//!     }
//! }
//! let reply = Echo.complete(&[Message::system("Be brief."), Message::user("Hi!")], &GenerationParams::greedy(8))?;
//! assert_eq!(reply, "Hi!");
//! # Ok::<(), ChatError>(())
//! ```

mod backend;
#[cfg(feature = "openai")]
mod cache;
mod error;
mod message;
#[cfg(feature = "openai")]
mod openai;
mod params;

pub use backend::{ChatBackend, Reply};
#[cfg(feature = "openai")]
pub use cache::DiskCache;
pub use error::{ChatError, Result};
pub use message::{Message, Role, ToolCall};
#[cfg(feature = "openai")]
pub use openai::{ENV_API_KEY, ENV_BASE_URL, MAX_REPLY_BYTES, OpenAiBackend, OpenAiConfig};
pub use params::GenerationParams;
