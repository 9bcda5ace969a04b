//! BFCL self-check: scores, for every category, the calls built from BFCL's own possible answers with the AST
//! checker, and prints the accuracy per category (a correct checker gives 100 %) and any rejected id.
//!
//! With a second argument, a `verdicts.jsonl` made by `tests/fixtures/bfcl/make_fixtures.py` (responses with the
//! verdicts of BFCL's own Python checker), it also counts how often the two checkers agree.
//!
//! `cargo run -p temper-tools --example bfcl_selfcheck -- <bfcl_eval/data> [verdicts.jsonl]` (the `bfcl` asset's
//! data directory).

use std::path::PathBuf;

use anyhow::Context;
use serde_json::Value;
use temper_tools::bfcl::checker::{Call, check};
use temper_tools::bfcl::{Category, Dataset, score};

fn main() -> anyhow::Result<()> {
    let dir = PathBuf::from(
        std::env::args()
            .nth(1)
            .context("usage: bfcl_selfcheck <bfcl_eval/data directory>")?,
    );
    for category in Category::ALL {
        let data = Dataset::load(&dir, category)?;
        let responses = data.reference_responses();
        let report = score(&data, &responses)?;
        println!(
            "{:<18} {:>4}/{:<4} {:.1} %",
            category.name(),
            report.correct,
            report.total,
            100.0 * report.accuracy
        );
        for v in report.results.iter().filter(|v| !v.correct) {
            println!("  {}: {}", v.id, v.reason);
        }
    }
    let Some(verdicts) = std::env::args().nth(2) else {
        return Ok(());
    };
    let mut data = std::collections::HashMap::new();
    for c in Category::ALL {
        data.insert(c.name(), Dataset::load(&dir, c)?);
    }
    let (mut agree, mut total) = (0, 0);
    for (n, line) in std::fs::read_to_string(&verdicts)?.lines().enumerate() {
        let v: Value =
            serde_json::from_str(line).with_context(|| format!("{verdicts}:{}", n + 1))?;
        let set = &data[v["category"].as_str().context("category")?];
        let item = set
            .items
            .iter()
            .find(|i| i.id == v["id"])
            .context("unknown id")?;
        let calls: Vec<Call> = v["calls"]
            .as_array()
            .context("calls")?
            .iter()
            .map(|c| Call {
                name: c["name"].as_str().unwrap_or_default().to_string(),
                arguments: c["arguments"].as_object().cloned().unwrap_or_default(),
            })
            .collect();
        let ours = check(set.category, &item.functions, &item.answers, &calls);
        total += 1;
        if ours.is_ok() == (v["bfcl_correct"] == Value::Bool(true)) {
            agree += 1;
        } else {
            println!(
                "disagree: {} {} ours={ours:?} bfcl={}",
                v["id"], v["variant"], v["bfcl_correct"]
            );
        }
    }
    println!("agreement with BFCL's checker: {agree}/{total}");
    Ok(())
}
