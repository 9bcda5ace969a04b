//! BFCL v4 (the Berkeley Function Calling Leaderboard, asset `bfcl`): loading the question and possible-answer
//! files of the categories `simple` (BFCL's `simple_python`), `multiple`, `parallel`, `parallel_multiple` and
//! `irrelevance`, and scoring pre-decoded responses with BFCL's AST checker ([`checker`]).
//!
//! The data directory is `bfcl_eval/data` of the `bfcl-eval` wheel: `BFCL_v4_<set>.json` (one question a line) and
//! `possible_answer/BFCL_v4_<set>.json` (one `{"id", "ground_truth"}` a line; irrelevance has none). Responses are
//! JSONL, one `{"id": …, "calls": [{"name": …, "arguments": {…}}]}` a line.
//!
//! ```no_run
//! # fn main() -> temper_tools::Result<()> {
//! use temper_tools::bfcl::{Category, Dataset, score_file};
//! let data = Dataset::load(std::path::Path::new("bfcl_eval/data"), Category::Simple)?;
//! let report = score_file(&data, std::path::Path::new("responses.jsonl"))?;
//! println!("{}", serde_json::to_string(&report).unwrap_or_default());
//! # Ok(()) }
//! ```

pub mod checker;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use temper_chat::{ChatBackend, GenerationParams, Message};

use crate::error::{Result, ToolError};
use crate::formats::Format;
use crate::tool::ToolSpec;
use crate::tool_loop::with_tools;
use checker::Call;

/// A BFCL category this crate scores.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Category {
    /// `simple_python`: one function, one call.
    Simple,
    /// Several functions, one call of the right one.
    Multiple,
    /// One function, several calls (any order).
    Parallel,
    /// Several functions, several calls (any order).
    ParallelMultiple,
    /// No function fits: the right answer makes no call.
    Irrelevance,
}

impl Category {
    /// Every category.
    pub const ALL: [Category; 5] = [
        Category::Simple,
        Category::Multiple,
        Category::Parallel,
        Category::ParallelMultiple,
        Category::Irrelevance,
    ];

    /// The name used on the command line: `simple`, `multiple`, `parallel`, `parallel_multiple`, `irrelevance`.
    pub fn name(self) -> &'static str {
        match self {
            Category::Simple => "simple",
            Category::Multiple => "multiple",
            Category::Parallel => "parallel",
            Category::ParallelMultiple => "parallel_multiple",
            Category::Irrelevance => "irrelevance",
        }
    }

    /// The category named `name` (`simple_python` is accepted for `simple`).
    pub fn parse(name: &str) -> Result<Category> {
        if name == "simple_python" {
            return Ok(Category::Simple);
        }
        Category::ALL
            .into_iter()
            .find(|c| c.name() == name)
            .ok_or_else(|| {
                ToolError::InvalidInput(format!(
                    "unknown BFCL category `{name}`; expected one of {}",
                    Category::ALL.map(Category::name).join(", ")
                ))
            })
    }

    /// BFCL's own name of the set: `simple_python` for `simple`, the category's name otherwise.
    pub fn bfcl_set(self) -> &'static str {
        match self {
            Category::Simple => "simple_python",
            other => other.name(),
        }
    }

    /// The question file under `dir`.
    pub fn questions_file(self, dir: &Path) -> PathBuf {
        dir.join(format!("BFCL_v4_{}.json", self.bfcl_set()))
    }

    /// The question and possible-answer files inside the `bfcl-eval` package (the names `temper_assets::path_of`
    /// takes for asset `bfcl`); no answer file for irrelevance.
    pub fn package_files(self) -> (String, Option<String>) {
        let root = Path::new("bfcl_eval/data");
        let q = self.questions_file(root).to_string_lossy().into_owned();
        (
            q,
            self.answers_file(root)
                .map(|a| a.to_string_lossy().into_owned()),
        )
    }

    /// The possible-answer file under `dir` (none for irrelevance).
    pub fn answers_file(self, dir: &Path) -> Option<PathBuf> {
        (self != Category::Irrelevance).then(|| {
            dir.join("possible_answer")
                .join(format!("BFCL_v4_{}.json", self.bfcl_set()))
        })
    }
}

