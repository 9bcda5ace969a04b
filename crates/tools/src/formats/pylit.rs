//! Python literals and Python-call syntax (`[f(a=1), pkg.g(b="x")]`, the format BFCL prompts ask for): a small
//! recursive-descent reader — ints, floats, strings in either quote with escapes (raw and triple-quoted too),
//! `True`/`False`/`None`, lists, tuples, dicts, nesting — mapped onto JSON, and the matching writer. Nothing is
//! evaluated. With `json_aliases` it also reads `true`/`false`/`null`, so JSON with single quotes (a common model
//! slip) reads too.

use serde_json::{Map, Number, Value};
use temper_chat::ToolCall;

use crate::error::{Result, ToolError};

/// Deepest nesting read before giving up (keeps recursion bounded on hostile input).
const MAX_DEPTH: usize = 64;

/// A reader over `src` starting at byte `pos`.
pub(crate) struct Reader<'a> {
    src: &'a str,
    pub(crate) pos: usize,
    format: &'static str,
    json_aliases: bool,
}

impl<'a> Reader<'a> {
    /// A reader of `src` from `pos`, naming `format` in its errors.
    pub(crate) fn new(
        src: &'a str,
        pos: usize,
        format: &'static str,
        json_aliases: bool,
    ) -> Reader<'a> {
        Reader {
            src,
            pos,
            format,
            json_aliases,
        }
    }

    fn err<T>(&self, message: impl Into<String>) -> Result<T> {
        Err(ToolError::parse(self.format, self.pos, message))
    }

    fn peek(&self) -> Option<char> {
        self.src[self.pos..].chars().next()
    }

    fn bump(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.pos += c.len_utf8();
        Some(c)
    }

    /// Skips whitespace (newlines included: inside brackets Python allows them).
    pub(crate) fn ws(&mut self) {
        while let Some(c) = self.peek() {
            if c.is_whitespace() {
                self.pos += c.len_utf8();
            } else {
                break;
            }
        }
    }

    fn eat(&mut self, c: char) -> bool {
        if self.peek() == Some(c) {
            self.pos += c.len_utf8();
            true
        } else {
            false
        }
    }

    fn expect(&mut self, c: char, what: &str) -> Result<()> {
        if self.eat(c) {
            Ok(())
        } else {
            match self.peek() {
                Some(got) => self.err(format!("expected `{c}` {what}, found `{got}`")),
                None => self.err(format!("expected `{c}` {what}, found the end of the text")),
            }
        }
    }

    /// An identifier `[A-Za-z_][A-Za-z0-9_]*`, if one starts here.
    pub(crate) fn ident(&mut self) -> Option<&'a str> {
        let rest = &self.src[self.pos..];
        let first = rest.chars().next()?;
        if !(first.is_ascii_alphabetic() || first == '_') {
            return None;
        }
        let len = rest
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(rest.len());
        self.pos += len;
        Some(&rest[..len])
    }

    /// A dotted name `a.b.c`.
    fn dotted(&mut self) -> Result<String> {
        let Some(first) = self.ident() else {
            return self.err("expected a function name");
        };
        let mut name = first.to_string();
        while self.peek() == Some('.') {
            self.pos += 1;
            let Some(part) = self.ident() else {
                return self.err("expected a name after `.`");
            };
            name.push('.');
            name.push_str(part);
        }
        Ok(name)
    }

    /// One call `name(k=v, …)`; positional arguments are refused (BFCL's syntax names every argument).
    pub(crate) fn call(&mut self) -> Result<ToolCall> {
        let name = self.dotted()?;
        self.ws();
        self.expect('(', &format!("after function name `{name}`"))?;
        let mut args = Map::new();
        loop {
            self.ws();
            if self.eat(')') {
                break;
            }
            let at = self.pos;
            let Some(key) = self.ident() else {
                return self.err(format!("expected `name=value` or `)` in the arguments of `{name}` (positional arguments are not read)"));
            };
            self.ws();
            if !self.eat('=') {
                self.pos = at;
                return self.err(format!(
                    "positional argument in the call of `{name}`; write `name=value`"
                ));
            }
            self.ws();
            let value = self.value(0)?;
            if args.insert(key.to_string(), value).is_some() {
                self.pos = at;
                return self.err(format!(
                    "argument `{key}` given twice in the call of `{name}`"
                ));
            }
            self.ws();
            if self.eat(',') {
                continue;
            }
            self.expect(')', &format!("closing the call of `{name}`"))?;
            break;
        }
        Ok(ToolCall {
            id: String::new(),
            name,
            arguments: Value::Object(args),
        })
    }

    /// `[call, call, …]` (a trailing comma allowed, `[]` for no call).
    pub(crate) fn call_list(&mut self) -> Result<Vec<ToolCall>> {
        self.expect('[', "opening the list of calls")?;
        let mut calls = Vec::new();
        loop {
            self.ws();
            if self.eat(']') {
                return Ok(calls);
            }
            calls.push(self.call()?);
            self.ws();
            if !self.eat(',') {
                self.ws();
                self.expect(']', "closing the list of calls")?;
                return Ok(calls);
            }
        }
    }

    /// One literal value.
    pub(crate) fn value(&mut self, depth: usize) -> Result<Value> {
        if depth > MAX_DEPTH {
            return self.err(format!("nesting deeper than {MAX_DEPTH}"));
        }
        self.ws();
        match self.peek() {
            None => self.err("expected a value, found the end of the text"),
            Some('[') => {
                self.pos += 1;
                Ok(Value::Array(self.sequence(']', depth)?))
            }
            Some('(') => {
                self.pos += 1;
                Ok(Value::Array(self.sequence(')', depth)?))
            }
            Some('{') => self.dict(depth),
            Some('"' | '\'') => self.strings(),
            Some('-') => {
                self.pos += 1;
                self.ws();
                match self.value(depth + 1)? {
                    Value::Number(n) => {
                        negate(&n).map_or_else(|| self.err("integer out of range"), Ok)
                    }
                    _ => self.err("`-` before something that is not a number"),
                }
            }
            Some('+') => {
                self.pos += 1;
                match self.value(depth + 1)? {
                    v @ Value::Number(_) => Ok(v),
                    _ => self.err("`+` before something that is not a number"),
                }
            }
            Some(c) if c.is_ascii_digit() || c == '.' => self.number(),
            Some(_) => {
                let at = self.pos;
                if let Some(word) = self.ident() {
                    // String prefixes: r"…", u"…" (b"…" bytes are not text).
                    if matches!(word, "r" | "R" | "u" | "U")
                        && matches!(self.peek(), Some('"' | '\''))
                    {
                        self.pos = at;
                        return self.strings();
                    }
                    match (word, self.json_aliases) {
                        ("True", _) | ("true", true) => return Ok(Value::Bool(true)),
                        ("False", _) | ("false", true) => return Ok(Value::Bool(false)),
                        ("None", _) | ("null", true) => return Ok(Value::Null),
                        _ => {}
                    }
                    self.pos = at;
                    return self.err(format!(
                        "`{word}` is not a literal (variables and calls are not values)"
                    ));
                }
                self.err(format!("unexpected `{}`", self.peek().unwrap_or(' ')))
            }
        }
    }

    fn sequence(&mut self, close: char, depth: usize) -> Result<Vec<Value>> {
        let mut items = Vec::new();
        loop {
            self.ws();
            if self.eat(close) {
                return Ok(items);
            }
            items.push(self.value(depth + 1)?);
            self.ws();
            if !self.eat(',') {
                self.ws();
                self.expect(close, "closing a list or tuple")?;
                return Ok(items);
            }
        }
    }

    fn dict(&mut self, depth: usize) -> Result<Value> {
        self.expect('{', "opening a dict")?;
        let mut map = Map::new();
        loop {
            self.ws();
            if self.eat('}') {
                return Ok(Value::Object(map));
            }
            let at = self.pos;
            let key = match self.value(depth + 1)? {
                Value::String(s) => s,
                Value::Number(n) if n.is_i64() || n.is_u64() => n.to_string(),
                Value::Bool(b) => if b { "True" } else { "False" }.to_string(),
                _ => {
                    self.pos = at;
                    return self.err("a dict key must be a string or an integer");
                }
            };
            self.ws();
            self.expect(':', "after a dict key")?;
            let value = self.value(depth + 1)?;
            map.insert(key, value);
            self.ws();
            if !self.eat(',') {
                self.ws();
                self.expect('}', "closing a dict")?;
                return Ok(Value::Object(map));
            }
        }
    }

    fn number(&mut self) -> Result<Value> {
        let start = self.pos;
        let rest = &self.src[start..];
        let lower = rest.get(..2).map(str::to_ascii_lowercase);
        if let Some(radix) = match lower.as_deref() {
            Some("0x") => Some(16),
            Some("0o") => Some(8),
            Some("0b") => Some(2),
            _ => None,
        } {
            let body_len = rest[2..]
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(rest.len() - 2);
            let digits: String = rest[2..2 + body_len]
                .chars()
                .filter(|&c| c != '_')
                .collect();
            self.pos += 2 + body_len;
            return match u64::from_str_radix(&digits, radix) {
                Ok(v) => Ok(Value::from(v)),
                Err(e) => {
                    self.pos = start;
                    self.err(format!("bad integer literal: {e}"))
                }
            };
        }
        let mut len = 0;
        let mut float = false;
        let bytes = rest.as_bytes();
        while len < bytes.len() {
            let b = bytes[len];
            let exp_sign =
                len > 0 && matches!(b, b'+' | b'-') && matches!(bytes[len - 1], b'e' | b'E');
            if b.is_ascii_digit() || b == b'_' || exp_sign {
                len += 1;
            } else if matches!(b, b'.' | b'e' | b'E') {
                float = true;
                len += 1;
            } else {
                break;
            }
        }
        let text: String = rest[..len].chars().filter(|&c| c != '_').collect();
        self.pos += len;
        if float {
            match text.parse::<f64>() {
                Ok(f) if f.is_finite() => Ok(Value::from(f)),
                Ok(_) => {
                    self.pos = start;
                    self.err(format!("float `{text}` is not finite"))
                }
                Err(_) => {
                    self.pos = start;
                    self.err(format!("bad float literal `{text}`"))
                }
            }
        } else if let Ok(i) = text.parse::<i64>() {
            Ok(Value::from(i))
        } else if let Ok(u) = text.parse::<u64>() {
            Ok(Value::from(u))
        } else {
            self.pos = start;
            self.err(format!("integer literal `{text}` is not a 64-bit integer"))
        }
    }

    /// One string literal, or several adjacent ones (Python concatenates `"a" "b"`).
    fn strings(&mut self) -> Result<Value> {
        let mut out = self.string()?;
        loop {
            let at = self.pos;
            self.ws();
            let prefixed = {
                let r = &self.src[self.pos..];
                r.starts_with(['"', '\''])
                    || (r.len() > 1
                        && r.starts_with(['r', 'R', 'u', 'U'])
                        && r[1..].starts_with(['"', '\'']))
            };
            if !prefixed {
                self.pos = at;
                return Ok(Value::String(out));
            }
            out.push_str(&self.string()?);
        }
    }

    fn string(&mut self) -> Result<String> {
        let mut raw = false;
        if let Some(c @ ('r' | 'R' | 'u' | 'U')) = self.peek() {
            raw = matches!(c, 'r' | 'R');
            self.pos += 1;
        }
        let start = self.pos;
        let Some(quote) = self.bump().filter(|c| matches!(c, '"' | '\'')) else {
            self.pos = start;
            return self.err("expected a string");
        };
        let triple = self.src[self.pos..].starts_with(&format!("{quote}{quote}"));
        if triple {
            self.pos += 2;
        }
        let mut out = String::new();
        loop {
            let Some(c) = self.bump() else {
                self.pos = start;
                return self.err("string not closed");
            };
            if c == quote {
                if !triple {
                    return Ok(out);
                }
                if self.src[self.pos..].starts_with(&format!("{quote}{quote}")) {
                    self.pos += 2;
                    return Ok(out);
                }
                out.push(c);
            } else if c == '\n' && !triple {
                self.pos -= 1;
                return self.err("newline inside a single-quoted string");
            } else if c == '\\' {
                let Some(e) = self.bump() else {
                    self.pos = start;
                    return self.err("string not closed");
                };
                if raw {
                    out.push('\\');
                    out.push(e);
                    continue;
                }
                self.escape(e, &mut out)?;
            } else {
                out.push(c);
            }
        }
    }

    fn escape(&mut self, e: char, out: &mut String) -> Result<()> {
        match e {
            '\n' => {}
            '\\' | '\'' | '"' => out.push(e),
            'n' => out.push('\n'),
            'r' => out.push('\r'),
            't' => out.push('\t'),
            'a' => out.push('\u{7}'),
            'b' => out.push('\u{8}'),
            'f' => out.push('\u{c}'),
            'v' => out.push('\u{b}'),
            '/' if self.json_aliases => out.push('/'),
            '0'..='7' => {
                let mut v = e.to_digit(8).unwrap_or(0);
                for _ in 0..2 {
                    match self.peek().and_then(|c| c.to_digit(8)) {
                        Some(d) => {
                            v = v * 8 + d;
                            self.pos += 1;
                        }
                        None => break,
                    }
                }
                out.push(char::from_u32(v).unwrap_or('\u{fffd}'));
            }
            'x' => out.push(self.hex_char(2)?),
            'u' => {
                let c = self.hex(4)?;
                if (0xD800..0xDC00).contains(&c) && self.src[self.pos..].starts_with("\\u") {
                    // A JSON surrogate pair.
                    let at = self.pos;
                    self.pos += 2;
                    let low = self.hex(4)?;
                    if (0xDC00..0xE000).contains(&low) {
                        let code = 0x10000 + ((c - 0xD800) << 10) + (low - 0xDC00);
                        out.push(char::from_u32(code).unwrap_or('\u{fffd}'));
                        return Ok(());
                    }
                    self.pos = at;
                }
                match char::from_u32(c) {
                    Some(ch) => out.push(ch),
                    None => return self.err(format!("\\u{c:04x} is a lone surrogate")),
                }
            }
            'U' => out.push(self.hex_char(8)?),
            other => {
                out.push('\\');
                out.push(other);
            }
        }
        Ok(())
    }

    fn hex(&mut self, n: usize) -> Result<u32> {
        let digits = self
            .src
            .get(self.pos..self.pos + n)
            .filter(|d| d.chars().all(|c| c.is_ascii_hexdigit()));
        match digits.and_then(|d| u32::from_str_radix(d, 16).ok()) {
            Some(v) => {
                self.pos += n;
                Ok(v)
            }
            None => self.err(format!("expected {n} hex digits in an escape")),
        }
    }

    fn hex_char(&mut self, n: usize) -> Result<char> {
        let v = self.hex(n)?;
        char::from_u32(v).map_or_else(|| self.err(format!("escape {v:#x} is not a character")), Ok)
    }
}

