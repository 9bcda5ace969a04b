//! Size limits inside a chat-template render. Fuel counts instructions, not bytes: `{% set s = s ~ s %}` forty
//! times is 160 instructions and a string of 2^40 bytes, and the output cap sees only what is written at the end.
//! So every way a template can make a value larger than its inputs is checked *before* the value is built:
//!
//! - **operators**: `a ~ b`, `a + b` and `a * b` are rewritten at compile time (from minijinja's parsed syntax
//!   tree, its `unstable_machinery` API) into calls of [`concat`], [`add`] and [`mul`], which refuse a string of
//!   more than [`TEMPLATE_MAX_VALUE`] bytes or a sequence of more than [`TEMPLATE_MAX_ITEMS`] items and otherwise
//!   give exactly minijinja's result;
//! - **filters**: the built-in filters that can return more than they were given (`join`, `replace`, `indent`,
//!   `format`, `string`, `pprint`, `chain`, and the ones that grow text by a bounded factor: `upper`, `lower`,
//!   `title`, `capitalize`, `escape`, `e`, and `list`) are replaced by the same filters behind the same checks:
//!   an input check where one call could multiply its input (a `replace` of every character, an `indent` of
//!   10^9, a `format` width), and a check of every result;
//! - **captures**: the output of a macro, a `{% set %}…{% endset %}` block, a `{% filter %}` block and a call
//!   block becomes a value without passing the output cap. Every `{{ … }}` of a render, captured or not, goes
//!   through the formatter, which counts its bytes against [`TEMPLATE_MAX_EMITTED`]; template text inside those
//!   constructs is followed by a `{% do %}` statement that counts its length too.
//!
//! Python methods (`.replace`, `.join`, `.upper`, … in chat.rs) and `tojson` check their results the same way.

use std::cell::Cell;
use std::fmt::Write as _;
use std::sync::LazyLock;

use minijinja::machinery::WhitespaceConfig;
use minijinja::value::Rest;
use minijinja::{Environment, Error, ErrorKind, Output, State, Value, context};

/// The longest string a template may build, in bytes (the output cap: no single value needs to be longer).
pub const TEMPLATE_MAX_VALUE: usize = 16 << 20;

/// The most items a sequence built by a template may have (each item is a small handle, so this is tens of MB).
pub const TEMPLATE_MAX_ITEMS: usize = 1 << 20;

/// The most bytes one render may emit with `{{ … }}`, into the output and into captures together.
pub const TEMPLATE_MAX_EMITTED: usize = 32 << 20;

/// Names of the rewritten operators' functions (no template can define a name starting with `__temper_`
/// that shadows them: the rewrite happens before compilation and they are globals of the environment).
const CONCAT: &str = "__temper_concat";
const ADD: &str = "__temper_add";
const MUL: &str = "__temper_mul";
const RAW: &str = "__temper_raw";

thread_local! {
    /// Bytes the current render of this thread may still emit (reset by [`reset_emitted`]).
    static EMIT_LEFT: Cell<usize> = const { Cell::new(TEMPLATE_MAX_EMITTED) };
}

/// Starts the emission budget of a render.
pub(crate) fn reset_emitted() {
    EMIT_LEFT.with(|c| c.set(TEMPLATE_MAX_EMITTED));
}

fn too_large(what: &str) -> Error {
    Error::new(
        ErrorKind::InvalidOperation,
        format!(
            "{what} would be longer than the limit of {TEMPLATE_MAX_VALUE} bytes or {TEMPLATE_MAX_ITEMS} items"
        ),
    )
}

/// A `fmt::Write` that counts bytes (and keeps them when `keep`) and fails past `cap`.
struct Capped {
    text: String,
    len: usize,
    cap: usize,
    keep: bool,
}

impl Capped {
    fn new(cap: usize, keep: bool) -> Capped {
        Capped {
            text: String::new(),
            len: 0,
            cap,
            keep,
        }
    }
}

impl std::fmt::Write for Capped {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        self.len += s.len();
        if self.len > self.cap {
            return Err(std::fmt::Error);
        }
        if self.keep {
            self.text.push_str(s);
        }
        Ok(())
    }
}

