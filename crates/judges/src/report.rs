//! Agreement reports (the library side of `temper agree`): load two JSONL label files, join them on `id`, and
//! compute every agreement metric of [`crate::stats`] with a bootstrap CI into one serializable
//! [`AgreementReport`].
//!
//! File format, one JSON object per line (blank lines are skipped):
//! `{"id": "q1", "label": "A"}` or `{"id": 17, "label": 7}`. `id` is a string or an integer; `label` a
//! string or a number. Other keys are an error (so a typo such as `"lable"` is caught).

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::path::Path;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::bootstrap::{BootstrapConfig, ConfidenceInterval, bootstrap_ci};
use crate::error::{JudgeError, Result};
use crate::label::Label;
use crate::stats::{
    AlphaLevel, ConfusionMatrix, KappaWeights, cohen_kappa, confusion_matrix, fleiss_kappa,
    fleiss_table, krippendorff_alpha, mean_abs_difference, mean_difference, numeric_labels,
    percent_agreement, percent_agreement_without_ties,
};

/// An item id, as written in the file (an integer id `17` becomes `"17"`).
pub type Id = String;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLabel {
    id: serde_json::Value,
    label: serde_json::Value,
}

/// Turns a JSON id (string or integer) into an [`Id`]; `None` for other JSON types.
pub fn id_from_json(v: &serde_json::Value) -> Option<Id> {
    match v {
        serde_json::Value::String(s) => Some(s.clone()),
        serde_json::Value::Number(n) if n.is_i64() || n.is_u64() => Some(n.to_string()),
        _ => None,
    }
}

/// Reads a JSONL label file. Errors name the file and the 1-based line: bad JSON, a missing or
/// extra key, an id that is not a string/integer, a label that is not a string/number, a duplicate id.
pub fn load_labels(path: &Path) -> Result<Vec<(Id, Label)>> {
    let text = std::fs::read_to_string(path).map_err(|source| JudgeError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let mut out = Vec::new();
    let mut seen: HashMap<Id, usize> = HashMap::new();
    for (i, line) in text.lines().enumerate() {
        let line_no = i + 1;
        let err = |message: String| JudgeError::Parse {
            path: path.to_path_buf(),
            line: line_no,
            message,
        };
        if line.trim().is_empty() {
            continue;
        }
        let raw: RawLabel = serde_json::from_str(line).map_err(|e| err(json_line_error(&e)))?;
        let id = id_from_json(&raw.id).ok_or_else(|| {
            err(format!(
                "`id` must be a string or an integer, got {}",
                raw.id
            ))
        })?;
        let label = match &raw.label {
            serde_json::Value::String(s) => Label::Str(s.clone()),
            serde_json::Value::Number(n) => match n.as_f64() {
                Some(x) => Label::Num(x),
                None => return Err(err(format!("label {n} is not representable as f64"))),
            },
            other => {
                return Err(err(format!(
                    "`label` must be a string or a number, got {other}"
                )));
            }
        };
        if let Some(prev) = seen.insert(id.clone(), line_no) {
            return Err(err(format!(
                "duplicate id {id:?} (first seen on line {prev})"
            )));
        }
        out.push((id, label));
    }
    if out.is_empty() {
        return Err(JudgeError::Data {
            path: path.to_path_buf(),
            message: "no labels in the file".into(),
        });
    }
    Ok(out)
}

/// A serde_json error on one JSONL line as `what (column C)`, without its own "at line 1 column C", which would
/// contradict the file's line number in front of it.
pub(crate) fn json_line_error(e: &serde_json::Error) -> String {
    let text = e.to_string();
    let what = text.split(" at line ").next().unwrap_or(&text);
    format!("{what} (column {})", e.column())
}

/// Two label files joined on id.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Joined {
    /// Ids present in both files, in the order of file a.
    pub ids: Vec<Id>,
    /// Rater a's labels, aligned with `ids`.
    pub a: Vec<Label>,
    /// Rater b's labels, aligned with `ids`.
    pub b: Vec<Label>,
    /// Ids only in file a (in file order).
    pub only_in_a: Vec<Id>,
    /// Ids only in file b (in file order).
    pub only_in_b: Vec<Id>,
}

