//! The one on-line loop GRPO, RLOO, PPO and CEM share: resume (prompt cursor + algorithm state), held-out
//! evaluation at the start and every `eval_steps`, picking prompts, the rollout, reward scoring into named
//! columns, the common metrics (completion lengths, `timing/generate_s`), the sample line, checkpoints.
//!
//! An algorithm ([`OnlineAlgorithm`]) supplies only what differs: how many completions per prompt, whether a
//! sampled batch is kept (CEM resamples until it has elites), and the optimizer step(s) on a scored rollout. The
//! loop is generic over the trained module ([`PolicyModule`]: a bare [`Llama`], or PPO's policy with a value
//! head) and generates through the [`CausalLm`] seam.

use std::time::Instant;

use burn::tensor::{Device, Tensor, TensorData};
use serde::Serialize;
use serde::de::DeserializeOwned;
use temper_chat::GenerationParams;
use temper_models::{CausalLm, Llama};
use temper_rewards::{Reward, ScoreBreakdown};
use temper_rl_objectives::completion_metrics;
use temper_tensor_ops::EntropyMode;
use temper_tokenizer::{SpecialIds, Tokenizer};

use crate::config::TrainSettings;
use crate::data::Cursor;
use crate::error::{Result, TrainError};
use crate::rollout::{PromptSet, RenderedPrompt, Rollout, Sampler, evaluate, rollout};
use crate::rollout_config::RolloutConfig;
use crate::session::{Metrics, Observer, Session, StepReport, Trainable};
use crate::task_eval::log_held_out;
use crate::tool_rollout::{ToolSetup, tool_metrics, tool_rollout};

/// A trained module that holds a policy to sample from: a bare [`Llama`], or PPO's [`crate::PolicyWithValue`].
pub trait PolicyModule: Trainable {
    /// The language model that generates.
    type Policy: CausalLm;
    /// The policy inside the module.
    fn policy(&self) -> &Self::Policy;
    /// The model config's end-of-sequence id (used when the tokenizer names none).
    fn eos_token_id(&self) -> Option<u32>;
}

impl PolicyModule for Llama {
    type Policy = Llama;
    fn policy(&self) -> &Llama {
        self
    }
    fn eos_token_id(&self) -> Option<u32> {
        self.config().eos_token_id
    }
}

/// A sampled, scored batch as an algorithm sees it.
pub struct Sample<'a> {
    /// The completions (`group_size` per prompt, rows of a prompt adjacent).
    pub rollout: &'a Rollout,
    /// Each reward part's scores and the weighted total.
    pub scores: &'a ScoreBreakdown,
    /// The policy that generated them (merged, no gradients): the old policy.
    pub policy: &'a dyn CausalLm,
}

/// What the loop hands an algorithm for one optimizer step.
pub struct StepContext<'a> {
    /// This step's sampled batch; `None` when the algorithm asked for no rollout ([`OnlineAlgorithm::wants_rollout`]).
    pub sample: Option<Sample<'a>>,
    /// The sampling parameters of the rollout.
    pub generation: &'a GenerationParams,
    /// End-of-sequence and padding ids ([`Tokenizer::special_ids`]).
    pub ids: SpecialIds,
    /// The loop's metrics of this step (completion lengths, `timing/generate_s`, what `accept` added): log them
    /// with the step.
    pub metrics: Metrics,
    /// The run's state to save in the "last-good" checkpoint if the loss turns non-finite.
    pub failure_state: serde_json::Value,
    /// When the step began (before sampling).
    pub started: Instant,
}

impl<'a> StepContext<'a> {
    /// The sampled batch, or an error naming the algorithm when there is none.
    pub fn sample(&self, algorithm: &str) -> Result<&Sample<'a>> {
        self.sample.as_ref().ok_or_else(|| TrainError::Config {
            path: "[train]".into(),
            message: format!("{algorithm} needs a rollout at every step"),
        })
    }
}

