//! Property tests of every tool-call parser, the calculator and the BFCL checker. The case counts are fixed here;
//! the inputs are fresh each run (proptest's random seed; `PROPTEST_RNG_SEED=n` replays a run), and every case
//! that ever failed is replayed first from `fuzz_parsers.proptest-regressions` (one so far: a string argument
//! holding ```` ``` ````, which the fence stripping used to cut; fixed, and a unit test in `formats/extract.rs`).
//!
//! - `render_then_parse_round_trips`: 2,000 cases, random lists of 1–4 calls (dotted names, nested JSON arguments
//!   with arbitrary Unicode strings and finite floats), each rendered and parsed back in all 5 formats (10,000
//!   parses); every one returns exactly the calls rendered.
//! - `random_text_never_panics`: 5,000 random strings (half arbitrary Unicode, half drawn from the formats' own
//!   syntax characters and tags) × 5 formats = 25,000 parses; each returns a reply or a typed parse error.
//! - `mutated_calls_never_panic`: 5,000 rendered call lists, each cut-and-spliced and sprinkled with syntax
//!   characters, × 5 formats × 2 mutations = 50,000 parses; any calls read have a name and an object of arguments.
//! - `calculator_never_panics` (5,000 random expressions) and `calculator_is_exact` (2,000 random `a op b` with
//!   i32 operands, compared against exact rational arithmetic done here).
//! - `bfcl_checker_never_panics_and_ignores_call_order`: 2,000 fixture questions (tests/fixtures/bfcl) whose
//!   reference calls are rotated (they must still pass: parallel calls match in any order), then merged with
//!   random arguments (any verdict, no panic) and cut short (a missing call is always wrong).
//!
//! 21,000 cases, 85,000 parser inputs; none panics (a panic fails the test).

use num_bigint::BigInt;
use num_rational::BigRational;
use proptest::prelude::*;
use serde_json::{Map, Value};
use std::sync::OnceLock;
use temper_chat::ToolCall;

use temper_tools::Format;
use temper_tools::bfcl::checker::check;
use temper_tools::bfcl::{Category, Dataset};
use temper_tools::builtins::calculator::evaluate;

fn bfcl() -> &'static [Dataset] {
    static DATA: OnceLock<Vec<Dataset>> = OnceLock::new();
    DATA.get_or_init(|| {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/bfcl");
        Category::ALL
            .iter()
            .map(|&c| Dataset::load(&dir, c).expect("fixtures load"))
            .collect()
    })
}

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(Value::from),
        any::<String>().prop_map(Value::String),
        "[a-z '\"\\\\\n{}\\[\\](),=]{0,12}".prop_map(Value::String),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map("[a-zA-Z_][a-zA-Z0-9_ ]{0,6}", inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

fn call() -> impl Strategy<Value = ToolCall> {
    (
        "[a-z_][a-z0-9_]{0,8}(\\.[a-z_][a-z0-9_]{0,8})?",
        prop::collection::btree_map("[a-z_][a-z0-9_]{0,6}", json_value(), 0..4),
    )
        .prop_map(|(name, args)| ToolCall {
            id: String::new(),
            name,
            arguments: Value::Object(args.into_iter().collect()),
        })
}

/// Strings that contain a format's own delimiters are ambiguous in that format (as in every real parser): a
/// Hermes argument holding `</tool_call>`, a Llama argument holding `<|python_tag|>`.
fn unambiguous(format: Format, calls: &[ToolCall]) -> bool {
    let text = calls
        .iter()
        .map(|c| c.arguments.to_string())
        .collect::<String>();
    match format {
        Format::Hermes => !text.contains("tool_call>"),
        Format::Llama3 => !text.contains("<|python_tag|>"),
        _ => true,
    }
}

fn syntax_text() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        prop::collection::vec(
            prop_oneof![
                "[\\[\\](){}'\",=:;.a-z0-9_\\\\ \n-]{1,4}",
                Just("<tool_call>".to_string()),
                Just("</tool_call>".to_string()),
                Just("```json\n".to_string()),
                Just("\"name\"".to_string()),
                Just("\"arguments\"".to_string()),
                Just("True".to_string()),
                Just("'''".to_string()),
                Just("\\u".to_string()),
                Just("0x".to_string()),
                Just("1e9999".to_string()),
            ],
            0..30
        )
        .prop_map(|parts| parts.concat()),
    ]
}

