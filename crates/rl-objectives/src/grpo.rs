//! Group Relative Policy Optimization and its variants, exactly as TRL 1.16 `GRPOTrainer` (advantages from
//! `_generate_and_score_completions`, loss and metrics from `_compute_loss`).
//!
//! GRPO: <https://huggingface.co/papers/2402.03300>. Variants are documented on [`GrpoLoss`].
//!
//! Long file: one TRL function pair (`_generate_and_score_completions` + `_compute_loss`) kept in one place so it
//! reads side by side with TRL's source: the eight loss variants share the token-level pipeline, the advantage
//! and importance-sampling steps feed it, and splitting them would scatter one algorithm over several files.

use burn::tensor::activation::sigmoid;
use burn::tensor::{Bool, Tensor, TensorData};
use serde::{Deserialize, Serialize};

use crate::common::{
    Metrics, ObjectiveOutput, RewardColumn, bool_vec, check_shape, global_masked_mean,
    is_close_zero, mean, min_max, nanmean, nanstd, scalar, to_vec,
};
use crate::error::{ObjectiveError, config_err};

const CFG: &str = "GrpoConfig";

/// Policy-loss family and its aggregation (TRL `loss_type`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum GrpoLoss {
    /// PPO-clip per token, mean over each sequence's tokens, then over sequences
    /// (<https://huggingface.co/papers/2402.03300>).
    Grpo,
    /// PPO-clip, mean over all tokens of the batch.
    Bnpo,
    /// Dr. GRPO: sum over tokens / (N · max_completion_length) (<https://huggingface.co/papers/2503.20783>).
    DrGrpo,
    /// DAPO: token sum / number of completion tokens in the generation batch; TRL's default
    /// (<https://huggingface.co/papers/2503.14476>).
    #[default]
    Dapo,
    /// CISPO: `-min(ratio, ε_high).detach() · A · log π` (<https://huggingface.co/papers/2506.13585>).
    Cispo,
    /// SAPO: soft sigmoid gate `σ(τ(ratio-1))·4/τ` (<https://huggingface.co/papers/2511.20347>).
    Sapo {
        /// τ for positive advantages; TRL default 1.0.
        #[serde(default = "sapo_pos")]
        temperature_pos: f64,
        /// τ for non-positive advantages; TRL default 1.05.
        #[serde(default = "sapo_neg")]
        temperature_neg: f64,
    },
    /// LUSPO: per-sequence token sum, mean over sequences (<https://huggingface.co/papers/2602.05261>).
    Luspo,
    /// VESPO: detached gamma weight of the sequence ratio times `-A·log π`
    /// (<https://huggingface.co/papers/2602.10693>).
    Vespo {
        /// Shape k for A >= 0; TRL default 2.0.
        #[serde(default = "vespo_k_pos")]
        k_pos: f64,
        /// Rate λ for A >= 0; TRL default 3.0.
        #[serde(default = "vespo_lambda_pos")]
        lambda_pos: f64,
        /// Shape k for A < 0; TRL default 3.0.
        #[serde(default = "vespo_k_neg")]
        k_neg: f64,
        /// Rate λ for A < 0; TRL default 2.0.
        #[serde(default = "vespo_lambda_neg")]
        lambda_neg: f64,
    },
}

fn sapo_pos() -> f64 {
    1.0
}
fn sapo_neg() -> f64 {
    1.05
}
fn vespo_k_pos() -> f64 {
    2.0
}
fn vespo_lambda_pos() -> f64 {
    3.0
}
fn vespo_k_neg() -> f64 {
    3.0
}
fn vespo_lambda_neg() -> f64 {
    2.0
}

impl GrpoLoss {
    fn is_clipped_ppo(&self) -> bool {
        matches!(
            self,
            GrpoLoss::Grpo | GrpoLoss::Bnpo | GrpoLoss::DrGrpo | GrpoLoss::Dapo | GrpoLoss::Luspo
        )
    }
}

/// How group-relative advantages are scaled (TRL `scale_rewards`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ScaleRewards {
    /// Divide by the group's std (TRL default).
    #[default]
    Group,
    /// Divide by the whole batch's std (<https://huggingface.co/papers/2508.08221>).
    Batch,
    /// No scaling (Dr. GRPO, <https://huggingface.co/papers/2503.20783>).
    None,
}

/// Granularity of the importance ratio (TRL `importance_sampling_level`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ImportanceSampling {
    /// One ratio per token (TRL default).
    #[default]
    Token,
    /// One ratio per sequence from the mean token log-ratio (GSPO, <https://huggingface.co/papers/2507.18071>).
    Sequence,
}

/// How several reward functions are combined (TRL `multi_objective_aggregation`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MultiObjectiveAggregation {
    /// Weighted sum of raw rewards, then group normalisation (TRL default).
    #[default]
    SumThenNormalize,
    /// Normalise each reward per group, weighted sum, then batch normalisation
    /// (GDPO, <https://huggingface.co/papers/2601.05242>).
    NormalizeThenSum,
}