/// An on-line algorithm plugged into [`OnlineTrainer`]: GRPO, RLOO, PPO and CEM implement it.
pub trait OnlineAlgorithm<M: PolicyModule> {
    /// Names the algorithm in errors (`GRPO`).
    const NAME: &'static str;

    /// Completions sampled per prompt; the loop picks `train.batch_size / group_size()` prompts a rollout.
    fn group_size(&self) -> usize;

    /// Prompts per rollout (default `batch_size / group_size()`).
    fn prompts_per_rollout(&self, settings: &TrainSettings) -> usize {
        settings.batch_size / self.group_size()
    }

    /// Whether this step samples a batch (CEM trains several steps on one iteration's elites). Default: always.
    fn wants_rollout(&self) -> bool {
        true
    }

    /// Looks at a scored batch before the step and says whether to keep it (`false`: the loop samples again from
    /// the next prompts with another seed). May add metrics and log lines. Default: keep it.
    fn accept(
        &mut self,
        _sample: &Sample<'_>,
        _metrics: &mut Metrics,
        _session: &Session<M>,
        _observer: &mut dyn Observer,
    ) -> Result<bool> {
        Ok(true)
    }

    /// Whether the loop logs `{"step", "sample"}` after each step (CEM logs its own iteration lines).
    fn logs_samples(&self) -> bool {
        true
    }

    /// The algorithm's own state to checkpoint (beyond the prompt cursor, which the loop keeps). Default none.
    fn state(&self) -> serde_json::Value {
        serde_json::Value::Null
    }

    /// Restores [`OnlineAlgorithm::state`] after a resume.
    fn restore(&mut self, _state: serde_json::Value) -> Result<()> {
        Ok(())
    }

    /// One optimizer step (or several updates and [`Session::finish_step`]) on `ctx`'s batch.
    fn step(&mut self, ctx: StepContext<'_>, session: &mut Session<M>) -> Result<StepReport>;
}

/// What an on-line checkpoint saves next to the weights.
#[derive(Clone, Debug, Serialize)]
struct OnlineState {
    /// Position in the training prompts.
    cursor: Cursor,
    /// The algorithm's own state ([`OnlineAlgorithm::state`]).
    #[serde(skip_serializing_if = "serde_json::Value::is_null")]
    algorithm: serde_json::Value,
}

impl OnlineState {
    /// Reads a saved state, also in the layouts written before the loop was shared: a bare cursor (GRPO, RLOO,
    /// PPO) or `{cursor, cem, pending}` (CEM), so that older checkpoints still resume.
    fn read(saved: serde_json::Value) -> std::result::Result<Self, serde_json::Error> {
        match saved {
            serde_json::Value::Object(mut fields) if fields.contains_key("cursor") => {
                let cursor = serde_json::from_value(fields.remove("cursor").unwrap_or_default())?;
                let algorithm = match fields.remove("algorithm") {
                    Some(a) if fields.is_empty() => a,
                    Some(_) => {
                        return Err(serde::de::Error::custom(
                            "unknown fields next to `algorithm`",
                        ));
                    }
                    None if fields.is_empty() => serde_json::Value::Null,
                    None => serde_json::Value::Object(fields),
                };
                Ok(Self { cursor, algorithm })
            }
            bare => Ok(Self {
                cursor: serde_json::from_value(bare)?,
                algorithm: serde_json::Value::Null,
            }),
        }
    }
}

/// Rollouts in a row an algorithm may refuse ([`OnlineAlgorithm::accept`]) before the run gives up.
pub const MAX_REFUSED_ROLLOUTS: usize = 100;

/// The on-line loop around one algorithm: prompts, rewards, sampling parameters and the prompt cursor.
pub struct OnlineTrainer<'a, A> {
    tok: &'a Tokenizer,
    prompts: PromptSet,
    reward: Box<dyn Reward>,
    generation: GenerationParams,
    cursor: Cursor,
    algorithm: A,
    last: Option<Rollout>,
    tools: Option<ToolSetup>,
}

