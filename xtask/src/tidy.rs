//! Source-tree conventions, checked by `cargo xtask tidy` and by a plain `#[test]`:
//! - every `.rs` file starts with a `//!` line, and has no ignored test, no `todo!`/`unimplemented!` stub and no
//!   `should_panic` test;
//! - no source file has more than [`MAX_CODE_LINES`] lines of non-test code (the lines before its first
//!   `#[cfg(test)]`; files under a `tests/` folder are all test code) unless its first `//!` block has a line
//!   starting `//! Long file:` saying why;
//! - library crates (`crates/*/src` except the CLI's) do not print (`println!`, `eprintln!`, `print!`, `eprint!`,
//!   `dbg!`) outside `#[cfg(test)]` code: they return values and errors, and the binaries print;
//! - dependency direction, read from the manifests (no network): the crates in [`BURN_FREE`] reach no burn and the
//!   crates in [`HTTP_FREE`] no HTTP stack ([`HTTP_STACK`]) with their default features, directly or through another
//!   workspace crate (see [`dependency_problems`]).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

/// Most lines of non-test code a source file may have without a `//! Long file:` reason.
pub const MAX_CODE_LINES: usize = 800;

/// Crates that must not reach burn with their default features: the chat seam, text-only rewards and tasks, the
/// judges' statistics, the evaluation path, the tokenizer / GGUF / asset readers, the tools (function calling,
/// BFCL's checker) and retrieval (whose MiniLM encoder sits behind its `dense` feature). A name that is not a
/// workspace member is skipped.
pub const BURN_FREE: &[&str] = &[
    "temper-chat",
    "temper-eval",
    "temper-rewards",
    "temper-tasks",
    "temper-judges",
    "temper-tokenizer",
    "temper-gguf",
    "temper-assets",
    "temper-tools",
    "temper-rag",
];

/// Crates whose default features must not reach an HTTP stack: the chat seam, the judges (whose OpenAI-compatible
/// client sits behind their `openai` feature), the evaluation path (endpoints come in through its `Policy` seam),
/// the tools (whose schema validation resolves no remote `$ref`) and retrieval.
pub const HTTP_FREE: &[&str] = &["temper-chat", "temper-judges", "temper-eval", "temper-tools", "temper-rag"];

/// Packages that make an HTTP stack.
pub const HTTP_STACK: &[&str] = &["ureq", "reqwest", "hyper", "rustls", "native-tls", "openssl"];

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default();
        if path.is_dir() {
            if name != "target" && !name.starts_with('.') && name != "fixtures" {
                rust_files(&path, out)?;
            }
        } else if name.ends_with(".rs") {
            out.push(path);
        }
    }
    Ok(())
}

/// Every problem found, one line each: `file:line: what`.
pub fn check(root: &Path) -> Result<Vec<String>> {
    let mut files = Vec::new();
    for top in ["crates", "xtask", "examples", "fuzz"] {
        let d = root.join(top);
        if d.is_dir() {
            rust_files(&d, &mut files)?;
        }
    }
    let mut problems = Vec::new();
    for f in files {
        let text = std::fs::read_to_string(&f).with_context(|| format!("reading {}", f.display()))?;
        let rel = f.strip_prefix(root).unwrap_or(&f);
        let shown = rel.display().to_string();
        problems.extend(convention_problems(&shown, &text));
        let parts: Vec<&str> = rel.iter().filter_map(|p| p.to_str()).collect();
        let test_file = parts.contains(&"tests");
        problems.extend(long_file_problem(&shown, &text, test_file));
        // A library crate's own sources: crates/<name>/src/**, the CLI excepted.
        let library = parts.len() > 3 && parts[0] == "crates" && parts[1] != "cli" && parts[2] == "src";
        if library {
            problems.extend(printing_problems(&shown, &text));
        }
    }
    problems.extend(dependency_problems(&workspace_manifests(root)?));
    Ok(problems)
}

/// The first-line doc and the banned patterns (ignored tests, stubs, `should_panic`).
fn convention_problems(shown: &str, text: &str) -> Vec<String> {
    let mut problems = Vec::new();
    // Spelled in two halves so that this file does not flag itself.
    let banned = [
        (concat!("#[", "ignore"), "an ignored test"),
        (concat!("todo", "!("), "a todo stub"),
        (concat!("unimplemented", "!("), "an unimplemented stub"),
        (concat!("#[", "should_panic"), "a should_panic test (assert on the error instead)"),
    ];
    if !text.starts_with("//!") {
        problems.push(format!("{shown}:1: file does not start with a `//!` line saying what lives there"));
    }
    for (i, line) in text.lines().enumerate() {
        for (pat, what) in banned {
            if line.contains(pat) {
                problems.push(format!("{shown}:{}: {what}", i + 1));
            }
        }
    }
    problems
}

