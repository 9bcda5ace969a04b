//! CHAMP (Mao et al. 2024, <https://arxiv.org/abs/2401.06961>): does a judge agree with humans on which math
//! solutions contain an error? Each human-annotated solution of CHAMP's `v0.json` is shown to a judge with a
//! strict `[[YES]]` / `[[NO]]` prompt; a human "first wrong step" annotation means "has an error". [`champ_run`]
//! judges on the crate's bounded thread pool, writes the label files, the raw replies and the agreement report
//! (each written to a temporary file, then renamed), and returns the [`ChampOutcome`].

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use serde::{Deserialize, Serialize};
use temper_chat::{ChatBackend, GenerationParams, Message};

use crate::bootstrap::BootstrapConfig;
use crate::error::{JudgeError, Result};
use crate::label::Label;
use crate::report::{AgreeConfig, AgreementReport, Metric, join, report};
use crate::run::bounded_map;
use crate::verdict::parse_yes_no;

/// The single-answer prompt of `champ-agreement`.
pub const CHAMP_SYSTEM: &str = "You check solutions to math problems. Reply with exactly [[YES]] if the solution contains an error \
(a wrong step, a wrong calculation or a wrong final answer), or exactly [[NO]] if it is fully correct.";

/// The user message of `champ-agreement` for one problem and solution.
pub fn champ_prompt(problem: &str, solution: &str) -> String {
    format!(
        "[Problem]\n{problem}\n\n[Solution]\n{solution}\n[End of Solution]\n\n\
         Does this solution contain an error? Answer [[YES]] or [[NO]]."
    )
}

/// One human-annotated CHAMP solution.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ChampItem {
    /// `<problem id>|<model>|<prompting setting>`, e.g. `P_Combinatorics_1|GPT-4|No C w/o H`.
    pub id: String,
    /// The problem statement.
    pub problem: String,
    /// The model's solution.
    pub solution: String,
    /// Human label: the annotator marked a first wrong step.
    pub has_error: bool,
}

/// The label strings written to the label files.
pub fn error_label(has_error: bool) -> &'static str {
    if has_error { "error" } else { "no_error" }
}

/// Extracts every annotated solution from CHAMP's `v0.json` (`problems.<id>.fws_annotations`),
/// sorted by (problem id, annotation key) so the order does not depend on how the JSON map is
/// stored. A solution has an error when its `start_idx` is not null.
pub fn champ_items(data: &serde_json::Value, path: &Path) -> Result<Vec<ChampItem>> {
    let where_ = |message: &str| JudgeError::Data {
        path: path.to_path_buf(),
        message: message.to_string(),
    };
    let problems = data
        .get("problems")
        .and_then(serde_json::Value::as_object)
        .ok_or_else(|| where_("no `problems` object"))?;
    let mut out = Vec::new();
    let mut problems: Vec<(&String, &serde_json::Value)> = problems.iter().collect();
    problems.sort_by(|a, b| a.0.cmp(b.0));
    for (pid, p) in problems {
        let problem = p
            .get("_text")
            .and_then(serde_json::Value::as_str)
            .ok_or_else(|| where_(&format!("problems.{pid}: no string `_text`")))?;
        let Some(annotations) = p
            .get("fws_annotations")
            .and_then(serde_json::Value::as_object)
        else {
            continue;
        };
        let mut annotations: Vec<(&String, &serde_json::Value)> = annotations.iter().collect();
        annotations.sort_by(|a, b| a.0.cmp(b.0));
        for (key, a) in annotations {
            let field = |f: &str| format!("problems.{pid}.fws_annotations.{key:?}: {f}");
            let solution = a
                .get("text")
                .and_then(serde_json::Value::as_str)
                .ok_or_else(|| where_(&field("no string `text`")))?;
            let has_error = match a.get("start_idx") {
                Some(serde_json::Value::Null) => false,
                Some(v) if v.is_u64() => true,
                other => {
                    return Err(where_(&field(&format!(
                        "`start_idx` must be null or an index, got {other:?}"
                    ))));
                }
            };
            out.push(ChampItem {
                id: format!("{pid}|{key}"),
                problem: problem.to_string(),
                solution: solution.to_string(),
                has_error,
            });
        }
    }
    Ok(out)
}