impl<'a, A> OnlineTrainer<'a, A> {
    /// Builds `rollout`'s prompts (seeded by `seed`, the run's `train.seed`) and rewards (reward models loaded on
    /// `device` without autodiff) around `algorithm`.
    pub fn new(
        tok: &'a Tokenizer,
        rollout: &RolloutConfig,
        seed: u64,
        algorithm: A,
        device: &Device,
    ) -> Result<Self> {
        rollout.validate()?;
        let tools = rollout.tools.as_ref().map(ToolSetup::new).transpose()?;
        let prompts = match &tools {
            None => PromptSet::build(&rollout.task, tok, rollout.chat, seed)?,
            Some(setup) => {
                let (train_n, eval_n) = rollout.task.sizes();
                let task = rollout.task.task(seed)?;
                PromptSet::from_task_with(&*task, rollout.chat, train_n, eval_n, &|p| {
                    setup.render(tok, p, rollout.chat)
                })?
            }
        };
        let reward = rollout.build_reward(&device.clone().inner())?;
        let trainer = Self::with_task(
            tok,
            rollout.generation.clone(),
            prompts,
            Box::new(reward),
            algorithm,
            seed,
        )?;
        Ok(match tools {
            Some(setup) => trainer.with_tools(setup),
            None => trainer,
        })
    }

    /// Samples (in training and held-out evaluation) with `setup`'s tools: multi-turn [`tool_rollout`]s whose
    /// tool responses are masked out of the loss. The prompts should describe the tools ([`ToolSetup::render`]).
    pub fn with_tools(mut self, setup: ToolSetup) -> Self {
        self.tools = Some(setup);
        self
    }

    /// Like [`OnlineTrainer::new`] with given prompts and reward.
    pub fn with_task(
        tok: &'a Tokenizer,
        generation: GenerationParams,
        prompts: PromptSet,
        reward: Box<dyn Reward>,
        algorithm: A,
        seed: u64,
    ) -> Result<Self> {
        if prompts.train.is_empty() {
            return Err(TrainError::Config {
                path: "[rollout.task]".into(),
                message: "no training prompts".into(),
            });
        }
        Ok(Self {
            tok,
            cursor: Cursor::new(prompts.train.len(), seed),
            prompts,
            reward,
            generation,
            algorithm,
            last: None,
            tools: None,
        })
    }

    /// The algorithm (and its state).
    pub fn algorithm(&self) -> &A {
        &self.algorithm
    }

    /// The last sampled batch (for inspection).
    pub fn last_rollout(&self) -> Option<&Rollout> {
        self.last.as_ref()
    }

    /// The tokenizer in use.
    pub fn tokenizer(&self) -> &Tokenizer {
        self.tok
    }