/// Index of the first line that starts test-only code (`#[cfg(test)]`), or the number of lines.
fn first_test_line(text: &str) -> usize {
    let marker = concat!("#[cfg(", "test)]");
    text.lines().position(|l| l.trim_start().starts_with(marker)).unwrap_or_else(|| text.lines().count())
}

/// A file with more than [`MAX_CODE_LINES`] lines of non-test code and no `//! Long file:` line in its first `//!`
/// block. `test_file`: the whole file is test code (under `tests/`).
fn long_file_problem(shown: &str, text: &str, test_file: bool) -> Option<String> {
    let code = if test_file { 0 } else { first_test_line(text) };
    if code <= MAX_CODE_LINES {
        return None;
    }
    let reason = concat!("//! Long ", "file:");
    let justified = text.lines().take_while(|l| l.starts_with("//!")).any(|l| l.starts_with(reason));
    (!justified).then(|| {
        format!(
            "{shown}:1: {code} lines of non-test code (limit {MAX_CODE_LINES}): split it by concern, or say why it \
             is one file in a `{reason}` line of its first `//!` block"
        )
    })
}

/// Printing macros in a library file's non-test code (comment lines skipped).
fn printing_problems(shown: &str, text: &str) -> Vec<String> {
    const MACROS: [&str; 5] = ["println", "eprintln", "print", "eprint", "dbg"];
    let mut problems = Vec::new();
    for (i, line) in text.lines().take(first_test_line(text)).enumerate() {
        let code = line.trim_start();
        if code.starts_with("//") {
            continue;
        }
        for m in MACROS {
            let call = format!("{m}!(");
            let found = code.match_indices(&call).any(|(at, _)| {
                let before = code[..at].chars().next_back();
                !before.is_some_and(|c| c.is_alphanumeric() || c == '_')
            });
            if found {
                problems.push(format!(
                    "{shown}:{}: `{m}!` in a library crate: return the value or the error and let the binary print",
                    i + 1
                ));
            }
        }
    }
    problems
}

/// One workspace member's manifest, with where it was read from.
#[derive(Debug, Clone)]
pub struct Manifest {
    /// Path shown in problems (relative to the workspace root).
    pub shown: String,
    /// The parsed `Cargo.toml`.
    pub toml: toml::Table,
}

/// The workspace as the dependency rule reads it: every member's manifest and the root's shared dependencies.
#[derive(Debug, Clone, Default)]
pub struct Workspace {
    /// Members by package name.
    pub members: BTreeMap<String, Manifest>,
    /// The root manifest's `[workspace.dependencies]`.
    pub workspace_deps: toml::Table,
}

fn read_toml(path: &Path) -> Result<toml::Table> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    text.parse::<toml::Table>().with_context(|| format!("parsing {}", path.display()))
}

/// Reads the root `Cargo.toml` and every member listed in `[workspace] members`.
fn workspace_manifests(root: &Path) -> Result<Workspace> {
    let top = read_toml(&root.join("Cargo.toml"))?;
    let ws = top.get("workspace").and_then(|w| w.as_table()).context("Cargo.toml: no [workspace] table")?;
    let mut out = Workspace {
        workspace_deps: ws.get("dependencies").and_then(|d| d.as_table()).cloned().unwrap_or_default(),
        ..Workspace::default()
    };
    let members = ws.get("members").and_then(|m| m.as_array()).context("Cargo.toml: no [workspace] members")?;
    for m in members.iter().filter_map(|m| m.as_str()) {
        let shown = format!("{m}/Cargo.toml");
        let toml = read_toml(&root.join(&shown))?;
        let name = toml
            .get("package")
            .and_then(|p| p.get("name"))
            .and_then(|n| n.as_str())
            .with_context(|| format!("{shown}: no [package] name"))?
            .to_string();
        out.members.insert(name, Manifest { shown, toml });
    }
    Ok(out)
}

/// One normal dependency of a manifest.
#[derive(Debug, Clone)]
struct Dep {
    /// The name features refer to (the table key).
    key: String,
    /// The package it names (`package = ...`, else the key).
    package: String,
    optional: bool,
    default_features: bool,
    features: Vec<String>,
}

