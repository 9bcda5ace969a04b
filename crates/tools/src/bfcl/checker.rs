//! BFCL's AST checker, following the rules of `bfcl_eval/eval_checker/ast_eval/ast_checker.py` (bfcl-eval
//! 2026.3.23) for Python categories, on JSON values with Python's semantics: the function name must match; required
//! parameters must be present; a parameter the function does not declare, or the possible answer does not list, is
//! rejected; a possible answer holding `""` marks an optional parameter; types are exact (Python's `type(v) == t`)
//! except that an int passes for a `float` parameter; strings compare after BFCL's standardisation (drop
//! ` ,./-_*^`, lowercase, `'` → `"`); lists compare element-wise after standardising their strings; dicts key by
//! key; parallel calls match in any order (greedily, as BFCL does); `multiple` checks the one expected call.
//!
//! Python equality is followed too: `1 == 1.0 == True`, lists and dicts compare element-wise.

use serde_json::{Map, Value};

use crate::bfcl::{Category, ExpectedCall, Function};
use crate::formats::python_repr;

/// One check's result: `Ok` or BFCL's error type and message.
pub type Check = Result<(), Failure>;

/// Why a response is wrong: BFCL's `error_type` and a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// BFCL's error type, e.g. `simple_function_checker:missing_required`.
    pub kind: &'static str,
    /// What was wrong, with the parameter and values.
    pub message: String,
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.kind, self.message)
    }
}

fn fail(kind: &'static str, message: String) -> Check {
    Err(Failure { kind, message })
}

/// A decoded call: the function's name and its arguments.
#[derive(Debug, Clone, PartialEq)]
pub struct Call {
    /// Function name.
    pub name: String,
    /// Arguments by name.
    pub arguments: Map<String, Value>,
}

impl From<Call> for temper_chat::ToolCall {
    fn from(c: Call) -> Self {
        temper_chat::ToolCall {
            id: String::new(),
            name: c.name,
            arguments: Value::Object(c.arguments),
        }
    }
}

/// Python's types of JSON values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PyType {
    None,
    Bool,
    Int,
    Float,
    Str,
    List,
    Dict,
}

impl PyType {
    fn of(v: &Value) -> PyType {
        match v {
            Value::Null => PyType::None,
            Value::Bool(_) => PyType::Bool,
            Value::Number(n) if n.is_f64() => PyType::Float,
            Value::Number(_) => PyType::Int,
            Value::String(_) => PyType::Str,
            Value::Array(_) => PyType::List,
            Value::Object(_) => PyType::Dict,
        }
    }

    fn name(self) -> &'static str {
        match self {
            PyType::None => "NoneType",
            PyType::Bool => "bool",
            PyType::Int => "int",
            PyType::Float => "float",
            PyType::Str => "str",
            PyType::List => "list",
            PyType::Dict => "dict",
        }
    }

    /// BFCL's `PYTHON_TYPE_MAPPING`.
    fn from_bfcl(t: &str) -> Option<PyType> {
        Some(match t {
            "string" | "any" => PyType::Str,
            "integer" => PyType::Int,
            "float" => PyType::Float,
            "boolean" => PyType::Bool,
            "array" | "tuple" => PyType::List,
            "dict" => PyType::Dict,
            _ => return None,
        })
    }
}

/// Python's `a == b` on JSON values: numbers (bools as 0/1) compare by value, containers element-wise.
pub fn py_eq(a: &Value, b: &Value) -> bool {
    let num = |v: &Value| match v {
        Value::Bool(b) => Some(f64::from(u8::from(*b))),
        Value::Number(n) => n.as_f64(),
        _ => None,
    };
    match (a, b) {
        (Value::Number(x), Value::Number(y)) if !x.is_f64() && !y.is_f64() => {
            x.as_i64().zip(y.as_i64()).map_or_else(
                || x.as_u64() == y.as_u64() && x.as_u64().is_some(),
                |(p, q)| p == q,
            )
        }
        (Value::Null, Value::Null) => true,
        (Value::String(x), Value::String(y)) => x == y,
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(p, q)| py_eq(p, q))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| py_eq(v, w)))
        }
        _ => matches!((num(a), num(b)), (Some(p), Some(q)) if p == q),
    }
}