    fn sampler<M: PolicyModule>(&self, model: &M) -> Sampler<'_> {
        Sampler {
            tok: self.tok,
            ids: self.tok.special_ids(model.eos_token_id()),
            params: &self.generation,
        }
    }

    fn state(&self, algorithm: serde_json::Value) -> OnlineState {
        OnlineState {
            cursor: self.cursor.clone(),
            algorithm,
        }
    }

    /// Greedy held-out evaluation of the session's policy, logged as `eval/reward` and `eval/accuracy`.
    pub fn evaluate<M: PolicyModule>(
        &self,
        session: &Session<M>,
        observer: &mut dyn Observer,
    ) -> Result<()> {
        let merged = session.merged();
        let device = session.device.clone().inner();
        let result = evaluate(
            merged.policy(),
            self.sampler(&merged),
            &self.prompts.eval_problems,
            self.prompts.chat,
            self.reward.as_ref(),
            self.tools.as_ref(),
            &device,
        )?;
        log_held_out(session, observer, result)
    }

    /// Runs until `train.steps`: resumes the cursor and the algorithm's state, evaluates at the start and when
    /// due, and checkpoints when due.
    pub fn train<M>(&mut self, session: &mut Session<M>, observer: &mut dyn Observer) -> Result<()>
    where
        M: PolicyModule,
        A: OnlineAlgorithm<M>,
    {
        let what = format!("{} state", A::NAME);
        if let Some(saved) = session.take_resumed_state::<serde_json::Value>(&what)? {
            let state = OnlineState::read(saved).map_err(|e| TrainError::Checkpoint {
                path: session.settings.output_dir.clone(),
                message: format!("{what}: {e}"),
            })?;
            self.cursor = state.cursor;
            self.algorithm.restore(state.algorithm)?;
        }
        if session.step == 0 {
            self.evaluate(session, observer)?;
        }
        let device = session.device.clone().inner();
        while session.running() {
            let started = Instant::now();
            let sampler = Sampler {
                tok: self.tok,
                ids: self.tok.special_ids(session.model.eos_token_id()),
                params: &self.generation,
            };
            // Merged once per step that samples (with LoRA, the adapters would otherwise be re-composed at every
            // decoding step); CEM's steps on pending elites need no policy copy.
            let merged = self.algorithm.wants_rollout().then(|| session.merged());
            let g = self.algorithm.group_size();
            let n_prompts = self.algorithm.prompts_per_rollout(&session.settings);
            let mut sampled: Option<(Rollout, ScoreBreakdown)> = None;
            let mut metrics = Metrics::new();
            let mut refused = 0usize;
            while let Some(merged) = merged.as_ref().filter(|_| sampled.is_none()) {
                let picked: Vec<&RenderedPrompt> = self
                    .cursor
                    .take(n_prompts)
                    .into_iter()
                    .map(|i| &self.prompts.train[i])
                    .collect();
                // Seeded by the step (and, when a batch was refused, by the attempt): a resumed run draws the same.
                let seed =
                    session.step_seed() ^ (refused as u64).wrapping_mul(0x2545_f491_4f6c_dd1d);
                let t0 = Instant::now();
                let ro = match &self.tools {
                    Some(setup) => tool_rollout(
                        merged.policy(),
                        sampler,
                        &picked,
                        g,
                        seed,
                        setup.environment(),
                        &device,
                    )?,
                    None => rollout(merged.policy(), sampler, &picked, g, seed, &device)?,
                };
                let gen_seconds = t0.elapsed().as_secs_f64();
                let scores = ro.score(self.reward.as_ref())?;
                let mut m = completion_metrics(
                    &ro.completion_ids,
                    &sampler.ids.stop_ids(),
                    sampler.ids.pad,
                );
                m.insert("timing/generate_s".into(), gen_seconds);
                m.extend(tool_metrics(&ro));
                let sample = Sample {
                    rollout: &ro,
                    scores: &scores,
                    policy: merged.policy(),
                };
                if self.algorithm.accept(&sample, &mut m, session, observer)? {
                    metrics = m;
                    sampled = Some((ro, scores));
                } else {
                    refused += 1;
                    if refused >= MAX_REFUSED_ROLLOUTS {
                        return Err(TrainError::Config {
                            path: "[rollout]".into(),
                            message: format!(
                                "{} refused {refused} sampled batches in a row",
                                A::NAME
                            ),
                        });
                    }
                }
            }
            let failure_state =
                serde_json::to_value(self.state(self.algorithm.state())).unwrap_or_default();
            let ctx = StepContext {
                sample: sampled
                    .as_ref()
                    .zip(merged.as_ref())
                    .map(|((rollout, scores), merged)| Sample {
                        rollout,
                        scores,
                        policy: merged.policy(),
                    }),
                generation: &self.generation,
                ids: sampler.ids,
                metrics,
                failure_state,
                started,
            };
            let report = self.algorithm.step(ctx, session)?;
            if let Some((ro, _)) = &sampled
                && self.algorithm.logs_samples()
            {
                session.log_value(
                    &serde_json::json!({"step": session.step, "sample": ro.texts.first()}),
                )?;
            }
            observer.on_step(&report);
            if let Some((ro, _)) = sampled {
                self.last = Some(ro);
            }
            if session.eval_due() {
                self.evaluate(session, observer)?;
            }
            session.checkpoint_if_due(&self.state(self.algorithm.state()), observer)?;
        }
        Ok(())
    }
}