/// The `[dependencies]` and `[target.*.dependencies]` of `manifest` (dev- and build-dependencies are not linked
/// into the library), with `workspace = true` entries completed from the root's table.
fn normal_deps(manifest: &toml::Table, workspace_deps: &toml::Table) -> Vec<Dep> {
    let mut tables: Vec<&toml::Table> = manifest.get("dependencies").and_then(|d| d.as_table()).into_iter().collect();
    if let Some(targets) = manifest.get("target").and_then(|t| t.as_table()) {
        tables.extend(targets.values().filter_map(|t| t.get("dependencies").and_then(|d| d.as_table())));
    }
    let mut deps = Vec::new();
    for table in tables {
        for (key, spec) in table {
            let local = spec.as_table();
            let inherited = local
                .and_then(|t| t.get("workspace"))
                .and_then(|w| w.as_bool())
                .unwrap_or(false)
                .then(|| workspace_deps.get(key).and_then(|w| w.as_table()))
                .flatten();
            let get = |field: &str| local.and_then(|t| t.get(field)).or_else(|| inherited.and_then(|t| t.get(field)));
            let strings = |v: Option<&toml::Value>| -> Vec<String> {
                v.and_then(|v| v.as_array())
                    .map(|a| a.iter().filter_map(|s| s.as_str().map(str::to_string)).collect())
                    .unwrap_or_default()
            };
            let mut features = strings(inherited.and_then(|t| t.get("features")));
            features.extend(strings(local.and_then(|t| t.get("features"))));
            deps.push(Dep {
                key: key.clone(),
                package: get("package").and_then(|p| p.as_str()).unwrap_or(key).to_string(),
                optional: local.and_then(|t| t.get("optional")).and_then(|o| o.as_bool()).unwrap_or(false),
                default_features: get("default-features").and_then(|d| d.as_bool()).unwrap_or(true),
                features,
            });
        }
    }
    deps
}

/// Every package `name` links with `features` (plus its defaults when `default_features`), through workspace
/// members transitively: a small model of cargo's feature resolution (`dep:x`, `x/f`, `x?/f`, implicit features of
/// optional dependencies).
/// `out` collects package names; `visited` the (package, features) pairs already walked.
fn reachable(
    ws: &Workspace,
    name: &str,
    features: &[String],
    default_features: bool,
    out: &mut BTreeSet<String>,
    visited: &mut BTreeSet<String>,
) {
    let Some(manifest) = ws.members.get(name) else {
        return;
    };
    let deps = normal_deps(&manifest.toml, &ws.workspace_deps);
    let table = manifest.toml.get("features").and_then(|f| f.as_table());
    let feature_list = |f: &str| -> Vec<String> {
        table
            .and_then(|t| t.get(f))
            .and_then(|v| v.as_array())
            .map(|a| a.iter().filter_map(|s| s.as_str().map(str::to_string)).collect())
            .unwrap_or_default()
    };
    // Expand features to: the optional deps they enable, and the features they ask of each dependency.
    let mut todo: Vec<String> = features.to_vec();
    if default_features {
        todo.push("default".into());
    }
    let mut seen = BTreeSet::new();
    let mut enabled: BTreeSet<String> = BTreeSet::new();
    let mut asked: BTreeMap<String, Vec<String>> = BTreeMap::new();
    while let Some(f) = todo.pop() {
        if !seen.insert(f.clone()) {
            continue;
        }
        if let Some(dep) = f.strip_prefix("dep:") {
            enabled.insert(dep.to_string());
        } else if let Some((dep, feat)) = f.split_once('/') {
            let (dep, weak) = dep.strip_suffix('?').map_or((dep, false), |d| (d, true));
            if !weak {
                enabled.insert(dep.to_string());
            }
            asked.entry(dep.to_string()).or_default().push(feat.to_string());
        } else if table.is_some_and(|t| t.contains_key(&f)) {
            todo.extend(feature_list(&f));
        } else if deps.iter().any(|d| d.optional && d.key == f) {
            enabled.insert(f);
        }
    }
    for dep in deps.iter().filter(|d| !d.optional || enabled.contains(&d.key)) {
        let mut feats = dep.features.clone();
        feats.extend(asked.get(&dep.key).cloned().unwrap_or_default());
        feats.sort();
        out.insert(dep.package.clone());
        if visited.insert(format!("{} {:?} {}", dep.package, feats, dep.default_features)) {
            reachable(ws, &dep.package, &feats, dep.default_features, out, visited);
        }
    }
}

/// One dependency rule: the crates it applies to, what they must not reach, and the test for a package name.
type Rule = (&'static [&'static str], &'static str, fn(&str) -> bool);

