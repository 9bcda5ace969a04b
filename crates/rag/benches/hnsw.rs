//! HNSW against exact search: recall@10 of the approximate index (the fraction of the exact top 10 it returns) and
//! queries per second of both, for several search widths `ef` over one graph, plus build time and file size. Not a
//! timed test: it prints measurements.
//!
//! `cargo bench -p temper-rag --features hnsw --bench hnsw`; environment: `HNSW_N` (100000), `HNSW_DIM` (384),
//! `HNSW_QUERIES` (1000), `HNSW_EF_CONSTRUCTION` (100), `HNSW_EFS` (`50,100,200,400,800`: the search widths
//! tried), `HNSW_DATA`:
//! - `random` (default): unit vectors uniform in direction — no cluster structure, the hard case for a graph;
//! - `clustered`: `HNSW_N / 100` random unit centres; each vector (and each query, drawn the same way but not
//!   from the set) is a centre plus Gaussian noise of norm uniform in [0.6, 1.2], normalised — so a vector's
//!   cosine to its centre is ≈ 0.6–0.85 and to another of its cluster ≈ 0.4–0.7, the range MiniLM gives related
//!   sentences, while unrelated ones are near 0.

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

fn normalise(v: Vec<f32>) -> Vec<f32> {
    let n = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    v.into_iter().map(|x| x / n).collect()
}

fn unit(rng: &mut StdRng, dim: usize) -> Vec<f32> {
    normalise((0..dim).map(|_| rng.random::<f32>() * 2.0 - 1.0).collect())
}

/// A standard normal sample (Box–Muller).
fn gauss(rng: &mut StdRng) -> f32 {
    let u: f32 = rng.random::<f32>().max(f32::MIN_POSITIVE);
    let v: f32 = rng.random();
    (-2.0 * u.ln()).sqrt() * (std::f32::consts::TAU * v).cos()
}

/// A vector of a random cluster: centre + noise of norm uniform in [0.6, 1.2], normalised.
fn clustered(rng: &mut StdRng, centres: &[Vec<f32>]) -> Vec<f32> {
    let c = &centres[rng.random_range(0..centres.len())];
    let noise: Vec<f32> = (0..c.len()).map(|_| gauss(rng)).collect();
    let scale = rng.random_range(0.6f32..1.2) / noise.iter().map(|x| x * x).sum::<f32>().sqrt();
    normalise(c.iter().zip(&noise).map(|(c, n)| c + scale * n).collect())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    if std::env::args().any(|a| a == "--list") {
        return Ok(());
    }
    let (n, dim, nq, ef_c) = (
        env("HNSW_N", 100_000),
        env("HNSW_DIM", 384),
        env("HNSW_QUERIES", 1000),
        env("HNSW_EF_CONSTRUCTION", 100),
    );
    let efs: Vec<usize> = std::env::var("HNSW_EFS")
        .unwrap_or_else(|_| "50,100,200,400,800".into())
        .split(',')
        .map(|s| s.trim().parse())
        .collect::<Result<_, _>>()?;
    let data = std::env::var("HNSW_DATA").unwrap_or_else(|_| "random".into());
    let mut rng = StdRng::seed_from_u64(7);
    let (vectors, queries): (Vec<Vec<f32>>, Vec<Vec<f32>>) = match data.as_str() {
        "random" => (
            (0..n).map(|_| unit(&mut rng, dim)).collect(),
            (0..nq).map(|_| unit(&mut rng, dim)).collect(),
        ),
        "clustered" => {
            let centres: Vec<Vec<f32>> =
                (0..(n / 100).max(1)).map(|_| unit(&mut rng, dim)).collect();
            (
                (0..n).map(|_| clustered(&mut rng, &centres)).collect(),
                (0..nq).map(|_| clustered(&mut rng, &centres)).collect(),
            )
        }
        other => return Err(format!("HNSW_DATA={other}: random or clustered").into()),
    };
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
            ef_construction: ef_c,
            ef_search: efs[0],
            seed: 7,
        },
    )?;
    let build = t.elapsed().as_secs_f64();
    let path =
        std::env::temp_dir().join(format!("temper-rag-hnsw-bench-{}.bin", std::process::id()));
    hnsw.save(&path)?;
    drop(hnsw);
    let size = std::fs::metadata(&path)?.len();
    println!(
        "hnsw data={data} n={n} dim={dim} queries={nq} ef_construction={ef_c} M=32: build {build:.1} s, file {:.1} MB",
        size as f64 / 1e6
    );

    let exact_top10 = || -> Result<Vec<Vec<String>>, temper_rag::RagError> {
        queries
            .iter()
            .map(|q| {
                exact
                    .search(q, 10)
                    .map(|h| h.into_iter().map(|h| h.chunk_id).collect())
            })
            .collect()
    };
    let truth = exact_top10()?;
    for ef in efs {
        // Exact search timed again next to each HNSW setting, so each ratio compares runs under the same load.
        let t = Instant::now();
        exact_top10()?;
        let exact_qps = nq as f64 / t.elapsed().as_secs_f64();
        let t = Instant::now();
        let hnsw = HnswIndex::open_with_ef(&path, Some(ef))?;
        let load = t.elapsed().as_secs_f64();
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
            "ef={ef}: recall@10 {recall:.4}, hnsw {hnsw_qps:.0} queries/s, exact {exact_qps:.0} queries/s: {:.2}x (reopened in {load:.2} s)",
            hnsw_qps / exact_qps
        );
    }
    std::fs::remove_file(&path)?;
    Ok(())
}