/// The length of `v`'s text (`{{ v }}`, `v ~ ''`), or `None` past `cap`; nothing is allocated for it.
fn display_len(v: &Value, cap: usize) -> Option<usize> {
    let mut w = Capped::new(cap, false);
    write!(w, "{v}").ok().map(|()| w.len)
}

/// Refuses a value over the limits: a string over [`TEMPLATE_MAX_VALUE`] bytes or a sequence whose known length
/// is over [`TEMPLATE_MAX_ITEMS`].
pub(crate) fn check_value(v: Value, what: &str) -> Result<Value, Error> {
    let over = match v.as_str() {
        Some(s) => s.len() > TEMPLATE_MAX_VALUE,
        None => v.len().is_some_and(|n| n > TEMPLATE_MAX_ITEMS),
    };
    if over { Err(too_large(what)) } else { Ok(v) }
}

/// `a ~ b`: the two values' text, built only when it fits.
fn concat(a: Value, b: Value) -> Result<Value, Error> {
    let mut w = Capped::new(TEMPLATE_MAX_VALUE, true);
    write!(w, "{a}{b}").map_err(|_| too_large("`~`"))?;
    Ok(Value::from(w.text))
}

/// An empty environment that evaluates `a + b` / `a * b` for the cases the checks let through, so the result is
/// minijinja's own (numbers, lists, lazy sequences, errors).
static PLAIN: LazyLock<Environment<'static>> = LazyLock::new(Environment::empty);

fn plain(expr: &str, a: Value, b: Value) -> Result<Value, Error> {
    PLAIN.compile_expression(expr)?.eval(context! { a, b })
}

/// `a + b`: strings and sequences within the limits, then minijinja's `+`.
fn add(a: Value, b: Value) -> Result<Value, Error> {
    if let (Some(x), Some(y)) = (a.as_str(), b.as_str()) {
        if x.len() + y.len() > TEMPLATE_MAX_VALUE {
            return Err(too_large("`+`"));
        }
        // minijinja's `+` of two strings, without a round trip through an expression.
        return Ok(Value::from([x, y].concat()));
    } else if let (Some(x), Some(y)) = (a.len(), b.len())
        && a.as_str().is_none()
        && b.as_str().is_none()
        && x + y > TEMPLATE_MAX_ITEMS
    {
        return Err(too_large("`+`"));
    }
    plain("a + b", a, b)
}

/// `a * b`: a repeated string or sequence within the limits, then minijinja's `*`.
fn mul(a: Value, b: Value) -> Result<Value, Error> {
    for (x, n) in [(&a, &b), (&b, &a)] {
        let Some(n) = n.as_usize() else { continue };
        let over = match x.as_str() {
            Some(s) => s.len().saturating_mul(n) > TEMPLATE_MAX_VALUE,
            None => x
                .len()
                .is_some_and(|len| len.saturating_mul(n) > TEMPLATE_MAX_ITEMS),
        };
        if over {
            return Err(too_large("`*`"));
        }
    }
    plain("a * b", a, b)
}

/// The formatter: counts what every `{{ … }}` writes (into the output or a capture) against the render's budget,
/// then writes it as minijinja's default formatter does.
fn counting_formatter(out: &mut Output, state: &State, value: &Value) -> Result<(), Error> {
    let left = EMIT_LEFT.with(Cell::get);
    let Some(n) = display_len(value, left) else {
        EMIT_LEFT.with(|c| c.set(0));
        return Err(emitted_too_much());
    };
    EMIT_LEFT.with(|c| c.set(left - n));
    minijinja::escape_formatter(out, state, value)
}

/// A check run on a filter's arguments (the filtered value first) before the filter.
type PreCheck = fn(&[Value]) -> Result<(), Error>;

fn no_check(_: &[Value]) -> Result<(), Error> {
    Ok(())
}

