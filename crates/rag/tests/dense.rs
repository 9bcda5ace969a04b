//! MiniLM on burn against sentence-transformers: every fixed sentence's embedding has cosine ≥ 0.9999 with the
//! committed reference (`make_minilm_reference.py`), whether encoded alone or padded in a batch; and a dense
//! retriever over a small corpus finds the paraphrase. Needs the `minilm` asset (fetched and cached on first use).

use temper_rag::{DenseRetriever, Embedder, ExactIndex, MiniLm, Retriever, dot};

type TestResult = Result<(), Box<dyn std::error::Error>>;

fn model() -> Result<MiniLm, Box<dyn std::error::Error>> {
    let asset = temper_assets::find("minilm")?;
    let fetched = temper_assets::fetch(asset, &mut temper_assets::NoProgress)?;
    Ok(MiniLm::load(&fetched.dir, &burn::tensor::Device::flex())?)
}

#[test]
fn embeddings_equal_sentence_transformers() -> TestResult {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/minilm_reference.json");
    let fx: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(path)?)?;
    let sentences: Vec<&str> = fx["sentences"]
        .as_array()
        .ok_or("sentences")?
        .iter()
        .filter_map(|s| s.as_str())
        .collect();
    let want: Vec<Vec<f32>> = serde_json::from_value(fx["embeddings"].clone())?;
    assert_eq!(sentences.len(), 8);
    let m = model()?;
    assert_eq!(m.dim(), 384);
    let batched = m.encode_batch(&sentences)?;
    for (i, s) in sentences.iter().enumerate() {
        let alone = m.encode_batch(&[s])?;
        for (how, got) in [("batched", &batched[i]), ("alone", &alone[0])] {
            let norm = dot(got, got).sqrt();
            let cos = dot(got, &want[i]) / norm;
            assert!((norm - 1.0).abs() < 1e-4, "{how} {s:?}: norm {norm}");
            assert!(cos >= 0.9999, "{how} {s:?}: cosine {cos}");
        }
    }
    Ok(())
}

#[test]
fn dense_retrieval_finds_the_paraphrase() -> TestResult {
    let m = model()?;
    let docs = [
        (
            "apt",
            "Use apt-get install NAME to add software to a Debian system.",
        ),
        ("kernel", "The Linux kernel manages memory and processes."),
        (
            "mirror",
            "Mirrors are servers that copy the Debian archive.",
        ),
    ];
    let vectors = m.embed(&docs.map(|d| d.1))?;
    let mut idx = ExactIndex::new(m.dim());
    for ((id, _), v) in docs.iter().zip(&vectors) {
        idx.push(id.to_string(), v)?;
    }
    let r = DenseRetriever {
        embedder: &m,
        index: idx,
    };
    let hits = r.retrieve("how can I put new programs on my computer", 3)?;
    assert_eq!(hits[0].chunk_id, "apt");
    assert!(hits[0].score > hits[1].score);
    Ok(())
}