/// Inner-joins two label lists on id, reporting the ids present in only one of them.
pub fn join(a: &[(Id, Label)], b: &[(Id, Label)]) -> Joined {
    let in_b: HashMap<&str, &Label> = b.iter().map(|(id, l)| (id.as_str(), l)).collect();
    let in_a: HashSet<&str> = a.iter().map(|(id, _)| id.as_str()).collect();
    let mut j = Joined {
        ids: vec![],
        a: vec![],
        b: vec![],
        only_in_a: vec![],
        only_in_b: vec![],
    };
    for (id, la) in a {
        match in_b.get(id.as_str()) {
            Some(lb) => {
                j.ids.push(id.clone());
                j.a.push(la.clone());
                j.b.push((*lb).clone());
            }
            None => j.only_in_a.push(id.clone()),
        }
    }
    j.only_in_b = b
        .iter()
        .filter(|(id, _)| !in_a.contains(id.as_str()))
        .map(|(id, _)| id.clone())
        .collect();
    j
}

/// One agreement metric between two raters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Metric {
    /// Mean of `a - b` (numeric labels).
    MeanDifference,
    /// Mean of `|a - b|` (numeric labels).
    MeanAbsDifference,
    /// Fraction of identical labels.
    PercentAgreement,
    /// Fraction of identical labels among items where neither label is a tie label.
    PercentAgreementWithoutTies,
    /// Cohen's κ.
    CohenKappa,
    /// Cohen's κ with linear weights.
    WeightedKappaLinear,
    /// Cohen's κ with quadratic weights.
    WeightedKappaQuadratic,
    /// Fleiss' κ (with the two raters).
    FleissKappa,
    /// Krippendorff's α, nominal.
    AlphaNominal,
    /// Krippendorff's α, ordinal.
    AlphaOrdinal,
    /// Krippendorff's α, interval (numeric labels).
    AlphaInterval,
}

impl Metric {
    /// Every metric, in report order.
    pub const ALL: [Metric; 11] = [
        Metric::MeanDifference,
        Metric::MeanAbsDifference,
        Metric::PercentAgreement,
        Metric::PercentAgreementWithoutTies,
        Metric::CohenKappa,
        Metric::WeightedKappaLinear,
        Metric::WeightedKappaQuadratic,
        Metric::FleissKappa,
        Metric::AlphaNominal,
        Metric::AlphaOrdinal,
        Metric::AlphaInterval,
    ];

    /// The snake_case name used on the command line and in JSON.
    pub fn name(self) -> &'static str {
        match self {
            Metric::MeanDifference => "mean_difference",
            Metric::MeanAbsDifference => "mean_abs_difference",
            Metric::PercentAgreement => "percent_agreement",
            Metric::PercentAgreementWithoutTies => "percent_agreement_without_ties",
            Metric::CohenKappa => "cohen_kappa",
            Metric::WeightedKappaLinear => "weighted_kappa_linear",
            Metric::WeightedKappaQuadratic => "weighted_kappa_quadratic",
            Metric::FleissKappa => "fleiss_kappa",
            Metric::AlphaNominal => "alpha_nominal",
            Metric::AlphaOrdinal => "alpha_ordinal",
            Metric::AlphaInterval => "alpha_interval",
        }
    }

    /// Computes this metric on aligned label vectors. `Ok(None)` when undefined (one label
    /// throughout, or no eligible items); an error when the metric needs numbers and a label is a
    /// string.
    pub fn compute(self, a: &[Label], b: &[Label], tie_labels: &[Label]) -> Result<Option<f64>> {
        let two_raters = || -> Vec<Vec<Option<Label>>> {
            vec![
                a.iter().cloned().map(Some).collect(),
                b.iter().cloned().map(Some).collect(),
            ]
        };
        match self {
            Metric::MeanDifference => mean_difference(
                &numeric_labels("mean_difference", a)?,
                &numeric_labels("mean_difference", b)?,
            ),
            Metric::MeanAbsDifference => mean_abs_difference(
                &numeric_labels("mean_abs_difference", a)?,
                &numeric_labels("mean_abs_difference", b)?,
            ),
            Metric::PercentAgreement => percent_agreement(a, b),
            Metric::PercentAgreementWithoutTies => percent_agreement_without_ties(a, b, tie_labels),
            Metric::CohenKappa => cohen_kappa(a, b, KappaWeights::Unweighted),
            Metric::WeightedKappaLinear => cohen_kappa(a, b, KappaWeights::Linear),
            Metric::WeightedKappaQuadratic => cohen_kappa(a, b, KappaWeights::Quadratic),
            Metric::FleissKappa => {
                if a.len() != b.len() {
                    return Err(JudgeError::Shape {
                        what: "fleiss_kappa",
                        detail: format!("rater a has {} labels, rater b has {}", a.len(), b.len()),
                    });
                }
                let items: Vec<Vec<Label>> = a
                    .iter()
                    .zip(b)
                    .map(|(x, y)| vec![x.clone(), y.clone()])
                    .collect();
                fleiss_kappa(&fleiss_table(&items).1)
            }
            Metric::AlphaNominal => krippendorff_alpha(&two_raters(), AlphaLevel::Nominal),
            Metric::AlphaOrdinal => krippendorff_alpha(&two_raters(), AlphaLevel::Ordinal),
            Metric::AlphaInterval => krippendorff_alpha(&two_raters(), AlphaLevel::Interval),
        }
    }
}

