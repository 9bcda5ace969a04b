//! Templates that build huge values in few instructions (doubling a string or a list, a macro or block that
//! writes its input twice, a filter that multiplies its input) end with an error naming the limit, quickly and
//! in little memory; real templates still render. A test binary of its own, so that its peak memory (VmHWM) is
//! these renders'.

// The peak-memory reader of the other crates' tests (with temper-chat's mock server, unused here).
#[path = "../../chat/tests/mock/mod.rs"]
mod mock;

use std::time::Instant;

use temper_tokenizer::{ChatTemplate, Message, TEMPLATE_MAX_EMITTED, TEMPLATE_MAX_VALUE};

fn render(source: &str) -> Result<String, String> {
    ChatTemplate::new(source, "<s>", "</s>")
        .map_err(|e| e.to_string())?
        .render(&[Message::user("hi")], true)
        .map_err(|e| e.to_string())
}

/// 40 times `body` (a statement that doubles `ns.s`) after `init`, then `ns.s` written out.
fn doubling(init: &str, body: &str) -> String {
    format!(
        "{{% set ns = namespace(s={init}) %}}{{% for i in range(40) %}}{body}{{% endfor %}}{{{{ ns.s }}}}"
    )
}

#[test]
fn templates_that_blow_up_strings_end_with_an_error_in_bounded_memory() {
    let value_limit = format!("limit of {TEMPLATE_MAX_VALUE} bytes");
    let emitted_limit = format!("more than {TEMPLATE_MAX_EMITTED} bytes");
    let unrolled = format!(
        "{{% set s = 'x' %}}{}{{{{ s }}}}",
        "{% set s = s ~ s %}".repeat(40)
    );
    let raw_in_macro = format!(
        "{{% macro m() %}}{{% for i in range(100000) %}}{}{{% endfor %}}{{% endmacro %}}\
         {{% set ns = namespace(s='') %}}{{% for j in range(100) %}}{{% set ns.s = m() %}}{{% endfor %}}",
        "A".repeat(1000)
    );
    let cases: Vec<(&str, String, &str)> = vec![
        ("`~` unrolled", unrolled, &value_limit),
        (
            "`~` in a loop",
            doubling("'x'", "{% set ns.s = ns.s ~ ns.s %}"),
            &value_limit,
        ),
        (
            "`+` on strings",
            doubling("'x'", "{% set ns.s = ns.s + ns.s %}"),
            &value_limit,
        ),
        (
            "`*` on strings",
            doubling("'xx'", "{% set ns.s = ns.s * 2 %}"),
            &value_limit,
        ),
        (
            "`+` on lists",
            doubling("[1]", "{% set ns.s = ns.s + ns.s %}")
                .replace("{{ ns.s }}", "{{ ns.s|list|length }}"),
            "1048576 items",
        ),
        (
            "a macro writing its argument twice",
            format!(
                "{{% macro d(s) %}}{{{{ s }}}}{{{{ s }}}}{{% endmacro %}}{}",
                doubling("'x'", "{% set ns.s = d(ns.s) %}")
            ),
            &emitted_limit,
        ),
        (
            "a set block writing a value twice",
            doubling(
                "'x'",
                "{% set t %}{{ ns.s }}{{ ns.s }}{% endset %}{% set ns.s = t %}",
            ),
            &emitted_limit,
        ),
        (
            "template text repeated inside a macro",
            raw_in_macro,
            &emitted_limit,
        ),
        (
            "tojson of tojson",
            doubling("'\"'", "{% set ns.s = ns.s|tojson %}"),
            &value_limit,
        ),
        (
            "replace",
            doubling("'x'", "{% set ns.s = ns.s|replace('x', 'xx') %}"),
            &value_limit,
        ),
        (
            "join",
            doubling("'x'", "{% set ns.s = [ns.s, ns.s]|join %}"),
            &value_limit,
        ),
        (
            "format",
            doubling("'x'", "{% set ns.s = '%s%s'|format(ns.s, ns.s) %}"),
            &value_limit,
        ),
        (
            "str.replace",
            doubling("'x'", "{% set ns.s = ns.s.replace('x', 'xx') %}"),
            &value_limit,
        ),
        (
            "str.join",
            doubling("'x'", "{% set ns.s = ''.join([ns.s, ns.s]) %}"),
            &value_limit,
        ),
        (
            "indent by 10^12",
            "{{ 'a\\nb'|indent(1000000000000) }}".into(),
            &value_limit,
        ),
        (
            "a format width of 10^12",
            "{{ '%1000000000000s'|format('x') }}".into(),
            &value_limit,
        ),
    ];
    let before = mock::peak_rss_kb();
    for (what, source, expected) in &cases {
        let t0 = Instant::now();
        let err = render(source).expect_err(what);
        assert!(err.contains(expected), "{what}: {err}");
        assert!(
            t0.elapsed().as_secs() < 20,
            "{what}: took {:?}",
            t0.elapsed()
        );
    }
    let peak = mock::peak_rss_kb();
    println!(
        "{} templates refused; peak RSS {peak} KiB (before the renders {before} KiB)",
        cases.len()
    );
    // Each case stops at a 16 MiB value or 32 MiB written; without the checks the first would need 1 TiB.
    assert!(
        peak < 400 * 1024,
        "peak RSS {peak} KiB (before the renders {before} KiB)"
    );
}