/// `join(items, sep)`: the items' text and the separators must fit.
pub(crate) fn join_check(args: &[Value]) -> Result<(), Error> {
    let sep = match args.get(1) {
        Some(s) => display_len(s, TEMPLATE_MAX_VALUE).ok_or_else(|| too_large("`join`"))?,
        None => 0,
    };
    let mut total = 0usize;
    if let Some(s) = args.first().and_then(Value::as_str) {
        // A string is joined character by character.
        let chars = s.chars().count();
        total = s
            .len()
            .saturating_add(chars.saturating_sub(1).saturating_mul(sep));
    } else if let Some(items) = args.first() {
        for (i, item) in items.try_iter()?.enumerate() {
            if i >= TEMPLATE_MAX_ITEMS {
                return Err(too_large("`join`"));
            }
            let n = display_len(&item, TEMPLATE_MAX_VALUE - total)
                .ok_or_else(|| too_large("`join`"))?;
            total += n + if i > 0 { sep } else { 0 };
            if total > TEMPLATE_MAX_VALUE {
                return Err(too_large("`join`"));
            }
        }
    }
    if total > TEMPLATE_MAX_VALUE {
        return Err(too_large("`join`"));
    }
    Ok(())
}

/// `replace(s, old, new)`: at most one `new` per match of `old` (per character and one more when `old` is empty).
pub(crate) fn replace_check(args: &[Value]) -> Result<(), Error> {
    let text = |i: usize| args.get(i).and_then(Value::as_str).unwrap_or_default();
    let (s, old, new) = (text(0), text(1), text(2));
    let matches = if old.is_empty() {
        s.chars().count() + 1
    } else {
        s.matches(old).count()
    };
    if s.len().saturating_add(matches.saturating_mul(new.len())) > TEMPLATE_MAX_VALUE {
        return Err(too_large("`replace`"));
    }
    Ok(())
}

/// `indent(s, width)`: at most `width` (or the prefix string's length) more per line.
fn indent_check(args: &[Value]) -> Result<(), Error> {
    let s = args.first().and_then(Value::as_str).unwrap_or_default();
    let width_of = |w: &Value| w.as_usize().or_else(|| w.as_str().map(str::len));
    // minijinja's default width is 4; a keyword argument arrives as a map.
    let width = match args.get(1) {
        None => Some(4),
        Some(w) if w.kind() == minijinja::value::ValueKind::Map => match w.get_attr("width") {
            Ok(v) if !v.is_undefined() => width_of(&v),
            _ => Some(4),
        },
        Some(w) => width_of(w),
    };
    let lines = s.matches('\n').count() + 1;
    match width {
        Some(w) if s.len().saturating_add(lines.saturating_mul(w)) <= TEMPLATE_MAX_VALUE => Ok(()),
        _ => Err(too_large("`indent`")),
    }
}

/// `format(fmt, args…)`: the format text, every number in it (widths, precisions) and the arguments' text.
fn format_check(args: &[Value]) -> Result<(), Error> {
    let fmt = args.first().and_then(Value::as_str).unwrap_or_default();
    let mut total = fmt.len();
    for number in fmt
        .split(|c: char| !c.is_ascii_digit())
        .filter(|n| !n.is_empty())
    {
        total = total.saturating_add(number.parse::<usize>().unwrap_or(usize::MAX));
    }
    for a in args.iter().skip(1) {
        let n = display_len(a, TEMPLATE_MAX_VALUE).ok_or_else(|| too_large("`format`"))?;
        total = total.saturating_add(n);
    }
    if total > TEMPLATE_MAX_VALUE {
        return Err(too_large("`format`"));
    }
    Ok(())
}

/// `string(v)` / `pprint(v)`: the value's text must fit (the pretty form is bounded by twice it plus
/// indentation, checked after).
fn text_check(args: &[Value]) -> Result<(), Error> {
    match args.first() {
        Some(v) if display_len(v, TEMPLATE_MAX_VALUE).is_none() => {
            Err(too_large("the value's text"))
        }
        _ => Ok(()),
    }
}

/// `chain(a, b, …)`: the lengths together.
fn chain_check(args: &[Value]) -> Result<(), Error> {
    let total = args
        .iter()
        .map(|a| a.len().unwrap_or(0))
        .fold(0usize, usize::saturating_add);
    if total > TEMPLATE_MAX_ITEMS {
        return Err(too_large("`chain`"));
    }
    Ok(())
}