fn negate(n: &Number) -> Option<Value> {
    if let Some(i) = n.as_i64() {
        return i.checked_neg().map(Value::from);
    }
    if let Some(u) = n.as_u64() {
        return 0i64.checked_sub_unsigned(u).map(Value::from);
    }
    n.as_f64().map(|f| Value::from(-f))
}

/// Reads one Python (or lenient JSON) literal that fills all of `text` but surrounding whitespace.
pub(crate) fn parse_literal(text: &str, format: &'static str, json_aliases: bool) -> Result<Value> {
    let mut r = Reader::new(text, 0, format, json_aliases);
    let v = r.value(0)?;
    r.ws();
    if r.pos != text.len() {
        return r.err("unexpected text after the value");
    }
    Ok(v)
}

/// Writes `v` as a Python literal (`True`, `None`, `"…"` with escapes, floats always with `.` or an exponent).
pub fn python_repr(v: &Value) -> String {
    let mut out = String::new();
    write_repr(v, &mut out);
    out
}

fn write_repr(v: &Value, out: &mut String) {
    match v {
        Value::Null => out.push_str("None"),
        Value::Bool(true) => out.push_str("True"),
        Value::Bool(false) => out.push_str("False"),
        Value::Number(n) => match (n.as_i64(), n.as_u64(), n.as_f64()) {
            (Some(i), _, _) => out.push_str(&i.to_string()),
            (_, Some(u), _) => out.push_str(&u.to_string()),
            (_, _, Some(f)) => out.push_str(&format!("{f:?}")),
            _ => out.push_str(&n.to_string()),
        },
        Value::String(s) => write_str(s, out),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                write_repr(item, out);
            }
            out.push(']');
        }
        Value::Object(map) => {
            out.push('{');
            for (i, (k, item)) in map.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                write_str(k, out);
                out.push_str(": ");
                write_repr(item, out);
            }
            out.push('}');
        }
    }
}

