//! The tool loop against a scripted `ChatBackend` (a test double that returns canned replies in order and
//! records every conversation it was sent): answers, parallel calls, validation and parse errors fed back, the
//! stop tool, the step limit, back-end errors, and the JSONL transcript.

mod scripted;

use scripted::Scripted;
use serde_json::{Value, json};
use temper_chat::{ChatError, Message, Role};
use temper_tools::builtins::builtin_registry;
use temper_tools::{
    Format, LoopConfig, Outcome, Result, Step, StopTool, ToolError, TurnKind, TurnStyle,
    run_tool_loop, step,
};

#[test]
fn a_back_end_that_takes_the_tools_gets_no_tool_block_in_the_system_prompt() -> Result<()> {
    let model = Scripted::taking_tools(&["It is 84."]);
    let registry = builtin_registry()?;
    let run = run_tool_loop(
        &model,
        &registry,
        vec![Message::user("What is 12*(3+4)?")],
        &LoopConfig::new(Format::Hermes),
    )?;
    assert_eq!(run.outcome, Outcome::Answer("It is 84.".into()));
    assert_eq!(model.seen()[0], vec![Message::user("What is 12*(3+4)?")]);
    let tools = model.tools();
    let names: Vec<&str> = tools
        .iter()
        .filter_map(|t| t["function"]["name"].as_str())
        .collect();
    assert_eq!(names, ["calculator", "convert_units", "date"]);
    assert!(
        tools
            .iter()
            .all(|t| t["type"] == "function" && t["function"]["parameters"].is_object())
    );
    Ok(())
}

#[test]
fn hermes_structured_loop_calls_the_calculator_then_answers() -> Result<()> {
    let model = Scripted::new(&[
        "I'll compute it.\n<tool_call>\n{\"name\": \"calculator\", \"arguments\": {\"expression\": \"12*(3+4)\"}}\n</tool_call>",
        "12 × (3 + 4) = 84.",
    ]);
    let run = run_tool_loop(
        &model,
        &builtin_registry()?,
        vec![Message::user("What is 12*(3+4)?")],
        &LoopConfig::new(Format::Hermes),
    )?;
    assert_eq!(run.outcome, Outcome::Answer("12 × (3 + 4) = 84.".into()));
    assert_eq!(run.steps, 2);
    let seen = model.seen();
    // First request: the tools in a system prompt, then the question.
    assert_eq!(seen[0].len(), 2);
    assert_eq!(seen[0][0].role, Role::System);
    for name in ["\"calculator\"", "\"date\"", "\"convert_units\"", "<tools>"] {
        assert!(seen[0][0].content.contains(name), "{name}");
    }
    // Second request: + the assistant's structured call + the tool's result answering its id.
    let asked = &seen[1][2];
    assert_eq!(
        (asked.role, asked.content.as_str(), asked.tool_calls.len()),
        (Role::Assistant, "I'll compute it.", 1)
    );
    assert_eq!(
        asked.tool_calls[0].arguments,
        json!({"expression": "12*(3+4)"})
    );
    let result = &seen[1][3];
    assert_eq!(result.role, Role::Tool);
    assert_eq!(
        result.tool_call_id.as_deref(),
        Some(asked.tool_calls[0].id.as_str())
    );
    assert_eq!(
        serde_json::from_str::<Value>(&result.content).expect("json"),
        json!({"value": "84", "decimal": "84"})
    );
    // The transcript: prompt ×2, reply, tool result, reply — one JSON object a line.
    let kinds: Vec<TurnKind> = run.transcript.turns.iter().map(|t| t.kind).collect();
    assert_eq!(
        kinds,
        [
            TurnKind::Prompt,
            TurnKind::Prompt,
            TurnKind::Reply,
            TurnKind::ToolResult,
            TurnKind::Reply
        ]
    );
    let jsonl = run.transcript.to_jsonl();
    let lines: Vec<Value> = jsonl
        .lines()
        .map(|l| serde_json::from_str(l).expect("each line is JSON"))
        .collect();
    assert_eq!(lines.len(), 5);
    assert_eq!(
        (
            lines[3]["step"].clone(),
            lines[3]["kind"].clone(),
            lines[3]["ok"].clone()
        ),
        (json!(1), json!("tool_result"), json!(true))
    );
    assert_eq!(
        lines[2]["raw"]
            .as_str()
            .map(|s| s.starts_with("I'll compute it.")),
        Some(true)
    );
    let dir = std::env::temp_dir().join(format!("temper-tools-loop-{}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|source| ToolError::Io {
        path: dir.clone(),
        source,
    })?;
    let path = dir.join("transcript.jsonl");
    run.transcript.write_jsonl(&path)?;
    assert_eq!(
        std::fs::read_to_string(&path).map_err(|source| ToolError::Io {
            path: path.clone(),
            source
        })?,
        jsonl
    );
    std::fs::remove_dir_all(&dir).map_err(|source| ToolError::Io { path: dir, source })?;
    Ok(())
}

