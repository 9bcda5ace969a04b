//! Direct Preference Optimization and its 14 siblings, exactly as TRL 1.16 `DPOTrainer._compute_loss`.
//!
//! DPO: <https://huggingface.co/papers/2305.18290>. Loss families, f-divergences (f-DPO,
//! <https://huggingface.co/papers/2309.16240>), WPO weighting (<https://huggingface.co/papers/2406.11827>) and
//! LD-DPO (<https://huggingface.co/papers/2409.06411>) are documented on their enum variants / fields.

use burn::tensor::Tensor;
use burn::tensor::activation::{log_sigmoid, relu, sigmoid};
use serde::{Deserialize, Serialize};

use crate::common::{Metrics, ObjectiveOutput, check_shape, mean, to_vec};
use crate::error::{ObjectiveError, config_err};

const CFG: &str = "DpoConfig";

fn default_discopop_tau() -> f64 {
    0.05
}

/// One DPO loss family with its own parameters (TRL `loss_type` values). `δ = s_c - s_r` is the
/// chosen-minus-rejected score (the log-ratio difference under reverse KL), `clr`/`rlr` the plain log-ratios.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum DpoLoss {
    /// `-logσ(βδ)` — DPO (<https://huggingface.co/papers/2305.18290>); TRL's default.
    Sigmoid,
    /// `relu(1 - βδ)` — SLiC (<https://huggingface.co/papers/2305.10425>).
    Hinge,
    /// `(s_c/n_c - s_r/n_r - 1/(2β))²` — IPO, length-normalised (<https://huggingface.co/papers/2310.12036>).
    Ipo,
    /// EXO-pref (<https://huggingface.co/papers/2402.00856>); `label_smoothing` ε must be in (0, 1), paper: 1e-3.
    ExoPair {
        /// ε of the smoothed target `[1-ε, ε]`.
        label_smoothing: f64,
    },
    /// NCA (<https://huggingface.co/papers/2402.05369>).
    NcaPair,
    /// Robust DPO with label-flip probability ε in [0, 0.5) (<https://huggingface.co/papers/2403.00409>).
    Robust {
        /// Flip probability ε; default 0.
        #[serde(default)]
        label_smoothing: f64,
    },
    /// BCO-pair (<https://huggingface.co/papers/2404.04656>).
    BcoPair,
    /// SPPO with hard probabilities (<https://huggingface.co/papers/2405.00675>).
    SppoHard,
    /// AOT paired: sorted log-ratio distributions (<https://huggingface.co/papers/2406.05882>).
    Aot {
        /// Label smoothing ε; default 0.
        #[serde(default)]
        label_smoothing: f64,
    },
    /// AOT unpaired (<https://huggingface.co/papers/2406.05882>).
    AotUnpaired {
        /// Label smoothing ε; default 0.
        #[serde(default)]
        label_smoothing: f64,
    },
    /// APO-zero (<https://huggingface.co/papers/2408.06266>, eq. 7).
    ApoZero,
    /// APO-down (<https://huggingface.co/papers/2408.06266>, eq. 8).
    ApoDown,
    /// DiscoPOP (<https://huggingface.co/papers/2406.08414>, eq. 5).
    #[serde(rename = "discopop")]
    DiscoPop {
        /// Modulation temperature τ; paper and TRL default 0.05.
        #[serde(default = "default_discopop_tau")]
        tau: f64,
    },
    /// `-mean(lp)` over all chosen completion tokens of the batch (the SFT term of MPO).
    Sft,
    /// `-logσ(β(s_c/n_c - s_r/n_r))`, length-normalised DPO.
    SigmoidNorm,
}