fn d_beta() -> f64 {
    0.0
}
fn d_epsilon() -> f64 {
    0.2
}
fn d_num_generations() -> usize {
    8
}
fn d_max_completion_length() -> usize {
    512
}
fn d_one() -> f64 {
    1.0
}
fn d_true() -> bool {
    true
}

/// GRPO objective config (TRL `GRPOConfig` loss/advantage fields; defaults are TRL 1.16's).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GrpoConfig {
    /// Loss family; TRL default `dapo` (<https://huggingface.co/papers/2503.14476>).
    #[serde(default)]
    pub loss_type: GrpoLoss,
    /// KL coefficient (k3 estimator to the reference); TRL default 0.0 (<https://huggingface.co/papers/2503.14476>).
    #[serde(default = "d_beta")]
    pub beta: f64,
    /// Lower clip ε; TRL default 0.2 (<https://huggingface.co/papers/1707.06347>).
    #[serde(default = "d_epsilon")]
    pub epsilon: f64,
    /// Upper clip ε (clip-higher); TRL default `None` = `epsilon` (<https://huggingface.co/papers/2503.14476>).
    #[serde(default)]
    pub epsilon_high: Option<f64>,
    /// Two-sided clip: ratio capped at δ (recommended > 1 + ε); TRL default `None`
    /// (INTELLECT-2, <https://huggingface.co/papers/2505.07291>).
    #[serde(default)]
    pub delta: Option<f64>,
    /// Advantage scaling; TRL default `group` (<https://huggingface.co/papers/2402.03300>).
    #[serde(default)]
    pub scale_rewards: ScaleRewards,
    /// Token or sequence ratios; TRL default `token` (<https://huggingface.co/papers/2507.18071>).
    #[serde(default)]
    pub importance_sampling_level: ImportanceSampling,
    /// Completions per prompt G (rows `i·G .. (i+1)·G` share a prompt); TRL default 8.
    #[serde(default = "d_num_generations")]
    pub num_generations: usize,
    /// Dr. GRPO's constant normaliser; TRL default 512 (<https://huggingface.co/papers/2503.20783>).
    #[serde(default = "d_max_completion_length")]
    pub max_completion_length: usize,
    /// Train only on the top ρ fraction of tokens by entropy; TRL default 1.0 (<https://huggingface.co/papers/2506.01939>).
    #[serde(default = "d_one")]
    pub top_entropy_quantile: f64,
    /// Entropy bonus coefficient; TRL default 0.0.
    #[serde(default)]
    pub entropy_coef: f64,
    /// Drop negative-advantage sequences whose mean `old - new` log-ratio exceeds δ; TRL default `None`
    /// (DeepSeek-V3.2, <https://huggingface.co/papers/2512.02556>).
    #[serde(default)]
    pub off_policy_mask_threshold: Option<f64>,
    /// Multiply the k3 KL by the importance ratio; TRL default true (<https://huggingface.co/papers/2512.02556>).
    #[serde(default = "d_true")]
    pub use_bias_correction_kl: bool,
    /// Exclude completions that did not end with EOS/pad (the caller zeroes their mask, see
    /// [`truncated_completions`]); TRL default false (<https://huggingface.co/papers/2503.14476>).
    #[serde(default)]
    pub mask_truncated_completions: bool,
    /// Combination of several reward functions; TRL default `sum_then_normalize`.
    #[serde(default)]
    pub multi_objective_aggregation: MultiObjectiveAggregation,
    /// One weight per reward function; TRL default `None` = all 1.0.
    #[serde(default)]
    pub reward_weights: Option<Vec<f64>>,
}

impl Default for GrpoConfig {
    fn default() -> Self {
        Self {
            loss_type: GrpoLoss::Dapo,
            beta: 0.0,
            epsilon: 0.2,
            epsilon_high: None,
            delta: None,
            scale_rewards: ScaleRewards::Group,
            importance_sampling_level: ImportanceSampling::Token,
            num_generations: 8,
            max_completion_length: 512,
            top_entropy_quantile: 1.0,
            entropy_coef: 0.0,
            off_policy_mask_threshold: None,
            use_bias_correction_kl: true,
            mask_truncated_completions: false,
            multi_objective_aggregation: MultiObjectiveAggregation::SumThenNormalize,
            reward_weights: None,
        }
    }
}

impl GrpoConfig {
    /// Validates `self` and returns it (the checked constructor; build with struct-update syntax first).
    pub fn checked(self) -> Result<Self, ObjectiveError> {
        self.validate()?;
        Ok(self)
    }

    /// Upper clip bound ε_high (falls back to `epsilon`).
    pub fn epsilon_high(&self) -> f64 {
        self.epsilon_high.unwrap_or(self.epsilon)
    }

