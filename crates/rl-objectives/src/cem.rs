//! Best-of-N and cross-entropy-method selection: pick, by reward, which sampled completions to fine-tune on,
//! and keep the per-iteration CEM bookkeeping (elite threshold γ, elite/overall reward, best so far).
//!
//! CEM: Rubinstein, <https://doi.org/10.1016/S0377-2217(96)00385-2>; best-of-N / rejection-sampling fine-tuning
//! as in <https://huggingface.co/papers/2307.09288> and RAFT (<https://huggingface.co/papers/2304.06767>).

use serde::{Deserialize, Serialize};

use crate::common::mean;
use crate::error::{ObjectiveError, config_err};

const CFG: &str = "CemConfig";

/// Whether elites are chosen within each prompt's group or across the whole batch.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EliteScope {
    /// Top fraction of each prompt's `G` completions (every prompt contributes; default).
    #[default]
    PerPrompt,
    /// Top fraction of all completions of the batch.
    Global,
}

fn d_frac() -> f64 {
    0.2
}
fn d_min() -> usize {
    1
}

/// Elite-selection config.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CemConfig {
    /// Completions per prompt `G` (rows `i·G .. (i+1)·G` share prompt `i`).
    pub num_generations: usize,
    /// Fraction ρ of completions kept as elites; default 0.2 (a common CEM choice, Rubinstein 1997).
    #[serde(default = "d_frac")]
    pub elite_fraction: f64,
    /// Keep at least this many per scope; default 1 (so ρ → 0 is best-of-N).
    #[serde(default = "d_min")]
    pub min_elites: usize,
    /// Per prompt or over the batch; default per prompt.
    #[serde(default)]
    pub scope: EliteScope,
    /// Drop elites whose reward is below this absolute floor; default none.
    #[serde(default)]
    pub min_reward: Option<f64>,
}

impl CemConfig {
    /// Checked constructor with the defaults for the other fields.
    pub fn new(num_generations: usize, elite_fraction: f64) -> Result<Self, ObjectiveError> {
        let c = Self {
            num_generations,
            elite_fraction,
            min_elites: 1,
            scope: EliteScope::PerPrompt,
            min_reward: None,
        };
        c.validate()?;
        Ok(c)
    }

    /// Checks `G >= 1`, `0 <= ρ <= 1`, `min_elites >= 1`.
    pub fn validate(&self) -> Result<(), ObjectiveError> {
        if self.num_generations == 0 {
            return Err(config_err(CFG, "num_generations", "must be >= 1"));
        }
        if !(0.0..=1.0).contains(&self.elite_fraction) {
            return Err(config_err(
                CFG,
                "elite_fraction",
                format!("must be in [0, 1], got {}", self.elite_fraction),
            ));
        }
        if self.min_elites == 0 {
            return Err(config_err(CFG, "min_elites", "must be >= 1"));
        }
        Ok(())
    }
}

/// Indices of the `k` highest rewards among `idx` (ties → lower index first; NaN rewards never selected).
fn top_k(rewards: &[f64], idx: impl Iterator<Item = usize>, k: usize) -> Vec<usize> {
    let mut v: Vec<usize> = idx.filter(|i| !rewards[*i].is_nan()).collect();
    v.sort_by(|a, b| rewards[*b].total_cmp(&rewards[*a]).then(a.cmp(b)));
    v.truncate(k);
    v.sort_unstable();
    v
}

/// Best-of-N: for each group of `group_size` consecutive completions, the index of the highest reward
/// (first one on ties; groups whose rewards are all NaN are skipped).
pub fn best_of_n(rewards: &[f64], group_size: usize) -> Result<Vec<usize>, ObjectiveError> {
    let cfg = CemConfig {
        num_generations: group_size,
        elite_fraction: 0.0,
        min_elites: 1,
        scope: EliteScope::PerPrompt,
        min_reward: None,
    };
    select_elites(&cfg, rewards)
}

/// Elite indices (sorted ascending) by the config: `max(min_elites, ceil(ρ·size))` best per scope.
pub fn select_elites(config: &CemConfig, rewards: &[f64]) -> Result<Vec<usize>, ObjectiveError> {
    config.validate()?;
    let g = config.num_generations;
    if !rewards.len().is_multiple_of(g) {
        return Err(ObjectiveError::Shape {
            op: "select_elites",
            input: "rewards",
            got: vec![rewards.len()],
            expected: format!("a multiple of num_generations = {g}"),
        });
    }
    let count = |size: usize| {
        ((config.elite_fraction * size as f64).ceil() as usize)
            .max(config.min_elites)
            .min(size)
    };
    let mut out = match config.scope {
        EliteScope::PerPrompt => (0..rewards.len() / g)
            .flat_map(|p| top_k(rewards, p * g..(p + 1) * g, count(g)))
            .collect(),
        EliteScope::Global => top_k(rewards, 0..rewards.len(), count(rewards.len())),
    };
    if let Some(floor) = config.min_reward {
        out.retain(|i| rewards[*i] >= floor);
    }
    Ok(out)
}

