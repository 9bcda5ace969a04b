//! MiniLM encoding speed: Temper's encoder ([`MiniLm`] through [`Embedder::embed`]: sorted by length, batches of
//! 32) against sentence-transformers (`xtask/bench/minilm_bench.py`, `model.encode(texts, batch_size=32)`, which
//! also sorts by length) on the same texts, in one run, interleaved: Temper, Python, Temper, Python, … so that both
//! see the same machine load. Texts: the Debian FAQ (asset `debian-faq`) cut as `temper rag index` cuts it
//! (`faq_sections`: Markdown sections of at most 1500 bytes, heading prepended) and into sentences packed to at
//! most 200 bytes (`faq_sentences`, the first 1024).
//!
//! `cargo bench -p temper-rag --features dense --bench minilm` measures Temper only; with `MINILM_VS_PYTHON` set
//! to a Python that has sentence-transformers and torch it runs both (`cargo xtask bench --vs transformers` does).
//! `MINILM_ROUNDS` (default 3) sets the number of A/B rounds, `MINILM_LIMIT` keeps only the first N texts of each
//! set (in index order; default all). The last stdout line is a JSON object with texts/s per round for each side.

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::time::Instant;

use temper_rag::{Chunker, CorpusIndex, Embedder, IndexConfig, MiniLm};

type Res<T> = Result<T, Box<dyn std::error::Error>>;

const BATCH: usize = 32;
const THREADS: usize = 2;

fn texts(dir: &std::path::Path, chunker: Chunker, limit: usize) -> Res<Vec<String>> {
    let mut idx = CorpusIndex::new(IndexConfig {
        chunker,
        ..IndexConfig::default()
    })?;
    idx.update_from_dir(dir)?;
    Ok(idx
        .chunks()
        .iter()
        .map(|c| c.indexed_text())
        .filter(|t| !t.trim().is_empty())
        .take(limit)
        .collect())
}

fn median(v: &[f64]) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    let n = s.len();
    if n % 2 == 1 {
        s[n / 2]
    } else {
        (s[n / 2 - 1] + s[n / 2]) / 2.0
    }
}

fn main() -> Res<()> {
    if std::env::args().any(|a| a == "--list") {
        return Ok(());
    }
    let rounds: usize = std::env::var("MINILM_ROUNDS")
        .ok()
        .map(|v| v.parse())
        .transpose()?
        .unwrap_or(3);
    let fetch = |name: &str| -> Res<std::path::PathBuf> {
        let asset = temper_assets::find(name)?;
        Ok(temper_assets::fetch(asset, &mut temper_assets::NoProgress)?.dir)
    };
    let (model_dir, faq) = (fetch("minilm")?, fetch("debian-faq")?);
    let limit: usize = std::env::var("MINILM_LIMIT")
        .ok()
        .map(|v| v.parse())
        .transpose()?
        .unwrap_or(usize::MAX);
    let sets: Vec<(&str, Vec<String>)> = vec![
        (
            "faq_sections",
            texts(&faq, Chunker::Markdown { max_bytes: 1500 }, limit)?,
        ),
        (
            "faq_sentences",
            texts(&faq, Chunker::Sentences { max_bytes: 200 }, limit.min(1024))?,
        ),
    ];
    let model = MiniLm::load(&model_dir, &burn::tensor::Device::flex())?;
    let mut python = match std::env::var_os("MINILM_VS_PYTHON") {
        Some(py) => {
            let json: serde_json::Map<String, serde_json::Value> = sets
                .iter()
                .map(|(n, t)| (n.to_string(), serde_json::json!(t)))
                .collect();
            let path =
                std::env::temp_dir().join(format!("minilm-bench-{}.json", std::process::id()));
            std::fs::write(&path, serde_json::to_vec(&json)?)?;
            let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../../xtask/bench/minilm_bench.py");
            let mut child = Command::new(py)
                .arg(script)
                .arg(&model_dir)
                .arg(&path)
                .arg(BATCH.to_string())
                .arg(THREADS.to_string())
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .spawn()?;
            let stdin = child.stdin.take().ok_or("python stdin")?;
            let mut stdout = BufReader::new(child.stdout.take().ok_or("python stdout")?);
            let mut ready = String::new();
            stdout.read_line(&mut ready)?;
            let ready: serde_json::Value = serde_json::from_str(&ready)
                .map_err(|e| format!("minilm_bench.py did not start ({e}): {ready:?}"))?;
            eprintln!("sentence-transformers side ready: {ready}");
            std::fs::remove_file(&path)?;
            Some((child, stdin, stdout, ready))
        }
        None => None,
    };
    // Warm-up of the Temper side (allocator, thread pool).
    for (_, t) in &sets {
        let refs: Vec<&str> = t.iter().take(BATCH).map(String::as_str).collect();
        model.embed(&refs)?;
    }
    let mut report = serde_json::Map::new();
    for (name, t) in &sets {
        let refs: Vec<&str> = t.iter().map(String::as_str).collect();
        let (mut ours, mut theirs) = (Vec::new(), Vec::new());
        for round in 0..rounds {
            let start = Instant::now();
            model.embed(&refs)?;
            let s = start.elapsed().as_secs_f64();
            ours.push(refs.len() as f64 / s);
            let mut line = format!(
                "minilm/{name} round {round}: temper {:.1} texts/s",
                refs.len() as f64 / s
            );
            if let Some((_, stdin, stdout, _)) = python.as_mut() {
                writeln!(stdin, "{name}")?;
                stdin.flush()?;
                let mut reply = String::new();
                stdout.read_line(&mut reply)?;
                let v: serde_json::Value = serde_json::from_str(&reply)
                    .map_err(|e| format!("minilm_bench.py: {e}: {reply:?}"))?;
                let secs = v["seconds"].as_f64().ok_or("minilm_bench.py: no seconds")?;
                theirs.push(refs.len() as f64 / secs);
                line.push_str(&format!(
                    ", sentence-transformers {:.1} texts/s",
                    refs.len() as f64 / secs
                ));
            }
            eprintln!("{line}");
        }
        let ratios: Vec<f64> = ours.iter().zip(&theirs).map(|(a, b)| a / b).collect();
        let mut entry = serde_json::json!({
            "texts": refs.len(), "batch": BATCH, "threads": THREADS,
            "cores": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
            "temper_texts_per_s": ours, "temper_median": median(&ours),
        });
        if !theirs.is_empty() {
            entry["st_texts_per_s"] = serde_json::json!(theirs);
            entry["st_median"] = serde_json::json!(median(&theirs));
            entry["ratios"] = serde_json::json!(ratios);
            entry["ratio_median"] = serde_json::json!(median(&ratios));
        }
        report.insert(format!("minilm/{name}"), entry);
    }
    if let Some((mut child, stdin, _, ready)) = python {
        drop(stdin);
        child.wait()?;
        report.insert("baseline".into(), ready);
    }
    println!("{}", serde_json::Value::Object(report));
    Ok(())
}