/// An on-line run config (`GrpoRunConfig`, ...): the shared `[rollout]` and `[train]` tables, and how to build the
/// algorithm and the module it trains. What `temper grpo|rloo|ppo|cem` runs through [`start_online`].
pub trait OnlineConfig: Clone + DeserializeOwned + serde::Serialize {
    /// The trained module.
    type Module: PolicyModule;
    /// The algorithm.
    type Algorithm: OnlineAlgorithm<Self::Module>;
    /// `[rollout]`.
    fn rollout(&self) -> &RolloutConfig;
    /// `[rollout]`, to override (e.g. the device from the command line).
    fn rollout_mut(&mut self) -> &mut RolloutConfig;
    /// `[train]`.
    fn train(&self) -> &TrainSettings;
    /// `[train]`, to override (steps, output folder).
    fn train_mut(&mut self) -> &mut TrainSettings;
    /// Cross-section checks; errors name the field.
    fn validate(&self) -> Result<()>;
    /// The algorithm (with a frozen reference copied from `initial` when it needs one) and the module to train.
    fn build(&self, initial: Llama, device: &Device) -> Result<(Self::Algorithm, Self::Module)>;
}

/// The field accessors of [`OnlineConfig`] for a run config with `rollout` and `train` fields and an inherent
/// `validate`: `impl OnlineConfig for X { type Module = ..; type Algorithm = ..; online_config_fields!(); fn build .. }`.
macro_rules! online_config_fields {
    () => {
        fn rollout(&self) -> &$crate::RolloutConfig {
            &self.rollout
        }
        fn rollout_mut(&mut self) -> &mut $crate::RolloutConfig {
            &mut self.rollout
        }
        fn train(&self) -> &$crate::TrainSettings {
            &self.train
        }
        fn train_mut(&mut self) -> &mut $crate::TrainSettings {
            &mut self.train
        }
        fn validate(&self) -> $crate::Result<()> {
            Self::validate(self)
        }
    };
}
pub(crate) use online_config_fields;

/// A started on-line run: the loop around the algorithm, and the session over the trained module.
pub type OnlineRun<'a, C> = (
    OnlineTrainer<'a, <C as OnlineConfig>::Algorithm>,
    Session<<C as OnlineConfig>::Module>,
);

/// Validates `run`, builds its algorithm, prompts and rewards, and starts (or resumes) the session on `device`
/// (with autodiff) from `initial`.
pub fn start_online<'a, C: OnlineConfig>(
    run: &C,
    tok: &'a Tokenizer,
    initial: Llama,
    device: &Device,
) -> Result<OnlineRun<'a, C>> {
    run.validate()?;
    let (algorithm, module) = run.build(initial, device)?;
    let trainer = OnlineTrainer::new(tok, run.rollout(), run.train().seed, algorithm, device)?;
    let session = Session::start(module, device, run.train().clone())?;
    Ok((trainer, session))
}

/// `rewards/<name>/mean` of each reward part, and `reward`, the mean weighted total (NaN totals count as 0).
pub fn reward_metrics(scores: &ScoreBreakdown) -> Metrics {
    let mut m = Metrics::new();
    for (name, _, v) in &scores.parts {
        m.insert(
            format!("rewards/{name}/mean"),
            v.iter().sum::<f64>() / v.len().max(1) as f64,
        );
    }
    let total: f64 = scores
        .total
        .iter()
        .map(|s| if s.is_nan() { 0.0 } else { *s })
        .sum();
    m.insert("reward".into(), total / scores.total.len().max(1) as f64);
    m
}

/// Pads a `[n, c]` tensor with zero columns to `[n, cols]`.
pub(crate) fn pad_cols(t: Tensor<2>, cols: usize) -> Tensor<2> {
    let [n, c] = t.dims();
    if c >= cols {
        return t;
    }
    let device = t.device();
    Tensor::cat(vec![t, Tensor::zeros([n, cols - c], &device)], 1)
}