/// Rewrites `source` so that its operators and captured template text go through the checks (see the module
/// doc). A source that does not parse is returned as is: compiling it gives minijinja's own error.
pub(crate) fn guard_source(source: &str) -> String {
    let ws = WhitespaceConfig {
        keep_trailing_newline: false,
        lstrip_blocks: true,
        trim_blocks: true,
    };
    let Ok(ast) = minijinja::machinery::parse(source, "chat_template", syntax(), ws) else {
        return source.to_string();
    };
    let Ok(tree) = serde_json::to_value(&ast) else {
        return source.to_string();
    };
    let mut edits = Vec::new();
    collect(&tree, false, &mut edits);
    edits.sort_by_key(|e| (e.start, std::cmp::Reverse(e.end)));
    rewrite(source, 0, source.len(), &edits)
}

/// The default delimiters (a unit struct unless minijinja's `custom_syntax` feature is on, so built with
/// `default()` to compile either way).
#[allow(clippy::default_constructed_unit_structs)]
fn syntax() -> minijinja::syntax::SyntaxConfig {
    minijinja::syntax::SyntaxConfig::default()
}

/// A replacement of `source[start..end]`.
struct Edit {
    start: usize,
    end: usize,
    kind: EditKind,
}

enum EditKind {
    /// An operator call: `func(left, right)`, the operands' own text rewritten too.
    Call {
        func: &'static str,
        left: (usize, usize),
        right: (usize, usize),
    },
    /// Template text inside a capture, of this many bytes: kept, and counted (`{% do __temper_raw(n) %}`).
    Raw(usize),
}

/// The source range of a node `{"inner": [node, span]}` of minijinja's serialized syntax tree: its span joined
/// with every span inside it (a node's own span can leave out part of it: a filter's covers only the filter).
fn span(node: &serde_json::Value) -> Option<(usize, usize)> {
    fn own(node: &serde_json::Value) -> Option<(usize, usize)> {
        let s = node.get("inner")?.get(1)?;
        let offset = |k: &str| s.get(k)?.as_u64().and_then(|v| usize::try_from(v).ok());
        Some((offset("start_offset")?, offset("end_offset")?))
    }
    fn join(node: &serde_json::Value, acc: &mut Option<(usize, usize)>) {
        if let Some((s, e)) = own(node) {
            *acc = Some(acc.map_or((s, e), |(a, b)| (a.min(s), b.max(e))));
        }
        match node {
            serde_json::Value::Array(items) => items.iter().for_each(|i| join(i, acc)),
            serde_json::Value::Object(map) => map.values().for_each(|v| join(v, acc)),
            _ => {}
        }
    }
    own(node)?;
    let mut acc = None;
    join(node, &mut acc);
    acc
}

fn collect(node: &serde_json::Value, in_capture: bool, edits: &mut Vec<Edit>) {
    match node {
        serde_json::Value::Array(items) => {
            for i in items {
                collect(i, in_capture, edits);
            }
        }
        serde_json::Value::Object(map) => {
            let body = node.get("inner").and_then(|i| i.get(0));
            let mut capture = in_capture;
            if let Some(kind) = map.get("stmt").and_then(|s| s.as_str()) {
                capture |= matches!(kind, "Macro" | "SetBlock" | "FilterBlock" | "CallBlock");
                if kind == "EmitRaw"
                    && in_capture
                    && let (Some((start, end)), Some(raw)) = (
                        span(node),
                        body.and_then(|b| b.get("raw")).and_then(|r| r.as_str()),
                    )
                {
                    edits.push(Edit {
                        start,
                        end,
                        kind: EditKind::Raw(raw.len()),
                    });
                }
            }
            if map.get("expr").and_then(|s| s.as_str()) == Some("BinOp")
                && let Some(b) = body
            {
                let func = match b.get("op").and_then(|o| o.as_str()) {
                    Some("Concat") => Some(CONCAT),
                    Some("Add") => Some(ADD),
                    Some("Mul") => Some(MUL),
                    _ => None,
                };
                if let (Some(func), Some((start, end)), Some(left), Some(right)) = (
                    func,
                    span(node),
                    b.get("left").and_then(span),
                    b.get("right").and_then(span),
                ) {
                    edits.push(Edit {
                        start,
                        end,
                        kind: EditKind::Call { func, left, right },
                    });
                }
            }
            for v in map.values() {
                collect(v, capture, edits);
            }
        }
        _ => {}
    }
}