fn py_in(v: &Value, options: &[Value]) -> bool {
    options.iter().any(|o| py_eq(v, o))
}

fn has_optional(options: &[Value]) -> bool {
    options.iter().any(|o| o.as_str() == Some(""))
}

/// BFCL's `standardize_string`: drops spaces and `,./-_*^`, lowercases, turns `'` into `"`.
pub fn standardize(s: &str) -> String {
    s.chars()
        .filter(|c| !" ,./-_*^".contains(*c))
        .collect::<String>()
        .to_lowercase()
        .replace('\'', "\"")
}

fn standardize_value(v: &Value) -> Value {
    match v {
        Value::String(s) => Value::String(standardize(s)),
        other => other.clone(),
    }
}

/// The items of a possible answer used as a list: a list's items, a string's characters (as Python iterates it;
/// `""` gives the empty list), nothing for anything else.
fn as_items(v: &Value) -> Option<Vec<Value>> {
    match v {
        Value::Array(items) => Some(items.clone()),
        Value::String(s) => Some(s.chars().map(|c| Value::String(c.to_string())).collect()),
        _ => None,
    }
}

fn repr_list(options: &[Value]) -> String {
    python_repr(&Value::Array(options.to_vec()))
}

/// BFCL's `type_checker`: `Ok(is_variable)` or the failure. `nested` is the item type of a list parameter.
fn type_check(
    param: &str,
    value: &Value,
    options: &[Value],
    expected: &str,
    want: PyType,
    nested: Option<PyType>,
) -> Result<bool, Failure> {
    // The type of the first non-optional possible answer; if it differs from the declared type, the answer is a
    // "variable" and values are compared as they are.
    let answer_type = options
        .iter()
        .find(|o| o.as_str() != Some(""))
        .map(PyType::of);
    let is_variable = answer_type.is_some_and(|t| t != want);
    let got = PyType::of(value);
    let mut nested_failed = false;
    if got == want {
        let Some(inner) = nested else {
            return Ok(is_variable);
        };
        let items = value.as_array().map(Vec::as_slice).unwrap_or_default();
        for option in options {
            let ok = match option.as_array() {
                Some(option_items) => items.iter().all(|item| {
                    type_check(param, item, option_items, inner.name(), inner, None).is_ok()
                }),
                None => true,
            };
            if ok {
                return Ok(is_variable);
            }
        }
        nested_failed = true;
    }
    if nested_failed {
        return Err(Failure {
            kind: "type_error:nested",
            message: format!(
                "Nested type checking failed for parameter '{param}'. Expected outer type {expected} with inner type {}. Parameter value: {}.",
                nested.map_or("?", PyType::name),
                python_repr(value)
            ),
        });
    }
    if answer_type == Some(got) {
        return Ok(true);
    }
    Err(Failure {
        kind: "type_error:simple",
        message: format!(
            "Incorrect type for parameter '{param}'. Expected type {expected}, got {}. Parameter value: {}.",
            got.name(),
            python_repr(value)
        ),
    })
}

fn string_check(param: &str, value: &str, options: &[Value]) -> Check {
    let want = standardize(value);
    if options
        .iter()
        .filter_map(Value::as_str)
        .any(|o| standardize(o) == want)
    {
        return Ok(());
    }
    fail(
        "value_error:string",
        format!(
            "Invalid value for parameter '{param}': {}. Expected one of {}. Case insensitive.",
            python_repr(&Value::String(value.into())),
            repr_list(options)
        ),
    )
}

fn list_check(param: &str, value: &[Value], options: &[Value]) -> Check {
    let got = Value::Array(value.iter().map(standardize_value).collect());
    let matched = options.iter().filter_map(as_items).any(|items| {
        py_eq(
            &got,
            &Value::Array(items.iter().map(standardize_value).collect()),
        )
    });
    if matched {
        return Ok(());
    }
    fail(
        "value_error:list/tuple",
        format!(
            "Invalid value for parameter '{param}': {}. Expected one of {}.",
            python_repr(&Value::Array(value.to_vec())),
            repr_list(options)
        ),
    )
}

