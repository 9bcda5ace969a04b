//! A scripted [`ChatBackend`] shared by the tool tests: it returns canned replies in order and records every
//! conversation it was sent.

#![allow(dead_code)]

use std::sync::Mutex;

use temper_chat::{ChatBackend, ChatError, GenerationParams, Message};

pub struct Scripted {
    replies: Mutex<Vec<String>>,
    seen: Mutex<Vec<Vec<Message>>>,
}

impl Scripted {
    pub fn new(replies: &[&str]) -> Scripted {
        Scripted {
            replies: Mutex::new(replies.iter().rev().map(|s| s.to_string()).collect()),
            seen: Mutex::new(Vec::new()),
        }
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
}