/// `source[start..end]` with the outermost edits inside it applied (and theirs inside them, recursively).
fn rewrite(source: &str, start: usize, end: usize, edits: &[Edit]) -> String {
    let mut out = String::new();
    let mut pos = start;
    for e in edits {
        if e.start < pos || e.end > end || e.start >= e.end || !source.is_char_boundary(e.start) {
            continue;
        }
        out.push_str(&source[pos..e.start]);
        match &e.kind {
            EditKind::Call { func, left, right } => {
                let _ = write!(
                    out,
                    "{func}({}, {})",
                    rewrite(source, left.0, left.1, edits),
                    rewrite(source, right.0, right.1, edits)
                );
            }
            EditKind::Raw(n) => {
                // After the text, a statement that takes its length from the budget. Its tag repeats the
                // whitespace control of the tag that follows (`-` strips before it, `+` keeps, a `{{` is not
                // lstripped), so the text renders exactly as before.
                // The whitespace the next tag strips lies outside the text's span; the statement goes after
                // it, right before that tag.
                let rest = &source[e.end..];
                let stripped = rest.trim_start_matches([' ', '\t', '\n', '\r']);
                let (at, next) = if ["{%", "{{", "{#"].iter().any(|t| stripped.starts_with(t)) {
                    (source.len() - stripped.len(), stripped)
                } else {
                    (e.end, rest)
                };
                let control = if ["{%-", "{{-", "{#-"].iter().any(|t| next.starts_with(t)) {
                    "-"
                } else if (next.starts_with("{%") || next.starts_with("{#"))
                    && !next[2..].starts_with('+')
                {
                    ""
                } else {
                    "+"
                };
                out.push_str(&source[e.start..at]);
                let _ = write!(out, "{{%{control} do {RAW}({n}) %}}");
                pos = at;
                continue;
            }
        }
        pos = e.end;
    }
    out.push_str(&source[pos..end]);
    out
}

/// Takes `n` bytes of captured template text from the render's budget.
fn count_raw(n: usize) -> Result<(), Error> {
    let left = EMIT_LEFT.with(Cell::get);
    if n > left {
        EMIT_LEFT.with(|c| c.set(0));
        return Err(emitted_too_much());
    }
    EMIT_LEFT.with(|c| c.set(left - n));
    Ok(())
}

fn emitted_too_much() -> Error {
    Error::new(
        ErrorKind::InvalidOperation,
        format!(
            "the template wrote more than {TEMPLATE_MAX_EMITTED} bytes (output and captured macro or block output together)"
        ),
    )
}

/// Installs the checked operators, filters and formatter in `env` (for a source rewritten by [`guard_source`]).
pub(crate) fn install(env: &mut Environment<'static>) {
    env.add_function(CONCAT, concat);
    env.add_function(ADD, add);
    env.add_function(MUL, mul);
    env.add_function(RAW, count_raw);
    env.set_formatter(counting_formatter);
    use minijinja::filters as f;
    let guarded: [(&str, Value, PreCheck); 14] = [
        ("join", Value::from_function(f::join), join_check),
        ("replace", Value::from_function(f::replace), replace_check),
        ("indent", Value::from_function(f::indent), indent_check),
        ("format", Value::from_function(f::format), format_check),
        ("string", Value::from_function(f::string), text_check),
        ("pprint", Value::from_function(f::pprint), text_check),
        ("chain", Value::from_function(f::chain), chain_check),
        ("upper", Value::from_function(f::upper), no_check),
        ("lower", Value::from_function(f::lower), no_check),
        ("title", Value::from_function(f::title), no_check),
        ("capitalize", Value::from_function(f::capitalize), no_check),
        (
            "escape",
            Value::from_function(minijinja::filters::escape),
            no_check,
        ),
        (
            "e",
            Value::from_function(minijinja::filters::escape),
            no_check,
        ),
        ("list", Value::from_function(f::list), no_check),
    ];
    for (name, filter, pre) in guarded {
        env.add_filter(name, move |state: &State, args: Rest<Value>| {
            pre(&args)?;
            check_value(filter.call(state, &args)?, name)
        });
    }
}
