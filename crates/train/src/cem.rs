//! The cross-entropy-method / best-of-N rejection-sampling fine-tuning algorithm (CEM: Rubinstein 1997; RAFT,
//! [Dong et al. 2023](https://arxiv.org/abs/2304.06767); rejection sampling in
//! [Llama 2](https://arxiv.org/abs/2307.09288)), plugged into the on-line loop ([`crate::online`]): each iteration
//! samples `G` completions per prompt, scores them, keeps the elite fraction (`temper_rl_objectives::CemState`;
//! an iteration without elites is sampled again), then runs SFT steps (masked NLL on the kept completions' tokens
//! only) on them.

use burn::tensor::Device;
use serde::{Deserialize, Serialize};
use temper_models::Llama;
use temper_rl_objectives::{CemConfig, CemState, EliteScope, SftConfig, SftInputs, sft_loss};
use temper_tensor_ops::EntropyMode;

use crate::config::TrainSettings;
use crate::error::{Result, TrainError};
use crate::online::{
    OnlineAlgorithm, OnlineConfig, OnlineTrainer, Sample, StepContext, online_config_fields,
};
use crate::rollout::Rollout;
use crate::rollout_config::RolloutConfig;
use crate::session::{Metrics, Observer, Session, StepReport};

fn d_g() -> usize {
    8
}
fn d_frac() -> f64 {
    0.2
}
fn d_one() -> usize {
    1
}

/// Elite selection and the SFT steps per iteration (`[cem]` in the TOML).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CemSettings {
    /// Completions sampled per prompt `G`; default 8.
    #[serde(default = "d_g")]
    pub num_generations: usize,
    /// Fraction ρ of completions kept; default 0.2 (a common CEM choice, Rubinstein 1997). 0 = best-of-N.
    #[serde(default = "d_frac")]
    pub elite_fraction: f64,
    /// Keep at least this many per scope; default 1.
    #[serde(default = "d_one")]
    pub min_elites: usize,
    /// Elites per prompt (default) or over the whole batch.
    #[serde(default)]
    pub scope: EliteScope,
    /// Drop elites whose reward is below this floor (e.g. 1.0 = only correct answers); default none.
    #[serde(default)]
    pub min_reward: Option<f64>,
    /// Optimizer steps on each iteration's elites before sampling again; default 1.
    #[serde(default = "d_one")]
    pub sft_steps: usize,
    /// Token loss on the elites (default masked NLL).
    #[serde(default)]
    pub sft: SftConfig,
}

impl Default for CemSettings {
    fn default() -> Self {
        Self {
            num_generations: d_g(),
            elite_fraction: d_frac(),
            min_elites: 1,
            scope: EliteScope::default(),
            min_reward: None,
            sft_steps: 1,
            sft: SftConfig::default(),
        }
    }
}

impl CemSettings {
    /// The selection rule.
    pub fn selection(&self) -> CemConfig {
        CemConfig {
            num_generations: self.num_generations,
            elite_fraction: self.elite_fraction,
            min_elites: self.min_elites,
            scope: self.scope,
            min_reward: self.min_reward,
        }
    }
}

/// `temper cem --config FILE.toml`: `[rollout]`, `[train]`, `[cem]`; every field has a default.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CemRunConfig {
    /// Model, device, prompts, sampling of the candidates, rewards.
    #[serde(default)]
    pub rollout: RolloutConfig,
    /// Loop settings: `steps` counts optimizer (SFT) steps, `batch_size` the completions sampled per iteration
    /// (prompts × `cem.num_generations`); the elites are split into `batch_size / micro_batch_size` micro-batches.
    #[serde(default)]
    pub train: TrainSettings,
    /// Selection settings.
    #[serde(default)]
    pub cem: CemSettings,
}

impl CemRunConfig {
    /// Cross-section checks.
    pub fn validate(&self) -> Result<()> {
        let err = |message: String| TrainError::Config {
            path: "[cem]".into(),
            message,
        };
        self.rollout.validate()?;
        self.cem.selection().validate()?;
        if self.cem.sft_steps == 0 {
            return Err(err("cem.sft_steps must be at least 1".into()));
        }
        let g = self.cem.num_generations;
        if !self.train.batch_size.is_multiple_of(g) {
            return Err(err(format!(
                "train.batch_size ({}) must be a multiple of cem.num_generations ({g})",
                self.train.batch_size
            )));
        }
        self.train.validate().map_err(err)?;
        Ok(())
    }
}

impl OnlineConfig for CemRunConfig {
    type Module = Llama;
    type Algorithm = Cem;
    online_config_fields!();
    fn build(&self, initial: Llama, _device: &Device) -> Result<(Cem, Llama)> {
        Ok((Cem::new(self.cem.clone())?, initial))
    }
}