impl DpoLoss {
    fn name(&self) -> &'static str {
        match self {
            DpoLoss::Sigmoid => "sigmoid",
            DpoLoss::Hinge => "hinge",
            DpoLoss::Ipo => "ipo",
            DpoLoss::ExoPair { .. } => "exo_pair",
            DpoLoss::NcaPair => "nca_pair",
            DpoLoss::Robust { .. } => "robust",
            DpoLoss::BcoPair => "bco_pair",
            DpoLoss::SppoHard => "sppo_hard",
            DpoLoss::Aot { .. } => "aot",
            DpoLoss::AotUnpaired { .. } => "aot_unpaired",
            DpoLoss::ApoZero => "apo_zero",
            DpoLoss::ApoDown => "apo_down",
            DpoLoss::DiscoPop { .. } => "discopop",
            DpoLoss::Sft => "sft",
            DpoLoss::SigmoidNorm => "sigmoid_norm",
        }
    }

    /// Loss families for which TRL accepts a non-reverse-KL f-divergence.
    fn supports_f_divergence(&self) -> bool {
        matches!(
            self,
            DpoLoss::Sigmoid
                | DpoLoss::SigmoidNorm
                | DpoLoss::Hinge
                | DpoLoss::Ipo
                | DpoLoss::ExoPair { .. }
                | DpoLoss::Robust { .. }
                | DpoLoss::DiscoPop { .. }
                | DpoLoss::Sft
        )
    }
}

/// f-divergence regulariser between policy and reference (f-DPO, <https://huggingface.co/papers/2309.16240>);
/// it maps a log-ratio `u` to the score used in `δ`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum FDivergence {
    /// `s = u` (standard DPO, TRL default).
    #[default]
    ReverseKl,
    /// `s = 1 - exp(-u)`.
    ForwardKl,
    /// `s = ln 2 + logσ(u)`.
    JsDivergence,
    /// `s = (exp(min((α-1)u, 80)) - 1) / (α-1)`; falls back to reverse KL when `|α - 1| < 1e-6`.
    AlphaDivergence {
        /// α; TRL default `f_alpha_divergence_coef = 0.5`.
        #[serde(default = "default_alpha")]
        alpha: f64,
    },
}

fn default_alpha() -> f64 {
    0.5
}

/// One entry of the (possibly multi-loss, e.g. MPO) DPO objective: `weight · mean(per-pair loss)`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WeightedDpoLoss {
    /// The loss family.
    pub loss: DpoLoss,
    /// Its weight; TRL default 1.0.
    #[serde(default = "one")]
    pub weight: f64,
}

fn one() -> f64 {
    1.0
}

fn default_losses() -> Vec<WeightedDpoLoss> {
    vec![WeightedDpoLoss {
        loss: DpoLoss::Sigmoid,
        weight: 1.0,
    }]
}

fn default_beta() -> f64 {
    0.1
}

/// DPO objective config (TRL `DPOConfig` loss fields).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DpoConfig {
    /// Deviation penalty β (τ for IPO); TRL default 0.1 (<https://huggingface.co/papers/2305.18290>).
    #[serde(default = "default_beta")]
    pub beta: f64,
    /// Loss families and weights, summed; TRL default `[sigmoid × 1.0]`.
    #[serde(default = "default_losses")]
    pub losses: Vec<WeightedDpoLoss>,
    /// f-divergence; TRL default reverse KL (<https://huggingface.co/papers/2309.16240>).
    #[serde(default)]
    pub f_divergence: FDivergence,
    /// LD-DPO α in [0, 1] weighting tokens past the shorter completion; TRL default `None`
    /// (<https://huggingface.co/papers/2409.06411>).
    #[serde(default)]
    pub ld_alpha: Option<f64>,
    /// WPO weighting of pairs by length-normalised policy probability; TRL default false
    /// (<https://huggingface.co/papers/2406.11827>).
    #[serde(default)]
    pub use_weighting: bool,
}

impl Default for DpoConfig {
    fn default() -> Self {
        Self {
            beta: default_beta(),
            losses: default_losses(),
            f_divergence: FDivergence::ReverseKl,
            ld_alpha: None,
            use_weighting: false,
        }
    }
}

impl DpoConfig {
    /// Checked constructor (see [`DpoConfig::validate`]).
    pub fn new(
        beta: f64,
        losses: Vec<WeightedDpoLoss>,
        f_divergence: FDivergence,
        ld_alpha: Option<f64>,
        use_weighting: bool,
    ) -> Result<Self, ObjectiveError> {
        let c = Self {
            beta,
            losses,
            f_divergence,
            ld_alpha,
            use_weighting,
        };
        c.validate()?;
        Ok(c)
    }