    /// Cross-field checks: finite non-negative β and ε's, `G >= 1`, `max_completion_length >= 1`,
    /// `δ > 0`, `0 < top_entropy_quantile <= 1`, positive SAPO temperatures.
    pub fn validate(&self) -> Result<(), ObjectiveError> {
        if !(self.beta.is_finite() && self.beta >= 0.0) {
            return Err(config_err(
                CFG,
                "beta",
                format!("must be finite and >= 0, got {}", self.beta),
            ));
        }
        if !(self.epsilon.is_finite() && self.epsilon >= 0.0) {
            return Err(config_err(
                CFG,
                "epsilon",
                format!("must be finite and >= 0, got {}", self.epsilon),
            ));
        }
        if let Some(e) = self.epsilon_high
            && !(e.is_finite() && e >= 0.0)
        {
            return Err(config_err(
                CFG,
                "epsilon_high",
                format!("must be finite and >= 0, got {e}"),
            ));
        }
        if let Some(d) = self.delta
            && !(d.is_finite() && d > 0.0)
        {
            return Err(config_err(
                CFG,
                "delta",
                format!("must be finite and > 0 (recommended > 1 + epsilon), got {d}"),
            ));
        }
        if self.num_generations == 0 {
            return Err(config_err(CFG, "num_generations", "must be >= 1"));
        }
        if self.max_completion_length == 0 {
            return Err(config_err(CFG, "max_completion_length", "must be >= 1"));
        }
        if !(self.top_entropy_quantile > 0.0 && self.top_entropy_quantile <= 1.0) {
            return Err(config_err(
                CFG,
                "top_entropy_quantile",
                format!("must be in (0, 1], got {}", self.top_entropy_quantile),
            ));
        }
        if !self.entropy_coef.is_finite() {
            return Err(config_err(CFG, "entropy_coef", "must be finite"));
        }
        if let GrpoLoss::Sapo {
            temperature_pos,
            temperature_neg,
        } = self.loss_type
            && !(temperature_pos > 0.0 && temperature_neg > 0.0)
        {
            return Err(config_err(
                CFG,
                "sapo_temperature_pos",
                "SAPO temperatures must be > 0",
            ));
        }
        if let Some(w) = &self.reward_weights
            && w.iter().any(|x| !x.is_finite())
        {
            return Err(config_err(
                CFG,
                "reward_weights",
                format!("must be finite, got {w:?}"),
            ));
        }
        Ok(())
    }
}

/// Advantages and the reward metrics TRL logs while computing them.
#[derive(Clone, Debug, PartialEq)]
pub struct Advantages {
    /// One advantage per completion.
    pub values: Vec<f64>,
    /// `reward`, `reward_std`, `rewards/<name>/mean|std`, `frac_reward_zero_std`.
    pub metrics: Metrics,
}

fn group_stats(values: &[f64], g: usize) -> (Vec<f64>, Vec<f64>) {
    let mut means = Vec::with_capacity(values.len());
    let mut stds = Vec::with_capacity(values.len());
    for chunk in values.chunks(g) {
        let m = nanmean(chunk);
        let s = if g > 1 { nanstd(chunk) } else { 0.0 };
        means.extend(std::iter::repeat_n(m, chunk.len()));
        stds.extend(std::iter::repeat_n(s, chunk.len()));
    }
    (means, stds)
}

/// Weights per reward column, checked against the number of columns.
fn reward_weights(weights: Option<&Vec<f64>>, k: usize) -> Result<Vec<f64>, ObjectiveError> {
    match weights {
        None => Ok(vec![1.0; k]),
        Some(w) if w.len() == k => Ok(w.clone()),
        Some(w) => Err(config_err(
            CFG,
            "reward_weights",
            format!("has {} weights for {k} reward functions", w.len()),
        )),
    }
}

/// Weighted `nansum` of reward columns per completion; NaN where every column is NaN.
pub(crate) fn combine_rewards(columns: &[RewardColumn], weights: &[f64], n: usize) -> Vec<f64> {
    (0..n)
        .map(|i| {
            let vals: Vec<(f64, f64)> = columns
                .iter()
                .zip(weights)
                .map(|(c, w)| (c.values[i], *w))
                .collect();
            if vals.iter().all(|(v, _)| v.is_nan()) {
                f64::NAN
            } else {
                vals.iter()
                    .filter(|(v, _)| !v.is_nan())
                    .map(|(v, w)| v * w)
                    .sum()
            }
        })
        .collect()
}

pub(crate) fn check_columns(
    op: &'static str,
    columns: &[RewardColumn],
) -> Result<usize, ObjectiveError> {
    let n = columns
        .first()
        .map(|c| c.values.len())
        .ok_or(ObjectiveError::MissingInput {
            op,
            input: "rewards",
            reason: "at least one reward function is needed",
        })?;
    for c in columns {
        if c.values.len() != n {
            return Err(ObjectiveError::Shape {
                op,
                input: "rewards",
                got: vec![c.values.len()],
                expected: format!("[{n}] for every reward function ({})", c.name),
            });
        }
    }
    Ok(n)
}

