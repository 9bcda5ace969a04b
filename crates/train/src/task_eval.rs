//! `[eval_task]`: the held-out task accuracy of an off-line trainer's model (SFT, DPO), measured greedily through
//! the one evaluation path the on-line trainers and `temper eval` use ([`crate::rollout::evaluate`], which runs
//! temper-eval over a [`crate::ModelPolicy`]), and logged under the same keys (`eval/reward`, `eval/accuracy`) so
//! an SFT or DPO run and a GRPO run on the same task and seed are compared on the same held-out problems.

use burn::tensor::Device;
use serde::{Deserialize, Serialize};
use temper_chat::GenerationParams;
use temper_rewards::WeightedSum;
use temper_tasks::Problem;
use temper_tokenizer::Tokenizer;

use crate::error::Result;
use crate::online::PolicyModule;
use crate::rollout::{Sampler, TaskSpec, evaluate};
use crate::rollout_config::{
    RewardEntry, build_reward, check_sampling, d_true, default_reward_entries,
    generation_over_rollout_defaults, rollout_generation,
};
use crate::session::{Observer, Session, Trainable};

/// The `[eval_task]` table: the same fields, defaults and meaning as `[rollout]`'s `task`, `chat`, `generation`
/// and `reward` (only the task's held-out split, `eval_size` problems, is used; decoding is greedy whatever
/// `generation.temperature` says).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TaskEvalConfig {
    /// The task (default: the built-in arithmetic task, as the on-line trainers').
    #[serde(default)]
    pub task: TaskSpec,
    /// Render prompts with the model's chat template; default true.
    #[serde(default = "d_true")]
    pub chat: bool,
    /// Generation settings over the rollout defaults (16 new tokens, stop `</answer>`).
    #[serde(
        default = "rollout_generation",
        deserialize_with = "generation_over_rollout_defaults"
    )]
    pub generation: GenerationParams,
    /// The rewards whose weighted sum is `eval/reward`; the first is `eval/accuracy`. Default: the on-line
    /// trainers' (answer accuracy first).
    #[serde(default = "default_reward_entries")]
    pub reward: Vec<RewardEntry>,
}

impl TaskEvalConfig {
    /// Checks the generation settings and rewards; errors name the field (`eval_task.generation.top_p`, ...).
    pub fn validate(&self) -> Result<()> {
        check_sampling("eval_task", &self.generation, &self.reward)
    }
}

/// A built `[eval_task]`: its held-out problems and rewards.
pub struct TaskEval {
    problems: Vec<Problem>,
    chat: bool,
    generation: GenerationParams,
    reward: WeightedSum,
}

impl TaskEval {
    /// The held-out problems of `config.task` (seeded by `seed`, the run's `train.seed`, as an on-line run's are)
    /// and its rewards (reward models loaded on `device`, without autodiff).
    pub fn new(config: &TaskEvalConfig, seed: u64, device: &Device) -> Result<Self> {
        config.validate()?;
        let (_, eval_n) = config.task.sizes();
        Ok(TaskEval {
            problems: config.task.task(seed)?.held_out(eval_n)?,
            chat: config.chat,
            generation: config.generation.clone(),
            reward: build_reward(&config.reward, device)?,
        })
    }

    /// The held-out problems.
    pub fn problems(&self) -> &[Problem] {
        &self.problems
    }

    /// Mean reward and accuracy (the first reward's mean) of the greedy answers of `model`'s policy; `None` with
    /// no problems.
    pub fn measure<M: PolicyModule>(
        &self,
        model: &M,
        tok: &Tokenizer,
        device: &Device,
    ) -> Result<Option<(f64, f64)>> {
        let sampler = Sampler {
            tok,
            ids: tok.special_ids(model.eos_token_id()),
            params: &self.generation,
        };
        evaluate(
            model.policy(),
            sampler,
            &self.problems,
            self.chat,
            &self.reward,
            None,
            device,
        )
    }

    /// Measures the session's current model (merged, without autodiff) and logs the result at its step.
    pub fn log<M: PolicyModule>(
        &self,
        session: &Session<M>,
        tok: &Tokenizer,
        observer: &mut dyn Observer,
    ) -> Result<()> {
        let result = self.measure(&session.merged(), tok, &session.device.clone().inner())?;
        log_held_out(session, observer, result)
    }
}

/// Logs a held-out evaluation (`eval/reward`, `eval/accuracy`) at the session's step and tells the observer.
pub(crate) fn log_held_out<M: Trainable>(
    session: &Session<M>,
    observer: &mut dyn Observer,
    result: Option<(f64, f64)>,
) -> Result<()> {
    if let Some((reward, acc)) = result {
        let step = session.step;
        session.log_value(
            &serde_json::json!({"step": step, "eval/reward": reward, "eval/accuracy": acc}),
        )?;
        observer.on_message(&format!(
            "step {step}: eval/reward {reward:.3} eval/accuracy {acc:.3}"
        ));
    }
    Ok(())
}
