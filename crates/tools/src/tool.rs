//! The [`Tool`] seam, [`ToolSpec`] (name, description, JSON-schema parameters), [`FnTool`] (a Rust function whose
//! schema `schemars` derives from its argument type) and the [`Registry`] that validates arguments with
//! `jsonschema` before a tool runs.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use temper_chat::ToolCall;

use crate::error::{Result, ToolError};

/// What the model is told about a tool: OpenAI's `function` object.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ToolSpec {
    /// The name the model calls it by.
    pub name: String,
    /// What it does, for the model.
    pub description: String,
    /// A JSON schema of the arguments object.
    pub parameters: Value,
}

impl ToolSpec {
    /// A spec from its three parts.
    pub fn new(
        name: impl Into<String>,
        description: impl Into<String>,
        parameters: Value,
    ) -> ToolSpec {
        ToolSpec {
            name: name.into(),
            description: description.into(),
            parameters,
        }
    }

    /// OpenAI's tool entry, `{"type": "function", "function": {name, description, parameters}}` (what HF chat
    /// templates read as `tools`).
    pub fn openai_json(&self) -> Value {
        json!({"type": "function", "function": self})
    }
}

/// A function the model may call. Two required methods: what it is, and running it.
///
/// `call` receives arguments that the [`Registry`] has already validated against [`ToolSpec::parameters`].
pub trait Tool {
    /// Name, description and parameter schema.
    fn spec(&self) -> &ToolSpec;
    /// Runs the tool on `args` (a JSON object), returning a JSON result or a typed error.
    fn call(&self, args: Value) -> Result<Value>;
}

impl<T: Tool + ?Sized> Tool for &T {
    fn spec(&self) -> &ToolSpec {
        (**self).spec()
    }
    fn call(&self, args: Value) -> Result<Value> {
        (**self).call(args)
    }
}

impl<T: Tool + ?Sized> Tool for Box<T> {
    fn spec(&self) -> &ToolSpec {
        (**self).spec()
    }
    fn call(&self, args: Value) -> Result<Value> {
        (**self).call(args)
    }
}

/// The JSON schema `schemars` derives for `A`, without the `$schema` and `title` keys a model does not need.
pub fn schema_for<A: JsonSchema>() -> Value {
    let mut schema = schemars::schema_for!(A).to_value();
    if let Value::Object(map) = &mut schema {
        map.remove("$schema");
        map.remove("title");
    }
    schema
}

/// A tool written in Rust: arguments of type `A` (its schema derived by `schemars`), a function `A → JSON`.
pub struct FnTool<A, F> {
    spec: ToolSpec,
    f: F,
    _args: std::marker::PhantomData<fn(A)>,
}

impl<A, F> FnTool<A, F>
where
    A: JsonSchema + DeserializeOwned,
    F: Fn(A) -> std::result::Result<Value, String>,
{
    /// A tool named `name` that deserializes its arguments into `A` and runs `f`; an `Err` from `f` becomes
    /// [`ToolError::Failed`].
    pub fn new(name: impl Into<String>, description: impl Into<String>, f: F) -> FnTool<A, F> {
        FnTool {
            spec: ToolSpec::new(name, description, schema_for::<A>()),
            f,
            _args: std::marker::PhantomData,
        }
    }
}

impl<A, F> Tool for FnTool<A, F>
where
    A: JsonSchema + DeserializeOwned,
    F: Fn(A) -> std::result::Result<Value, String>,
{
    fn spec(&self) -> &ToolSpec {
        &self.spec
    }

    fn call(&self, args: Value) -> Result<Value> {
        let parsed: A = serde_json::from_value(args).map_err(|e| ToolError::InvalidArguments {
            tool: self.spec.name.clone(),
            message: e.to_string(),
        })?;
        (self.f)(parsed).map_err(|message| ToolError::failed(&self.spec.name, message))
    }
}

struct Entry {
    tool: Box<dyn Tool + Send + Sync>,
    validator: jsonschema::Validator,
}