#[test]
fn pythonic_text_loop_feeds_back_errors_and_stops_on_the_stop_tool() -> Result<()> {
    let mut registry = builtin_registry()?;
    registry.register(StopTool::new("final_answer"))?;
    let model = Scripted::new(&[
        // Parallel calls; the second has a missing required argument.
        "[calculator(expression=\"2^10\"), convert_units(value=1, from=\"mile\")]",
        // A malformed call list.
        "[convert_units(value=1, from=\"mile\", to=\"km\"",
        // A call to an unknown tool, then a corrected call.
        "[teleport(to=\"Mars\"), convert_units(value=1, from=\"mile\", to=\"km\")]",
        "[final_answer(answer=\"1024 and 1.609344 km\")]",
    ]);
    let config = LoopConfig {
        turns: TurnStyle::Text,
        stop_tool: Some("final_answer".into()),
        ..LoopConfig::new(Format::Pythonic)
    };
    let system = Message::system("You are precise.");
    let run = run_tool_loop(
        &model,
        &registry,
        vec![system, Message::user("2^10, and a mile in km?")],
        &config,
    )?;
    assert_eq!(
        run.outcome,
        Outcome::Stopped(json!({"answer": "1024 and 1.609344 km"}))
    );
    assert_eq!(run.steps, 4);
    let seen = model.seen();
    assert!(
        seen[0][0].content.starts_with("You are precise.\n\n"),
        "the tools are appended to the system prompt"
    );
    // Text turns: the reply verbatim, then one user turn with both results, the error naming the missing field.
    assert_eq!(
        seen[1][2],
        Message::assistant(
            "[calculator(expression=\"2^10\"), convert_units(value=1, from=\"mile\")]"
        )
    );
    let results = &seen[1][3];
    assert_eq!(results.role, Role::User);
    assert!(
        results
            .content
            .contains("Result of calculator: {\"decimal\":\"1024\",\"value\":\"1024\"}"),
        "{}",
        results.content
    );
    assert!(
        results
            .content
            .contains("\\\"to\\\" is a required property"),
        "{}",
        results.content
    );
    // The parse error is fed back as text.
    assert!(
        seen[2][5]
            .content
            .starts_with("Your tool call could not be read: pythonic tool call:"),
        "{}",
        seen[2][5].content
    );
    // The unknown tool is reported, the good call runs.
    assert!(
        seen[3][7].content.contains("unknown tool `teleport`"),
        "{}",
        seen[3][7].content
    );
    assert!(
        seen[3][7].content.contains("\"decimal\":\"1.609344\""),
        "{}",
        seen[3][7].content
    );
    let oks: Vec<Option<bool>> = run
        .transcript
        .turns
        .iter()
        .filter(|t| t.kind == TurnKind::ToolResult)
        .map(|t| t.ok)
        .collect();
    assert_eq!(oks, [Some(false), Some(false)]);
    assert_eq!(
        run.transcript
            .turns
            .iter()
            .filter(|t| t.kind == TurnKind::ParseError)
            .count(),
        1
    );
    Ok(())
}