/// Per-function reward metrics `rewards/<name>/mean|std`, plus `reward` / `reward_std` of the weighted sum.
pub(crate) fn reward_metrics(columns: &[RewardColumn], combined: &[f64], metrics: &mut Metrics) {
    for c in columns {
        metrics.insert(format!("rewards/{}/mean", c.name), nanmean(&c.values));
        metrics.insert(format!("rewards/{}/std", c.name), nanstd(&c.values));
    }
    metrics.insert("reward".into(), nanmean(combined));
    metrics.insert("reward_std".into(), nanstd(combined));
}

/// Group-relative advantages exactly as TRL (`_generate_and_score_completions`), from one column per reward
/// function (`NaN` = unscorable; a completion no function scored gets advantage 0).
pub fn grpo_advantages(
    config: &GrpoConfig,
    rewards: &[RewardColumn],
) -> Result<Advantages, ObjectiveError> {
    const OP: &str = "grpo_advantages";
    config.validate()?;
    let n = check_columns(OP, rewards)?;
    let g = config.num_generations;
    if !n.is_multiple_of(g) {
        return Err(ObjectiveError::Shape {
            op: OP,
            input: "rewards",
            got: vec![n],
            expected: format!("a multiple of num_generations = {g}"),
        });
    }
    let w = reward_weights(config.reward_weights.as_ref(), rewards.len())?;
    let combined = combine_rewards(rewards, &w, n);
    let (adv, std_used): (Vec<f64>, Vec<f64>) = match config.multi_objective_aggregation {
        MultiObjectiveAggregation::SumThenNormalize => {
            let (means, group_std) = group_stats(&combined, g);
            let std = match config.scale_rewards {
                ScaleRewards::Group | ScaleRewards::None => group_std,
                ScaleRewards::Batch => vec![if n > 1 { nanstd(&combined) } else { 0.0 }; n],
            };
            let adv = (0..n)
                .map(|i| {
                    let a = combined[i] - means[i];
                    if config.scale_rewards == ScaleRewards::None {
                        a
                    } else {
                        a / (std[i] + 1e-4)
                    }
                })
                .collect();
            (adv, std)
        }
        MultiObjectiveAggregation::NormalizeThenSum => {
            let mut s = vec![0.0; n];
            let mut any = vec![false; n];
            for (c, wk) in rewards.iter().zip(&w) {
                let (means, stds) = group_stats(&c.values, g);
                for i in 0..n {
                    let z = (c.values[i] - means[i]) / (stds[i] + 1e-4);
                    if !z.is_nan() {
                        s[i] += wk * z;
                        any[i] = true;
                    }
                }
            }
            for i in 0..n {
                if !any[i] {
                    s[i] = f64::NAN;
                }
            }
            let sd = if n > 1 { nanstd(&s) } else { 0.0 };
            let m = nanmean(&s);
            (
                s.iter().map(|x| (x - m) / (sd + 1e-4)).collect(),
                vec![sd; n],
            )
        }
    };
    let values: Vec<f64> = adv
        .into_iter()
        .map(|a| if a.is_nan() { 0.0 } else { a })
        .collect();
    let mut metrics = Metrics::new();
    reward_metrics(rewards, &combined, &mut metrics);
    let zero: Vec<f64> = std_used
        .iter()
        .map(|s| f64::from(u8::from(is_close_zero(*s))))
        .collect();
    metrics.insert("frac_reward_zero_std".into(), mean(&zero));
    Ok(Advantages { values, metrics })
}

/// For each completion: true when its last id is neither an EOS id nor `pad_id` (it hit the length limit).
/// An empty completion counts as truncated.
pub fn truncated_completions(
    completion_ids: &[Vec<u32>],
    eos_ids: &[u32],
    pad_id: u32,
) -> Vec<bool> {
    completion_ids
        .iter()
        .map(|ids| {
            ids.last()
                .is_none_or(|last| !eos_ids.contains(last) && *last != pad_id)
        })
        .collect()
}

/// Zero the mask rows of truncated completions (TRL `mask_truncated_completions`); `truncated` comes from
/// [`truncated_completions`].
///
/// # Shapes
/// `mask: [N, C]`, `truncated: N` flags → `[N, C]`.
pub fn mask_truncated(mask: Tensor<2>, truncated: &[bool]) -> Result<Tensor<2>, ObjectiveError> {
    let [n, _] = mask.dims();
    if truncated.len() != n {
        return Err(ObjectiveError::Shape {
            op: "mask_truncated",
            input: "truncated",
            got: vec![truncated.len()],
            expected: format!("[{n}] (one flag per mask row)"),
        });
    }
    let keep: Vec<f32> = truncated
        .iter()
        .map(|t| if *t { 0.0 } else { 1.0 })
        .collect();
    let device = mask.device();
    Ok(mask * column(keep, n, &device))
}

