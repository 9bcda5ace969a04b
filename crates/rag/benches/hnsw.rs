//! HNSW against exact search on random unit vectors: recall@10 of the approximate index (the fraction of the
//! exact top 10 it returns) and queries per second of both, plus build time and file size. Not a timed test: it
//! prints measurements. `cargo bench -p temper-rag --features hnsw --bench hnsw` (env `HNSW_N`, `HNSW_DIM`,
//! `HNSW_QUERIES`, `HNSW_EF` override the defaults 100000, 384, 1000, 100).

use std::time::Instant;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use temper_rag::{ExactIndex, HnswIndex, HnswParams, VectorSearch};

fn env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn unit(rng: &mut StdRng, dim: usize) -> Vec<f32> {
    let v: Vec<f32> = (0..dim).map(|_| rng.random::<f32>() * 2.0 - 1.0).collect();
    let n = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    v.into_iter().map(|x| x / n).collect()
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    if std::env::args().any(|a| a == "--list") {
        return Ok(());
    }
    let (n, dim, nq, ef) = (
        env("HNSW_N", 100_000),
        env("HNSW_DIM", 384),
        env("HNSW_QUERIES", 1000),
        env("HNSW_EF", 100),
    );
    let mut rng = StdRng::seed_from_u64(7);
    let vectors: Vec<Vec<f32>> = (0..n).map(|_| unit(&mut rng, dim)).collect();
    let queries: Vec<Vec<f32>> = (0..nq).map(|_| unit(&mut rng, dim)).collect();
    let ids: Vec<String> = (0..n).map(|i| i.to_string()).collect();
    let mut exact = ExactIndex::new(dim);
    for (id, v) in ids.iter().zip(&vectors) {
        exact.push(id.clone(), v)?;
    }
    let t = Instant::now();
    let hnsw = HnswIndex::build(
        ids,
        vectors,
        HnswParams {
            ef_construction: ef,
            ef_search: ef,
            seed: 7,
        },
    )?;
    let build = t.elapsed().as_secs_f64();
    let path =
        std::env::temp_dir().join(format!("temper-rag-hnsw-bench-{}.bin", std::process::id()));
    hnsw.save(&path)?;
    let size = std::fs::metadata(&path)?.len();
    let t = Instant::now();
    let hnsw = HnswIndex::open(&path)?;
    let load = t.elapsed().as_secs_f64();
    std::fs::remove_file(&path)?;

    let t = Instant::now();
    let truth: Vec<Vec<String>> = queries
        .iter()
        .map(|q| {
            exact
                .search(q, 10)
                .map(|h| h.into_iter().map(|h| h.chunk_id).collect())
        })
        .collect::<Result<_, _>>()?;
    let exact_qps = nq as f64 / t.elapsed().as_secs_f64();
    let t = Instant::now();
    let approx: Vec<Vec<String>> = queries
        .iter()
        .map(|q| {
            hnsw.search(q, 10)
                .map(|h| h.into_iter().map(|h| h.chunk_id).collect())
        })
        .collect::<Result<_, _>>()?;
    let hnsw_qps = nq as f64 / t.elapsed().as_secs_f64();
    let found: usize = truth
        .iter()
        .zip(&approx)
        .map(|(t, a)| a.iter().filter(|id| t.contains(id)).count())
        .sum();
    let recall = found as f64 / (10 * nq) as f64;
    println!(
        "hnsw n={n} dim={dim} queries={nq} ef={ef}: recall@10 {recall:.4}, hnsw {hnsw_qps:.0} q/s, exact {exact_qps:.0} q/s, \
         build {build:.1} s, file {:.1} MB, load {load:.2} s",
        size as f64 / 1e6
    );
    Ok(())
}
