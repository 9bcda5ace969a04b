//! The chat seam: [`ChatBackend`] turns a conversation into the model's reply.

use std::sync::Arc;

use crate::error::Result;
use crate::message::Message;
use crate::params::GenerationParams;

/// A chat model that answers a conversation. One required method.
///
/// Implemented by the local Temper model (`temper_models::LocalChat`, feature `chat`), by an OpenAI-compatible
/// endpoint (`OpenAiBackend`, this crate's feature `openai`), and by anything a test scripts.
pub trait ChatBackend {
    /// Returns the assistant's reply to `messages`.
    fn complete(&self, messages: &[Message], params: &GenerationParams) -> Result<String>;
}

impl<T: ChatBackend + ?Sized> ChatBackend for &T {
    fn complete(&self, messages: &[Message], params: &GenerationParams) -> Result<String> {
        (**self).complete(messages, params)
    }
}

impl<T: ChatBackend + ?Sized> ChatBackend for Box<T> {
    fn complete(&self, messages: &[Message], params: &GenerationParams) -> Result<String> {
        (**self).complete(messages, params)
    }
}

impl<T: ChatBackend + ?Sized> ChatBackend for Arc<T> {
    fn complete(&self, messages: &[Message], params: &GenerationParams) -> Result<String> {
        (**self).complete(messages, params)
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
        Ok(())
    }
}