/// TRL's `completions/*` metrics from the unpadded completions: mean/min/max length, `clipped_ratio`
/// (fraction truncated) and mean/min/max length of the terminated ones (0 when none terminated).
pub fn completion_metrics(completion_ids: &[Vec<u32>], eos_ids: &[u32], pad_id: u32) -> Metrics {
    let lens: Vec<f64> = completion_ids.iter().map(|c| c.len() as f64).collect();
    let trunc = truncated_completions(completion_ids, eos_ids, pad_id);
    let mut term: Vec<f64> = lens
        .iter()
        .zip(&trunc)
        .filter(|(_, t)| !**t)
        .map(|(l, _)| *l)
        .collect();
    if term.is_empty() {
        term.push(0.0);
    }
    let mut m = Metrics::new();
    let (lo, hi) = min_max(&lens);
    m.insert("completions/mean_length".into(), mean(&lens));
    m.insert("completions/min_length".into(), lo);
    m.insert("completions/max_length".into(), hi);
    m.insert(
        "completions/clipped_ratio".into(),
        mean(
            &trunc
                .iter()
                .map(|t| f64::from(u8::from(*t)))
                .collect::<Vec<_>>(),
        ),
    );
    let (lo, hi) = min_max(&term);
    m.insert("completions/mean_terminated_length".into(), mean(&term));
    m.insert("completions/min_terminated_length".into(), lo);
    m.insert("completions/max_terminated_length".into(), hi);
    m
}

/// Per-token inputs of [`grpo_loss`], all `[N, C]` over completion positions (aligned to the completion tokens,
/// computed at the sampling temperature — also for the reference).
#[derive(Clone, Debug)]
pub struct GrpoInputs {
    /// Policy log-probs (differentiable).
    pub logps: Tensor<2>,
    /// Log-probs of the policy that generated the batch; `None` = on-policy (`logps.detach()`, ratio 1).
    pub old_logps: Option<Tensor<2>>,
    /// Reference log-probs; required when `beta != 0`.
    pub ref_logps: Option<Tensor<2>>,
    /// Per-token entropy; required for `top_entropy_quantile < 1` or `entropy_coef != 0`, else only a metric.
    pub entropy: Option<Tensor<2>>,
    /// Completion mask (already zeroed for truncated rows when `mask_truncated_completions`).
    pub mask: Tensor<2>,
    /// One advantage per completion, `[N]`.
    pub advantages: Tensor<1>,
    /// DAPO/CISPO/VESPO normaliser: completion tokens in the whole generation batch; `None` = `Σ mask`.
    pub num_items_in_batch: Option<f64>,
}

impl GrpoInputs {
    /// On-policy inputs without reference or entropy.
    pub fn new(logps: Tensor<2>, mask: Tensor<2>, advantages: Tensor<1>) -> Self {
        Self {
            logps,
            old_logps: None,
            ref_logps: None,
            entropy: None,
            mask,
            advantages,
            num_items_in_batch: None,
        }
    }
}

/// `torch.quantile(x, q)` with linear interpolation.
fn quantile(mut x: Vec<f32>, q: f64) -> f64 {
    x.sort_by(f32::total_cmp);
    let pos = q * (x.len() - 1) as f64;
    let lo = pos.floor() as usize;
    let hi = pos.ceil() as usize;
    let (a, b) = (f64::from(x[lo]), f64::from(x[hi]));
    // torch.lerp in float32
    let w = (pos - lo as f64) as f32;
    f64::from(a as f32 + w * (b as f32 - a as f32))
}

fn column(values: Vec<f32>, n: usize, device: &burn::tensor::Device) -> Tensor<2> {
    Tensor::from_data(TensorData::new(values, [n, 1]), device)
}