/// The dependency-direction problems: a [`BURN_FREE`] crate that reaches burn, or an [`HTTP_FREE`] crate that
/// reaches an HTTP stack, with its default features; each names the path from the crate to the offender.
pub fn dependency_problems(ws: &Workspace) -> Vec<String> {
    let mut problems = Vec::new();
    let rules: [Rule; 2] = [
        (BURN_FREE, "burn (tensors belong in the model crates)", |p| p == "burn" || p.starts_with("burn-")),
        (HTTP_FREE, "an HTTP stack (put the client behind a cargo feature)", |p| HTTP_STACK.contains(&p)),
    ];
    for (crates, what, bad) in rules {
        for &name in crates {
            let Some(manifest) = ws.members.get(name) else {
                continue;
            };
            let mut reached = BTreeSet::new();
            reachable(ws, name, &[], true, &mut reached, &mut BTreeSet::new());
            let offenders: Vec<&String> = reached.iter().filter(|p| bad(p)).collect();
            if !offenders.is_empty() {
                let via = path_to(ws, name, bad).unwrap_or_default();
                problems.push(format!(
                    "{}:1: `{name}` reaches {what} with its default features: {}{}",
                    manifest.shown,
                    offenders.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", "),
                    if via.is_empty() { String::new() } else { format!(" (via {via})") }
                ));
            }
        }
    }
    problems
}