    /// TRL's cross-field checks: β > 0, at least one loss, EXO ε in (0,1), robust ε in [0, 0.5),
    /// f-divergences only with the losses that support them, no WPO with AOT, `ld_alpha` in [0, 1].
    pub fn validate(&self) -> Result<(), ObjectiveError> {
        if !(self.beta.is_finite() && self.beta > 0.0) {
            return Err(config_err(
                CFG,
                "beta",
                format!("must be finite and > 0, got {}", self.beta),
            ));
        }
        if self.losses.is_empty() {
            return Err(config_err(CFG, "loss_type", "needs at least one loss"));
        }
        for l in &self.losses {
            if !l.weight.is_finite() {
                return Err(config_err(
                    CFG,
                    "loss_weights",
                    format!("weight of {} is {}", l.loss.name(), l.weight),
                ));
            }
            match l.loss {
                DpoLoss::ExoPair { label_smoothing: e } if !(e > 0.0 && e < 1.0) => {
                    return Err(config_err(
                        CFG,
                        "label_smoothing",
                        format!("exo_pair needs 0 < ε < 1 (paper: 1e-3), got {e}"),
                    ));
                }
                DpoLoss::Robust { label_smoothing: e } if !(0.0..0.5).contains(&e) => {
                    return Err(config_err(
                        CFG,
                        "label_smoothing",
                        format!("robust needs 0 <= ε < 0.5, got {e}"),
                    ));
                }
                DpoLoss::Aot { label_smoothing: e }
                | DpoLoss::AotUnpaired { label_smoothing: e }
                    if !(0.0..=1.0).contains(&e) =>
                {
                    return Err(config_err(
                        CFG,
                        "label_smoothing",
                        format!("{} needs 0 <= ε <= 1, got {e}", l.loss.name()),
                    ));
                }
                DpoLoss::DiscoPop { tau } if !(tau.is_finite() && tau > 0.0) => {
                    return Err(config_err(
                        CFG,
                        "discopop_tau",
                        format!("must be > 0, got {tau}"),
                    ));
                }
                _ => {}
            }
            if self.f_divergence != FDivergence::ReverseKl && !l.loss.supports_f_divergence() {
                return Err(config_err(
                    CFG,
                    "f_divergence_type",
                    format!(
                        "{:?} is not supported by loss {}; use reverse_kl",
                        self.f_divergence,
                        l.loss.name()
                    ),
                ));
            }
            if self.use_weighting
                && matches!(l.loss, DpoLoss::Aot { .. } | DpoLoss::AotUnpaired { .. })
            {
                return Err(config_err(
                    CFG,
                    "use_weighting",
                    format!(
                        "WPO weighting is not defined for {} (it sorts pairs)",
                        l.loss.name()
                    ),
                ));
            }
        }
        if let Some(a) = self.ld_alpha
            && !(0.0..=1.0).contains(&a)
        {
            return Err(config_err(
                CFG,
                "ld_alpha",
                format!("must be in [0, 1], got {a}"),
            ));
        }
        if let FDivergence::AlphaDivergence { alpha } = self.f_divergence
            && !alpha.is_finite()
        {
            return Err(config_err(
                CFG,
                "f_alpha_divergence_coef",
                format!("must be finite, got {alpha}"),
            ));
        }
        Ok(())
    }
}

/// Per-token inputs of [`dpo_loss`]. Rows `0..B` are prompt+chosen, rows `B..2B` prompt+rejected (TRL's
/// concatenated batch); every tensor is `[2B, T]` and aligned to its target token.
#[derive(Clone, Debug)]
pub struct DpoInputs {
    /// Policy log-prob of each target token (differentiable).
    pub policy_logps: Tensor<2>,
    /// Reference log-prob of each target token (treated as a constant).
    pub ref_logps: Tensor<2>,
    /// 1 on completion (chosen / rejected, incl. EOS) target tokens.
    pub mask: Tensor<2>,
    /// `log Σ_v p_v²` per position; required when `use_weighting` (WPO).
    pub log_sum_sq_probs: Option<Tensor<2>>,
    /// Per-token entropy, for the `entropy` metric.
    pub entropy: Option<Tensor<2>>,
    /// Per-position mean of the logits, for `logits/chosen|rejected`.
    pub mean_logits: Option<Tensor<2>>,
    /// 1 where the target is the first argmax, for `mean_token_accuracy`.
    pub is_top1: Option<Tensor<2>>,
}

impl DpoInputs {
    /// Inputs without the optional metric / WPO tensors.
    pub fn new(policy_logps: Tensor<2>, ref_logps: Tensor<2>, mask: Tensor<2>) -> Self {
        Self {
            policy_logps,
            ref_logps,
            mask,
            log_sum_sq_probs: None,
            entropy: None,
            mean_logits: None,
            is_top1: None,
        }
    }
}