/// Host copy of a tensor's values.
pub(crate) fn host<const D: usize>(t: Tensor<D>) -> Vec<f32> {
    t.into_data().iter::<f32>().collect()
}

/// `[n]` tensor from host values.
pub(crate) fn vec1(values: &[f64], device: &Device) -> Tensor<1> {
    let v: Vec<f32> = values.iter().map(|&x| x as f32).collect();
    Tensor::from_data(TensorData::new(v, [values.len()]), device)
}

/// Old-policy per-token log-probs of every row, `[n, C]` with `C` the longest completion, plus the mask:
/// the generator's own when sampling was plain, else a no-grad forward of `policy` at `generation.temperature`.
pub(crate) fn old_logps<M: CausalLm + ?Sized>(
    ro: &Rollout,
    policy: &M,
    generation: &GenerationParams,
    chunk: usize,
    pad: u32,
    device: &Device,
) -> (Tensor<2>, Tensor<2>) {
    let n = ro.len();
    let c_all = ro
        .completion_ids
        .iter()
        .map(Vec::len)
        .max()
        .unwrap_or(0)
        .max(1);
    let (mut lps, mut masks) = (Vec::new(), Vec::new());
    for start in (0..n).step_by(chunk.max(1)) {
        let rows: Vec<usize> = (start..(start + chunk).min(n)).collect();
        let packed = ro.pack(&rows, pad);
        let lp = if generation.is_plain_sampling() {
            packed.gen_logps(device)
        } else {
            packed
                .completion_scores(
                    policy,
                    generation.temperature.max(1e-6),
                    EntropyMode::Skip,
                    device,
                )
                .0
        };
        lps.push(pad_cols(lp, c_all));
        masks.push(pad_cols(packed.mask(device), c_all));
    }
    (Tensor::cat(lps, 0), Tensor::cat(masks, 0))
}

