//! Agreement statistics between raters (pure functions; [`crate::report`] runs them over label files): percent agreement, mean (absolute) score difference, Cohen's κ
//! (unweighted, linear, quadratic), Fleiss' κ, Krippendorff's α and the confusion matrix.
//!
//! All are pure functions on label vectors. They match scikit-learn (`cohen_kappa_score`,
//! `confusion_matrix`), statsmodels (`fleiss_kappa`) and the `krippendorff` package to 1e-9 on the
//! fixtures in `tests/fixtures/agreement_reference.json`.
//!
//! **Degenerate inputs.** A chance-corrected coefficient whose expected disagreement is zero (every
//! rating is the same label, `p_e = 1`) is undefined: these functions return `Ok(None)` there,
//! never NaN. Empty inputs also give `Ok(None)`. Inputs of different lengths are an error.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::error::{JudgeError, Result};
use crate::label::Label;

fn same_len<T, U>(what: &'static str, a: &[T], b: &[U]) -> Result<()> {
    if a.len() == b.len() {
        Ok(())
    } else {
        Err(JudgeError::Shape {
            what,
            detail: format!("rater a has {} labels, rater b has {}", a.len(), b.len()),
        })
    }
}

/// Converts labels to numbers, failing on the first string label.
pub fn numeric_labels(what: &'static str, labels: &[Label]) -> Result<Vec<f64>> {
    labels
        .iter()
        .map(|l| {
            l.as_f64().ok_or_else(|| JudgeError::NotNumeric {
                what,
                label: l.to_string(),
            })
        })
        .collect()
}

/// Fraction of items on which the two raters give the same label. `None` when empty.
pub fn percent_agreement(a: &[Label], b: &[Label]) -> Result<Option<f64>> {
    same_len("percent_agreement", a, b)?;
    if a.is_empty() {
        return Ok(None);
    }
    let same = a.iter().zip(b).filter(|(x, y)| x == y).count();
    Ok(Some(same as f64 / a.len() as f64))
}

/// Percent agreement over the items where neither rater chose a tie label (MT-bench's "w/o tie").
/// `None` when every item has a tie.
pub fn percent_agreement_without_ties(
    a: &[Label],
    b: &[Label],
    tie_labels: &[Label],
) -> Result<Option<f64>> {
    same_len("percent_agreement_without_ties", a, b)?;
    let (mut kept, mut same) = (0usize, 0usize);
    for (x, y) in a.iter().zip(b) {
        if tie_labels.contains(x) || tie_labels.contains(y) {
            continue;
        }
        kept += 1;
        same += usize::from(x == y);
    }
    Ok((kept > 0).then(|| same as f64 / kept as f64))
}

/// Mean of `a - b` (the signed "delta" between two raters' scores). `None` when empty.
pub fn mean_difference(a: &[f64], b: &[f64]) -> Result<Option<f64>> {
    same_len("mean_difference", a, b)?;
    if a.is_empty() {
        return Ok(None);
    }
    Ok(Some(
        a.iter().zip(b).map(|(x, y)| x - y).sum::<f64>() / a.len() as f64,
    ))
}

/// Mean of `|a - b|`. `None` when empty.
pub fn mean_abs_difference(a: &[f64], b: &[f64]) -> Result<Option<f64>> {
    same_len("mean_abs_difference", a, b)?;
    if a.is_empty() {
        return Ok(None);
    }
    Ok(Some(
        a.iter().zip(b).map(|(x, y)| (x - y).abs()).sum::<f64>() / a.len() as f64,
    ))
}

/// A confusion matrix between two raters: `counts[i][j]` is the number of items that rater a
/// labelled `labels[i]` and rater b labelled `labels[j]`. `labels` is the sorted union of both.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ConfusionMatrix {
    /// Sorted union of the labels both raters used; indexes rows and columns.
    pub labels: Vec<Label>,
    /// Rows: rater a; columns: rater b.
    pub counts: Vec<Vec<u64>>,
}

/// Builds the confusion matrix of two label vectors (rows = `a`).
pub fn confusion_matrix(a: &[Label], b: &[Label]) -> Result<ConfusionMatrix> {
    same_len("confusion_matrix", a, b)?;
    let index: BTreeMap<&Label, usize> = {
        let mut m: BTreeMap<&Label, usize> = a.iter().chain(b).map(|l| (l, 0)).collect();
        for (i, v) in m.values_mut().enumerate() {
            *v = i;
        }
        m
    };
    let k = index.len();
    let mut counts = vec![vec![0u64; k]; k];
    for (x, y) in a.iter().zip(b) {
        counts[index[x]][index[y]] += 1;
    }
    Ok(ConfusionMatrix {
        labels: index.keys().map(|l| (*l).clone()).collect(),
        counts,
    })
}

/// Weighting of disagreements in Cohen's κ.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum KappaWeights {
    /// Every disagreement weighs 1 (plain Cohen's κ).
    Unweighted,
    /// Weight `|i - j|` between label indices `i`, `j` in the sorted label set.
    Linear,
    /// Weight `(i - j)²` between label indices.
    Quadratic,
}