/// The elites still to be trained on (kept in checkpoints so a resumed run continues the same iteration).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
struct Pending {
    prompt_ids: Vec<Vec<u32>>,
    completion_ids: Vec<Vec<u32>>,
    /// Loss masks of the completions when some token came from a tool (empty: every token is the model's).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    loss_mask: Vec<Vec<u8>>,
    steps_left: usize,
}

impl Pending {
    fn rollout(&self) -> Rollout {
        let n = self.prompt_ids.len();
        Rollout {
            prompt_ids: self.prompt_ids.clone(),
            gen_logps: self
                .completion_ids
                .iter()
                .map(|c| vec![0.0; c.len()])
                .collect(),
            loss_mask: if self.loss_mask.is_empty() {
                self.completion_ids
                    .iter()
                    .map(|c| vec![1; c.len()])
                    .collect()
            } else {
                self.loss_mask.clone()
            },
            completion_ids: self.completion_ids.clone(),
            texts: vec![String::new(); n],
            prompt_texts: vec![String::new(); n],
            references: vec![None; n],
            tool_stats: Vec::new(),
        }
    }
}

/// Everything CEM needs to continue exactly (the loop keeps the prompt cursor).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct CemAlgorithmState {
    cem: CemState,
    pending: Pending,
}

/// Iterations in a row without a single elite before the run gives up.
const MAX_EMPTY_ITERATIONS: usize = 100;

/// The CEM algorithm: selection settings, the selection history and the pending elites.
pub struct Cem {
    settings: CemSettings,
    state: CemAlgorithmState,
    empty: usize,
}

/// A CEM run: the on-line loop around [`Cem`].
pub type CemTrainer<'a> = OnlineTrainer<'a, Cem>;

impl Cem {
    /// A run with no iteration yet.
    pub fn new(settings: CemSettings) -> Result<Self> {
        let state = CemAlgorithmState {
            cem: CemState::new(settings.selection())?,
            pending: Pending::default(),
        };
        Ok(Self {
            settings,
            state,
            empty: 0,
        })
    }

    /// The selection history (one entry per sampled iteration).
    pub fn cem_state(&self) -> &CemState {
        &self.state.cem
    }
}

impl OnlineAlgorithm<Llama> for Cem {
    const NAME: &'static str = "CEM";

    fn group_size(&self) -> usize {
        self.settings.num_generations
    }

    /// Samples only when the last iteration's elites have had their `sft_steps`.
    fn wants_rollout(&self) -> bool {
        self.state.pending.steps_left == 0
    }

    /// Selects the elites (the iteration's metrics `cem/*`, `reward` and its log line); refuses a batch without any.
    fn accept(
        &mut self,
        sample: &Sample<'_>,
        m: &mut Metrics,
        session: &Session,
        observer: &mut dyn Observer,
    ) -> Result<bool> {
        let (ro, scores) = (sample.rollout, sample.scores);
        let it = self.state.cem.step(&scores.total)?.clone();
        m.insert("cem/iteration".into(), it.iteration as f64);
        m.insert("cem/elite_reward".into(), it.elite_mean_reward);
        m.insert("cem/mean_reward".into(), it.mean_reward);
        m.insert("cem/threshold".into(), it.threshold);
        m.insert("cem/best_reward".into(), it.best_reward);
        m.insert("cem/num_elites".into(), it.elites.len() as f64);
        m.insert("reward".into(), it.mean_reward);
        for (name, _, v) in &scores.parts {
            m.insert(
                format!("rewards/{name}/mean"),
                v.iter().sum::<f64>() / v.len().max(1) as f64,
            );
        }
        let mut line = serde_json::json!({"step": session.step, "sample": ro.texts.first()});
        if let Some(obj) = line.as_object_mut() {
            for (k, v) in m.iter() {
                obj.insert(k.clone(), serde_json::json!(v));
            }
        }
        session.log_value(&line)?;
        if !it.elites.is_empty() {
            self.state.pending = Pending {
                prompt_ids: it
                    .elites
                    .iter()
                    .map(|&i| ro.prompt_ids[i].clone())
                    .collect(),
                completion_ids: it
                    .elites
                    .iter()
                    .map(|&i| ro.completion_ids[i].clone())
                    .collect(),
                loss_mask: if it
                    .elites
                    .iter()
                    .all(|&i| ro.loss_tokens(i) == ro.loss_mask[i].len())
                {
                    Vec::new()
                } else {
                    it.elites.iter().map(|&i| ro.loss_mask[i].clone()).collect()
                },
                steps_left: self.settings.sft_steps,
            };
            self.empty = 0;
            return Ok(true);
        }
        self.empty += 1;
        observer.on_message(&format!(
            "CEM iteration {}: no elite passed the floor, sampling again",
            it.iteration
        ));
        if self.empty >= MAX_EMPTY_ITERATIONS {
            return Err(TrainError::Config {
                path: "[cem]".into(),
                message: format!(
                    "{} iterations in a row without an elite: lower cem.min_reward",
                    self.empty
                ),
            });
        }
        Ok(false)
    }