/// A function as BFCL declares it (its `parameters` use BFCL's type names: `dict`, `float`, `tuple`, `any`, …).
#[derive(Debug, Clone, PartialEq)]
pub struct Function {
    /// The name (may contain dots: `math.factorial`).
    pub name: String,
    /// The description.
    pub description: String,
    /// `parameters.properties`.
    pub properties: Map<String, Value>,
    /// `parameters.required`.
    pub required: Vec<String>,
    /// The declaration as given.
    pub raw: Value,
}

impl Function {
    fn from_json(v: &Value) -> std::result::Result<Function, String> {
        let name = v
            .get("name")
            .and_then(Value::as_str)
            .ok_or("function has no string `name`")?;
        let params = v
            .get("parameters")
            .ok_or_else(|| format!("function `{name}` has no `parameters`"))?;
        let properties = params
            .get("properties")
            .and_then(Value::as_object)
            .ok_or_else(|| format!("function `{name}`: `parameters.properties` is not an object"))?
            .clone();
        let required = match params.get("required") {
            None => Vec::new(),
            Some(Value::Array(r)) => r
                .iter()
                .map(|x| {
                    x.as_str().map(str::to_string).ok_or_else(|| {
                        format!("function `{name}`: `required` holds {x}, not a string")
                    })
                })
                .collect::<std::result::Result<_, _>>()?,
            Some(other) => {
                return Err(format!(
                    "function `{name}`: `required` is {other}, not a list"
                ));
            }
        };
        Ok(Function {
            name: name.to_string(),
            description: v
                .get("description")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string(),
            properties,
            required,
            raw: v.clone(),
        })
    }

    /// The function as a [`ToolSpec`] with a JSON schema (BFCL's `dict` → `object`, `float` → `number`, `tuple` →
    /// `array`, `any` → no type), for prompting a model.
    pub fn tool_spec(&self) -> ToolSpec {
        let params = self.raw.get("parameters").cloned().unwrap_or(Value::Null);
        ToolSpec::new(&self.name, &self.description, to_json_schema(params))
    }
}

fn to_json_schema(v: Value) -> Value {
    match v {
        Value::Object(map) => {
            let mut out = Map::new();
            for (k, v) in map {
                if k == "type" && v.as_str() == Some("any") {
                    continue;
                }
                let v = match (k.as_str(), v) {
                    ("type", Value::String(t)) => Value::String(
                        match t.as_str() {
                            "dict" => "object",
                            "float" => "number",
                            "tuple" => "array",
                            other => other,
                        }
                        .to_string(),
                    ),
                    (_, v) => to_json_schema(v),
                };
                out.insert(k, v);
            }
            Value::Object(out)
        }
        Value::Array(items) => Value::Array(items.into_iter().map(to_json_schema).collect()),
        other => other,
    }
}

/// One expected call of a possible answer: the function and, per parameter, the values accepted (`""` among them
/// marks the parameter optional).
#[derive(Debug, Clone, PartialEq)]
pub struct ExpectedCall {
    /// The function's name.
    pub name: String,
    /// Accepted values per parameter.
    pub params: BTreeMap<String, Vec<Value>>,
}

impl ExpectedCall {
    fn from_json(v: &Value) -> std::result::Result<ExpectedCall, String> {
        let map = v.as_object().filter(|m| m.len() == 1).ok_or_else(|| {
            format!("a ground-truth call must be an object with one key, got {v}")
        })?;
        let (name, params) = map.iter().next().ok_or("empty ground-truth call")?;
        let params = params
            .as_object()
            .ok_or_else(|| format!("ground truth of `{name}`: parameters are not an object"))?
            .iter()
            .map(|(p, options)| match options {
                Value::Array(o) => Ok((p.clone(), o.clone())),
                other => Err(format!(
                    "ground truth of `{name}`: `{p}` is {other}, not a list of accepted values"
                )),
            })
            .collect::<std::result::Result<_, _>>()?;
        Ok(ExpectedCall {
            name: name.clone(),
            params,
        })
    }
}

/// One question with its possible answer.
#[derive(Debug, Clone, PartialEq)]
pub struct Item {
    /// BFCL's id, e.g. `simple_python_0`.
    pub id: String,
    /// The conversation of the first turn.
    pub messages: Vec<Message>,
    /// The functions offered.
    pub functions: Vec<Function>,
    /// The expected calls (empty for irrelevance).
    pub answers: Vec<ExpectedCall>,
}