fn check_parse(format: Format, text: &str) {
    if let Ok(reply) = format.parse(text) {
        for c in &reply.calls {
            assert!(!c.name.is_empty(), "{format:?}: empty name from {text:?}");
            assert!(
                c.arguments.is_object(),
                "{format:?}: non-object arguments from {text:?}"
            );
        }
    }
}

/// Cuts `s` at char boundaries: keeps `s[..a] + insert + s[b..]`.
fn splice(s: &str, a: usize, b: usize, insert: &str) -> String {
    let bound = |i: usize| {
        let mut i = i.min(s.len());
        while !s.is_char_boundary(i) {
            i -= 1;
        }
        i
    };
    let (a, b) = (bound(a), bound(b));
    let (a, b) = (a.min(b), a.max(b));
    format!("{}{insert}{}", &s[..a], &s[b..])
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn render_then_parse_round_trips(calls in prop::collection::vec(call(), 1..5)) {
        for format in Format::ALL {
            if !unambiguous(format, &calls) {
                continue;
            }
            let text = format.render_calls(&calls);
            let reply = format.parse(&text).map_err(|e| TestCaseError::fail(format!("{format:?}: {e}\n{text}")))?;
            prop_assert_eq!(reply.calls.len(), calls.len(), "{:?}: {}", format, text);
            for (got, want) in reply.calls.iter().zip(&calls) {
                prop_assert_eq!(&got.name, &want.name);
                prop_assert_eq!(&got.arguments, &want.arguments, "{:?}: {}", format, text);
            }
        }
    }

    #[test]
    fn bfcl_checker_never_panics_and_ignores_call_order(
        set in 0..5usize,
        idx in 0..20usize,
        rotate in 0..4usize,
        extra in prop::collection::btree_map("[a-z_]{1,8}", json_value(), 0..3),
    ) {
        let data = &bfcl()[set];
        let item = &data.items[idx];
        let mut calls = item.reference_calls();
        if !calls.is_empty() {
            let n = calls.len();
            calls.rotate_left(rotate % n);
        }
        let verdict = check(data.category, &item.functions, &item.answers, &calls);
        prop_assert!(verdict.is_ok(), "{}: {:?}", item.id, verdict);
        if let Some(first) = calls.first_mut() {
            first.arguments.extend(extra);
            let _ = check(data.category, &item.functions, &item.answers, &calls);
            calls.pop();
            prop_assert!(check(data.category, &item.functions, &item.answers, &calls).is_err());
        }
    }

    #[test]
    fn calculator_is_exact(a in any::<i32>(), b in any::<i32>(), op in 0..4usize) {
        let (x, y) = (BigRational::from_integer(BigInt::from(a)), BigRational::from_integer(BigInt::from(b)));
        let sym = ["+", "-", "*", "/"][op];
        let got = evaluate(&format!("({a}) {sym} ({b})"));
        match op {
            0 => prop_assert_eq!(got.ok(), Some(x + y)),
            1 => prop_assert_eq!(got.ok(), Some(x - y)),
            2 => prop_assert_eq!(got.ok(), Some(x * y)),
            _ if b == 0 => prop_assert!(got.is_err()),
            _ => prop_assert_eq!(got.ok(), Some(x / y)),
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(5000))]

    #[test]
    fn random_text_never_panics(text in syntax_text()) {
        for format in Format::ALL {
            check_parse(format, &text);
        }
    }

    #[test]
    fn mutated_calls_never_panic(
        calls in prop::collection::vec(call(), 1..3),
        a in 0usize..400,
        b in 0usize..400,
        insert in "[\\[\\](){}'\",=:<>/\\\\ ]{0,3}",
    ) {
        for format in Format::ALL {
            let text = format.render_calls(&calls);
            check_parse(format, &splice(&text, a, b, &insert));
            check_parse(format, &splice(&text, a, a, &insert));
        }
    }

    #[test]
    fn calculator_never_panics(expr in "[0-9+*/^(). _-]{0,40}") {
        let _ = evaluate(&expr);
    }
}