    fn logs_samples(&self) -> bool {
        false
    }

    fn state(&self) -> serde_json::Value {
        serde_json::to_value(&self.state).unwrap_or_default()
    }

    fn restore(&mut self, state: serde_json::Value) -> Result<()> {
        self.state = serde_json::from_value(state).map_err(|e| TrainError::Config {
            path: "[cem]".into(),
            message: format!("resumed CEM state: {e}"),
        })?;
        Ok(())
    }

    /// One SFT step on the pending elites.
    fn step(&mut self, ctx: StepContext<'_>, session: &mut Session) -> Result<StepReport> {
        let pad = ctx.ids.pad;
        let elites = self.state.pending.rollout();
        let e = elites.len();
        let a = session.accumulation();
        // Elites split evenly over the micro-batches; each weighs its share of the elite tokens.
        let chunk = |i: usize| -> Vec<usize> { (i * e / a..(i + 1) * e / a).collect() };
        // The model's own tokens (tool responses are masked out).
        let total_tokens: f64 = (0..e)
            .map(|i| elites.loss_tokens(i) as f64)
            .sum::<f64>()
            .max(1.0);
        let device = session.device.clone();
        let sft = self.settings.sft.clone();
        let failure_state = ctx.failure_state;
        let report = session.step(
            |model, i| {
                let rows = chunk(i);
                if rows.is_empty() {
                    // No elite for this micro-batch: a tracked zero (0 · Σ final-norm gain) adds nothing.
                    return Ok((model.norm.gamma.val().sum().mul_scalar(0.0), Metrics::new()));
                }
                let packed = elites.pack(&rows, pad);
                let (lp, _) = packed.completion_scores(model, 1.0, EntropyMode::Skip, &device);
                let tokens: f64 = packed
                    .completion_mask
                    .iter()
                    .flatten()
                    .map(|&m| f64::from(m))
                    .sum();
                let out = sft_loss(&sft, SftInputs::new(lp, packed.mask(&device)))?;
                let mut m = Metrics::new();
                m.insert("num_tokens".into(), total_tokens);
                Ok((out.loss * (tokens / total_tokens), m))
            },
            ctx.metrics,
            || failure_state,
        )?;
        self.state.pending.steps_left -= 1;
        Ok(report)
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use temper_rewards::RewardInput;

    use super::*;
    use crate::testkit::{Collect, low_id_reward, low_ids, mean, online, settings, tiny, tmp};

    fn run_cem(
        out: &Path,
        steps: usize,
        sft_steps: usize,
        lr: f64,
    ) -> (Vec<StepReport>, CemState, Option<Rollout>) {
        run_cem_with(out, steps, sft_steps, lr, 0.25, 8)
    }

    fn run_cem_with(
        out: &Path,
        steps: usize,
        sft_steps: usize,
        lr: f64,
        elite_fraction: f64,
        micro: usize,
    ) -> (Vec<StepReport>, CemState, Option<Rollout>) {
        let (model, tok, device) = tiny();
        let mut train = settings(out, steps, 32, micro, lr);
        train.save_steps = 2;
        let run = CemRunConfig {
            train,
            cem: CemSettings {
                num_generations: 8,
                elite_fraction,
                sft_steps,
                ..CemSettings::default()
            },
            ..CemRunConfig::default()
        };
        run.validate().expect("valid");
        let cem = Cem::new(run.cem.clone()).expect("cem");
        let mut t = online(&tok, 16, 4, low_id_reward(), cem, run.train.seed);
        let mut session = Session::start(model, &device, run.train).expect("session");
        let mut obs = Collect::default();
        t.train(&mut session, &mut obs).expect("train");
        (
            obs.0,
            t.algorithm().cem_state().clone(),
            t.last_rollout().cloned(),
        )
    }

    #[test]
    fn elite_sft_raises_the_synthetic_reward() {
        let out = tmp("cem-learn");
        let (reports, cem, _) = run_cem(&out, 12, 1, 1e-2);
        let r: Vec<f64> = cem.history.iter().map(|h| h.mean_reward).collect();
        assert_eq!(r.len(), 12);
        assert!(
            mean(&r[8..]) > mean(&r[..3]) + 0.15,
            "mean reward per iteration {r:?}"
        );
        assert!(
            cem.history
                .iter()
                .all(|h| h.elite_mean_reward >= h.mean_reward)
        );
        assert!(
            reports
                .iter()
                .all(|x| x.metrics.contains_key("cem/elite_reward"))
        );
        let log = std::fs::read_to_string(out.join("metrics.jsonl")).expect("metrics");
        assert!(log.contains("eval/accuracy") && log.contains("cem/mean_reward"));
        let _ = std::fs::remove_dir_all(&out);
    }

    #[test]
    fn first_step_loss_is_the_nll_of_the_elites_computed_directly() {
        // (elite fraction, kept per group, micro-batch): the top 25% in 4 micro-batches, and best-of-N in 16
        // micro-batches of which 12 get no elite.
        for (frac, keep, micro) in [(0.25, 2, 8), (0.0, 1, 2)] {
            check_first_step(frac, keep, micro);
        }
    }

    fn check_first_step(frac: f64, keep: usize, micro: usize) {
        let out = tmp("cem-golden");
        let (reports, cem, ro) = run_cem_with(&out, 1, 1, 1e-3, frac, micro);
        let ro = ro.expect("rollout");
        // Elites by hand: the best `keep` of each group of 8 (ties → lower index).
        let r: Vec<f64> = (0..ro.len())
            .map(|i| {
                low_ids(&RewardInput::unreferenced(
                    &ro.prompt_texts[i],
                    &ro.texts[i],
                ))
            })
            .collect();
        let mut elites = Vec::new();
        for grp in 0..ro.len() / 8 {
            let mut idx: Vec<usize> = (grp * 8..grp * 8 + 8).collect();
            idx.sort_by(|a, b| r[*b].total_cmp(&r[*a]).then(a.cmp(b)));
            elites.extend(idx.into_iter().take(keep));
        }
        elites.sort_unstable();
        assert_eq!(cem.history[0].elites, elites);
        let (model, tok, device) = tiny();
        let pad = tok.special_ids(model.config().eos_token_id).pad;
        let packed = ro.pack(&elites, pad);
        let (lp, _) = packed.completion_scores(&model, 1.0, EntropyMode::Skip, &device);
        let mask = packed.mask(&device);
        let nll: f32 = (lp * mask.clone()).sum().neg().into_scalar();
        let count: f32 = mask.sum().into_scalar();
        let want = f64::from(nll / count);
        assert!(
            (reports[0].loss - want).abs() < 1e-4,
            "ρ {frac}: loss {} vs {want}",
            reports[0].loss
        );
        assert!(reports[0].grad_norm > 0.0);
        let _ = std::fs::remove_dir_all(&out);
    }

    #[test]
    fn resuming_mid_iteration_gives_the_same_next_losses() {
        // Two SFT steps per iteration; stop after step 3 (mid-iteration 2) and resume.
        let straight = tmp("cem-straight");
        let (full, _, _) = run_cem(&straight, 4, 2, 3e-3);
        let split = tmp("cem-split");
        let (first, _, _) = run_cem(&split, 3, 2, 3e-3);
        assert_eq!(first.len(), 3);
        let (second, cem, _) = run_cem(&split, 4, 2, 3e-3);
        assert_eq!(second.iter().map(|r| r.step).collect::<Vec<_>>(), vec![4]);
        assert_eq!(
            cem.history.len(),
            2,
            "the resumed run continues iteration 2 without sampling"
        );
        assert!(
            (full[3].loss - second[0].loss).abs() < 1e-5,
            "{} vs resumed {}",
            full[3].loss,
            second[0].loss
        );
        let _ = std::fs::remove_dir_all(&straight);
        let _ = std::fs::remove_dir_all(&split);
    }

    #[test]
    fn config_defaults_parse_and_are_valid() {
        let run: CemRunConfig =
            crate::config::parse_toml("", Path::new("<defaults>")).expect("defaults");
        assert_eq!(
            (
                run.cem.num_generations,
                run.cem.elite_fraction,
                run.train.batch_size
            ),
            (8, 0.2, 8)
        );
        run.validate().expect("valid");
        let bad: CemRunConfig =
            crate::config::parse_toml("[cem]\nelite_fraction = 1.5\n", Path::new("x.toml"))
                .expect("parses");
        assert!(
            bad.validate()
                .expect_err("ρ > 1")
                .to_string()
                .contains("elite_fraction")
        );
    }
}