#[test]
fn one_step_reads_runs_and_renders_the_observation_for_a_rollout() -> Result<()> {
    let mut registry = builtin_registry()?;
    registry.register(StopTool::new("final_answer"))?;
    let run = |raw: &str| step(&registry, Format::Hermes, Some("final_answer"), 3, raw);
    let s = run(
        "<tool_call>{\"name\": \"calculator\", \"arguments\": {\"expression\": \"6*7\"}}</tool_call>",
    );
    let Step::Results { calls, results, .. } = &s else {
        panic!("{s:?}")
    };
    assert_eq!(
        (calls[0].id.as_str(), results[0].ok, &results[0].value),
        ("call_3_0", true, &json!({"value": "42", "decimal": "42"}))
    );
    // The observation is the text a rollout appends (and masks out of the loss).
    assert_eq!(
        s.observation(Format::Hermes).as_deref(),
        Some(
            "<tool_response>\n{\"content\":{\"decimal\":\"42\",\"value\":\"42\"},\"name\":\"calculator\"}\n</tool_response>"
        )
    );
    assert_eq!(run("It is 42."), Step::Answer("It is 42.".into()));
    assert_eq!(run("It is 42.").observation(Format::Hermes), None);
    let s = run(
        "<tool_call>{\"name\": \"final_answer\", \"arguments\": {\"answer\": \"42\"}}</tool_call>",
    );
    assert!(
        matches!(&s, Step::Stopped { arguments, .. } if arguments == &json!({"answer": "42"})),
        "{s:?}"
    );
    let s = run("<tool_call>{\"name\": \"final_answer\"}</tool_call>");
    assert!(
        matches!(&s, Step::Results { results, .. } if !results[0].ok),
        "an invalid stop call goes back as an error: {s:?}"
    );
    let s = run("<tool_call>{oops</tool_call>");
    assert!(
        s.observation(Format::Hermes)
            .is_some_and(|o| o.starts_with("Your tool call could not be read: hermes tool call:")),
        "{s:?}"
    );
    Ok(())
}

#[test]
fn the_step_limit_ends_a_loop_that_never_answers() -> Result<()> {
    let call = "{\"name\": \"calculator\", \"parameters\": {\"expression\": \"1+1\"}}";
    let model = Scripted::new(&[call, call, call, call]);
    let config = LoopConfig {
        max_steps: 3,
        ..LoopConfig::new(Format::Llama3)
    };
    let run = run_tool_loop(
        &model,
        &builtin_registry()?,
        vec![Message::user("1+1?")],
        &config,
    )?;
    assert_eq!(
        (run.outcome, run.steps, model.seen().len()),
        (Outcome::StepLimit, 3, 3)
    );
    Ok(())
}

#[test]
fn backend_errors_and_bad_configs_stop_the_loop() -> Result<()> {
    let model = Scripted::new(&[]);
    let e = run_tool_loop(
        &model,
        &builtin_registry()?,
        vec![Message::user("hi")],
        &LoopConfig::new(Format::Json),
    )
    .expect_err("exhausted");
    assert!(matches!(e, ToolError::Chat(ChatError::Backend(_))), "{e}");
    let config = LoopConfig {
        stop_tool: Some("done".into()),
        ..LoopConfig::new(Format::Json)
    };
    let e = run_tool_loop(
        &model,
        &builtin_registry()?,
        vec![Message::user("hi")],
        &config,
    )
    .expect_err("unregistered stop tool");
    assert!(
        e.to_string().contains("stop tool `done` is not registered"),
        "{e}"
    );
    Ok(())
}