/// Reads CHAMP's `v0.json` at `path` and extracts its annotated solutions ([`champ_items`]).
pub fn load_champ_items(path: &Path) -> Result<Vec<ChampItem>> {
    let text = std::fs::read_to_string(path).map_err(|source| JudgeError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let data: serde_json::Value = serde_json::from_str(&text).map_err(|e| JudgeError::Data {
        path: path.to_path_buf(),
        message: format!("not JSON: {e}"),
    })?;
    champ_items(&data, path)
}

/// A fixed pseudo-random order of `0..total` (`i * 7919 mod total`, a permutation whenever
/// `total` is not a multiple of the prime 7919), cut to `limit`, so a partial run samples every
/// category, model and prompting setting instead of the first problems of the file.
pub fn sample_order(total: usize, limit: Option<usize>) -> Vec<usize> {
    const STEP: usize = 7919;
    let order: Vec<usize> = if total.is_multiple_of(STEP) {
        (0..total).collect()
    } else {
        (0..total).map(|i| (i * STEP) % total).collect()
    };
    order.into_iter().take(limit.unwrap_or(total)).collect()
}

/// One line of `replies.jsonl`: what the judge said about one solution.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChampReply {
    /// The item's id.
    pub id: String,
    /// The human label, `error` or `no_error` ([`error_label`]).
    pub human: String,
    /// The judge's label, when its reply had a strict verdict.
    pub judge: Option<String>,
    /// Why the reply has no strict verdict, when it has none.
    pub unparseable: Option<String>,
    /// The back end's error, when the request failed.
    pub error: Option<String>,
    /// The reply (prefill included); empty when the request failed.
    pub reply: String,
}

/// The outcome of the CHAMP experiment.
#[derive(Debug, Serialize)]
pub struct ChampOutcome {
    /// Solutions judged.
    pub n_judged: usize,
    /// Replies without a strict verdict.
    pub unparseable: usize,
    /// Back-end errors.
    pub failed: usize,
    /// Human "has an error" count among the judged.
    pub human_errors: usize,
    /// Judge `[[YES]]` count.
    pub judge_yes: usize,
    /// Judge `[[NO]]` count.
    pub judge_no: usize,
    /// Wall-clock seconds of judging.
    pub seconds: f64,
    /// Agreement between human (a) and judge (b) on the parseable items.
    pub report: AgreementReport,
}

/// Writes `text` to `path` atomically: a temporary file beside it, then a rename over it.
fn write_atomic(path: &Path, text: &str) -> Result<()> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(format!(".{}.tmp", std::process::id()));
    let tmp = PathBuf::from(tmp);
    std::fs::write(&tmp, text).map_err(|source| JudgeError::Io {
        path: tmp.clone(),
        source,
    })?;
    std::fs::rename(&tmp, path).map_err(|source| JudgeError::Io {
        path: path.to_path_buf(),
        source,
    })
}

fn write_jsonl<T: Serialize>(path: &Path, rows: impl IntoIterator<Item = T>) -> Result<()> {
    let mut s = String::new();
    for r in rows {
        // Serializing plain data structs cannot fail.
        s.push_str(&serde_json::to_string(&r).unwrap_or_default());
        s.push('\n');
    }
    write_atomic(path, &s)
}

/// How `champ_run` asks the judge.
#[derive(Debug, Clone, PartialEq)]
pub struct ChampRunConfig {
    /// Generation settings (greedy, a few tokens).
    pub params: GenerationParams,
    /// Requests at once.
    pub concurrency: usize,
    /// Bootstrap settings of the agreement CIs.
    pub bootstrap: BootstrapConfig,
    /// The start of the judge's reply, sent as a trailing assistant message and parsed as
    /// prefill + reply.
    pub prefill: Option<String>,
}

/// The messages `champ_run` sends for one item.
pub fn champ_messages(item: &ChampItem, prefill: Option<&str>) -> Vec<Message> {
    let mut m = vec![
        Message::system(CHAMP_SYSTEM),
        Message::user(champ_prompt(&item.problem, &item.solution)),
    ];
    if let Some(p) = prefill {
        m.push(Message::assistant(p));
    }
    m
}

