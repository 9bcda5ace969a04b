//! BM25 scores against Python's `rank_bm25` and metrics against `pytrec_eval`, on fixtures that
//! `make_fixtures.py` wrote once (`fixtures/*.json`).

use std::collections::HashMap;

use temper_rag::metrics::{Qrels, ndcg_at, precision_at, rank_run, recall_at, reciprocal_rank};
use temper_rag::{AnalyzerConfig, Bm25, Bm25Params, Idf};

type TestResult = Result<(), Box<dyn std::error::Error>>;

fn fixture(name: &str) -> Result<serde_json::Value, Box<dyn std::error::Error>> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name);
    Ok(serde_json::from_str(&std::fs::read_to_string(&path)?)?)
}

fn words(v: &serde_json::Value) -> Vec<String> {
    v.as_array()
        .into_iter()
        .flatten()
        .filter_map(|w| w.as_str().map(str::to_string))
        .collect()
}

#[test]
fn bm25_equals_rank_bm25_for_both_idf_variants_and_several_k1_b() -> TestResult {
    let fx = fixture("bm25_rank_bm25.json")?;
    let docs: Vec<Vec<String>> = fx["docs"]
        .as_array()
        .ok_or("docs")?
        .iter()
        .map(words)
        .collect();
    let queries: Vec<Vec<String>> = fx["queries"]
        .as_array()
        .ok_or("queries")?
        .iter()
        .map(words)
        .collect();
    let cases = fx["cases"].as_array().ok_or("cases")?;
    assert_eq!(cases.len(), 10);
    for case in cases {
        let k1 = case["k1"].as_f64().ok_or("k1")?;
        let b = case["b"].as_f64().ok_or("b")?;
        let idf = match case["idf"].as_str() {
            Some("okapi") => Idf::Okapi { epsilon: 0.25 },
            Some("lucene") => Idf::Lucene,
            other => return Err(format!("idf {other:?}").into()),
        };
        let mut bm25 = Bm25::new(Bm25Params { k1, b, idf }, AnalyzerConfig::default())?;
        bm25.extend_terms(
            docs.iter()
                .enumerate()
                .map(|(i, d)| (format!("d{i}"), d.clone())),
        );
        for (q, want) in queries
            .iter()
            .zip(case["scores"].as_array().ok_or("scores")?)
        {
            let got = bm25.scores_terms(q);
            let want: Vec<f64> = want
                .as_array()
                .ok_or("row")?
                .iter()
                .filter_map(|x| x.as_f64())
                .collect();
            assert_eq!(got.len(), want.len());
            for (g, w) in got.iter().zip(&want) {
                assert!(
                    (g - w).abs() < 1e-9,
                    "k1={k1} b={b} {idf:?} query {q:?}: {got:?} vs {want:?}"
                );
            }
        }
    }
    Ok(())
}

#[test]
fn metrics_equal_pytrec_eval_with_ties_and_graded_relevance() -> TestResult {
    let fx = fixture("metrics_pytrec_eval.json")?;
    let qrels_all: HashMap<String, Qrels> = serde_json::from_value(fx["qrels"].clone())?;
    let runs: HashMap<String, HashMap<String, f64>> = serde_json::from_value(fx["run"].clone())?;
    let values: HashMap<String, HashMap<String, f64>> =
        serde_json::from_value(fx["values"].clone())?;
    assert_eq!(values.len(), 4);
    for (q, want) in &values {
        let run: Vec<(String, f64)> = runs[q].iter().map(|(d, s)| (d.clone(), *s)).collect();
        let ranked = rank_run(&run);
        let qrels = &qrels_all[q];
        let got: HashMap<&str, f64> = HashMap::from([
            ("recall_1", recall_at(&ranked, qrels, 1)),
            ("recall_5", recall_at(&ranked, qrels, 5)),
            ("recall_10", recall_at(&ranked, qrels, 10)),
            ("P_1", precision_at(&ranked, qrels, 1)),
            ("P_5", precision_at(&ranked, qrels, 5)),
            ("recip_rank", reciprocal_rank(&ranked, qrels)),
            ("ndcg_cut_3", ndcg_at(&ranked, qrels, 3)),
            ("ndcg_cut_10", ndcg_at(&ranked, qrels, 10)),
        ]);
        assert_eq!(want.len(), got.len());
        for (m, w) in want {
            let g = got.get(m.as_str()).ok_or(format!("measure {m}"))?;
            assert!((g - w).abs() < 1e-12, "{q} {m}: {g} vs pytrec_eval {w}");
        }
    }
    Ok(())
}