impl fmt::Display for Metric {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Metric {
    type Err = JudgeError;
    fn from_str(s: &str) -> Result<Self> {
        Metric::ALL
            .into_iter()
            .find(|m| m.name() == s)
            .ok_or_else(|| {
                let known: Vec<&str> = Metric::ALL.iter().map(|m| m.name()).collect();
                JudgeError::Config(format!(
                    "unknown metric `{s}` (known: {})",
                    known.join(", ")
                ))
            })
    }
}

/// What `report` computes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgreeConfig {
    /// Metrics to compute (default: all of [`Metric::ALL`]).
    pub metrics: Vec<Metric>,
    /// Bootstrap settings for the CIs.
    pub bootstrap: BootstrapConfig,
    /// Labels that mean "tie" for [`Metric::PercentAgreementWithoutTies`] (default `"tie"`, `"C"`,
    /// `"tie (bothbad)"`, the labels FastChat and Chatbot Arena use).
    pub tie_labels: Vec<Label>,
}

impl Default for AgreeConfig {
    fn default() -> Self {
        Self {
            metrics: Metric::ALL.to_vec(),
            bootstrap: BootstrapConfig::default(),
            tie_labels: ["tie", "C", "tie (bothbad)"]
                .into_iter()
                .map(Label::from)
                .collect(),
        }
    }
}

/// One metric's value and CI.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MetricReport {
    /// Which metric.
    pub metric: Metric,
    /// Point estimate on all joined items; `None` when undefined (degenerate or non-numeric).
    pub value: Option<f64>,
    /// Percentile-bootstrap CI; `None` when the value is undefined.
    pub ci: Option<ConfidenceInterval>,
    /// Why the value is missing, if it is.
    pub note: Option<String>,
}

/// Everything `temper agree` prints.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AgreementReport {
    /// Number of items present in both files.
    pub n_items: usize,
    /// Ids only in file a.
    pub only_in_a: Vec<Id>,
    /// Ids only in file b.
    pub only_in_b: Vec<Id>,
    /// One entry per requested metric, in the requested order.
    pub metrics: Vec<MetricReport>,
    /// Confusion matrix (rows: file a, columns: file b).
    pub confusion: ConfusionMatrix,
}