fn dict_check(value: &Map<String, Value>, options: &[Value]) -> Check {
    let mut result = fail("dict_checker:unclear", String::new());
    for option in options {
        if option.as_str() == Some("") {
            continue;
        }
        let Some(answer) = option.as_object() else {
            result = fail(
                "dict_checker:unclear",
                format!("possible answer {} is not a dict", python_repr(option)),
            );
            continue;
        };
        result = Ok(());
        for (key, v) in value {
            let Some(allowed) = answer.get(key) else {
                result = fail(
                    "value_error:dict_key",
                    format!("Unexpected dict key parameter: '{key}'."),
                );
                break;
            };
            let allowed: Vec<Value> = allowed
                .as_array()
                .map(|a| a.iter().map(standardize_value).collect())
                .unwrap_or_default();
            if !py_in(&standardize_value(v), &allowed) {
                result = fail(
                    "value_error:dict_value",
                    format!(
                        "Invalid value for parameter '{key}': {}. Expected one of {}.",
                        python_repr(v),
                        repr_list(&allowed)
                    ),
                );
                break;
            }
        }
        if result.is_ok() {
            for (key, allowed) in answer {
                let optional = allowed.as_array().is_some_and(|a| has_optional(a));
                if !value.contains_key(key) && !optional {
                    result = fail(
                        "value_error:dict_key",
                        format!("Missing dict key parameter: '{key}'."),
                    );
                    break;
                }
            }
        }
        if result.is_ok() {
            return result;
        }
    }
    result
}

fn list_dict_check(value: &[Value], options: &[Value]) -> Check {
    let mut result = fail("list_dict_checker:unclear", String::new());
    for option in options {
        let Some(answer) = as_items(option) else {
            continue;
        };
        if answer.len() != value.len() {
            result = fail(
                "value_error:list_dict_count",
                "Wrong number of dictionaries in the list.".into(),
            );
            continue;
        }
        result = Ok(());
        for (item, expected) in value.iter().zip(&answer) {
            result = match item.as_object() {
                Some(map) => dict_check(map, std::slice::from_ref(expected)),
                None => fail(
                    "value_error:list_dict_count",
                    format!("{} is not a dict", python_repr(item)),
                ),
            };
            if result.is_err() {
                break;
            }
        }
        if result.is_ok() {
            return result;
        }
    }
    result
}

/// BFCL's `simple_function_checker`: `call` against the declared `function` and the expected call `answer`.
pub fn check_call(function: &Function, call: &Call, answer: &ExpectedCall) -> Check {
    if call.name != function.name {
        return fail(
            "simple_function_checker:wrong_func_name",
            format!(
                "Function name '{}' not found in model output.",
                function.name
            ),
        );
    }
    for required in &function.required {
        if !call.arguments.contains_key(required) {
            return fail(
                "simple_function_checker:missing_required",
                format!("Missing required parameter: '{required}'."),
            );
        }
    }
    for (param, value) in &call.arguments {
        let (Some(details), Some(options)) =
            (function.properties.get(param), answer.params.get(param))
        else {
            return fail(
                "simple_function_checker:unexpected_param",
                format!("Unexpected parameter: '{param}'."),
            );
        };
        let expected = details
            .get("type")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let Some(want) = PyType::from_bfcl(expected) else {
            return fail(
                "type_error:simple",
                format!(
                    "parameter '{param}' declares type '{expected}', which BFCL's Python checker does not know"
                ),
            );
        };
        let nested = if matches!(expected, "array" | "tuple") {
            details
                .get("items")
                .and_then(|i| i.get("type"))
                .and_then(Value::as_str)
                .and_then(PyType::from_bfcl)
        } else {
            None
        };
        // Python converts an int to a float where a float is declared.
        let value = match value {
            Value::Number(n) if want == PyType::Float && !n.is_f64() => {
                n.as_f64().map_or(value.clone(), Value::from)
            }
            _ => value.clone(),
        };
        let is_variable = type_check(param, &value, options, expected, want, nested)?;
        if !is_variable {
            match (want, nested, &value) {
                (PyType::Dict, _, Value::Object(map)) => {
                    dict_check(map, options)?;
                    continue;
                }
                (PyType::List, Some(PyType::Dict), Value::Array(items)) => {
                    list_dict_check(items, options)?;
                    continue;
                }
                (PyType::Str, _, Value::String(s)) => {
                    string_check(param, s, options)?;
                    continue;
                }
                (PyType::List, _, Value::Array(items)) => {
                    list_check(param, items, options)?;
                    continue;
                }
                _ => {}
            }
        }
        if !py_in(&value, options) {
            return fail(
                "value_error:others",
                format!(
                    "Invalid value for parameter '{param}': {}. Expected one of {}.",
                    python_repr(&value),
                    repr_list(options)
                ),
            );
        }
    }
    for (param, options) in &answer.params {
        if !call.arguments.contains_key(param) && !has_optional(options) {
            return fail(
                "simple_function_checker:missing_optional",
                format!("Optional parameter '{param}' not provided and not marked as optional."),
            );
        }
    }
    Ok(())
}

