//! BFCL's AST checker on the committed fixture subset (tests/fixtures/bfcl: 20 questions per category of
//! bfcl-eval 2026.3.23, Apache-2.0) — calls built from the possible answers score 100 %, the checker agrees with
//! BFCL's own Python checker on 1,206 mutated responses — plus hand-made rejections and the loaders' errors.

use std::path::{Path, PathBuf};

use serde_json::{Value, json};
use temper_tools::bfcl::checker::{Call, check};
use temper_tools::bfcl::{Category, Dataset, Response, load_responses, score, score_file};
use temper_tools::{Result, ToolError};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/bfcl")
}

fn call(name: &str, arguments: Value) -> Call {
    Call {
        name: name.into(),
        arguments: arguments.as_object().cloned().unwrap_or_default(),
    }
}

#[test]
fn reference_calls_score_100_percent_on_every_category() -> Result<()> {
    for category in Category::ALL {
        let data = Dataset::load(&fixtures(), category)?;
        assert_eq!(data.items.len(), 20, "{category:?}");
        let responses = data.reference_responses();
        let report = score(&data, &responses)?;
        let wrong: Vec<_> = report.results.iter().filter(|v| !v.correct).collect();
        assert!(wrong.is_empty(), "{category:?}: {wrong:?}");
        assert_eq!(
            (report.correct, report.total, report.accuracy),
            (20, 20, 1.0)
        );
        // No response at all: every question is wrong, except irrelevance where no call is right.
        let empty: Vec<Response> = data
            .items
            .iter()
            .map(|i| Response {
                id: i.id.clone(),
                calls: vec![],
                line: 0,
            })
            .collect();
        let want = if category == Category::Irrelevance {
            20
        } else {
            0
        };
        assert_eq!(score(&data, &empty)?.correct, want, "{category:?}");
    }
    Ok(())
}

#[test]
fn categories_name_their_bfcl_sets_and_files() -> Result<()> {
    assert_eq!(Category::parse("simple_python")?, Category::Simple);
    for c in Category::ALL {
        assert_eq!(Category::parse(c.name())?, c);
    }
    assert!(
        Category::parse("live_simple")
            .expect_err("unknown")
            .to_string()
            .contains("expected one of simple, multiple")
    );
    assert_eq!(
        Category::ParallelMultiple.package_files(),
        (
            "bfcl_eval/data/BFCL_v4_parallel_multiple.json".to_string(),
            Some("bfcl_eval/data/possible_answer/BFCL_v4_parallel_multiple.json".to_string())
        )
    );
    assert_eq!(Category::Irrelevance.package_files().1, None);
    // Loading by file paths: the answer file is required except for irrelevance.
    let q = Category::Multiple.questions_file(&fixtures());
    let e = Dataset::load_files(Category::Multiple, &q, None)
        .expect_err("no answers")
        .to_string();
    assert!(
        e.ends_with("BFCL multiple needs its possible-answer file"),
        "{e}"
    );
    let irr = Dataset::load_files(
        Category::Irrelevance,
        &Category::Irrelevance.questions_file(&fixtures()),
        None,
    )?;
    assert_eq!(irr.items.len(), 20);
    Ok(())
}

#[test]
fn model_replies_become_responses_through_a_format() -> Result<()> {
    let data = Dataset::load(&fixtures(), Category::Simple)?;
    let item = &data.items[0];
    let prompt = item.prompt(temper_tools::Format::Pythonic);
    assert_eq!(prompt.len(), 1 + item.messages.len());
    assert!(
        prompt[0]
            .content
            .contains(&format!("\"name\":\"{}\"", item.functions[0].name)),
        "{}",
        prompt[0].content
    );
    // BFCL's `dict` parameters become JSON-schema objects in the prompt.
    assert!(
        prompt[0].content.contains("\"type\":\"object\"")
            && !prompt[0].content.contains("\"type\":\"dict\"")
    );
    let right = temper_tools::render_python_calls(
        &item
            .reference_calls()
            .into_iter()
            .map(temper_chat::ToolCall::from)
            .collect::<Vec<_>>(),
    );
    let replies = [
        format!("```python\n{right}\n```"),
        "I cannot help with that.".to_string(),
        "[broken(".to_string(),
    ];
    let responses: Vec<Response> = replies
        .iter()
        .map(|r| item.response_from_reply(r, temper_tools::Format::Pythonic))
        .collect();
    let one = Dataset {
        category: Category::Simple,
        items: vec![item.clone()],
    };
    let verdicts: Vec<bool> = responses
        .iter()
        .map(|r| score(&one, std::slice::from_ref(r)).map(|rep| rep.correct == 1))
        .collect::<Result<_>>()?;
    assert_eq!(verdicts, [true, false, false]);
    Ok(())
}