/// Cohen's κ between two raters (Cohen 1960; weighted: Cohen 1968), as scikit-learn's
/// `cohen_kappa_score`: the categories are the sorted union of both raters' labels and weights are
/// distances between category *indices*, not label values. `None` when the expected weighted
/// disagreement is zero (e.g. both raters always give one label) or the input is empty.
pub fn cohen_kappa(a: &[Label], b: &[Label], weights: KappaWeights) -> Result<Option<f64>> {
    let cm = confusion_matrix(a, b)?;
    let k = cm.labels.len();
    let n = a.len() as f64;
    if a.is_empty() {
        return Ok(None);
    }
    let row: Vec<f64> = cm
        .counts
        .iter()
        .map(|r| r.iter().sum::<u64>() as f64)
        .collect();
    let col: Vec<f64> = (0..k)
        .map(|j| cm.counts.iter().map(|r| r[j]).sum::<u64>() as f64)
        .collect();
    let w = |i: usize, j: usize| -> f64 {
        let d = i.abs_diff(j) as f64;
        match weights {
            KappaWeights::Unweighted => f64::from(u8::from(i != j)),
            KappaWeights::Linear => d,
            KappaWeights::Quadratic => d * d,
        }
    };
    let (mut observed, mut expected) = (0.0, 0.0);
    for (i, (counts_i, row_i)) in cm.counts.iter().zip(&row).enumerate() {
        for (j, (&c, col_j)) in counts_i.iter().zip(&col).enumerate() {
            observed += w(i, j) * c as f64;
            expected += w(i, j) * row_i * col_j / n;
        }
    }
    Ok((expected > 0.0).then(|| 1.0 - observed / expected))
}

/// Turns per-item ratings (`ratings[item][rater]`, any number of raters per item) into Fleiss'
/// items × categories count table. Returns the sorted categories and the table.
pub fn fleiss_table(ratings: &[Vec<Label>]) -> (Vec<Label>, Vec<Vec<u64>>) {
    let mut cats: Vec<Label> = ratings.iter().flatten().cloned().collect();
    cats.sort();
    cats.dedup();
    let table = ratings
        .iter()
        .map(|item| {
            let mut row = vec![0u64; cats.len()];
            for l in item {
                if let Ok(i) = cats.binary_search(l) {
                    row[i] += 1;
                }
            }
            row
        })
        .collect();
    (cats, table)
}

/// Fleiss' κ (Fleiss 1971) on an items × categories table of counts, as statsmodels'
/// `fleiss_kappa(table, method="fleiss")`. Every row must sum to the same number of raters (≥ 2).
/// `None` when the table is empty or chance agreement is 1 (one category used throughout).
pub fn fleiss_kappa(table: &[Vec<u64>]) -> Result<Option<f64>> {
    let Some(first) = table.first() else {
        return Ok(None);
    };
    let n_cat = first.len();
    let n_rat: u64 = first.iter().sum();
    for (i, row) in table.iter().enumerate() {
        if row.len() != n_cat {
            return Err(JudgeError::Shape {
                what: "fleiss_kappa",
                detail: format!("row {i} has {} categories, row 0 has {n_cat}", row.len()),
            });
        }
        let s: u64 = row.iter().sum();
        if s != n_rat {
            return Err(JudgeError::Shape {
                what: "fleiss_kappa",
                detail: format!(
                    "row {i} has {s} ratings, row 0 has {n_rat}; every item needs the same number of raters"
                ),
            });
        }
    }
    if n_rat < 2 {
        return Err(JudgeError::Shape {
            what: "fleiss_kappa",
            detail: format!("{n_rat} rater(s) per item; need at least 2"),
        });
    }
    let n_sub = table.len() as f64;
    let total = n_sub * n_rat as f64;
    let nr = n_rat as f64;
    let p_mean = table
        .iter()
        .map(|row| (row.iter().map(|&c| (c * c) as f64).sum::<f64>() - nr) / (nr * (nr - 1.0)))
        .sum::<f64>()
        / n_sub;
    let p_exp: f64 = (0..n_cat)
        .map(|j| {
            let p = table.iter().map(|r| r[j]).sum::<u64>() as f64 / total;
            p * p
        })
        .sum();
    Ok((p_exp < 1.0).then(|| (p_mean - p_exp) / (1.0 - p_exp)))
}

/// The level of measurement for Krippendorff's α, which picks the distance between two values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AlphaLevel {
    /// Distance 1 between different labels.
    Nominal,
    /// Rank distance: `(Σ_{g=c..k} n_g − (n_c + n_k)/2)²` over the sorted labels.
    Ordinal,
    /// Squared difference of the numeric values; every label must be a number.
    Interval,
}

