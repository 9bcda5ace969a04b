//! `temper-judges` alone: how well a judge agrees with humans — two JSONL label files (`{"id": .., "label": ..}`)
//! joined on id, Cohen's κ and percent agreement with seeded percentile-bootstrap 95 % CIs, and the confusion
//! matrix. No model, no tensors: the statistics half of the judges crate. Run:
//! `cargo run -p example-agreement [-- HUMAN.jsonl JUDGE.jsonl]` (default: the two files in `data/`).

use std::path::{Path, PathBuf};

use temper_judges::{AgreeConfig, AgreementReport, BootstrapConfig, Metric, Result, join, load_labels, report};

/// The example's label files: a human's and a judge's A / B / tie verdicts on the same questions (one id only in
/// each, to show the join).
fn data(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("data").join(name)
}

/// Joins the two files on id and computes κ and percent agreement with 2000-resample bootstrap CIs.
fn run(human: &Path, judge: &Path) -> Result<AgreementReport> {
    let joined = join(&load_labels(human)?, &load_labels(judge)?);
    let config = AgreeConfig {
        metrics: vec![Metric::CohenKappa, Metric::PercentAgreement],
        bootstrap: BootstrapConfig { resamples: 2000, level: 0.95, seed: 7 },
        ..AgreeConfig::default()
    };
    report(&joined, &config)
}

fn main() -> Result<()> {
    let mut args = std::env::args().skip(1);
    let (human, judge) = match (args.next(), args.next()) {
        (Some(a), Some(b)) => (PathBuf::from(a), PathBuf::from(b)),
        _ => (data("human.jsonl"), data("judge.jsonl")),
    };
    let r = run(&human, &judge)?;
    println!("{} items in both files; only in the first: {:?}; only in the second: {:?}", r.n_items, r.only_in_a, r.only_in_b);
    for m in &r.metrics {
        match (m.value, &m.ci) {
            (Some(v), Some(ci)) => println!(
                "  {:<18} {v:.3}  ({:.0} % CI {:.3} .. {:.3})",
                m.metric.name(),
                ci.level * 100.0,
                ci.lo,
                ci.hi
            ),
            _ => println!("  {:<18} undefined: {}", m.metric.name(), m.note.as_deref().unwrap_or("")),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use temper_judges::Label;

    use super::*;

    /// Cohen's κ by hand: `(p_o − p_e) / (1 − p_e)` from the joined labels.
    fn kappa_by_hand(a: &[Label], b: &[Label]) -> f64 {
        let n = a.len() as f64;
        let key = |l: &Label| format!("{l:?}");
        let p_o = a.iter().zip(b).filter(|(x, y)| x == y).count() as f64 / n;
        let mut count: BTreeMap<String, (f64, f64)> = BTreeMap::new();
        for l in a {
            count.entry(key(l)).or_default().0 += 1.0;
        }
        for l in b {
            count.entry(key(l)).or_default().1 += 1.0;
        }
        let p_e: f64 = count.values().map(|(ca, cb)| ca * cb / (n * n)).sum();
        (p_o - p_e) / (1.0 - p_e)
    }

    #[test]
    fn kappa_and_agreement_equal_the_formula_and_their_cis_bracket_them() {
        let (human, judge) = (data("human.jsonl"), data("judge.jsonl"));
        let r = run(&human, &judge).expect("agreement report");
        assert_eq!(r.n_items, 10);
        assert_eq!(r.only_in_a, vec!["q11".to_string()]);
        assert_eq!(r.only_in_b, vec!["q12".to_string()]);

        let joined = join(&load_labels(&human).expect("human"), &load_labels(&judge).expect("judge"));
        let by_hand = kappa_by_hand(&joined.a, &joined.b);
        // 7 of 10 agree; marginals A 4/4, B 4/5, tie 2/1: p_e = 0.38, κ = 0.32 / 0.62 = 16/31.
        assert!((by_hand - 16.0 / 31.0).abs() < 1e-12, "hand κ {by_hand}");
        let metric = |m: Metric| r.metrics.iter().find(|x| x.metric == m).expect("metric reported");
        let kappa = metric(Metric::CohenKappa);
        let agreement = metric(Metric::PercentAgreement);
        assert!((kappa.value.expect("κ defined") - by_hand).abs() < 1e-12);
        assert!((agreement.value.expect("agreement defined") - 0.7).abs() < 1e-12);
        for m in [kappa, agreement] {
            let v = m.value.expect("defined");
            let ci = m.ci.as_ref().expect("a CI");
            assert!(ci.lo <= v && v <= ci.hi, "{}: {v} outside [{}, {}]", m.metric.name(), ci.lo, ci.hi);
            assert!(ci.lo < ci.hi && ci.level == 0.95 && ci.valid_resamples > 1900, "{ci:?}");
        }
        // Seeded: the same report twice.
        assert_eq!(run(&human, &judge).expect("again"), r);
    }
}