/// A scripted model: answers the n-th request with the n-th canned reply and keeps the prompts.
struct Scripted(std::sync::Mutex<(Vec<String>, Vec<Vec<temper_chat::Message>>)>);

impl temper_chat::ChatBackend for Scripted {
    fn complete(
        &self,
        messages: &[temper_chat::Message],
        _: &temper_chat::GenerationParams,
    ) -> std::result::Result<String, temper_chat::ChatError> {
        let mut state = self.0.lock().expect("lock");
        state.1.push(messages.to_vec());
        let n = state.1.len() - 1;
        state
            .0
            .get(n)
            .cloned()
            .ok_or_else(|| temper_chat::ChatError::Backend("script exhausted".into()))
    }
}

#[test]
fn a_model_is_asked_every_question_and_scored() -> Result<()> {
    let params = temper_chat::GenerationParams::greedy(128);
    for category in [Category::Parallel, Category::Irrelevance] {
        let data = Dataset::load(&fixtures(), category)?;
        // A model that answers with the reference calls in Python syntax is always right…
        let replies: Vec<String> = data
            .items
            .iter()
            .map(|i| {
                let calls: Vec<temper_chat::ToolCall> = i
                    .reference_calls()
                    .into_iter()
                    .map(temper_chat::ToolCall::from)
                    .collect();
                if calls.is_empty() {
                    "No function fits.".to_string()
                } else {
                    temper_tools::render_python_calls(&calls)
                }
            })
            .collect();
        let model = Scripted(std::sync::Mutex::new((replies.clone(), Vec::new())));
        let asked = temper_tools::bfcl::ask(
            &data,
            &model,
            temper_tools::Format::Pythonic,
            &params,
            |_| {},
        )?;
        let responses: Vec<Response> = asked.iter().map(|(r, _)| r.clone()).collect();
        assert_eq!(score(&data, &responses)?.correct, 20, "{category:?}");
        assert_eq!(
            asked.iter().map(|(_, raw)| raw.clone()).collect::<Vec<_>>(),
            replies
        );
        let prompts = model.0.lock().expect("lock").1.clone();
        assert_eq!(prompts.len(), 20);
        assert!(
            prompts[0][0]
                .content
                .contains(&data.items[0].functions[0].name)
        );
        // …and one that always answers in prose is right only where no call is wanted.
        let prose = Scripted(std::sync::Mutex::new((
            vec!["I don't know.".to_string(); 20],
            Vec::new(),
        )));
        let asked = temper_tools::bfcl::ask(
            &data,
            &prose,
            temper_tools::Format::Pythonic,
            &params,
            |_| {},
        )?;
        let responses: Vec<Response> = asked.into_iter().map(|(r, _)| r).collect();
        let want = if category == Category::Irrelevance {
            20
        } else {
            0
        };
        assert_eq!(score(&data, &responses)?.correct, want, "{category:?}");
    }
    Ok(())
}