fn rows(t: Tensor<2>, start: usize, len: usize) -> Tensor<2> {
    t.narrow(0, start, len)
}

fn half(t: Tensor<1>, b: usize) -> (Tensor<1>, Tensor<1>) {
    (t.clone().narrow(0, 0, b), t.narrow(0, b, b))
}

/// `-logσ(x)(1-ε) - logσ(-x)ε`.
fn smoothed_sigmoid(x: Tensor<1>, eps: f64) -> Tensor<1> {
    log_sigmoid(x.clone()).mul_scalar(-(1.0 - eps)) - log_sigmoid(x.neg()).mul_scalar(eps)
}

/// The DPO-family loss: `Σ_k w_k · mean_pairs(loss_k)` (× WPO weights), plus TRL's metrics.
///
/// Metrics: `rewards/chosen|rejected|margins|accuracies` (β × plain log-ratios), `logps/chosen|rejected`
/// (LD-weighted when `ld_alpha` is set), and — when their inputs are given — `entropy`, `logits/chosen`,
/// `logits/rejected`, `mean_token_accuracy`.
///
/// # Shapes
/// every input `[2B, T]` → loss `[1]`.
pub fn dpo_loss(config: &DpoConfig, inputs: DpoInputs) -> Result<ObjectiveOutput, ObjectiveError> {
    const OP: &str = "dpo_loss";
    config.validate()?;
    let dims = inputs.policy_logps.dims();
    let [n2, t] = dims;
    if n2 == 0 || n2 % 2 != 0 {
        return Err(ObjectiveError::Shape {
            op: OP,
            input: "policy_logps",
            got: dims.to_vec(),
            expected: "[2B, T] with B >= 1".into(),
        });
    }
    let b = n2 / 2;
    check_shape(OP, "ref_logps", &inputs.ref_logps, dims)?;
    check_shape(OP, "mask", &inputs.mask, dims)?;
    let m = inputs.mask.clone();
    let lp = inputs.policy_logps.clone() * m.clone();
    let rlp = inputs.ref_logps.clone().detach() * m.clone();
    let beta = config.beta;

    // Sequence log-probs (sum, or LD-DPO's shared + α·tail).
    let (logps, ref_logps) = match config.ld_alpha {
        None => (
            lp.clone().sum_dim(1).squeeze_dim::<1>(1),
            rlp.clone().sum_dim(1).squeeze_dim::<1>(1),
        ),
        Some(alpha) => {
            let pos = m.clone().cumsum(1); // [2B, T]
            let lens = m.clone().sum_dim(1); // [2B, 1]
            let shared = rows(lens.clone(), 0, b).min_pair(rows(lens, b, b)); // [B, 1]
            let shared = Tensor::cat(vec![shared.clone(), shared], 0).expand([n2, t]);
            let shared_mask = pos.clone().greater_elem(0.0).float()
                * pos.clone().lower_equal(shared.clone()).float();
            let tail_mask = pos.greater(shared).float();
            let seq = |x: Tensor<2>| {
                (x.clone() * shared_mask.clone())
                    .sum_dim(1)
                    .squeeze_dim::<1>(1)
                    + (x * tail_mask.clone())
                        .sum_dim(1)
                        .squeeze_dim::<1>(1)
                        .mul_scalar(alpha)
            };
            (seq(lp.clone()), seq(rlp.clone()))
        }
    };
    let (chosen, rejected) = half(logps, b);
    let (ref_chosen, ref_rejected) = half(ref_logps, b);
    let clr = chosen.clone() - ref_chosen.clone();
    let rlr = rejected.clone() - ref_rejected.clone();

    let score = |u: Tensor<1>| -> Tensor<1> {
        match config.f_divergence {
            FDivergence::ReverseKl => u,
            FDivergence::ForwardKl => u.neg().exp().neg().add_scalar(1.0),
            FDivergence::JsDivergence => log_sigmoid(u).add_scalar(std::f64::consts::LN_2),
            FDivergence::AlphaDivergence { alpha } => {
                if (alpha - 1.0).abs() < 1e-6 {
                    u
                } else {
                    u.mul_scalar(alpha - 1.0)
                        .clamp_max(80.0)
                        .exp()
                        .sub_scalar(1.0)
                        .div_scalar(alpha - 1.0)
                }
            }
        }
    };
    let s_c = score(clr.clone());
    let s_r = score(rlr.clone());
    let delta = s_c.clone() - s_r.clone();
    let lens = m.clone().sum_dim(1).squeeze_dim::<1>(1).clamp_min(1.0);
    let (n_c, n_r) = half(lens, b);

    // WPO weights (constants): exp(Σ (lp - log Σ p²)·m / max(Σ m, 1)), chosen × rejected.
    let wpo = if config.use_weighting {
        let lssp = inputs
            .log_sum_sq_probs
            .clone()
            .ok_or(ObjectiveError::MissingInput {
                op: OP,
                input: "log_sum_sq_probs",
                reason: "use_weighting (WPO) is on",
            })?;
        check_shape(OP, "log_sum_sq_probs", &lssp, dims)?;
        let aligned = (inputs.policy_logps.clone().detach() - lssp.detach()) * m.clone();
        let w = (aligned.sum_dim(1).squeeze_dim::<1>(1)
            / m.clone().sum_dim(1).squeeze_dim::<1>(1).clamp_min(1.0))
        .exp();
        let (wc, wr) = half(w, b);
        Some(wc * wr)
    } else {
        None
    };

    let mut loss: Option<Tensor<1>> = None;
    for wl in &config.losses {
        let per_pair: Tensor<1> = match wl.loss {
            DpoLoss::Sigmoid => log_sigmoid(delta.clone().mul_scalar(beta)).neg(),
            DpoLoss::Hinge => relu(delta.clone().mul_scalar(-beta).add_scalar(1.0)),
            DpoLoss::Ipo => (s_c.clone() / n_c.clone() - s_r.clone() / n_r.clone())
                .sub_scalar(1.0 / (2.0 * beta))
                .square(),
            DpoLoss::ExoPair {
                label_smoothing: eps,
            } => {
                let x = delta.clone().mul_scalar(beta);
                let log_pw = (-eps).ln_1p();
                let log_pl = eps.ln();
                sigmoid(x.clone()) * log_sigmoid(x.clone()).sub_scalar(log_pw)
                    + sigmoid(x.clone().neg()) * log_sigmoid(x.neg()).sub_scalar(log_pl)
            }
            DpoLoss::NcaPair => {
                let cr = clr.clone().mul_scalar(beta);
                let rr = rlr.clone().mul_scalar(beta);
                log_sigmoid(cr.clone()).neg()
                    - log_sigmoid(cr.neg()).mul_scalar(0.5)
                    - log_sigmoid(rr.neg()).mul_scalar(0.5)
            }
            DpoLoss::Robust {
                label_smoothing: eps,
            } => {
                let x = delta.clone().mul_scalar(beta);
                (log_sigmoid(x.clone()).mul_scalar(-(1.0 - eps))
                    + log_sigmoid(x.neg()).mul_scalar(eps))
                .div_scalar(1.0 - 2.0 * eps)
            }
            DpoLoss::BcoPair => {
                log_sigmoid(clr.clone().mul_scalar(beta)).neg()
                    - log_sigmoid(rlr.clone().mul_scalar(-beta))
            }
            DpoLoss::SppoHard => {
                clr.clone().sub_scalar(0.5 / beta).square()
                    + rlr.clone().add_scalar(0.5 / beta).square()
            }
            DpoLoss::Aot {
                label_smoothing: eps,
            } => {
                let d = (chosen.clone() - rejected.clone()).sort(0)
                    - (ref_chosen.clone() - ref_rejected.clone()).sort(0);
                smoothed_sigmoid(d.mul_scalar(beta), eps)
            }
            DpoLoss::AotUnpaired {
                label_smoothing: eps,
            } => {
                let d = clr.clone().sort(0) - rlr.clone().sort(0);
                smoothed_sigmoid(d.mul_scalar(beta), eps)
            }
            DpoLoss::ApoZero => {
                sigmoid(clr.clone().mul_scalar(beta)).neg().add_scalar(1.0)
                    + sigmoid(rlr.clone().mul_scalar(beta))
            }
            DpoLoss::ApoDown => {
                sigmoid(clr.clone().mul_scalar(beta))
                    + sigmoid((clr.clone() - rlr.clone()).mul_scalar(beta))
                        .neg()
                        .add_scalar(1.0)
            }
            DpoLoss::DiscoPop { tau } => {
                let x = delta.clone().mul_scalar(beta);
                let modulation = sigmoid(x.clone().div_scalar(tau));
                log_sigmoid(x.clone()).neg() * modulation.clone().neg().add_scalar(1.0)
                    + x.neg().exp() * modulation
            }
            DpoLoss::Sft => {
                let cm = rows(m.clone(), 0, b);
                let v = rows(lp.clone(), 0, b).sum().neg() / cm.sum().clamp_min(1.0);
                v.expand([b])
            }
            DpoLoss::SigmoidNorm => log_sigmoid(
                (s_c.clone() / n_c.clone() - s_r.clone() / n_r.clone()).mul_scalar(beta),
            )
            .neg(),
        };
        let per_pair = match &wpo {
            Some(w) => per_pair * w.clone(),
            None => per_pair,
        };
        let term = per_pair.mean().mul_scalar(wl.weight);
        loss = Some(match loss {
            Some(l) => l + term,
            None => term,
        });
    }
    let loss = loss.ok_or_else(|| config_err(CFG, "loss_type", "needs at least one loss"))?;

    // Metrics.
    let cr = to_vec(clr.detach().mul_scalar(beta));
    let rr = to_vec(rlr.detach().mul_scalar(beta));
    let mut metrics = Metrics::new();
    metrics.insert("rewards/chosen".into(), mean(&cr));
    metrics.insert("rewards/rejected".into(), mean(&rr));
    let acc: Vec<f64> = cr
        .iter()
        .zip(&rr)
        .map(|(c, r)| f64::from(u8::from(c > r)))
        .collect();
    metrics.insert("rewards/accuracies".into(), mean(&acc));
    let margins: Vec<f64> = cr.iter().zip(&rr).map(|(c, r)| c - r).collect();
    metrics.insert("rewards/margins".into(), mean(&margins));
    metrics.insert("logps/chosen".into(), mean(&to_vec(chosen.detach())));
    metrics.insert("logps/rejected".into(), mean(&to_vec(rejected.detach())));
    let ratio = |x: Tensor<2>, mask: Tensor<2>| -> f64 {
        let den = mean(&to_vec(mask.clone().sum()));
        let num = mean(&to_vec((x * mask).sum()));
        if den > 0.0 { num / den } else { 0.0 }
    };
    if let Some(e) = inputs.entropy {
        check_shape(OP, "entropy", &e, dims)?;
        metrics.insert("entropy".into(), ratio(e.detach(), m.clone()));
    }
    if let Some(ml) = inputs.mean_logits {
        check_shape(OP, "mean_logits", &ml, dims)?;
        let ml = ml.detach();
        metrics.insert(
            "logits/chosen".into(),
            ratio(rows(ml.clone(), 0, b), rows(m.clone(), 0, b)),
        );
        metrics.insert(
            "logits/rejected".into(),
            ratio(rows(ml, b, b), rows(m.clone(), b, b)),
        );
    }
    if let Some(top1) = inputs.is_top1 {
        check_shape(OP, "is_top1", &top1, dims)?;
        metrics.insert(
            "mean_token_accuracy".into(),
            ratio(rows(top1.detach(), 0, b), rows(m, 0, b)),
        );
    }
    Ok(ObjectiveOutput { loss, metrics })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::common::test_util::{close, t2};
    use burn::tensor::Device;

    // B = 2 pairs, T = 3: rows 0,1 chosen; 2,3 rejected.
    const LP: [f64; 12] = [
        -1.0, -2.0, 0.0, -0.5, -0.5, -0.5, -3.0, -1.0, -1.0, -2.0, 0.0, 0.0,
    ];
    const RF: [f64; 12] = [
        -1.5, -1.5, 0.0, -1.0, -0.4, -0.6, -2.0, -1.0, -2.0, -1.0, 0.0, 0.0,
    ];
    const M: [f64; 12] = [1.0, 1.0, 0.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 0.0, 0.0];

    fn run(cfg: &DpoConfig) -> (f64, Metrics) {
        let d = Device::default();
        let inputs = DpoInputs::new(t2(&LP, [4, 3], &d), t2(&RF, [4, 3], &d), t2(&M, [4, 3], &d));
        match dpo_loss(cfg, inputs) {
            Ok(o) => (to_vec(o.loss)[0], o.metrics),
            Err(e) => panic!("{e}"),
        }
    }

    fn logsig(x: f64) -> f64 {
        -(1.0 + (-x).exp()).ln()
    }

    #[test]
    fn sigmoid_loss_and_metrics_by_hand() {
        // sums: chosen [-3, -1.5], ref chosen [-3, -2]; rejected [-5, -2], ref rejected [-5, -1]
        let clr = [0.0, 0.5];
        let rlr = [0.0, -1.0];
        let (loss, m) = run(&DpoConfig::default());
        let want = -(logsig(0.1 * (clr[0] - rlr[0])) + logsig(0.1 * (clr[1] - rlr[1]))) / 2.0;
        assert!(close(loss, want, 1e-6), "{loss} vs {want}");
        assert!(close(m["rewards/chosen"], 0.1 * 0.25, 1e-6));
        assert!(close(m["rewards/rejected"], -0.05, 1e-6));
        assert!(close(m["rewards/accuracies"], 0.5, 1e-9));
        assert!(close(m["logps/chosen"], -2.25, 1e-6));
    }

    #[test]
    fn ld_alpha_zero_truncates_to_shared_length() {
        // pair 0: chosen len 2, rejected len 3 -> shared 2: rejected keeps first two tokens (-3, -1) = -4.
        let cfg = DpoConfig {
            ld_alpha: Some(0.0),
            ..DpoConfig::default()
        };
        let (_, m) = run(&cfg);
        // pair 1: chosen len 3, rejected len 1 -> chosen keeps -0.5.
        assert!(close(m["logps/chosen"], (-3.0 - 0.5) / 2.0, 1e-6));
        assert!(close(m["logps/rejected"], (-4.0 - 2.0) / 2.0, 1e-6));
    }

    #[test]
    fn multi_loss_is_weighted_sum_and_sft_is_chosen_token_mean() {
        let sft = DpoConfig {
            losses: vec![WeightedDpoLoss {
                loss: DpoLoss::Sft,
                weight: 1.0,
            }],
            ..DpoConfig::default()
        };
        let (l_sft, _) = run(&sft);
        assert!(close(l_sft, 4.5 / 5.0, 1e-6));
        let (l_sig, _) = run(&DpoConfig::default());
        let both = DpoConfig {
            losses: vec![
                WeightedDpoLoss {
                    loss: DpoLoss::Sigmoid,
                    weight: 0.8,
                },
                WeightedDpoLoss {
                    loss: DpoLoss::Sft,
                    weight: 0.2,
                },
            ],
            ..DpoConfig::default()
        };
        let (l_both, _) = run(&both);
        assert!(close(l_both, 0.8 * l_sig + 0.2 * l_sft, 1e-6));
    }

    #[test]
    fn config_checks_and_serde() {
        let bad = DpoConfig {
            losses: vec![WeightedDpoLoss {
                loss: DpoLoss::ExoPair {
                    label_smoothing: 0.0,
                },
                weight: 1.0,
            }],
            ..DpoConfig::default()
        };
        assert!(
            bad.validate()
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default()
                .contains("label_smoothing")
        );
        let bad = DpoConfig {
            f_divergence: FDivergence::ForwardKl,
            losses: vec![WeightedDpoLoss {
                loss: DpoLoss::BcoPair,
                weight: 1.0,
            }],
            ..DpoConfig::default()
        };
        assert!(
            bad.validate()
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default()
                .contains("f_divergence_type")
        );
        let bad = DpoConfig {
            use_weighting: true,
            losses: vec![WeightedDpoLoss {
                loss: DpoLoss::Aot {
                    label_smoothing: 0.0,
                },
                weight: 1.0,
            }],
            ..DpoConfig::default()
        };
        assert!(bad.validate().is_err());
        let wpo = DpoConfig {
            use_weighting: true,
            ..DpoConfig::default()
        };
        let d = Device::default();
        let missing = dpo_loss(
            &wpo,
            DpoInputs::new(t2(&LP, [4, 3], &d), t2(&RF, [4, 3], &d), t2(&M, [4, 3], &d)),
        );
        assert!(
            missing
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default()
                .contains("log_sum_sq_probs")
        );
    }
}