/// The same template rendered by minijinja without Temper's checks (same whitespace settings, same context).
fn plain(source: &str) -> Result<String, String> {
    let mut env = minijinja::Environment::new();
    env.set_trim_blocks(true);
    env.set_lstrip_blocks(true);
    env.add_template("t", source).map_err(|e| e.to_string())?;
    let ctx = minijinja::context! {
        messages => vec![Message::user("hi")],
        add_generation_prompt => true,
        bos_token => "<s>",
        eos_token => "</s>",
    };
    env.get_template("t")
        .and_then(|t| t.render(ctx))
        .map_err(|e| e.to_string())
}

#[test]
fn the_checks_give_minijinjas_results_within_the_limits() {
    let same = [
        "{{ 'a' ~ 1 ~ none ~ [1, 2] }}",
        "{{ 1 + 2 }} {{ 1.5 + 1 }} {{ 'a' + 'b' }} {{ ([1] + [2])|list }}",
        "{{ 2 * 3 }} {{ 'ab' * 3 }} {{ ([1] * 2)|list }} {{ 3 * 'x' }} {{ 2 ** 3 * 2 }}",
        "{{ (1 ~ 2) ~ (3 + 4) * 2 }} {{ -1 + 2 }} {{ (1 + 2) * 3 }} {{ [1, 2][0] + 1 }}",
        "{% set ns = namespace(s='') %}{% for i in range(3) %}{% set ns.s = ns.s ~ i %}{% endfor %}{{ ns.s }}",
        "{% macro m(x) %}<{{ x }}>\n  {%- for i in range(2) %} {{ i }}{% endfor %}\n{% endmacro %}[{{ m('a' ~ 'b') }}]",
        "{% macro m(x) -%}\n    <{{ x }}>\n    {% if x %}\n  yes\n    {% endif %}\n{%- endmacro %}\n{{ m(1) }}|{{ m(0) }}",
        "{% set t %}\n  a {{ 1 + 1 }}\n{% endset %}[{{ t }}]",
        "{% filter upper %}a {{ 'b' ~ 'c' }}\n{% endfilter %}",
        "{% macro w() %}({{ caller() }}){% endmacro %}{% call w() %} in {{ 1 + 1 }} {% endcall %}",
        "{{ ['a', 'b']|join('-') }} {{ 'abc'|join(',') }} {{ 'a-b'|replace('-', '+') }}",
        "{{ '%s=%d'|format('x', 3) }} {{ 'a\nb'|indent(2) }} {{ 'a\nb'|indent(width=3, first=true) }} {{ 'x'|upper }}",
        "{{ [1, 2]|string }} {{ [1, 'a']|pprint }} {{ [1]|chain([2, 3])|list }} {{ 'x'|e }}",
        "{% for m in messages %}{{ m.role + ': ' + m.content }}{% endfor %}{{ 'x' + 1 }}",
        "{{ 'x' * 'y' }}",
        "{% if (1 + 1) * 2 == 4 and 'a' ~ 'b' == 'ab' %}ok{% endif %}",
    ];
    for source in same {
        let ours = render(source).map_err(|_| "error");
        let theirs = plain(source).map_err(|_| "error");
        assert_eq!(ours, theirs, "{source}");
    }
    // Python methods are Temper's own (minijinja has none).
    assert_eq!(
        render("{{ 'a b'.replace(' ', '_') }} {{ '+'.join(['1', 2]) }} {{ 'ab'.upper() }}")
            .as_deref(),
        Ok("a_b 1+2 AB")
    );
}