/// Per-token log-probs of every row under `model` (no grad), `[n, C]` like [`old_logps`].
pub(crate) fn all_logps<M: CausalLm + ?Sized>(
    ro: &Rollout,
    model: &M,
    temperature: f64,
    chunk: usize,
    pad: u32,
    device: &Device,
) -> Tensor<2> {
    let n = ro.len();
    let c_all = ro
        .completion_ids
        .iter()
        .map(Vec::len)
        .max()
        .unwrap_or(0)
        .max(1);
    let parts: Vec<Tensor<2>> = (0..n)
        .step_by(chunk.max(1))
        .map(|start| {
            let rows: Vec<usize> = (start..(start + chunk).min(n)).collect();
            let packed = ro.pack(&rows, pad);
            pad_cols(
                packed
                    .completion_scores(model, temperature, EntropyMode::Skip, device)
                    .0,
                c_all,
            )
        })
        .collect();
    Tensor::cat(parts, 0)
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use temper_models::load_hf_dir;
    use temper_rewards::RewardInput;

    use super::*;
    use crate::config::parse_toml;
    use crate::grpo::{Grpo, GrpoRunConfig};
    use crate::rm::{NeuralReward, RewardModel};
    use crate::testkit::{
        Collect, LEARNING_SEEDS, low_id_reward, mean, online, prompts_dir, settings, testdata, tiny, tmp,
        word_prompts,
    };

    fn grpo_run(out: &Path, steps: usize, seed: u64) -> Vec<StepReport> {
        let (model, tok, device) = tiny();
        let cfg = temper_rl_objectives::GrpoConfig {
            num_generations: 4,
            max_completion_length: 6,
            ..Default::default()
        };
        let mut trainer = online(&tok, 12, 4, low_id_reward(), Grpo::new(&model, cfg), seed);
        let train = TrainSettings {
            seed,
            ..settings(out, steps, 16, 8, 1e-2)
        };
        let mut session = Session::start(model, &device, train).expect("session");
        let mut obs = Collect::default();
        trainer.train(&mut session, &mut obs).expect("train");
        obs.0
    }

    #[test]
    fn grpo_in_the_loop_raises_the_synthetic_reward_on_policy() {
        let (mut first, mut last, mut runs) = (0.0, 0.0, Vec::new());
        let n = LEARNING_SEEDS.count() as f64;
        for seed in LEARNING_SEEDS {
            let out = tmp(&format!("grpo-learn-{seed}"));
            let reports = grpo_run(&out, 16, seed);
            let rewards: Vec<f64> = reports.iter().map(|r| r.metrics["reward"]).collect();
            first += mean(&rewards[..4]) / n;
            last += mean(&rewards[12..]) / n;
            runs.push(rewards);
            // The first step is on-policy: the trainer's forward recomputes the generator's log-probs.
            assert!(
                reports[0].metrics["sampling/max_logprob_diff"] < 1e-4,
                "{:?}",
                reports[0].metrics
            );
            assert!(
                reports
                    .iter()
                    .all(|r| r.metrics.contains_key("timing/generate_s"))
            );
            let log = std::fs::read_to_string(out.join("metrics.jsonl")).expect("metrics");
            assert!(log.contains("eval/accuracy") && log.contains("\"sample\""));
            let _ = std::fs::remove_dir_all(&out);
        }
        assert!(
            last > first + 0.1,
            "mean reward over seeds {first:.3} -> {last:.3}: {runs:?}"
        );
    }

    #[test]
    fn a_run_config_starts_trains_resumes_and_exports_through_start_online() {
        let (model, tok, device) = tiny();
        let out = prompts_dir("start-online");
        let text = format!(
            "ppo_epochs = 1\n[rollout]\nchat = false\n[rollout.task]\nkind = \"jsonl\"\ntrain_file = '{}'\n\
             [rollout.generation]\nmax_new_tokens = 4\nstop = []\n\
             [[rollout.reward]]\nkind = \"format\"\nregex = '.*\\bt1[0-9][0-9]\\b.*'\n\
             [train]\noutput_dir = '{}'\nsteps = 2\nbatch_size = 4\nsave_steps = 1\n",
            out.join("prompts.jsonl").display(),
            out.join("run").display()
        );
        let run: crate::PpoRunConfig = parse_toml(&text, Path::new("x.toml")).expect("parses");
        let (mut trainer, mut session) =
            start_online(&run, &tok, model.clone(), &device).expect("start");
        let mut obs = Collect::default();
        trainer.train(&mut session, &mut obs).expect("train");
        assert_eq!(obs.0.iter().map(|r| r.step).collect::<Vec<_>>(), [1, 2]);
        assert!(
            obs.0
                .iter()
                .all(|r| r.metrics.contains_key("rewards/format/mean") && r.loss.is_finite())
        );
        // A longer run in the same folder resumes from checkpoint-2 and does only step 3.
        let mut longer = run.clone();
        longer.train.steps = 3;
        let (mut trainer, mut session) =
            start_online(&longer, &tok, model, &device).expect("resume");
        assert_eq!(session.step, 2);
        let mut obs = Collect::default();
        trainer.train(&mut session, &mut obs).expect("train");
        assert_eq!(obs.0.iter().map(|r| r.step).collect::<Vec<_>>(), [3]);
        // final/ is the policy alone, with the tokenizer: a plain causal LM that reloads.
        let dir = session.export_final(&tok, None).expect("export");
        assert!(
            dir.join("tokenizer.json").is_file() && !dir.join("value_head.safetensors").exists()
        );
        load_hf_dir(&dir, &Device::flex()).expect("final/ reloads");
        let _ = std::fs::remove_dir_all(&out);
    }

    #[test]
    fn saved_states_of_every_layout_are_read() {
        let cursor = Cursor::new(10, 3);
        let c = serde_json::to_value(&cursor).expect("json");
        let now = serde_json::json!({"cursor": c, "algorithm": {"cem": 1}});
        let (bare, old_cem) = (
            c.clone(),
            serde_json::json!({"cursor": c, "cem": 1, "pending": 2}),
        );
        let read = |v: serde_json::Value| OnlineState::read(v).expect("reads");
        assert_eq!(
            (read(now.clone()).cursor, read(now).algorithm),
            (cursor.clone(), serde_json::json!({"cem": 1}))
        );
        assert_eq!(
            (read(bare.clone()).cursor, read(bare).algorithm),
            (cursor.clone(), serde_json::Value::Null)
        );
        assert_eq!(
            read(old_cem).algorithm,
            serde_json::json!({"cem": 1, "pending": 2})
        );
        let written = serde_json::to_value(OnlineState {
            cursor: cursor.clone(),
            algorithm: serde_json::Value::Null,
        });
        assert_eq!(read(written.expect("json")).cursor, cursor);
        assert!(OnlineState::read(serde_json::json!({"index": 1})).is_err());
    }

    #[test]
    fn a_reward_model_named_in_toml_scores_its_own_column_in_the_loop() {
        let (model, tok, device) = tiny();
        let plain = Device::flex();
        let out = tmp("rm-in-rollout");
        let rm_dir = out.join("rm");
        let backbone = load_hf_dir(&testdata("trl-parity/model"), &plain).expect("tiny llama");
        let pad = tok.special_ids(backbone.config().eos_token_id).pad;
        let json = tok.inner().to_string(false).expect("tokenizer json");
        RewardModel::from_backbone(backbone, 0.5, 7, pad, &plain)
            .export(&rm_dir, &[("tokenizer.json", json.into_bytes())])
            .expect("export");
        let text = format!(
            "[rollout.generation]\nmax_new_tokens = 6\nstop = []\n\
             [[rollout.reward]]\nkind = \"format\"\nregex = '.*\\bt1[0-9][0-9]\\b.*'\nweight = 1.0\n\
             [[rollout.reward]]\nkind = \"model\"\npath = '{}'\nweight = 0.5\nname = \"rm\"\n\
             [grpo]\nnum_generations = 4\nbeta = 0.04\n",
            rm_dir.display()
        );
        let run: GrpoRunConfig = parse_toml(&text, Path::new("x.toml")).expect("parses");
        run.validate().expect("valid");
        let reward = run.rollout.build_reward(&plain).expect("rewards");
        let inputs = [
            RewardInput::unreferenced("t1 t2", " t150 t4"),
            RewardInput::unreferenced("t3", " t9 t8 t7"),
        ];
        let parts = reward.score_parts(&inputs).expect("parts");
        let names: Vec<(&str, f64)> = parts
            .parts
            .iter()
            .map(|(n, w, _)| (n.as_str(), *w))
            .collect();
        assert_eq!(names, [("format", 1.0), ("rm", 0.5)]);
        let direct = NeuralReward::load(&rm_dir, &plain)
            .expect("load")
            .score(&inputs)
            .expect("score");
        assert_eq!(parts.parts[1].2, direct);
        assert!(direct.iter().all(|s| s.is_finite()) && (direct[0] - direct[1]).abs() > 0.0);
        for (i, total) in parts.total.iter().enumerate() {
            assert!((total - (parts.parts[0].2[i] + 0.5 * direct[i])).abs() < 1e-12);
        }
        // One GRPO step in the loop: the model's column is logged next to the rule's, with the KL reference on.
        let mut trainer = OnlineTrainer::with_task(
            &tok,
            run.rollout.generation.clone(),
            word_prompts(&tok, 8, 2),
            Box::new(reward),
            Grpo::new(&model, run.grpo.clone()),
            0,
        )
        .expect("trainer");
        let mut session = Session::start(model, &device, settings(&out.join("run"), 1, 8, 4, 1e-3))
            .expect("session");
        let mut obs = Collect::default();
        trainer.train(&mut session, &mut obs).expect("train");
        let m = &obs.0[0].metrics;
        assert!(
            m.contains_key("rewards/rm/mean")
                && m.contains_key("rewards/format/mean")
                && m.contains_key("kl"),
            "{m:?}"
        );
        assert!(obs.0[0].loss.is_finite());
        let _ = std::fs::remove_dir_all(&out);
    }
}
