//! The tool loop against a mock OpenAI-compatible server on 127.0.0.1 (temper-chat's test server, started and
//! stopped here): the calculator is called through the endpoint and the conversation on the wire carries the
//! assistant's structured call and the tool's result.

#[path = "../../chat/tests/mock/mod.rs"]
mod mock;

use serde_json::{Value, json};
use temper_chat::{Message, OpenAiBackend, OpenAiConfig};
use temper_tools::builtins::builtin_registry;
use temper_tools::{Format, LoopConfig, Outcome, Result, run_tool_loop};

#[test]
fn the_loop_runs_over_an_openai_compatible_endpoint() -> Result<()> {
    let server = mock::serve(vec![
        mock::Reply::Content(
            "<tool_call>\n{\"name\": \"calculator\", \"arguments\": {\"expression\": \"2^20\"}}\n</tool_call>",
        ),
        mock::Reply::Content("2^20 = 1048576."),
    ]);
    let config = OpenAiConfig {
        timeout_ms: 5000,
        max_retries: 0,
        ..OpenAiConfig::new(&server.base_url, "mock-model")
    };
    let backend = OpenAiBackend::new(config)?;
    let run = run_tool_loop(
        &backend,
        &builtin_registry()?,
        vec![Message::user("What is 2^20?")],
        &LoopConfig::new(Format::Hermes),
    )?;
    assert_eq!(run.outcome, Outcome::Answer("2^20 = 1048576.".into()));
    let seen = server.finish();
    assert_eq!(seen.len(), 2);
    let body: Value = serde_json::from_str(&seen[1].body).expect("request body is JSON");
    let messages = body["messages"].as_array().expect("messages");
    assert_eq!(messages.len(), 4, "{body}");
    assert!(
        messages[0]["content"]
            .as_str()
            .is_some_and(|s| s.contains("<tools>")),
        "{body}"
    );
    assert_eq!(
        messages[2]["tool_calls"][0]["function"]["name"],
        "calculator"
    );
    assert_eq!(messages[3]["role"], "tool");
    assert_eq!(
        messages[3]["tool_call_id"],
        messages[2]["tool_calls"][0]["id"]
    );
    let result: Value = serde_json::from_str(messages[3]["content"].as_str().expect("content"))
        .expect("json result");
    assert_eq!(result, json!({"value": "1048576", "decimal": "1048576"}));
    Ok(())
}