impl Item {
    /// Calls built from the possible answer itself, as a model reading the function declarations could make them:
    /// per declared parameter the first accepted value that is not `""` (a dict answer, `{key: [accepted…]}`, and
    /// each dict of a list of dicts likewise becomes a concrete dict); parameters whose only answer is `""`, and
    /// optional parameters the function does not declare (a few BFCL answers list them), are left out. A correct
    /// checker scores these as right.
    pub fn reference_calls(&self) -> Vec<Call> {
        self.answers
            .iter()
            .map(|a| {
                let function = self.functions.iter().find(|f| f.name == a.name);
                let arguments = a
                    .params
                    .iter()
                    .filter_map(|(p, options)| {
                        let declared = function.and_then(|f| f.properties.get(p))?;
                        let value = first_answer(options)?;
                        let kind = declared.get("type").and_then(Value::as_str);
                        let items = declared
                            .get("items")
                            .and_then(|i| i.get("type"))
                            .and_then(Value::as_str);
                        let value = match (kind, items, value) {
                            (Some("dict"), _, v @ Value::Object(_)) => concrete_dict(v),
                            (Some("array"), Some("dict"), Value::Array(ds)) => {
                                Value::Array(ds.iter().map(concrete_dict).collect())
                            }
                            (_, _, v) => v.clone(),
                        };
                        Some((p.clone(), value))
                    })
                    .collect();
                Call {
                    name: a.name.clone(),
                    arguments,
                }
            })
            .collect()
    }
}

fn first_answer(options: &[Value]) -> Option<&Value> {
    options.iter().find(|o| o.as_str() != Some(""))
}

/// A dict possible answer `{key: [accepted…]}` as a concrete dict of first accepted values.
fn concrete_dict(v: &Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.iter()
                .filter_map(|(k, options)| match options {
                    Value::Array(o) => first_answer(o).map(|x| (k.clone(), x.clone())),
                    other => Some((k.clone(), other.clone())),
                })
                .collect(),
        ),
        other => other.clone(),
    }
}

impl Item {
    /// The conversation to send a model: the question with the functions described in `format`'s system prompt
    /// (BFCL's types mapped to JSON schema, see [`Function::tool_spec`]).
    pub fn prompt(&self, format: Format) -> Vec<Message> {
        let specs: Vec<ToolSpec> = self.functions.iter().map(Function::tool_spec).collect();
        with_tools(self.messages.clone(), format, &specs)
    }

    /// A model's reply to this question read in `format` as a [`Response`]. A reply that cannot be read counts as
    /// no call, so it is wrong in every category but irrelevance, as BFCL scores a decoding failure.
    pub fn response_from_reply(&self, reply: &str, format: Format) -> Response {
        let calls = format
            .parse(reply)
            .map(|r| {
                r.calls
                    .into_iter()
                    .map(|c| Call {
                        name: c.name,
                        arguments: c.arguments.as_object().cloned().unwrap_or_default(),
                    })
                    .collect()
            })
            .unwrap_or_default();
        Response {
            id: self.id.clone(),
            calls,
            line: 0,
        }
    }
}

/// A category's questions with their answers, in file order.
#[derive(Debug, Clone, PartialEq)]
pub struct Dataset {
    /// The category.
    pub category: Category,
    /// The items.
    pub items: Vec<Item>,
}

fn read(path: &Path) -> Result<String> {
    std::fs::read_to_string(path).map_err(|source| ToolError::Io {
        path: path.to_path_buf(),
        source,
    })
}

fn data_err(path: &Path, line: usize, message: impl Into<String>) -> ToolError {
    ToolError::Data {
        path: path.to_path_buf(),
        line,
        message: message.into(),
    }
}

/// The non-empty lines of a JSONL file as JSON, with their 1-based line numbers.
fn jsonl(path: &Path) -> Result<Vec<(usize, Value)>> {
    read(path)?
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| {
            serde_json::from_str(l)
                .map(|v| (i + 1, v))
                .map_err(|e| data_err(path, i + 1, format!("not JSON: {e}")))
        })
        .collect()
}

fn id_of(path: &Path, line: usize, v: &Value) -> Result<String> {
    v.get("id")
        .and_then(Value::as_str)
        .map(str::to_string)
        .ok_or_else(|| data_err(path, line, "no string field `id`"))
}

