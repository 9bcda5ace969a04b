//! The chat seam: [`ChatBackend`] turns a conversation into the model's reply; [`ChatBackend::reply`] also
//! returns the token counts ([`Reply`]) when the back end knows them.

use std::sync::Arc;

use crate::error::Result;
use crate::message::Message;
use crate::params::GenerationParams;

/// A reply with the tokens it cost, as far as the back end knows them.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Reply {
    /// The assistant's reply (what [`ChatBackend::complete`] returns).
    pub text: String,
    /// Tokens of the prompt (OpenAI `usage.prompt_tokens`; the local model's encoded prompt).
    pub prompt_tokens: Option<usize>,
    /// Tokens generated (OpenAI `usage.completion_tokens`; the local model's new tokens, EOS included).
    pub completion_tokens: Option<usize>,
}

/// A chat model that answers a conversation. One required method.
///
/// Implemented by the local Temper model (`temper_models::LocalChat`, feature `chat`), by an OpenAI-compatible
/// endpoint (`OpenAiBackend`, this crate's feature `openai`), and by anything a test scripts.
pub trait ChatBackend {
    /// Returns the assistant's reply to `messages`.
    fn complete(&self, messages: &[Message], params: &GenerationParams) -> Result<String>;

    /// The reply with its token counts. Default: [`complete`](Self::complete) with unknown counts; back ends
    /// that count tokens (OpenAI `usage`, the local model) override it.
    fn reply(&self, messages: &[Message], params: &GenerationParams) -> Result<Reply> {
        Ok(Reply {
            text: self.complete(messages, params)?,
            ..Reply::default()
        })
    }

    /// Offers the tool schemas (OpenAI's `{"type": "function", "function": …}` form) of the conversations to come.
    /// `true` when the back end describes them to the model itself (a local model whose chat template reads
    /// `tools`), so the caller adds no tool description of its own; default `false`.
    fn take_tools(&self, _tools: &[serde_json::Value]) -> bool {
        false
    }
}

impl<T: ChatBackend + ?Sized> ChatBackend for &T {
    fn complete(&self, messages: &[Message], params: &GenerationParams) -> Result<String> {
        (**self).complete(messages, params)
    }
    fn reply(&self, messages: &[Message], params: &GenerationParams) -> Result<Reply> {
        (**self).reply(messages, params)
    }
    fn take_tools(&self, tools: &[serde_json::Value]) -> bool {
        (**self).take_tools(tools)
    }
}

impl<T: ChatBackend + ?Sized> ChatBackend for Box<T> {
    fn complete(&self, messages: &[Message], params: &GenerationParams) -> Result<String> {
        (**self).complete(messages, params)
    }
    fn reply(&self, messages: &[Message], params: &GenerationParams) -> Result<Reply> {
        (**self).reply(messages, params)
    }
    fn take_tools(&self, tools: &[serde_json::Value]) -> bool {
        (**self).take_tools(tools)
    }
}

impl<T: ChatBackend + ?Sized> ChatBackend for Arc<T> {
    fn complete(&self, messages: &[Message], params: &GenerationParams) -> Result<String> {
        (**self).complete(messages, params)
    }
    fn reply(&self, messages: &[Message], params: &GenerationParams) -> Result<Reply> {
        (**self).reply(messages, params)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Count;
    impl ChatBackend for Count {
        fn complete(&self, messages: &[Message], params: &GenerationParams) -> Result<String> {
            Ok(format!("{}@{}", messages.len(), params.max_new_tokens))
        }
    }

    #[test]
    fn references_boxes_and_arcs_forward() -> Result<()> {
        let m = [Message::system("s"), Message::user("u")];
        let p = GenerationParams::greedy(7);
        let boxed: Box<dyn ChatBackend> = Box::new(Count);
        let shared: Arc<dyn ChatBackend + Send + Sync> = Arc::new(Count);
        let by_ref: &dyn ChatBackend = &Count;
        assert_eq!(boxed.complete(&m, &p)?, "2@7");
        assert_eq!(shared.complete(&m, &p)?, "2@7");
        assert_eq!(by_ref.complete(&m, &p)?, "2@7");
        // The provided `reply` forwards through every wrapper and knows no token counts.
        let want = Reply {
            text: "2@7".into(),
            ..Reply::default()
        };
        assert_eq!(boxed.reply(&m, &p)?, want);
        assert_eq!(shared.reply(&m, &p)?, want);
        assert_eq!(by_ref.reply(&m, &p)?, want);
        Ok(())
    }
}
