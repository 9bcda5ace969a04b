//! One message of a conversation, serialized as OpenAI's `{"role": "user", "content": "…"}` (the shape HF chat
//! templates read as `messages`).

use serde::{Deserialize, Serialize};

/// Who speaks a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Instructions.
    System,
    /// The person (or the program) asking.
    User,
    /// The model.
    Assistant,
    /// The result of a tool call, handed back to the model.
    Tool,
}

impl Role {
    /// The lowercase name chat templates and OpenAI use: `system`, `user`, `assistant`, `tool`.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::System => "system",
            Role::User => "user",
            Role::Assistant => "assistant",
            Role::Tool => "tool",
        }
    }

    /// The role named `name`, if it is one of the four.
    pub fn parse(name: &str) -> Option<Role> {
        [Role::System, Role::User, Role::Assistant, Role::Tool].into_iter().find(|r| r.as_str() == name)
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A function call the assistant asked for. Serialized in the shape OpenAI and HF chat templates use:
/// `{"id": …, "type": "function", "function": {"name": …, "arguments": {…}}}` (arguments as a JSON object, as
/// transformers' templates expect; an OpenAI wire client encodes them as a string itself).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(into = "WireToolCall", try_from = "WireToolCall")]
pub struct ToolCall {
    /// The call's id, echoed by the tool message that answers it (may be empty).
    pub id: String,
    /// The function's name.
    pub name: String,
    /// The arguments, a JSON object.
    pub arguments: serde_json::Value,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct WireToolCall {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    id: String,
    #[serde(rename = "type", default = "function_type")]
    kind: String,
    function: WireFunction,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct WireFunction {
    name: String,
    #[serde(default)]
    arguments: serde_json::Value,
}

fn function_type() -> String {
    "function".into()
}

impl From<ToolCall> for WireToolCall {
    fn from(c: ToolCall) -> Self {
        WireToolCall {
            id: c.id,
            kind: function_type(),
            function: WireFunction {
                name: c.name,
                arguments: c.arguments,
            },
        }
    }
}

impl TryFrom<WireToolCall> for ToolCall {
    type Error = String;

    fn try_from(w: WireToolCall) -> Result<Self, String> {
        if w.kind != "function" {
            return Err(format!("tool call type `{}` is not `function`", w.kind));
        }
        // OpenAI sends arguments as a JSON string; templates and Temper use the object.
        let arguments = match w.function.arguments {
            serde_json::Value::String(s) => {
                serde_json::from_str(&s).map_err(|e| format!("tool call arguments are not JSON: {e}"))?
            }
            serde_json::Value::Null => serde_json::json!({}),
            v => v,
        };
        Ok(ToolCall {
            id: w.id,
            name: w.function.name,
            arguments,
        })
    }
}

/// One message of a conversation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Message {
    /// Who speaks.
    pub role: Role,
    /// What is said.
    pub content: String,
    /// Calls the assistant makes in this turn (empty for every other message).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tool_calls: Vec<ToolCall>,
    /// For a [`Role::Tool`] message: the id of the call it answers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_call_id: Option<String>,
}

impl Message {
    /// A message with `role` and `content`.
    pub fn new(role: Role, content: impl Into<String>) -> Message {
        Message {
            role,
            content: content.into(),
            tool_calls: Vec::new(),
            tool_call_id: None,
        }
    }

    /// A system message.
    pub fn system(content: impl Into<String>) -> Message {
        Message::new(Role::System, content)
    }

    /// A user message.
    pub fn user(content: impl Into<String>) -> Message {
        Message::new(Role::User, content)
    }

    /// An assistant message.
    pub fn assistant(content: impl Into<String>) -> Message {
        Message::new(Role::Assistant, content)
    }

    /// A tool result answering the call `call_id`.
    pub fn tool(call_id: impl Into<String>, content: impl Into<String>) -> Message {
        Message {
            tool_call_id: Some(call_id.into()),
            ..Message::new(Role::Tool, content)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_use_openai_json_and_reject_unknown_roles_and_fields() {
        let m = Message::user("hi");
        assert_eq!(serde_json::to_string(&m).expect("json"), r#"{"role":"user","content":"hi"}"#);
        let back: Message = serde_json::from_str(r#"{"role":"assistant","content":"x"}"#).expect("parses");
        assert_eq!(back, Message::assistant("x"));
        assert!(serde_json::from_str::<Message>(r#"{"role":"robot","content":"x"}"#).is_err());
        assert!(serde_json::from_str::<Message>(r#"{"role":"user","content":"x","extra":1}"#).is_err());
        let t = Message::tool("call_1", "42");
        assert_eq!(serde_json::to_string(&t).expect("json"), r#"{"role":"tool","content":"42","tool_call_id":"call_1"}"#);
        for r in [Role::System, Role::User, Role::Assistant, Role::Tool] {
            assert_eq!(Role::parse(r.as_str()), Some(r));
            assert_eq!(serde_json::to_value(r).expect("json"), serde_json::json!(r.as_str()));
        }
        assert_eq!(Role::parse("developer"), None);
        let call = ToolCall {
            id: "c1".into(),
            name: "add".into(),
            arguments: serde_json::json!({"a": 1}),
        };
        let wire = serde_json::to_value(&call).expect("json");
        assert_eq!(wire, serde_json::json!({"id": "c1", "type": "function", "function": {"name": "add", "arguments": {"a": 1}}}));
        let from_openai: ToolCall = serde_json::from_value(serde_json::json!(
            {"id": "c1", "type": "function", "function": {"name": "add", "arguments": "{\"a\": 1}"}}
        ))
        .expect("string arguments");
        assert_eq!(from_openai, call);
    }
}