impl fmt::Display for AgreementReport {
    /// A plain-text table: items, unmatched ids, one line per metric with its CI, the confusion matrix.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ids = |v: &[Id]| -> String {
            let shown: Vec<&str> = v.iter().take(10).map(String::as_str).collect();
            let more = if v.len() > 10 {
                format!(", … ({} more)", v.len() - 10)
            } else {
                String::new()
            };
            format!("{}{more}", shown.join(", "))
        };
        writeln!(f, "items in both files: {}", self.n_items)?;
        if !self.only_in_a.is_empty() {
            writeln!(
                f,
                "only in a ({}): {}",
                self.only_in_a.len(),
                ids(&self.only_in_a)
            )?;
        }
        if !self.only_in_b.is_empty() {
            writeln!(
                f,
                "only in b ({}): {}",
                self.only_in_b.len(),
                ids(&self.only_in_b)
            )?;
        }
        let level = self
            .metrics
            .iter()
            .find_map(|m| m.ci.map(|c| c.level))
            .unwrap_or(0.95);
        writeln!(
            f,
            "{:<32} {:>9}  {:.0}% CI",
            "metric",
            "value",
            level * 100.0
        )?;
        for m in &self.metrics {
            match (m.value, m.ci) {
                (Some(v), Some(ci)) => writeln!(
                    f,
                    "{:<32} {v:>9.4}  [{:.4}, {:.4}]",
                    m.metric.name(),
                    ci.lo,
                    ci.hi
                )?,
                (Some(v), None) => writeln!(f, "{:<32} {v:>9.4}  -", m.metric.name())?,
                (None, _) => writeln!(
                    f,
                    "{:<32} {:>9}  ({})",
                    m.metric.name(),
                    "n/a",
                    m.note.as_deref().unwrap_or("undefined")
                )?,
            }
        }
        writeln!(f, "confusion matrix (rows: a, columns: b)")?;
        let names: Vec<String> = self
            .confusion
            .labels
            .iter()
            .map(ToString::to_string)
            .collect();
        let w = names.iter().map(String::len).max().unwrap_or(1).max(5);
        write!(f, "{:>w$}", "")?;
        for n in &names {
            write!(f, " {n:>w$}")?;
        }
        writeln!(f)?;
        for (n, row) in names.iter().zip(&self.confusion.counts) {
            write!(f, "{n:>w$}")?;
            for c in row {
                write!(f, " {c:>w$}")?;
            }
            writeln!(f)?;
        }
        Ok(())
    }
}