impl Dataset {
    /// One response per question made of its [`Item::reference_calls`] (the self-check: these score 100 %).
    pub fn reference_responses(&self) -> Vec<Response> {
        self.items
            .iter()
            .map(|i| Response {
                id: i.id.clone(),
                calls: i.reference_calls(),
                line: 0,
            })
            .collect()
    }

    /// Loads `category` from BFCL's data directory `dir`; every error names the file and line.
    pub fn load(dir: &Path, category: Category) -> Result<Dataset> {
        Dataset::load_files(
            category,
            &category.questions_file(dir),
            category.answers_file(dir).as_deref(),
        )
    }

    /// Loads `category` from its question file and possible-answer file (required for every category but
    /// irrelevance, whose answer file is ignored) — e.g. paths resolved in the asset cache from
    /// [`Category::package_files`]. Every error names the file and line.
    pub fn load_files(
        category: Category,
        questions: &Path,
        answers: Option<&Path>,
    ) -> Result<Dataset> {
        let qpath = questions.to_path_buf();
        let mut items = Vec::new();
        for (line, v) in jsonl(&qpath)? {
            let id = id_of(&qpath, line, &v)?;
            let err = |m: String| data_err(&qpath, line, format!("`{id}`: {m}"));
            let turns = v
                .get("question")
                .and_then(Value::as_array)
                .ok_or_else(|| err("`question` is not a list of turns".into()))?;
            let first = turns.first().cloned().unwrap_or(Value::Array(Vec::new()));
            let messages: Vec<Message> = serde_json::from_value(first)
                .map_err(|e| err(format!("`question[0]` is not a list of messages: {e}")))?;
            let functions = v
                .get("function")
                .and_then(Value::as_array)
                .ok_or_else(|| err("`function` is not a list".into()))?
                .iter()
                .map(|f| Function::from_json(f).map_err(&err))
                .collect::<Result<Vec<_>>>()?;
            items.push(Item {
                id,
                messages,
                functions,
                answers: Vec::new(),
            });
        }
        if category != Category::Irrelevance {
            let apath = answers
                .ok_or_else(|| {
                    data_err(
                        &qpath,
                        0,
                        format!(
                            "BFCL {} needs its possible-answer file",
                            category.bfcl_set()
                        ),
                    )
                })?
                .to_path_buf();
            let mut answers: HashMap<String, (usize, Vec<ExpectedCall>)> = HashMap::new();
            for (line, v) in jsonl(&apath)? {
                let id = id_of(&apath, line, &v)?;
                let truth = v
                    .get("ground_truth")
                    .and_then(Value::as_array)
                    .ok_or_else(|| {
                        data_err(
                            &apath,
                            line,
                            format!("`{id}`: `ground_truth` is not a list"),
                        )
                    })?
                    .iter()
                    .map(|c| {
                        ExpectedCall::from_json(c)
                            .map_err(|m| data_err(&apath, line, format!("`{id}`: {m}")))
                    })
                    .collect::<Result<Vec<_>>>()?;
                if let Some((first, _)) = answers.insert(id.clone(), (line, truth)) {
                    return Err(data_err(
                        &apath,
                        line,
                        format!("`{id}` already answered on line {first}"),
                    ));
                }
            }
            for item in &mut items {
                let (_, truth) = answers.remove(&item.id).ok_or_else(|| {
                    data_err(&apath, 0, format!("no possible answer for `{}`", item.id))
                })?;
                item.answers = truth;
            }
            if let Some((id, (line, _))) = answers.into_iter().min_by_key(|(_, (l, _))| *l) {
                return Err(data_err(
                    &apath,
                    line,
                    format!("`{id}` is not a question of {}", qpath.display()),
                ));
            }
        }
        Ok(Dataset { category, items })
    }
}