/// The GRPO-family loss of TRL 1.16 `_compute_loss` (eval / no gradient accumulation), plus its metrics:
/// `kl` (β ≠ 0), `entropy` (if given), `clip_ratio/{low_mean,low_min,high_mean,high_max,region_mean}`
/// (PPO-clip families), `cispo_clip_ratio`, `vespo/phi_seq_mean`, `policy_loss` (when `entropy_coef != 0`).
///
/// # Shapes
/// `logps, old_logps, ref_logps, entropy, mask: [N, C]`, `advantages: [N]` → loss `[1]`.
pub fn grpo_loss(
    config: &GrpoConfig,
    inputs: GrpoInputs,
) -> Result<ObjectiveOutput, ObjectiveError> {
    const OP: &str = "grpo_loss";
    config.validate()?;
    let dims = inputs.logps.dims();
    let [n, c] = dims;
    let device = inputs.logps.device();
    check_shape(OP, "mask", &inputs.mask, dims)?;
    check_shape(OP, "advantages", &inputs.advantages, [n])?;
    let mask = inputs.mask.clone();
    let lp = inputs.logps.clone();
    let adv_vals = to_vec(inputs.advantages.clone());
    let adv = inputs.advantages.clone().detach().unsqueeze_dim::<2>(1); // [N, 1]
    let old = match inputs.old_logps.clone() {
        Some(o) => {
            check_shape(OP, "old_logps", &o, dims)?;
            o.detach()
        }
        None => lp.clone().detach(),
    };
    let eps_lo = config.epsilon;
    let eps_hi = config.epsilon_high();

    // Entropy mask (top-entropy quantile).
    let needs_entropy = config.top_entropy_quantile < 1.0 || config.entropy_coef != 0.0;
    if needs_entropy && inputs.entropy.is_none() {
        return Err(ObjectiveError::MissingInput {
            op: OP,
            input: "entropy",
            reason: "top_entropy_quantile < 1 or entropy_coef != 0",
        });
    }
    if let Some(e) = &inputs.entropy {
        check_shape(OP, "entropy", e, dims)?;
    }
    let entropy_mask: Option<Tensor<2>> = match (&inputs.entropy, config.top_entropy_quantile < 1.0)
    {
        (Some(e), true) => {
            let ent: Vec<f32> = e.clone().detach().into_data().iter::<f32>().collect();
            let m: Vec<f32> = mask.clone().into_data().iter::<f32>().collect();
            let selected: Vec<f32> = ent
                .iter()
                .zip(&m)
                .filter(|(_, m)| **m != 0.0)
                .map(|(e, _)| *e)
                .collect();
            let em: Vec<f32> = if selected.is_empty() {
                vec![0.0; n * c]
            } else {
                let thr = quantile(selected, 1.0 - config.top_entropy_quantile);
                ent.iter()
                    .zip(&m)
                    .map(|(e, m)| f32::from(u8::from(f64::from(e * m) >= thr && *m != 0.0)))
                    .collect()
            };
            Some(Tensor::from_data(TensorData::new(em, [n, c]), &device))
        }
        _ => None,
    };

    // Off-policy sequence mask.
    let off_policy = config.off_policy_mask_threshold.map(|thr| {
        let kl = (old.clone() - lp.clone().detach()) * mask.clone();
        let avg = kl.sum_dim(1) / mask.clone().sum_dim(1).clamp_min(1.0); // [N, 1]
        let avg = to_vec(avg);
        let keep: Vec<f32> = (0..n)
            .map(|i| f32::from(u8::from(adv_vals[i] >= 0.0 || avg[i] <= thr)))
            .collect();
        column(keep, n, &device)
    });

    let log_ratio = lp.clone() - old.clone();
    let log_iw = match config.importance_sampling_level {
        ImportanceSampling::Token => log_ratio.clone(),
        ImportanceSampling::Sequence => {
            (log_ratio.clone() * mask.clone()).sum_dim(1) / mask.clone().sum_dim(1).clamp_min(1.0) // [N, 1]
        }
    };
    let mut coef_1 = log_iw.exp();

    let per_token_kl = if config.beta != 0.0 {
        let r = inputs
            .ref_logps
            .clone()
            .ok_or(ObjectiveError::MissingInput {
                op: OP,
                input: "ref_logps",
                reason: "beta != 0",
            })?;
        check_shape(OP, "ref_logps", &r, dims)?;
        let d = r.detach() - lp.clone();
        let kl = d.clone().exp() - d - 1.0;
        Some(if config.use_bias_correction_kl {
            kl * coef_1.clone()
        } else {
            kl
        })
    } else {
        None
    };

    let mut phi_seq: Option<Tensor<2>> = None;
    let mut per_token_loss: Tensor<2> = match &config.loss_type {
        GrpoLoss::Cispo => {
            let clamped = coef_1.clone().clamp_max(eps_hi).detach();
            (clamped * adv.clone()).neg() * lp.clone()
        }
        GrpoLoss::Grpo | GrpoLoss::Bnpo | GrpoLoss::DrGrpo | GrpoLoss::Dapo | GrpoLoss::Luspo => {
            let coef_2 = coef_1.clone().clamp(1.0 - eps_lo, 1.0 + eps_hi);
            if let Some(delta) = config.delta {
                coef_1 = coef_1.clamp_max(delta);
            }
            let l1 = coef_1.clone() * adv.clone();
            let l2 = coef_2 * adv.clone();
            l1.min_pair(l2).neg()
        }
        GrpoLoss::Sapo {
            temperature_pos,
            temperature_neg,
        } => {
            let temps: Vec<f32> = adv_vals.iter().map(|a| if *a > 0.0 { *temperature_pos } else { *temperature_neg } as f32).collect();
            let tau = column(temps, n, &device);
            let soft = sigmoid(tau.clone() * coef_1.clone().sub_scalar(1.0)) * 4.0 / tau;
            (soft * adv.clone()).neg()
        }
        GrpoLoss::Vespo {
            k_pos,
            lambda_pos,
            k_neg,
            lambda_neg,
        } => {
            let lower = 1e-8f64.ln();
            let seq = (log_ratio.clone().detach().clamp(-20.0, 20.0) * mask.clone()).sum_dim(1); // [N, 1]
            let log_w = seq.clamp(lower, 20.0);
            let ks: Vec<f32> = adv_vals
                .iter()
                .map(|a| if *a >= 0.0 { *k_pos } else { *k_neg } as f32)
                .collect();
            let ls: Vec<f32> = adv_vals
                .iter()
                .map(|a| if *a >= 0.0 { *lambda_pos } else { *lambda_neg }.max(1e-4) as f32)
                .collect();
            let k = column(ks, n, &device);
            let lam = column(ls, n, &device);
            let log_phi = lam.clone() + k * log_w.clone() - lam * log_w.exp();
            let phi = log_phi.exp();
            let bad = phi.clone().is_finite().bool_not();
            let phi = phi.mask_fill(bad, 0.0).detach();
            phi_seq = Some(phi.clone());
            (phi * adv.clone()).neg() * lp.clone()
        }
    };
    if let Some(keep) = &off_policy {
        per_token_loss = per_token_loss * keep.clone();
    }
    if let Some(em) = &entropy_mask {
        per_token_loss = per_token_loss * em.clone();
    }
    if let Some(kl) = &per_token_kl {
        per_token_loss = per_token_loss + kl.clone().mul_scalar(config.beta);
    }
    // Broadcast (N, 1) losses (sequence level without KL) to (N, C).
    let per_token_loss = per_token_loss.expand([n, c]);
    let masked = per_token_loss * mask.clone();
    let mut loss: Tensor<1> = match config.loss_type {
        GrpoLoss::Grpo | GrpoLoss::Sapo { .. } => (masked.sum_dim(1).squeeze_dim::<1>(1)
            / mask.clone().sum_dim(1).squeeze_dim::<1>(1).clamp_min(1.0))
        .mean(),
        GrpoLoss::Bnpo => masked.sum() / mask.clone().sum().clamp_min(1.0),
        GrpoLoss::DrGrpo => masked
            .sum()
            .div_scalar((n * config.max_completion_length) as f64),
        GrpoLoss::Dapo | GrpoLoss::Cispo | GrpoLoss::Vespo { .. } => {
            let items = inputs
                .num_items_in_batch
                .unwrap_or_else(|| scalar(mask.clone().sum()));
            masked.sum().div_scalar(items.max(1.0))
        }
        GrpoLoss::Luspo => masked.sum_dim(1).squeeze_dim::<1>(1).mean(),
    };

    let mut metrics = Metrics::new();
    if config.entropy_coef != 0.0 {
        metrics.insert("policy_loss".into(), scalar(loss.clone().detach()));
        if let Some(e) = &inputs.entropy {
            let eff = match &entropy_mask {
                Some(em) => mask.clone() * em.clone(),
                None => mask.clone(),
            };
            let ent_loss = (e.clone() * eff.clone()).sum() / eff.sum().clamp_min(1.0);
            loss = loss - ent_loss.mul_scalar(config.entropy_coef);
        }
    }

    // Metrics.
    let gmm = |x: Tensor<2>| -> f64 {
        if x.dims()[1] == 1 && c != 1 {
            mean(&to_vec(x))
        } else {
            global_masked_mean(x, mask.clone())
        }
    };
    if let Some(kl) = per_token_kl {
        metrics.insert("kl".into(), gmm(kl.detach().expand([n, c])));
    }
    if let Some(e) = inputs.entropy {
        metrics.insert("entropy".into(), gmm(e.detach()));
    }
    let coef_1 = coef_1.detach();
    let adv_pos: Vec<bool> = adv_vals.iter().map(|a| *a > 0.0).collect();
    let adv_neg: Vec<bool> = adv_vals.iter().map(|a| *a < 0.0).collect();
    let flags = |cond: Tensor<2, Bool>, adv_ok: &[bool]| -> Tensor<2> {
        let [rows, cols] = cond.dims();
        let v = bool_vec(cond);
        let f: Vec<f32> = v
            .iter()
            .enumerate()
            .map(|(i, b)| f32::from(u8::from(*b && adv_ok[i / cols])))
            .collect();
        Tensor::from_data(TensorData::new(f, [rows, cols]), &device)
    };
    if config.loss_type.is_clipped_ppo() {
        let low = flags(coef_1.clone().lower_elem(1.0 - eps_lo), &adv_neg);
        let high = flags(coef_1.clone().greater_elem(1.0 + eps_hi), &adv_pos);
        let region = (low.clone() + high.clone()).clamp_max(1.0);
        let seq_mean = |x: Tensor<2>| -> Vec<f64> {
            if x.dims()[1] == 1 && c != 1 {
                to_vec(x)
            } else {
                let num = to_vec((x * mask.clone()).sum_dim(1));
                let den = to_vec(mask.clone().sum_dim(1));
                num.iter().zip(&den).map(|(a, b)| a / b).collect()
            }
        };
        metrics.insert("clip_ratio/low_mean".into(), gmm(low.clone()));
        metrics.insert("clip_ratio/high_mean".into(), gmm(high.clone()));
        metrics.insert("clip_ratio/region_mean".into(), gmm(region));
        metrics.insert("clip_ratio/low_min".into(), min_max(&seq_mean(low)).0);
        metrics.insert("clip_ratio/high_max".into(), min_max(&seq_mean(high)).1);
    } else if config.loss_type == GrpoLoss::Cispo {
        let clipped = flags(coef_1.greater_elem(eps_hi), &adv_pos);
        metrics.insert("cispo_clip_ratio".into(), gmm(clipped));
    } else if let Some(phi) = phi_seq {
        metrics.insert("vespo/phi_seq_mean".into(), mean(&to_vec(phi)));
    }
    Ok(ObjectiveOutput { loss, metrics })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::common::test_util::{close, t1, t2};
    use burn::tensor::Device;

    #[test]
    fn group_advantages_by_hand() {
        let cfg = GrpoConfig {
            num_generations: 2,
            ..GrpoConfig::default()
        };
        let r = RewardColumn::new("r", vec![1.0, 3.0, 2.0, 2.0]);
        let Ok(a) = grpo_advantages(&cfg, &[r]) else {
            panic!("advantages failed")
        };
        let s = 2f64.sqrt(); // std of {1, 3} with n-1
        assert!(close(a.values[0], -1.0 / (s + 1e-4), 1e-9));
        assert!(close(a.values[1], 1.0 / (s + 1e-4), 1e-9));
        assert_eq!(&a.values[2..], &[0.0, 0.0]);
        assert_eq!(a.metrics["frac_reward_zero_std"], 0.5);
        assert!(close(a.metrics["reward"], 2.0, 1e-12));
    }

    #[test]
    fn clipped_loss_by_hand_token_level() {
        let d = Device::default();
        // one sequence, two tokens; ratios exp(0.5) (clipped at 1.28 for A>0) and exp(-0.1).
        let lp = t2(&[-1.0, -2.0], [1, 2], &d);
        let old = t2(&[-1.5, -1.9], [1, 2], &d);
        let cfg = GrpoConfig {
            loss_type: GrpoLoss::Grpo,
            epsilon_high: Some(0.28),
            num_generations: 1,
            ..GrpoConfig::default()
        };
        let inputs = GrpoInputs {
            old_logps: Some(old),
            ..GrpoInputs::new(lp, t2(&[1.0, 1.0], [1, 2], &d), t1(&[2.0], &d))
        };
        let Ok(out) = grpo_loss(&cfg, inputs) else {
            panic!("grpo_loss failed")
        };
        let want = -(2.0 * 1.28 + 2.0 * (-0.1f64).exp()) / 2.0;
        assert!(close(to_vec(out.loss)[0], want, 1e-6));
        assert!(close(out.metrics["clip_ratio/high_mean"], 0.5, 1e-9));
        assert_eq!(out.metrics["clip_ratio/low_mean"], 0.0);
    }

    #[test]
    fn quantile_interpolates_like_torch() {
        assert!((quantile(vec![3.0, 1.0, 2.0, 4.0], 0.5) - 2.5).abs() < 1e-7);
        assert!((quantile(vec![3.0, 1.0, 2.0, 4.0], 0.25) - 1.75).abs() < 1e-7);
        assert_eq!(quantile(vec![5.0], 0.3), 5.0);
    }

    #[test]
    fn truncation_and_completion_metrics() {
        let ids = vec![vec![7, 8, 2], vec![7, 9, 9, 9], vec![2]];
        assert_eq!(
            truncated_completions(&ids, &[2], 0),
            vec![false, true, false]
        );
        let m = completion_metrics(&ids, &[2], 0);
        assert!(close(m["completions/clipped_ratio"], 1.0 / 3.0, 1e-12));
        assert_eq!(m["completions/max_terminated_length"], 3.0);
        assert_eq!(m["completions/min_length"], 1.0);
        let d = Device::default();
        let mask = mask_truncated(
            t2(&[1.0; 6], [3, 2], &d),
            &truncated_completions(&ids, &[2], 0),
        );
        assert_eq!(
            mask.map(to_vec).unwrap_or_default(),
            vec![1.0, 1.0, 0.0, 0.0, 1.0, 1.0]
        );
    }

    #[test]
    fn config_rejects_bad_delta_and_missing_ref() {
        let bad = GrpoConfig {
            delta: Some(-1.0),
            ..GrpoConfig::default()
        };
        assert!(
            bad.validate()
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default()
                .contains("GrpoConfig.delta")
        );
        let d = Device::default();
        let cfg = GrpoConfig {
            beta: 0.04,
            num_generations: 1,
            ..GrpoConfig::default()
        };
        let err = grpo_loss(
            &cfg,
            GrpoInputs::new(
                t2(&[-1.0], [1, 1], &d),
                t2(&[1.0], [1, 1], &d),
                t1(&[1.0], &d),
            ),
        );
        assert!(
            err.err()
                .map(|e| e.to_string())
                .unwrap_or_default()
                .contains("ref_logps")
        );
    }
}