/// Krippendorff's α (Krippendorff 2011, "Computing Krippendorff's alpha-reliability"), as the
/// `krippendorff` Python package. `data[rater][unit]`, `None` = missing rating; all rows must have
/// the same number of units. Units with fewer than two ratings are not pairable and are ignored.
/// `None` when fewer than two distinct values are pairable or expected disagreement is zero.
pub fn krippendorff_alpha(data: &[Vec<Option<Label>>], level: AlphaLevel) -> Result<Option<f64>> {
    let Some(first) = data.first() else {
        return Ok(None);
    };
    let n_units = first.len();
    for (r, row) in data.iter().enumerate() {
        if row.len() != n_units {
            return Err(JudgeError::Shape {
                what: "krippendorff_alpha",
                detail: format!("rater {r} has {} units, rater 0 has {n_units}", row.len()),
            });
        }
    }
    let mut domain: Vec<Label> = data.iter().flatten().flatten().cloned().collect();
    domain.sort();
    domain.dedup();
    let v = domain.len();
    if v < 2 {
        return Ok(None);
    }
    let values: Vec<f64> = match level {
        AlphaLevel::Interval => numeric_labels("krippendorff_alpha (interval)", &domain)?,
        _ => Vec::new(),
    };
    // Coincidence matrix o[c][k].
    let mut o = vec![vec![0.0f64; v]; v];
    let mut counts = vec![0.0f64; v];
    for u in 0..n_units {
        counts.iter_mut().for_each(|c| *c = 0.0);
        let mut m = 0.0;
        for row in data {
            if let Some(Ok(i)) = row[u].as_ref().map(|l| domain.binary_search(l)) {
                counts[i] += 1.0;
                m += 1.0;
            }
        }
        if m < 2.0 {
            continue;
        }
        for c in 0..v {
            if counts[c] == 0.0 {
                continue;
            }
            for k in 0..v {
                let pairs = if c == k {
                    counts[c] * (counts[c] - 1.0)
                } else {
                    counts[c] * counts[k]
                };
                o[c][k] += pairs / (m - 1.0);
            }
        }
    }
    let n_v: Vec<f64> = (0..v).map(|k| (0..v).map(|c| o[c][k]).sum()).collect();
    let n: f64 = n_v.iter().sum();
    if n <= 1.0 {
        return Ok(None);
    }
    let dist = |c: usize, k: usize| -> f64 {
        match level {
            AlphaLevel::Nominal => f64::from(u8::from(c != k)),
            AlphaLevel::Ordinal => {
                let (lo, hi) = (c.min(k), c.max(k));
                let s: f64 = n_v[lo..=hi].iter().sum::<f64>() - (n_v[lo] + n_v[hi]) / 2.0;
                s * s
            }
            AlphaLevel::Interval => (values[c] - values[k]).powi(2),
        }
    };
    let (mut d_o, mut d_e) = (0.0, 0.0);
    for c in 0..v {
        for k in 0..v {
            let d = dist(c, k);
            d_o += o[c][k] * d;
            let e = (n_v[c] * n_v[k] - if c == k { n_v[c] } else { 0.0 }) / (n - 1.0);
            d_e += e * d;
        }
    }
    Ok((d_e > 0.0).then(|| 1.0 - d_o / d_e))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(s: &str) -> Vec<Label> {
        s.split_whitespace().map(Label::from).collect()
    }

    #[test]
    fn percent_agreement_counts_and_skips_ties() -> Result<()> {
        let a = labels("A B tie A B");
        let b = labels("A A tie B B");
        assert_eq!(percent_agreement(&a, &b)?, Some(0.6));
        // Items 0, 1, 3, 4 have no tie; 2 of those 4 agree.
        assert_eq!(
            percent_agreement_without_ties(&a, &b, &labels("tie"))?,
            Some(0.5)
        );
        assert_eq!(percent_agreement(&[], &[])?, None);
        assert!(percent_agreement(&a, &b[..2]).is_err());
        Ok(())
    }

    #[test]
    fn perfect_agreement_gives_kappa_one_and_degenerate_gives_none() -> Result<()> {
        let a = labels("x y z x");
        for w in [
            KappaWeights::Unweighted,
            KappaWeights::Linear,
            KappaWeights::Quadratic,
        ] {
            assert_eq!(cohen_kappa(&a, &a, w)?, Some(1.0));
        }
        let same = labels("x x x");
        assert_eq!(cohen_kappa(&same, &same, KappaWeights::Unweighted)?, None);
        assert_eq!(fleiss_kappa(&[vec![3, 0], vec![3, 0]])?, None);
        let rows = vec![
            vec![Some(Label::from("x")); 3],
            vec![Some(Label::from("x")); 3],
        ];
        assert_eq!(krippendorff_alpha(&rows, AlphaLevel::Nominal)?, None);
        Ok(())
    }

    #[test]
    fn fleiss_rejects_ragged_tables() {
        assert!(fleiss_kappa(&[vec![2, 0], vec![1, 0]]).is_err());
        assert!(fleiss_kappa(&[vec![1, 0], vec![0, 1]]).is_err());
    }

    #[test]
    fn interval_alpha_rejects_strings() {
        let rows = vec![
            vec![Some(Label::from(1.0)), Some(Label::from("x"))],
            vec![Some(Label::from(2.0)), None],
        ];
        assert!(matches!(
            krippendorff_alpha(&rows, AlphaLevel::Interval),
            Err(JudgeError::NotNumeric { .. })
        ));
    }
}