/// Statistics of one CEM iteration.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CemIteration {
    /// 0-based iteration number.
    pub iteration: usize,
    /// Selected indices into this iteration's batch.
    pub elites: Vec<usize>,
    /// Elite threshold γ: the lowest reward among the elites (NaN when none).
    pub threshold: f64,
    /// Mean reward of the elites.
    pub elite_mean_reward: f64,
    /// Mean reward of the whole batch (NaNs skipped).
    pub mean_reward: f64,
    /// Best reward seen in any iteration so far.
    pub best_reward: f64,
}

/// Running state of the cross-entropy method: call [`CemState::step`] once per sampled batch.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CemState {
    /// The selection rule.
    pub config: CemConfig,
    /// One entry per completed iteration.
    pub history: Vec<CemIteration>,
}

impl CemState {
    /// Fresh state (the config is validated).
    pub fn new(config: CemConfig) -> Result<Self, ObjectiveError> {
        config.validate()?;
        Ok(Self {
            config,
            history: Vec::new(),
        })
    }

    /// Select this batch's elites and record the iteration.
    pub fn step(&mut self, rewards: &[f64]) -> Result<&CemIteration, ObjectiveError> {
        let elites = select_elites(&self.config, rewards)?;
        let er: Vec<f64> = elites.iter().map(|i| rewards[*i]).collect();
        let valid: Vec<f64> = rewards.iter().copied().filter(|r| !r.is_nan()).collect();
        let batch_best = valid.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let prev_best = self
            .history
            .last()
            .map_or(f64::NEG_INFINITY, |h| h.best_reward);
        let it = CemIteration {
            iteration: self.history.len(),
            threshold: er.iter().copied().reduce(f64::min).unwrap_or(f64::NAN),
            elite_mean_reward: mean(&er),
            mean_reward: mean(&valid),
            best_reward: prev_best.max(batch_best),
            elites,
        };
        self.history.push(it);
        self.history
            .last()
            .ok_or(config_err(CFG, "history", "empty after push"))
    }

    /// Elite threshold γ of every iteration so far (the CEM convergence curve).
    pub fn thresholds(&self) -> Vec<f64> {
        self.history.iter().map(|h| h.threshold).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn best_of_n_picks_first_max_per_group() {
        let r = [0.1, 0.9, 0.9, -1.0, f64::NAN, -0.5];
        assert_eq!(best_of_n(&r, 3).unwrap_or_default(), vec![1, 5]);
        assert!(best_of_n(&r, 4).is_err());
    }

    #[test]
    fn elite_fraction_per_prompt_and_global() {
        let r = [1.0, 4.0, 3.0, 2.0, 0.0, 9.0, 8.0, 7.0];
        let mut cfg = CemConfig::new(4, 0.5).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            select_elites(&cfg, &r).unwrap_or_default(),
            vec![1, 2, 5, 6]
        );
        cfg.scope = EliteScope::Global;
        cfg.elite_fraction = 0.25;
        assert_eq!(select_elites(&cfg, &r).unwrap_or_default(), vec![5, 6]);
        cfg.min_reward = Some(8.5);
        assert_eq!(select_elites(&cfg, &r).unwrap_or_default(), vec![5]);
    }

    #[test]
    fn cem_bookkeeping_tracks_threshold_and_best() {
        let cfg = CemConfig::new(2, 0.5).unwrap_or_else(|e| panic!("{e}"));
        let mut s = CemState::new(cfg).unwrap_or_else(|e| panic!("{e}"));
        let first = s
            .step(&[1.0, 2.0, 5.0, 3.0])
            .cloned()
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(first.elites, vec![1, 2]);
        assert_eq!(
            (first.threshold, first.elite_mean_reward, first.best_reward),
            (2.0, 3.5, 5.0)
        );
        let second = s
            .step(&[4.0, 0.0, 1.0, 1.5])
            .cloned()
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            (second.iteration, second.threshold, second.best_reward),
            (1, 1.5, 5.0)
        );
        assert_eq!(s.thresholds(), vec![2.0, 1.5]);
        assert!(CemConfig::new(2, 1.5).is_err());
    }
}