fn find<'a>(functions: &'a [Function], name: &str) -> Option<&'a Function> {
    functions.iter().find(|f| f.name == name)
}

fn wrong_count(kind: &'static str, got: usize, want: usize) -> Check {
    fail(
        kind,
        format!("Wrong number of functions: {got} call(s), expected {want}."),
    )
}

/// BFCL's verdict on `calls` for a question of `category` with `functions` and the expected calls `answers`.
pub fn check(
    category: Category,
    functions: &[Function],
    answers: &[ExpectedCall],
    calls: &[Call],
) -> Check {
    match category {
        Category::Irrelevance => {
            if calls.is_empty() {
                Ok(())
            } else {
                fail(
                    "irrelevance_error:decoder_success",
                    format!("{} call(s) made where none should be.", calls.len()),
                )
            }
        }
        Category::Parallel | Category::ParallelMultiple => {
            if calls.len() != answers.len() {
                return wrong_count(
                    "parallel_function_checker_no_order:wrong_count",
                    calls.len(),
                    answers.len(),
                );
            }
            let mut matched = vec![false; calls.len()];
            for (i, answer) in answers.iter().enumerate() {
                let Some(function) = find(functions, &answer.name) else {
                    return fail(
                        "parallel_function_checker_no_order:cannot_find_match",
                        format!("no function '{}' in the question", answer.name),
                    );
                };
                let mut errors = Vec::new();
                let hit = (0..calls.len()).filter(|&j| !matched[j]).find(|&j| {
                    match check_call(function, &calls[j], answer) {
                        Ok(()) => true,
                        Err(e) => {
                            errors.push(format!("call {j}: {e}"));
                            false
                        }
                    }
                });
                match hit {
                    Some(j) => matched[j] = true,
                    None => {
                        return fail(
                            "parallel_function_checker_no_order:cannot_find_match",
                            format!(
                                "Could not find a matching function for index {i} of possible answers ({}); {}",
                                answer.name,
                                errors.join("; ")
                            ),
                        );
                    }
                }
            }
            Ok(())
        }
        Category::Multiple => {
            if calls.len() != answers.len() {
                return wrong_count(
                    "multiple_function_checker:wrong_count",
                    calls.len(),
                    answers.len(),
                );
            }
            let (Some(answer), Some(call)) = (answers.first(), calls.first()) else {
                return Ok(());
            };
            let Some(function) = find(functions, &answer.name) else {
                return fail(
                    "multiple_function_checker:wrong_func_name",
                    format!("no function '{}' in the question", answer.name),
                );
            };
            check_call(function, call, answer)
        }
        Category::Simple => {
            if calls.len() != 1 {
                return wrong_count("simple_function_checker:wrong_count", calls.len(), 1);
            }
            match (functions.first(), answers.first()) {
                (Some(function), Some(answer)) => check_call(function, &calls[0], answer),
                _ => fail(
                    "simple_function_checker:unclear",
                    "the question has no function or no possible answer".into(),
                ),
            }
        }
    }
}