/// The tools a loop may call, by name, each with its compiled argument validator.
#[derive(Default)]
pub struct Registry {
    tools: BTreeMap<String, Entry>,
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registry")
            .field("tools", &self.tools.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl Registry {
    /// An empty registry.
    pub fn new() -> Registry {
        Registry::default()
    }

    /// Adds `tool`; refuses a second tool of the same name and a schema that does not compile (with no network:
    /// remote `$ref`s are not fetched).
    pub fn register(&mut self, tool: impl Tool + Send + Sync + 'static) -> Result<&mut Registry> {
        let spec = tool.spec();
        if self.tools.contains_key(&spec.name) {
            return Err(ToolError::Registry(format!(
                "a tool named `{}` is already registered",
                spec.name
            )));
        }
        if spec.name.is_empty() {
            return Err(ToolError::Registry("a tool name must not be empty".into()));
        }
        let validator = jsonschema::validator_for(&spec.parameters).map_err(|e| {
            ToolError::Registry(format!(
                "tool `{}`: parameter schema does not compile: {e}",
                spec.name
            ))
        })?;
        let name = spec.name.clone();
        self.tools.insert(
            name,
            Entry {
                tool: Box::new(tool),
                validator,
            },
        );
        Ok(self)
    }

    /// The specs of every tool, sorted by name.
    pub fn specs(&self) -> Vec<ToolSpec> {
        self.tools.values().map(|e| e.tool.spec().clone()).collect()
    }

    /// The names, sorted.
    pub fn names(&self) -> Vec<&str> {
        self.tools.keys().map(String::as_str).collect()
    }

    /// True when a tool is named `name`.
    pub fn contains(&self, name: &str) -> bool {
        self.tools.contains_key(name)
    }

    /// Checks `args` against the schema of tool `name`: every violation, one per line, with its JSON pointer.
    pub fn validate(&self, name: &str, args: &Value) -> Result<()> {
        let entry = self.entry(name)?;
        let problems: Vec<String> = entry
            .validator
            .iter_errors(args)
            .map(|e| {
                let at = e.instance_path().as_str();
                format!("{}: {e}", if at.is_empty() { "/" } else { at })
            })
            .collect();
        if problems.is_empty() {
            Ok(())
        } else {
            Err(ToolError::InvalidArguments {
                tool: name.to_string(),
                message: problems.join("\n"),
            })
        }
    }

    /// Validates and runs `call`.
    pub fn call(&self, call: &ToolCall) -> Result<Value> {
        self.validate(&call.name, &call.arguments)?;
        self.entry(&call.name)?.tool.call(call.arguments.clone())
    }

    /// The text a model gets back for `call`: the result as compact JSON, or `{"error": "…"}` naming what was wrong
    /// (unknown tool, invalid arguments, the tool's own failure), so the model can correct itself.
    pub fn reply(&self, call: &ToolCall) -> (Value, bool) {
        match self.call(call) {
            Ok(v) => (v, true),
            Err(e) => (json!({"error": e.to_string()}), false),
        }
    }

    fn entry(&self, name: &str) -> Result<&Entry> {
        self.tools.get(name).ok_or_else(|| ToolError::UnknownTool {
            name: name.to_string(),
            known: self.names().join(", "),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Deserialize, JsonSchema)]
    #[serde(deny_unknown_fields)]
    struct AddArgs {
        /// First addend.
        a: i64,
        /// Second addend.
        b: i64,
    }

    fn adder() -> impl Tool + Send + Sync + 'static {
        FnTool::new("add", "Adds two integers.", |x: AddArgs| {
            x.a.checked_add(x.b)
                .map(Value::from)
                .ok_or_else(|| "overflow".to_string())
        })
    }

    fn call(name: &str, arguments: Value) -> ToolCall {
        ToolCall {
            id: "c".into(),
            name: name.into(),
            arguments,
        }
    }

    #[test]
    fn schema_is_derived_from_the_rust_type() {
        let spec = adder().spec().clone();
        assert_eq!(spec.parameters["type"], "object");
        assert_eq!(spec.parameters["required"], json!(["a", "b"]));
        assert_eq!(
            spec.parameters["properties"]["a"]["description"],
            "First addend."
        );
        assert_eq!(spec.parameters["additionalProperties"], json!(false));
        assert!(spec.parameters.get("$schema").is_none());
        assert_eq!(spec.openai_json()["function"]["name"], "add");
    }

    #[test]
    fn registry_validates_runs_and_reports_errors_as_text() -> Result<()> {
        let mut reg = Registry::new();
        reg.register(adder())?;
        assert_eq!(reg.call(&call("add", json!({"a": 2, "b": 40})))?, json!(42));
        // A wrong type and a missing field are both named, with the pointer of the wrong value.
        let e = reg
            .call(&call("add", json!({"a": "two"})))
            .expect_err("invalid");
        let text = e.to_string();
        assert!(matches!(e, ToolError::InvalidArguments { .. }), "{text}");
        assert!(
            text.contains("/a: \"two\" is not of type \"integer\""),
            "{text}"
        );
        assert!(text.contains("\"b\" is a required property"), "{text}");
        let e = reg
            .call(&call("add", json!({"a": 1, "b": 2, "c": 3})))
            .expect_err("unknown field");
        assert!(
            e.to_string()
                .contains("Additional properties are not allowed"),
            "{e}"
        );
        let e = reg.call(&call("sub", json!({}))).expect_err("unknown tool");
        assert_eq!(e.to_string(), "unknown tool `sub`; known tools: add");
        // The tool's own failure is a typed error, and reply() turns any error into the model's reply.
        let e = reg
            .call(&call("add", json!({"a": i64::MAX, "b": 1})))
            .expect_err("overflow");
        assert!(
            matches!(&e, ToolError::Failed { tool, message } if tool == "add" && message == "overflow"),
            "{e}"
        );
        let (reply, ok) = reg.reply(&call("add", json!({"a": 1})));
        assert!(!ok);
        assert!(
            reply["error"]
                .as_str()
                .is_some_and(|s| s.contains("required property")),
            "{reply}"
        );
        assert_eq!(
            reg.reply(&call("add", json!({"a": 1, "b": 1}))),
            (json!(2), true)
        );
        Ok(())
    }

    #[test]
    fn registry_refuses_duplicates_and_bad_schemas() -> Result<()> {
        let mut reg = Registry::new();
        reg.register(adder())?;
        assert!(
            reg.register(adder())
                .expect_err("dup")
                .to_string()
                .contains("already registered")
        );
        struct Bad(ToolSpec);
        impl Tool for Bad {
            fn spec(&self) -> &ToolSpec {
                &self.0
            }
            fn call(&self, _: Value) -> Result<Value> {
                Ok(Value::Null)
            }
        }
        let bad = Bad(ToolSpec::new("bad", "", json!({"type": "no-such-type"})));
        assert!(
            reg.register(bad)
                .expect_err("schema")
                .to_string()
                .contains("does not compile")
        );
        // A remote $ref is not fetched (no HTTP resolver is compiled in).
        let remote = Bad(ToolSpec::new(
            "remote",
            "",
            json!({"$ref": "https://example.invalid/s.json"}),
        ));
        assert!(reg.register(remote).is_err());
        assert_eq!(reg.names(), vec!["add"]);
        Ok(())
    }
}