/// Computes every requested metric with its bootstrap CI on joined labels.
pub fn report(joined: &Joined, config: &AgreeConfig) -> Result<AgreementReport> {
    config.bootstrap.validate()?;
    let (a, b) = (&joined.a, &joined.b);
    let mut metrics = Vec::with_capacity(config.metrics.len());
    for &metric in &config.metrics {
        let entry = match metric.compute(a, b, &config.tie_labels) {
            Ok(Some(value)) => {
                let (mut ra, mut rb) = (Vec::with_capacity(a.len()), Vec::with_capacity(b.len()));
                let ci = bootstrap_ci(a.len(), &config.bootstrap, |ix| {
                    ra.clear();
                    rb.clear();
                    ra.extend(ix.iter().map(|&i| a[i].clone()));
                    rb.extend(ix.iter().map(|&i| b[i].clone()));
                    metric.compute(&ra, &rb, &config.tie_labels).ok().flatten()
                });
                MetricReport {
                    metric,
                    value: Some(value),
                    ci,
                    note: None,
                }
            }
            Ok(None) => MetricReport {
                metric,
                value: None,
                ci: None,
                note: Some(if a.is_empty() {
                    "no items in common".into()
                } else {
                    "undefined: chance agreement is 1 (one label throughout) or no eligible items"
                        .into()
                }),
            },
            Err(e @ JudgeError::NotNumeric { .. }) => MetricReport {
                metric,
                value: None,
                ci: None,
                note: Some(e.to_string()),
            },
            Err(e) => return Err(e),
        };
        metrics.push(entry);
    }
    Ok(AgreementReport {
        n_items: joined.ids.len(),
        only_in_a: joined.only_in_a.clone(),
        only_in_b: joined.only_in_b.clone(),
        metrics,
        confusion: confusion_matrix(a, b)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, text: &str) -> std::path::PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, text).expect("write temp file");
        p
    }

    fn tmpdir(tag: &str) -> std::path::PathBuf {
        let d =
            std::env::temp_dir().join(format!("temper-judges-agree-{tag}-{}", std::process::id()));
        std::fs::create_dir_all(&d).expect("mkdir");
        d
    }

    #[test]
    fn load_reports_file_and_line() {
        let d = tmpdir("load");
        let ok = write(
            &d,
            "ok.jsonl",
            "{\"id\": \"q1\", \"label\": \"A\"}\n\n{\"id\": 2, \"label\": 7.5}\n",
        );
        let got = load_labels(&ok).expect("loads");
        assert_eq!(
            got,
            vec![
                ("q1".to_string(), Label::from("A")),
                ("2".to_string(), Label::from(7.5))
            ]
        );
        let cases = [
            (
                "{\"id\": 1, \"label\": \"A\"}\n{\"id\": 2, \"label\": null}\n",
                2,
                "`label` must be",
            ),
            ("{\"id\": 1, \"label\": [1]}\n", 1, "`label` must be"),
            ("{\"id\": 1.5, \"label\": 1}\n", 1, "`id` must be"),
            ("{\"id\": 1, \"lable\": 1}\n", 1, "unknown field"),
            ("{\"id\": 1, \"label\": 1}\nnot json\n", 2, "expected"),
            (
                "{\"id\": 1, \"label\": 1}\n{\"id\": \"1\", \"label\": 2}\n",
                2,
                "duplicate id \"1\" (first seen on line 1)",
            ),
        ];
        for (i, (text, line, needle)) in cases.into_iter().enumerate() {
            let p = write(&d, &format!("bad{i}.jsonl"), text);
            let e = load_labels(&p).expect_err(text).to_string();
            assert!(e.starts_with(&format!("{}:{line}: ", p.display())), "{e}");
            assert!(e.contains(needle), "{e} lacks {needle}");
        }
        let missing = load_labels(&d.join("nope.jsonl"))
            .expect_err("missing file")
            .to_string();
        assert!(missing.contains("nope.jsonl"), "{missing}");
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn join_keeps_a_order_and_reports_unmatched() {
        let l = |id: &str, x: f64| (id.to_string(), Label::from(x));
        let a = vec![l("1", 1.0), l("2", 2.0), l("3", 3.0)];
        let b = vec![l("4", 4.0), l("3", 30.0), l("1", 10.0)];
        let j = join(&a, &b);
        assert_eq!(j.ids, ["1", "3"]);
        assert_eq!(j.a, [Label::from(1.0), Label::from(3.0)]);
        assert_eq!(j.b, [Label::from(10.0), Label::from(30.0)]);
        assert_eq!(j.only_in_a, ["2"]);
        assert_eq!(j.only_in_b, ["4"]);
    }

    #[test]
    fn report_marks_numeric_metrics_on_string_labels_and_parses_names() -> Result<()> {
        let a: Vec<(Id, Label)> = "A B A tie B A"
            .split(' ')
            .enumerate()
            .map(|(i, s)| (i.to_string(), s.into()))
            .collect();
        let b: Vec<(Id, Label)> = "A B B tie B A"
            .split(' ')
            .enumerate()
            .map(|(i, s)| (i.to_string(), s.into()))
            .collect();
        let cfg = AgreeConfig {
            bootstrap: BootstrapConfig {
                resamples: 200,
                ..Default::default()
            },
            ..Default::default()
        };
        let r = report(&join(&a, &b), &cfg)?;
        assert_eq!(r.n_items, 6);
        let get = |m: Metric| {
            r.metrics
                .iter()
                .find(|x| x.metric == m)
                .expect("metric present")
        };
        assert_eq!(get(Metric::PercentAgreement).value, Some(5.0 / 6.0));
        assert_eq!(
            get(Metric::PercentAgreementWithoutTies).value,
            Some(4.0 / 5.0)
        );
        let md = get(Metric::MeanDifference);
        assert_eq!(md.value, None);
        assert!(
            md.note.as_deref().unwrap_or("").contains("numeric"),
            "{md:?}"
        );
        let ci = get(Metric::PercentAgreement).ci.expect("ci");
        assert!(
            ci.lo <= 5.0 / 6.0 && 5.0 / 6.0 <= ci.hi && ci.hi <= 1.0,
            "{ci:?}"
        );
        assert_eq!(
            r.confusion.counts,
            vec![vec![2, 1, 0], vec![0, 2, 0], vec![0, 0, 1]]
        );
        let text = r.to_string();
        assert!(
            text.starts_with("items in both files: 6\nmetric "),
            "{text}"
        );
        assert!(
            text.contains("\npercent_agreement                   0.8333  ["),
            "{text}"
        );
        assert!(text.contains("\nmean_difference                        n/a  (mean_difference needs numeric labels, found \"A\")"), "{text}");
        assert!(text.ends_with("confusion matrix (rows: a, columns: b)\n          A     B   tie\n    A     2     1     0\n    B     0     2     0\n  tie     0     0     1\n"), "{text}");
        assert_eq!("alpha_ordinal".parse::<Metric>()?, Metric::AlphaOrdinal);
        assert!("kappa".parse::<Metric>().is_err());
        for m in Metric::ALL {
            assert_eq!(m.name().parse::<Metric>()?, m);
            assert_eq!(
                serde_json::to_value(m).ok(),
                Some(serde_json::Value::from(m.name()))
            );
        }
        Ok(())
    }
}
