//! The chat seam: [`ChatBackend`] turns a list of [`Message`]s into the model's reply. The CLI
//! implements it for the local Temper model; [`crate::OpenAiBackend`] implements it over HTTP.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::error::Result;

/// Who speaks a chat message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Instructions for the judge.
    System,
    /// The prompt the judge answers.
    User,
    /// A model reply.
    Assistant,
}

/// One chat message, serialized as OpenAI's `{"role": "user", "content": "…"}`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Message {
    /// Who speaks.
    pub role: Role,
    /// What is said.
    pub content: String,
}

impl Message {
    /// A system message.
    pub fn system(content: impl Into<String>) -> Self {
        Self {
            role: Role::System,
            content: content.into(),
        }
    }

    /// A user message.
    pub fn user(content: impl Into<String>) -> Self {
        Self {
            role: Role::User,
            content: content.into(),
        }
    }
}

/// Generation settings sent with every judge request.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GenParams {
    /// Sampling temperature (default 0: judges should be deterministic, as in MT-bench).
    pub temperature: f32,
    /// Maximum new tokens in the reply (default 2048, FastChat's judge setting).
    pub max_tokens: u32,
}

impl Default for GenParams {
    fn default() -> Self {
        Self {
            temperature: 0.0,
            max_tokens: 2048,
        }
    }
}

/// A chat model that answers a conversation. One required method.
pub trait ChatBackend {
    /// Returns the assistant's reply to `messages`.
    fn complete(&self, messages: &[Message], params: &GenParams) -> Result<String>;
}

impl<T: ChatBackend + ?Sized> ChatBackend for &T {
    fn complete(&self, messages: &[Message], params: &GenParams) -> Result<String> {
        (**self).complete(messages, params)
    }
}

impl<T: ChatBackend + ?Sized> ChatBackend for Box<T> {
    fn complete(&self, messages: &[Message], params: &GenParams) -> Result<String> {
        (**self).complete(messages, params)
    }
}

impl<T: ChatBackend + ?Sized> ChatBackend for Arc<T> {
    fn complete(&self, messages: &[Message], params: &GenParams) -> Result<String> {
        (**self).complete(messages, params)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Echo;
    impl ChatBackend for Echo {
        fn complete(&self, messages: &[Message], params: &GenParams) -> Result<String> {
            Ok(format!("{}@{}", messages.len(), params.max_tokens))
        }
    }

    #[test]
    fn blanket_impls_forward_and_messages_use_openai_json() -> Result<()> {
        let m = [Message::system("s"), Message::user("u")];
        let p = GenParams::default();
        let boxed: Box<dyn ChatBackend> = Box::new(Echo);
        let by_ref: &dyn ChatBackend = &Echo;
        assert_eq!(by_ref.complete(&m, &p)?, "2@2048");
        assert_eq!(boxed.complete(&m, &p)?, "2@2048");
        assert_eq!(Arc::new(Echo).complete(&m[..1], &p)?, "1@2048");
        assert_eq!(
            serde_json::to_string(&m[1]).ok().as_deref(),
            Some(r#"{"role":"user","content":"u"}"#)
        );
        Ok(())
    }
}