/// Judges `items` with `backend` on `config.concurrency` threads and writes `human.jsonl`, `judge.jsonl`
/// (parseable replies only), `replies.jsonl` and `report.json` into `out`. `on_judged(done, total)` is called
/// after each reply (from the worker threads), for progress.
pub fn champ_run(
    items: &[ChampItem],
    backend: &(dyn ChatBackend + Sync),
    config: &ChampRunConfig,
    out: &Path,
    on_judged: &(dyn Fn(usize, usize) + Sync),
) -> Result<ChampOutcome> {
    std::fs::create_dir_all(out).map_err(|source| JudgeError::Io {
        path: out.to_path_buf(),
        source,
    })?;
    let started = std::time::Instant::now();
    let done = AtomicUsize::new(0);
    let replies = bounded_map(items, config.concurrency, |item| {
        let messages = champ_messages(item, config.prefill.as_deref());
        let r = backend
            .complete(&messages, &config.params)
            .map(|reply| format!("{}{reply}", config.prefill.as_deref().unwrap_or("")));
        on_judged(done.fetch_add(1, Ordering::Relaxed) + 1, items.len());
        r
    });
    let seconds = started.elapsed().as_secs_f64();
    let mut rows = Vec::with_capacity(items.len());
    let (mut human, mut judge) = (Vec::new(), Vec::new());
    let (mut unparseable, mut failed, mut yes, mut no) = (0, 0, 0, 0);
    for (item, r) in items.iter().zip(replies) {
        let h = error_label(item.has_error);
        human.push((item.id.clone(), Label::from(h)));
        let mut row = ChampReply {
            id: item.id.clone(),
            human: h.to_string(),
            judge: None,
            unparseable: None,
            error: None,
            reply: String::new(),
        };
        match r {
            Some(Ok(reply)) => {
                match parse_yes_no(&reply) {
                    Ok(v) => {
                        if v {
                            yes += 1
                        } else {
                            no += 1
                        }
                        row.judge = Some(error_label(v).to_string());
                        judge.push((item.id.clone(), Label::from(error_label(v))));
                    }
                    Err(u) => {
                        unparseable += 1;
                        row.unparseable = Some(u.to_string());
                    }
                }
                row.reply = reply;
            }
            Some(Err(e)) => {
                failed += 1;
                row.error = Some(e.to_string());
            }
            None => {
                failed += 1;
                row.error = Some("worker thread panicked".into());
            }
        }
        rows.push(row);
    }
    let label_row = |(id, l): &(String, Label)| serde_json::json!({ "id": id, "label": l });
    write_jsonl(&out.join("human.jsonl"), human.iter().map(label_row))?;
    write_jsonl(&out.join("judge.jsonl"), judge.iter().map(label_row))?;
    write_jsonl(&out.join("replies.jsonl"), &rows)?;
    let config = AgreeConfig {
        metrics: vec![
            Metric::CohenKappa,
            Metric::PercentAgreement,
            Metric::AlphaNominal,
        ],
        bootstrap: config.bootstrap,
        ..AgreeConfig::default()
    };
    let report = report(&join(&human, &judge), &config)?;
    let outcome = ChampOutcome {
        n_judged: items.len(),
        unparseable,
        failed,
        human_errors: items.iter().filter(|i| i.has_error).count(),
        judge_yes: yes,
        judge_no: no,
        seconds,
        report,
    };
    // Serializing plain data structs cannot fail.
    write_atomic(
        &out.join("report.json"),
        &serde_json::to_string_pretty(&outcome).unwrap_or_default(),
    )?;
    Ok(outcome)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::load_labels;
    use temper_chat::{ChatError, Role};

    type TestResult = std::result::Result<(), Box<dyn std::error::Error>>;

    fn tmp_dir(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("temper-judges-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&d).expect("create temp dir");
        d
    }

    #[test]
    fn champ_labels_come_from_first_wrong_step_annotations() -> TestResult {
        let path = Path::new(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/champ-sample.json"
        ));
        let data: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(path)?)?;
        let items = champ_items(&data, path)?;
        assert_eq!(load_champ_items(path)?, items);
        let e = load_champ_items(Path::new("/nonexistent/v0.json"))
            .expect_err("no file")
            .to_string();
        assert!(e.starts_with("/nonexistent/v0.json: "), "{e}");
        let got: Vec<(&str, bool, &str)> = items
            .iter()
            .map(|i| (i.id.as_str(), i.has_error, i.solution.as_str()))
            .collect();
        assert_eq!(
            got,
            [
                ("P_Algebra_1|GPT-4|Direct C w/ H", false, "x = 5 - 2 = 3."),
                ("P_Algebra_1|GPT-4|No C w/o H", true, "x = 5 + 2 = 7."),
                (
                    "P_Number-Theory_2|PaLM 2 Medium|No C w/o H",
                    true,
                    "17 = 3 * 5 + 2, so the remainder is 3."
                ),
            ]
        );
        assert_eq!(
            items[2].problem,
            "What is the remainder of 17 divided by 5?"
        );
        let mut bad = data.clone();
        bad["problems"]["P_Algebra_1"]["fws_annotations"]["GPT-4|No C w/o H"]["start_idx"] =
            "4".into();
        let e = champ_items(&bad, path)
            .expect_err("bad start_idx")
            .to_string();
        assert_eq!(
            e,
            format!(
                "{}: problems.P_Algebra_1.fws_annotations.\"GPT-4|No C w/o H\": `start_idx` must be null or an index, got Some(String(\"4\"))",
                path.display()
            )
        );
        let e = champ_items(&serde_json::json!({"concepts": {}}), path)
            .expect_err("no problems")
            .to_string();
        assert_eq!(e, format!("{}: no `problems` object", path.display()));
        Ok(())
    }

    #[test]
    fn sample_order_is_a_scattered_permutation() {
        let all = sample_order(540, None);
        let mut sorted = all.clone();
        sorted.sort_unstable();
        assert_eq!(sorted, (0..540).collect::<Vec<_>>());
        assert_eq!(sample_order(540, Some(4)), [0, 359, 178, 537]);
        assert_eq!(sample_order(3, Some(10)), [0, 2, 1]);
        // Both annotations of a problem (adjacent indices) are reached within the first 100.
        let first: std::collections::HashSet<usize> =
            sample_order(540, Some(100)).into_iter().collect();
        assert_eq!(first.iter().filter(|i| *i % 2 == 0).count(), 50);
    }

    /// Replies with the text after `JUDGE=` in the user message (up to the next space).
    struct Scripted;
    impl ChatBackend for Scripted {
        fn complete(
            &self,
            messages: &[Message],
            _: &GenerationParams,
        ) -> temper_chat::Result<String> {
            let user = messages
                .iter()
                .find(|m| m.role == Role::User)
                .map(|m| m.content.as_str())
                .unwrap_or("");
            let prefilled = messages.last().is_some_and(|m| m.role == Role::Assistant);
            let tag = user
                .split("JUDGE=")
                .nth(1)
                .and_then(|s| s.split_whitespace().next())
                .unwrap_or("");
            if tag == "FAIL" {
                return Err(ChatError::Backend("scripted failure".into()));
            }
            // With a `[[` prefill the reply continues it.
            Ok(if prefilled {
                tag.trim_start_matches("[[").to_string()
            } else {
                tag.to_string()
            })
        }
    }

    #[test]
    fn champ_run_counts_unparseable_and_computes_kappa() -> TestResult {
        let item = |n: usize, has_error: bool, tag: &str| ChampItem {
            id: format!("p{n}"),
            problem: "1+1?".into(),
            solution: format!("2. JUDGE={tag} end"),
            has_error,
        };
        let items = [
            item(1, true, "[[YES]]"),
            item(2, true, "[[YES]]"),
            item(3, true, "[[NO]]"),
            item(4, false, "[[NO]]"),
            item(5, false, "[[YES]]"),
            item(6, true, "maybe"),
            item(7, false, "FAIL"),
        ];
        let dir = tmp_dir("champ");
        for prefill in [None, Some("[[")] {
            let config = ChampRunConfig {
                params: GenerationParams::greedy(8),
                concurrency: 3,
                bootstrap: BootstrapConfig {
                    resamples: 200,
                    ..BootstrapConfig::default()
                },
                prefill: prefill.map(str::to_string),
            };
            let calls = AtomicUsize::new(0);
            let on_judged = |done: usize, total: usize| {
                assert!(
                    done >= 1 && done <= total && total == items.len(),
                    "{done}/{total}"
                );
                calls.fetch_add(1, Ordering::Relaxed);
            };
            let o = champ_run(&items, &Scripted, &config, &dir, &on_judged)?;
            assert_eq!(calls.into_inner(), items.len());
            assert_eq!(
                (
                    o.n_judged,
                    o.unparseable,
                    o.failed,
                    o.human_errors,
                    o.judge_yes,
                    o.judge_no
                ),
                (7, 1, 1, 4, 3, 2)
            );
            // Parseable: human [E E E N N], judge [E E N N E]: p_o = 3/5, p_e = 0.6² + 0.4² = 0.52.
            let kappa = o.report.metrics[0].value.expect("kappa");
            assert!(
                (kappa - (0.6 - 0.52) / (1.0 - 0.52)).abs() < 1e-12,
                "kappa {kappa}"
            );
            assert_eq!(o.report.metrics[1].value, Some(0.6));
            assert_eq!(o.report.n_items, 5);
            assert_eq!(o.report.confusion.counts, [[2, 1], [1, 1]]);
        }
        let human = load_labels(&dir.join("human.jsonl"))?;
        let judge = load_labels(&dir.join("judge.jsonl"))?;
        assert_eq!((human.len(), judge.len()), (7, 5));
        assert_eq!(human[3], ("p4".to_string(), Label::from("no_error")));
        let replies = std::fs::read_to_string(dir.join("replies.jsonl"))?;
        let rows: Vec<serde_json::Value> = replies
            .lines()
            .map(serde_json::from_str)
            .collect::<std::result::Result<_, _>>()?;
        assert_eq!(rows[0]["reply"], "[[YES]]");
        assert_eq!(rows[5]["unparseable"], "no verdict in reply");
        assert_eq!(rows[6]["error"], "chat back end: scripted failure");
        // Every file was written through a temporary name and renamed: none is left behind.
        let mut names: Vec<String> = std::fs::read_dir(&dir)?
            .map(|e| e.map(|e| e.file_name().to_string_lossy().into_owned()))
            .collect::<std::result::Result<_, _>>()?;
        names.sort();
        assert_eq!(
            names,
            ["human.jsonl", "judge.jsonl", "replies.jsonl", "report.json"]
        );
        std::fs::remove_dir_all(&dir)?;
        Ok(())
    }
}
