//! A scripted [`ChatBackend`] shared by the tool tests: it returns canned replies in order and records every
//! conversation it was sent.

#![allow(dead_code)]

use std::sync::Mutex;

use temper_chat::{ChatBackend, ChatError, GenerationParams, Message};

pub struct Scripted {
    replies: Mutex<Vec<String>>,
    seen: Mutex<Vec<Vec<Message>>>,
    /// Whether it takes tool schemas to render itself (a chat template that reads `tools`), and those it took.
    takes_tools: bool,
    tools: Mutex<Vec<serde_json::Value>>,
}

impl Scripted {
    pub fn new(replies: &[&str]) -> Scripted {
        Scripted {
            replies: Mutex::new(replies.iter().rev().map(|s| s.to_string()).collect()),
            seen: Mutex::new(Vec::new()),
            takes_tools: false,
            tools: Mutex::new(Vec::new()),
        }
    }
    /// Like [`Scripted::new`], taking the tools as a template that reads `tools` would.
    pub fn taking_tools(replies: &[&str]) -> Scripted {
        Scripted {
            takes_tools: true,
            ..Scripted::new(replies)
        }
    }
    pub fn tools(&self) -> Vec<serde_json::Value> {
        self.tools.lock().expect("lock").clone()
    }
    pub fn seen(&self) -> Vec<Vec<Message>> {
        self.seen.lock().expect("lock").clone()
    }
}

impl ChatBackend for Scripted {
    fn complete(
        &self,
        messages: &[Message],
        _: &GenerationParams,
    ) -> std::result::Result<String, ChatError> {
        self.seen.lock().expect("lock").push(messages.to_vec());
        self.replies
            .lock()
            .expect("lock")
            .pop()
            .ok_or_else(|| ChatError::Backend("script exhausted".into()))
    }

    fn take_tools(&self, tools: &[serde_json::Value]) -> bool {
        if self.takes_tools {
            *self.tools.lock().expect("lock") = tools.to_vec();
        }
        self.takes_tools
    }
}