/// One response line: the calls a model made for question `id`, already decoded.
#[derive(Debug, Clone, PartialEq)]
pub struct Response {
    /// The question's id.
    pub id: String,
    /// The calls, in order.
    pub calls: Vec<Call>,
    /// Where it was read (1-based; 0 when built in code).
    pub line: usize,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct WireResponse {
    id: String,
    calls: Vec<WireCall>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct WireCall {
    name: String,
    #[serde(default)]
    arguments: Map<String, Value>,
}

/// Reads a responses file: one `{"id": …, "calls": [{"name": …, "arguments": {…}}]}` a line; errors name the line
/// and field, and an id given twice is refused.
pub fn load_responses(path: &Path) -> Result<Vec<Response>> {
    let mut seen: HashMap<String, usize> = HashMap::new();
    let mut out = Vec::new();
    for (i, l) in read(path)?
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
    {
        let line = i + 1;
        let w: WireResponse = serde_json::from_str(l)
            .map_err(|e| data_err(path, line, format!("not a response object: {e}")))?;
        if let Some(first) = seen.insert(w.id.clone(), line) {
            return Err(data_err(
                path,
                line,
                format!("`{}` already answered on line {first}", w.id),
            ));
        }
        let calls = w
            .calls
            .into_iter()
            .map(|c| Call {
                name: c.name,
                arguments: c.arguments,
            })
            .collect();
        out.push(Response {
            id: w.id,
            calls,
            line,
        });
    }
    Ok(out)
}

/// The verdict on one question.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Verdict {
    /// The question's id.
    pub id: String,
    /// Whether BFCL's checker accepts the response.
    pub correct: bool,
    /// `ok`, or BFCL's error type and message (`no response` when the file has none for this id).
    pub reason: String,
}

/// A scored category.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// The category.
    pub category: Category,
    /// One verdict per question, in the data's order.
    pub results: Vec<Verdict>,
    /// Questions answered correctly.
    pub correct: usize,
    /// Questions.
    pub total: usize,
    /// `correct / total` (0 for an empty set).
    pub accuracy: f64,
}

/// Scores `responses` against `data`: every question gets a verdict (a question with no response is wrong); a
/// response to an id that is not in the data is an error naming its line.
pub fn score(data: &Dataset, responses: &[Response]) -> Result<Report> {
    score_from(data, responses, Path::new("<responses>"))
}

/// Asks `backend` every question of `data` ([`Item::prompt`] in `format`, one reply each with `params`) and reads
/// the replies ([`Item::response_from_reply`]): the responses to [`score`], each with the model's raw reply.
/// `on_reply` is called with the number of questions answered so far (a progress bar's position).
pub fn ask<B: ChatBackend + ?Sized>(
    data: &Dataset,
    backend: &B,
    format: Format,
    params: &GenerationParams,
    mut on_reply: impl FnMut(usize),
) -> Result<Vec<(Response, String)>> {
    data.items
        .iter()
        .enumerate()
        .map(|(i, item)| {
            let raw = backend.complete(&item.prompt(format), params)?;
            on_reply(i + 1);
            Ok((item.response_from_reply(&raw, format), raw))
        })
        .collect()
}

/// Reads the responses file `path` ([`load_responses`]) and [`score`]s it; every error names `path` and the line.
pub fn score_file(data: &Dataset, path: &Path) -> Result<Report> {
    score_from(data, &load_responses(path)?, path)
}

fn score_from(data: &Dataset, responses: &[Response], origin: &Path) -> Result<Report> {
    let by_id: HashMap<&str, &Response> = responses.iter().map(|r| (r.id.as_str(), r)).collect();
    let known: HashMap<&str, ()> = data.items.iter().map(|i| (i.id.as_str(), ())).collect();
    if let Some(stray) = responses
        .iter()
        .find(|r| !known.contains_key(r.id.as_str()))
    {
        return Err(ToolError::Data {
            path: origin.to_path_buf(),
            line: stray.line,
            message: format!(
                "`{}` is not a question of BFCL {}",
                stray.id,
                data.category.bfcl_set()
            ),
        });
    }
    let results: Vec<Verdict> = data
        .items
        .iter()
        .map(|item| {
            let (correct, reason) = match by_id.get(item.id.as_str()) {
                None => (false, "no response".to_string()),
                Some(r) => {
                    match checker::check(data.category, &item.functions, &item.answers, &r.calls) {
                        Ok(()) => (true, "ok".to_string()),
                        Err(f) => (false, f.to_string()),
                    }
                }
            };
            Verdict {
                id: item.id.clone(),
                correct,
                reason,
            }
        })
        .collect();
    let correct = results.iter().filter(|v| v.correct).count();
    let total = results.len();
    Ok(Report {
        category: data.category,
        correct,
        total,
        accuracy: if total == 0 {
            0.0
        } else {
            correct as f64 / total as f64
        },
        results,
    })
}