#[test]
fn the_checker_agrees_with_bfcls_own_checker_on_mutated_responses() -> Result<()> {
    let path = fixtures().join("verdicts.jsonl");
    let text = std::fs::read_to_string(&path).map_err(|source| ToolError::Io {
        path: path.clone(),
        source,
    })?;
    let mut data = std::collections::HashMap::new();
    for c in Category::ALL {
        data.insert(c.name().to_string(), Dataset::load(&fixtures(), c)?);
    }
    let (mut agree, mut rejected) = (0, 0);
    for (n, line) in text.lines().enumerate() {
        let v: Value = serde_json::from_str(line).map_err(|e| ToolError::Data {
            path: path.clone(),
            line: n + 1,
            message: e.to_string(),
        })?;
        let dataset = &data[v["category"].as_str().unwrap_or_default()];
        let item = dataset
            .items
            .iter()
            .find(|i| i.id == v["id"])
            .ok_or_else(|| ToolError::Data {
                path: path.clone(),
                line: n + 1,
                message: "unknown id".into(),
            })?;
        let calls: Vec<Call> = v["calls"]
            .as_array()
            .map(|cs| {
                cs.iter()
                    .map(|c| {
                        call(
                            c["name"].as_str().unwrap_or_default(),
                            c["arguments"].clone(),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default();
        let ours = check(dataset.category, &item.functions, &item.answers, &calls);
        assert_eq!(
            ours.is_ok(),
            v["bfcl_correct"] == json!(true),
            "line {}: {} {}: {ours:?}",
            n + 1,
            v["id"],
            v["variant"]
        );
        agree += 1;
        rejected += usize::from(ours.is_err());
    }
    assert_eq!((agree, rejected), (1206, 928));
    Ok(())
}

/// A question in BFCL's shapes, with one function `f(a: integer, x: float, s: string, l: array of string,
/// d: dict, opt: integer)`, `a` and `s` required.
fn item() -> (
    Vec<temper_tools::bfcl::Function>,
    Vec<temper_tools::bfcl::ExpectedCall>,
) {
    let dir = std::env::temp_dir().join(format!("temper-tools-bfcl-{}", std::process::id()));
    std::fs::create_dir_all(dir.join("possible_answer")).expect("mkdir");
    let q = json!({"id": "simple_python_0", "question": [[{"role": "user", "content": "?"}]], "function": [{"name": "f", "description": "", "parameters": {"type": "dict", "properties": {
        "a": {"type": "integer"}, "x": {"type": "float"}, "s": {"type": "string"}, "l": {"type": "array", "items": {"type": "string"}},
        "d": {"type": "dict", "properties": {}}, "opt": {"type": "integer"}}, "required": ["a", "s"]}}]});
    let a = json!({"id": "simple_python_0", "ground_truth": [{"f": {"a": [1], "x": [2.0, ""], "s": ["New York, NY", "NYC"], "l": [["a b", "c"], ""], "d": [{"k": ["v"], "n": [1, ""]}, ""], "opt": ["", 3]}}]});
    std::fs::write(dir.join("BFCL_v4_simple_python.json"), format!("{q}\n")).expect("write");
    std::fs::write(
        dir.join("possible_answer/BFCL_v4_simple_python.json"),
        format!("{a}\n"),
    )
    .expect("write");
    let data = Dataset::load(&dir, Category::Simple).expect("loads");
    std::fs::remove_dir_all(&dir).expect("rm");
    let item = data.items.into_iter().next().expect("one item");
    (item.functions, item.answers)
}

#[test]
fn bfcl_rules_accept_and_reject_as_bfcl_does() {
    let (f, a) = item();
    let verdict = |args: Value| {
        check(Category::Simple, &f, &a, &[call("f", args)]).map_err(|e| e.to_string())
    };
    // Accepted: optional parameters left out; int for a float; strings up to BFCL's standardisation; lists
    // compared after standardising their strings; dicts with optional keys left out.
    for ok in [
        json!({"a": 1, "s": "NYC"}),
        json!({"a": 1, "s": "new york ny", "x": 2}),
        json!({"a": 1, "s": "New-York,NY", "x": 2.0, "opt": 3}),
        json!({"a": 1, "s": "nyc", "l": ["A-B", "c"]}),
        json!({"a": 1, "s": "nyc", "d": {"k": "V"}}),
        json!({"a": 1, "s": "nyc", "d": {"k": "v", "n": 1}}),
    ] {
        assert_eq!(verdict(ok.clone()), Ok(()), "{ok}");
    }
    for (bad, says) in [
        (
            json!({"s": "NYC"}),
            "simple_function_checker:missing_required: Missing required parameter: 'a'.",
        ),
        (
            json!({"a": 1, "s": "NYC", "b": 2}),
            "simple_function_checker:unexpected_param: Unexpected parameter: 'b'.",
        ),
        (
            json!({"a": 2, "s": "NYC"}),
            "value_error:others: Invalid value for parameter 'a': 2. Expected one of [1].",
        ),
        (
            json!({"a": 1.0, "s": "NYC"}),
            "type_error:simple: Incorrect type for parameter 'a'. Expected type integer, got float.",
        ),
        (json!({"a": "1", "s": "NYC"}), "type_error:simple"),
        (json!({"a": true, "s": "NYC"}), "got bool"),
        (json!({"a": 1, "s": "Boston"}), "value_error:string"),
        (json!({"a": 1, "s": "NYC", "x": 2.5}), "value_error:others"),
        (
            json!({"a": 1, "s": "NYC", "l": ["c", "a b"]}),
            "value_error:list/tuple",
        ),
        // With "" among the options BFCL's nested type check passes and the list comparison fails (as in BFCL).
        (
            json!({"a": 1, "s": "NYC", "l": ["a b", 3]}),
            "value_error:list/tuple",
        ),
        (
            json!({"a": 1, "s": "NYC", "d": {"k": "w"}}),
            "value_error:dict_value",
        ),
        (
            json!({"a": 1, "s": "NYC", "d": {"k": "v", "z": 1}}),
            "value_error:dict_key: Unexpected dict key parameter: 'z'.",
        ),
        (
            json!({"a": 1, "s": "NYC", "d": {"n": 1}}),
            "value_error:dict_key: Missing dict key parameter: 'k'.",
        ),
    ] {
        let got = verdict(bad.clone()).expect_err("rejected");
        assert!(got.contains(says), "{bad}: {got}");
    }
    let mut strict = a.clone();
    strict[0]
        .params
        .insert("l".into(), vec![json!(["a b", "c"])]);
    let nested = check(
        Category::Simple,
        &f,
        &strict,
        &[call("f", json!({"a": 1, "s": "NYC", "l": ["a b", 3]}))],
    );
    assert!(nested.is_err_and(|e| e.kind == "type_error:nested"));
    assert!(
        check(
            Category::Simple,
            &f,
            &a,
            &[call("g", json!({"a": 1, "s": "NYC"}))]
        )
        .is_err_and(|e| e.kind == "simple_function_checker:wrong_func_name")
    );
    assert!(
        check(Category::Simple, &f, &a, &[])
            .is_err_and(|e| e.kind == "simple_function_checker:wrong_count")
    );
    // Parallel: any order, each expected call matched once.
    let two = vec![
        a[0].clone(),
        temper_tools::bfcl::ExpectedCall {
            params: [
                ("a".to_string(), vec![json!(2)]),
                ("s".to_string(), vec![json!("x")]),
            ]
            .into(),
            ..a[0].clone()
        },
    ];
    let (c1, c2) = (
        call("f", json!({"a": 1, "s": "NYC"})),
        call("f", json!({"a": 2, "s": "x"})),
    );
    assert_eq!(
        check(Category::Parallel, &f, &two, &[c2.clone(), c1.clone()]),
        Ok(())
    );
    assert!(
        check(Category::Parallel, &f, &two, &[c1.clone(), c1.clone()])
            .is_err_and(|e| e.kind == "parallel_function_checker_no_order:cannot_find_match")
    );
    assert!(
        check(Category::Parallel, &f, &two, std::slice::from_ref(&c1))
            .is_err_and(|e| e.kind.ends_with("wrong_count"))
    );
    // Irrelevance: right only with no call.
    assert_eq!(check(Category::Irrelevance, &f, &[], &[]), Ok(()));
    assert!(check(Category::Irrelevance, &f, &[], &[c1]).is_err());
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
    std::fs::write(&p, text).expect("write");
    p
}

#[test]
fn loader_and_response_errors_name_the_file_line_and_field() -> Result<()> {
    let dir = std::env::temp_dir().join(format!("temper-tools-bfcl-errors-{}", std::process::id()));
    let good = r#"{"id": "parallel_0", "question": [[{"role": "user", "content": "?"}]], "function": [{"name": "f", "parameters": {"type": "dict", "properties": {}}}]}"#;
    let q = write(
        &dir,
        "BFCL_v4_parallel.json",
        &format!(
            "{good}\n{{\"id\": \"parallel_1\", \"question\": [[]], \"function\": [{{\"parameters\": {{}}}}]}}\n"
        ),
    );
    let e = Dataset::load(&dir, Category::Parallel)
        .expect_err("bad function")
        .to_string();
    assert_eq!(
        e,
        format!(
            "{}:2: `parallel_1`: function has no string `name`",
            q.display()
        )
    );
    write(&dir, "BFCL_v4_parallel.json", &format!("{good}\n"));
    let a = write(
        &dir,
        "possible_answer/BFCL_v4_parallel.json",
        "{\"id\": \"parallel_0\", \"ground_truth\": [{\"f\": {\"a\": 1}}]}\n",
    );
    let e = Dataset::load(&dir, Category::Parallel)
        .expect_err("bad answer")
        .to_string();
    assert_eq!(
        e,
        format!(
            "{}:1: `parallel_0`: ground truth of `f`: `a` is 1, not a list of accepted values",
            a.display()
        )
    );
    write(
        &dir,
        "possible_answer/BFCL_v4_parallel.json",
        "{\"id\": \"parallel_0\", \"ground_truth\": []}\n{\"id\": \"parallel_9\", \"ground_truth\": []}\n",
    );
    let e = Dataset::load(&dir, Category::Parallel)
        .expect_err("stray answer")
        .to_string();
    assert!(
        e.starts_with(&format!(
            "{}:2: `parallel_9` is not a question",
            a.display()
        )),
        "{e}"
    );
    write(
        &dir,
        "possible_answer/BFCL_v4_parallel.json",
        "{\"id\": \"parallel_0\", \"ground_truth\": [{\"f\": {}}]}\n",
    );
    let data = Dataset::load(&dir, Category::Parallel)?;
    // Responses: bad JSON, a missing field, a duplicate id, an id that is not a question.
    for (text, line, says) in [
        (
            "{\"id\": \"parallel_0\", \"calls\": []}\nnot json\n",
            2,
            "not a response object",
        ),
        ("{\"id\": \"parallel_0\"}\n", 1, "missing field `calls`"),
        (
            "{\"id\": \"parallel_0\", \"calls\": [{\"name\": \"f\", \"args\": {}}]}\n",
            1,
            "unknown field `args`",
        ),
        (
            "{\"id\": \"parallel_0\", \"calls\": []}\n\n{\"id\": \"parallel_0\", \"calls\": []}\n",
            3,
            "`parallel_0` already answered on line 1",
        ),
    ] {
        let r = write(&dir, "responses.jsonl", text);
        let e = load_responses(&r).expect_err(says).to_string();
        assert!(
            e.starts_with(&format!("{}:{line}: ", r.display())) && e.contains(says),
            "{e}"
        );
    }
    let r = write(
        &dir,
        "responses.jsonl",
        "{\"id\": \"parallel_0\", \"calls\": [{\"name\": \"f\"}]}\n{\"id\": \"simple_python_3\", \"calls\": []}\n",
    );
    let e = score(&data, &load_responses(&r)?)
        .expect_err("stray")
        .to_string();
    assert_eq!(
        e,
        "<responses>:2: `simple_python_3` is not a question of BFCL parallel"
    );
    let e = score_file(&data, &r).expect_err("stray").to_string();
    assert_eq!(
        e,
        format!(
            "{}:2: `simple_python_3` is not a question of BFCL parallel",
            r.display()
        )
    );
    let r = write(
        &dir,
        "responses.jsonl",
        "{\"id\": \"parallel_0\", \"calls\": [{\"name\": \"f\"}]}\n",
    );
    let report = score(&data, &load_responses(&r)?)?;
    assert_eq!((report.correct, report.total), (1, 1));
    let as_json = serde_json::to_value(&report).map_err(|e| ToolError::Registry(e.to_string()))?;
    assert_eq!(
        as_json["results"][0],
        json!({"id": "parallel_0", "correct": true, "reason": "ok"})
    );
    assert_eq!(as_json["category"], "parallel");
    std::fs::remove_dir_all(&dir).map_err(|source| ToolError::Io { path: dir, source })?;
    Ok(())
}