/// The chain of workspace crates from `from` to the first member whose own dependencies include an offender, for
/// the message: `a → b → burn`.
fn path_to(ws: &Workspace, from: &str, bad: fn(&str) -> bool) -> Option<String> {
    let mut queue = vec![vec![from.to_string()]];
    let mut seen = BTreeSet::from([from.to_string()]);
    while !queue.is_empty() {
        let mut next = Vec::new();
        for chain in queue {
            let last = chain.last().cloned().unwrap_or_default();
            let Some(m) = ws.members.get(&last) else { continue };
            for dep in normal_deps(&m.toml, &ws.workspace_deps) {
                if bad(&dep.package) {
                    return Some(format!("{} → {}", chain.join(" → "), dep.package));
                }
                if ws.members.contains_key(&dep.package) && seen.insert(dep.package.clone()) {
                    let mut c = chain.clone();
                    c.push(dep.package);
                    next.push(c);
                }
            }
        }
        queue = next;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn source_tree_is_tidy() {
        let problems = super::check(&crate::root()).expect("walk the tree");
        assert!(problems.is_empty(), "tidy:\n{}", problems.join("\n"));
    }

    fn lines(n: usize) -> String {
        (0..n).map(|i| format!("let x{i} = {i};\n")).collect()
    }

    #[test]
    fn a_long_file_needs_a_reason_in_its_first_doc_block() {
        let long = format!("//! What lives here.\n{}", lines(MAX_CODE_LINES));
        let problem = long_file_problem("a.rs", &long, false).expect("801 lines of code are too many");
        assert!(problem.starts_with("a.rs:1: 801 lines of non-test code"), "{problem}");
        // Exactly at the limit, and long only because of its tests: fine.
        let at_limit = format!("//! What.\n{}", lines(MAX_CODE_LINES - 1));
        assert_eq!(long_file_problem("a.rs", &at_limit, false), None);
        let tested = format!("//! What.\n{}#[cfg(test)]\nmod tests {{\n{}}}\n", lines(10), lines(2000));
        assert_eq!(long_file_problem("a.rs", &tested, false), None);
        // A file under tests/ is test code.
        assert_eq!(long_file_problem("tests/t.rs", &long, true), None);
        // The reason must sit in the first `//!` block, on a line of its own.
        let reason = concat!("//! Long ", "file:");
        let justified = format!("//! What lives here.\n{reason} one algorithm, eight variants.\n{}", lines(900));
        assert_eq!(long_file_problem("a.rs", &justified, false), None);
        let late = format!("//! What lives here.\n\n{reason} too late.\n{}", lines(900));
        assert!(long_file_problem("a.rs", &late, false).is_some());
    }

    #[test]
    fn printing_is_flagged_in_library_code_only_outside_tests_and_comments() {
        let text = [
            "//! A library file.",
            "// println!(\"in a comment\") is fine",
            "/// ```",
            "/// println!(\"in a doc example\");",
            "/// ```",
            "fn f(x: u32) -> u32 {",
            "    eprintln!(\"debug\");",
            "    let y = dbg!(x);",
            "    let s = format!(\"{y}\"); writeln!(out, \"{s}\").ok(); my_print!(s);",
            "    print!(\"no newline\");",
            "    y",
            "}",
            concat!("#[cfg(", "test)]"),
            "mod tests { fn t() { println!(\"tests may print\"); } }",
        ]
        .join("\n");
        let problems = printing_problems("crates/x/src/lib.rs", &text);
        let at: Vec<&str> = problems.iter().map(|p| p.split(": ").next().unwrap_or_default()).collect();
        assert_eq!(at, ["crates/x/src/lib.rs:7", "crates/x/src/lib.rs:8", "crates/x/src/lib.rs:10"], "{problems:?}");
        assert!(problems[0].contains("`eprintln!`"), "{}", problems[0]);
    }

    fn workspace(members: &[(&str, &str)], workspace_deps: &str) -> Workspace {
        let parse = |s: &str| s.parse::<toml::Table>().expect("crafted TOML parses");
        Workspace {
            members: members
                .iter()
                .map(|(name, text)| {
                    let toml = parse(&format!("[package]\nname = \"{name}\"\n{text}"));
                    (name.to_string(), Manifest { shown: format!("crates/{name}/Cargo.toml"), toml })
                })
                .collect(),
            workspace_deps: parse(workspace_deps),
        }
    }

    const WS_DEPS: &str = r#"
burn = { version = "0.22.1", default-features = false, features = ["std"] }
temper-models = { path = "crates/models", version = "0.1.0" }
temper-chat = { path = "crates/chat", version = "0.1.0" }
"#;

    #[test]
    fn burn_reached_through_another_member_is_flagged_with_its_path() {
        let ws = workspace(
            &[
                ("temper-models", "[dependencies]\nburn.workspace = true\n"),
                ("temper-rewards", "[dependencies]\nregex = \"1\"\ntemper-models.workspace = true\n"),
                ("temper-chat", "[dependencies]\nserde = \"1\"\n[dev-dependencies]\nburn.workspace = true\n"),
            ],
            WS_DEPS,
        );
        let problems = dependency_problems(&ws);
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(problems[0].starts_with("crates/temper-rewards/Cargo.toml:1: `temper-rewards` reaches burn"), "{}", problems[0]);
        assert!(problems[0].contains("via temper-rewards → temper-models → burn"), "{}", problems[0]);
    }

    #[test]
    fn optional_dependencies_count_only_when_a_default_feature_enables_them() {
        let judges = |features: &str| {
            workspace(
                &[
                    ("temper-chat", "[dependencies]\nserde = \"1\"\n"),
                    (
                        "temper-judges",
                        &format!("[features]\n{features}\n[dependencies]\nureq = {{ version = \"3\", optional = true }}\n"),
                    ),
                ],
                WS_DEPS,
            )
        };
        assert_eq!(dependency_problems(&judges("openai = [\"dep:ureq\"]")), Vec::<String>::new());
        for default_on in ["default = [\"openai\"]\nopenai = [\"dep:ureq\"]", "default = [\"ureq\"]", "default = [\"ureq/json\"]"] {
            let problems = dependency_problems(&judges(default_on));
            assert_eq!(problems.len(), 1, "{default_on}: {problems:?}");
            assert!(problems[0].contains("`temper-judges` reaches an HTTP stack"), "{}", problems[0]);
        }
        // A weak `ureq?/json` does not enable it.
        assert_eq!(dependency_problems(&judges("default = [\"ureq?/json\"]")), Vec::<String>::new());
    }

    #[test]
    fn a_member_reached_without_its_defaults_does_not_bring_them() {
        let ws = workspace(
            &[
                ("temper-models", "[features]\ndefault = [\"flex\"]\nflex = [\"dep:burn\"]\n[dependencies]\nburn = { workspace = true, optional = true }\n"),
                ("temper-tokenizer", "[dependencies]\ntemper-models = { workspace = true, default-features = false }\n"),
                ("temper-gguf", "[dependencies]\ntemper-models.workspace = true\n"),
            ],
            WS_DEPS,
        );
        let problems = dependency_problems(&ws);
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(problems[0].contains("`temper-gguf` reaches burn"), "{}", problems[0]);
    }

    #[test]
    fn convention_problems_name_the_line() {
        let text = format!("fn f() {{}}\n{}\n", concat!("todo", "!()"));
        let problems = convention_problems("x.rs", &text);
        assert_eq!(problems.len(), 2, "{problems:?}");
        assert!(problems[0].starts_with("x.rs:1: file does not start"));
        assert!(problems[1].starts_with("x.rs:2: a todo stub"));
    }
}