fn write_str(s: &str, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                out.push_str(&format!("\\x{:02x}", c as u32))
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// Writes calls as `[f(a=1), g(b="x")]`.
pub fn render_python_calls(calls: &[ToolCall]) -> String {
    let parts: Vec<String> = calls
        .iter()
        .map(|c| {
            let args: Vec<String> = match &c.arguments {
                Value::Object(map) => map
                    .iter()
                    .map(|(k, v)| format!("{k}={}", python_repr(v)))
                    .collect(),
                _ => Vec::new(),
            };
            format!("{}({})", c.name, args.join(", "))
        })
        .collect();
    format!("[{}]", parts.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn lit(s: &str) -> Result<Value> {
        parse_literal(s, "pythonic", false)
    }

    #[test]
    fn literals_read_as_python_reads_them() -> Result<()> {
        for (src, want) in [
            ("1", json!(1)),
            ("-17", json!(-17)),
            ("1_000", json!(1000)),
            ("0x1F", json!(31)),
            ("2.5", json!(2.5)),
            ("-.5", json!(-0.5)),
            ("1e3", json!(1000.0)),
            ("3.", json!(3.0)),
            ("18446744073709551615", json!(u64::MAX)),
            ("-9223372036854775808", json!(i64::MIN)),
            ("'it\\'s'", json!("it's")),
            (r#""tab\there""#, json!("tab\there")),
            (r#""\x41\u00e9\U0001F600\101""#, json!("Aé😀A")),
            (r#"r"C:\new""#, json!("C:\\new")),
            ("'''a\n\"b\"'''", json!("a\n\"b\"")),
            ("'a' \"b\"", json!("ab")),
            (r#""\q""#, json!("\\q")),
            ("True", json!(true)),
            ("None", json!(null)),
            ("[1, 'a', [2.0, None],]", json!([1, "a", [2.0, null]])),
            ("(1, 2)", json!([1, 2])),
            (
                "{'k': {'n': (1,)}, 2: False}",
                json!({"k": {"n": [1]}, "2": false}),
            ),
        ] {
            assert_eq!(lit(src)?, want, "{src}");
        }
        assert_eq!(
            parse_literal(
                "{'a': true, \"b\": null, 'c': \"\\/\\ud83d\\ude00\"}",
                "json",
                true
            )?,
            json!({"a": true, "b": null, "c": "/😀"})
        );
        Ok(())
    }

    #[test]
    fn malformed_literals_are_errors_with_offsets() {
        for (src, says, at) in [
            ("[1, 2", "expected `]`", 5),
            ("'open", "string not closed", 0),
            ("x", "`x` is not a literal", 0),
            ("true", "`true` is not a literal", 0),
            ("99999999999999999999", "not a 64-bit integer", 0),
            ("1e999", "not finite", 0),
            ("-'a'", "not a number", 4),
            ("{[1]: 2}", "dict key", 1),
            ("\"\\ud800\"", "lone surrogate", 7),
            ("1 2", "after the value", 2),
        ] {
            let e = lit(src).expect_err(src);
            let ToolError::Parse {
                offset, message, ..
            } = &e
            else {
                panic!("{e}")
            };
            assert!(message.contains(says), "{src}: {e}");
            assert_eq!(*offset, at, "{src}: {e}");
        }
        let deep = "[".repeat(200) + &"]".repeat(200);
        assert!(
            lit(&deep)
                .expect_err("deep")
                .to_string()
                .contains("nesting deeper")
        );
    }

    #[test]
    fn calls_read_keyword_arguments_and_refuse_positional_ones() -> Result<()> {
        let mut r = Reader::new(
            "[math.hypot(x=4, y=5.0), f(), g(s='a,b)', l=[1,(2,3)],)]",
            0,
            "pythonic",
            false,
        );
        let calls = r.call_list()?;
        assert_eq!(calls.len(), 3);
        assert_eq!(
            (calls[0].name.as_str(), &calls[0].arguments),
            ("math.hypot", &json!({"x": 4, "y": 5.0}))
        );
        assert_eq!(calls[1].arguments, json!({}));
        assert_eq!(calls[2].arguments, json!({"s": "a,b)", "l": [1, [2, 3]]}));
        for (src, says) in [
            ("[f(1)]", "positional"),
            ("[f(a=1, a=2)]", "given twice"),
            ("[f(a=1]", "expected `)`"),
            ("[f a=1)]", "expected `(`"),
            ("[f(a=b)]", "not a literal"),
        ] {
            let e = Reader::new(src, 0, "pythonic", false)
                .call_list()
                .expect_err(src);
            assert!(e.to_string().contains(says), "{src}: {e}");
        }
        Ok(())
    }

    #[test]
    fn repr_writes_what_the_reader_reads() -> Result<()> {
        let v = json!({"s": "q\"u'o\\te\n\u{1}", "f": 1.0, "g": 1e-7, "h": 1e300, "i": -3, "n": null, "b": [true, false], "d": {}});
        assert_eq!(lit(&python_repr(&v))?, v);
        assert_eq!(python_repr(&json!([1.0, "a"])), r#"[1.0, "a"]"#);
        let call = ToolCall {
            id: String::new(),
            name: "f".into(),
            arguments: json!({"a": 1, "b": "x"}),
        };
        assert_eq!(
            render_python_calls(&[call.clone(), call]),
            r#"[f(a=1, b="x"), f(a=1, b="x")]"#
        );
        Ok(())
    }
}
