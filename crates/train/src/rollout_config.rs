//! The `[rollout]` table every on-line run config shares (GRPO, RLOO, PPO, CEM): the model, the device, the
//! prompt source, the sampling parameters, chat rendering, and the rewards — rule rewards and trained reward
//! models (`{ kind = "model", path = "runs/rm/final" }`) in one weighted list.

use std::path::PathBuf;

use burn::tensor::Device;
use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use temper_chat::GenerationParams;
use temper_rewards::{Reward, RewardSpec, WeightedSum};

use crate::config::{default_device, default_model};
use crate::error::{Result, TrainError};
use crate::rm::NeuralReward;
use crate::rollout::{TaskSpec, default_rewards};

/// The sampling parameters of a rollout when `[rollout.generation]` is absent: 16 new tokens, temperature 1
/// (the generator's log-probs are then the old policy's), no top-k / top-p, stop after `</answer>`.
pub fn rollout_generation() -> GenerationParams {
    GenerationParams {
        max_new_tokens: 16,
        temperature: 1.0,
        top_k: None,
        top_p: None,
        stop: vec!["</answer>".into()],
        seed: 0,
    }
}

pub(crate) fn d_true() -> bool {
    true
}

fn one() -> f64 {
    1.0
}

/// `[rollout]`: what an on-line run samples from and how it scores the samples. Every field has a default.
///
/// A partial `[rollout.generation]` table falls back, field by field, to [`rollout_generation`] (16 new tokens,
/// temperature 1, stop `</answer>`), not to [`GenerationParams`]' own defaults (256 tokens, no stop string).
/// `generation.seed` must stay 0: rollouts are seeded from `train.seed` and the step, so a resumed run draws the
/// same samples.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RolloutConfig {
    /// Model to start from (asset name, GGUF file or HF folder); default `smollm2`.
    #[serde(default = "default_model")]
    pub model: String,
    /// Device: cpu, wgpu, cuda; default cpu.
    #[serde(default = "default_device")]
    pub device: String,
    /// Prompt source (default: the built-in arithmetic task with the `<answer>` prefill).
    #[serde(default)]
    pub task: TaskSpec,
    /// Sampling of the completions; see the struct's documentation for a partial table.
    #[serde(
        default = "rollout_generation",
        deserialize_with = "generation_over_rollout_defaults"
    )]
    pub generation: GenerationParams,
    /// Render prompts with the model's chat template (the instruction as the system message); default true.
    #[serde(default = "d_true")]
    pub chat: bool,
    /// Rewards, summed with their weights; each is logged as its own column (`rewards/<name>/mean`).
    /// Default: answer accuracy (1.0), last-number accuracy (0.5), format (0.2).
    #[serde(default = "default_reward_entries")]
    pub reward: Vec<RewardEntry>,
    /// `[rollout.tools]`: when present, completions may call these tools (multi-turn rollouts through
    /// [`crate::tool_rollout`], the tools' responses masked out of the loss), in training and in held-out evaluation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tools: Option<ToolsConfig>,
}

fn hermes() -> String {
    "hermes".into()
}

fn two() -> usize {
    2
}

/// The most tool-call rounds `[rollout.tools] max_calls` allows per completion.
pub const MAX_TOOL_CALLS: usize = 16;

/// `[rollout.tools]`: the built-in tools a completion may call, the call syntax, and the rounds per completion.
/// The tools are described to the model in the system prompt as the tools crate renders it
/// ([`temper_tools::Format::system_prompt`]), or through the chat template's own `tools` variable when it has one.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ToolsConfig {
    /// Built-in tool names ([`temper_tools::builtins::BUILTIN_NAMES`]), e.g. `["calculator"]`.
    pub tools: Vec<String>,
    /// The call syntax; `hermes` (`<tool_call>{…}</tool_call>`, answered with `<tool_response>`) is the one tool
    /// rollouts read.
    #[serde(default = "hermes")]
    pub format: String,
    /// Tool-call rounds per completion, 1..=16 (default 2).
    #[serde(default = "two")]
    pub max_calls: usize,
}

impl ToolsConfig {
    /// Checks the table; errors name the field (`rollout.tools.format`, ...).
    pub fn validate(&self) -> std::result::Result<(), String> {
        if self.tools.is_empty() {
            return Err(
                "rollout.tools.tools is empty: name at least one tool (e.g. [\"calculator\"])"
                    .into(),
            );
        }
        for (i, name) in self.tools.iter().enumerate() {
            if self.tools[..i].contains(name) {
                return Err(format!(
                    "rollout.tools.tools[{i}]: `{name}` is listed twice"
                ));
            }
        }
        self.registry()?;
        match temper_tools::Format::parse_name(&self.format) {
            Err(e) => return Err(format!("rollout.tools.format: {e}")),
            Ok(temper_tools::Format::Hermes) => {}
            Ok(_) => {
                return Err(format!(
                    "rollout.tools.format: tool rollouts read only the `hermes` format, got `{}`",
                    self.format
                ));
            }
        }
        if !(1..=MAX_TOOL_CALLS).contains(&self.max_calls) {
            return Err(format!(
                "rollout.tools.max_calls must be in 1..={MAX_TOOL_CALLS}, got {}",
                self.max_calls
            ));
        }
        Ok(())
    }

    /// The registry of the named tools; an unknown name is an error naming its index.
    pub fn registry(&self) -> std::result::Result<temper_tools::Registry, String> {
        let mut registry = temper_tools::Registry::new();
        for (i, name) in self.tools.iter().enumerate() {
            let known = temper_tools::builtins::register_builtin(&mut registry, name)
                .map_err(|e| format!("rollout.tools.tools[{i}]: {e}"))?;
            if !known {
                return Err(format!(
                    "rollout.tools.tools[{i}]: unknown tool `{name}`; known: {}",
                    temper_tools::builtins::BUILTIN_NAMES.join(", ")
                ));
            }
        }
        Ok(registry)
    }
}

impl Default for RolloutConfig {
    fn default() -> Self {
        Self {
            model: default_model(),
            device: default_device(),
            task: TaskSpec::default(),
            generation: rollout_generation(),
            chat: true,
            reward: default_reward_entries(),
            tools: None,
        }
    }
}

pub(crate) fn default_reward_entries() -> Vec<RewardEntry> {
    default_rewards().into_iter().map(RewardEntry::Rule).collect()
}

/// Reads `[rollout.generation]` over [`rollout_generation`]: given fields replace the defaults, unknown ones are
/// rejected by name.
pub(crate) fn generation_over_rollout_defaults<'de, D: Deserializer<'de>>(
    d: D,
) -> std::result::Result<GenerationParams, D::Error> {
    let given = toml::Table::deserialize(d)?;
    let mut table = toml::Table::try_from(rollout_generation()).map_err(D::Error::custom)?;
    table.extend(given);
    GenerationParams::deserialize(toml::Value::Table(table))
        .map_err(|e| D::Error::custom(format!("generation: {e}")))
}

/// A trained reward model in the reward list: `{ kind = "model", path = "runs/rm/final", weight = 1.0 }`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelReward {
    /// An exported reward-model folder (`temper rm` writes `<output_dir>/final`: `config.json`,
    /// `model.safetensors` with `score.weight`, `tokenizer.json`).
    pub path: PathBuf,
    /// Weight in the sum (default 1).
    #[serde(default = "one")]
    pub weight: f64,
    /// Column name in the metrics (default `reward_model`).
    #[serde(default)]
    pub name: Option<String>,
}

/// One entry of `[[rollout.reward]]`: a rule reward ([`RewardSpec`], tagged by `kind`) or a trained reward model
/// (`kind = "model"`).
#[derive(Clone, Debug, PartialEq)]
pub enum RewardEntry {
    /// A rule reward.
    Rule(RewardSpec),
    /// A trained reward model.
    Model(ModelReward),
}

impl<'de> Deserialize<'de> for RewardEntry {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let value = toml::Value::deserialize(d)?;
        if value.get("kind").and_then(toml::Value::as_str) == Some("model") {
            let mut table = value.as_table().cloned().unwrap_or_default();
            table.remove("kind");
            ModelReward::deserialize(toml::Value::Table(table))
                .map(RewardEntry::Model)
                .map_err(D::Error::custom)
        } else {
            RewardSpec::deserialize(value)
                .map(RewardEntry::Rule)
                .map_err(D::Error::custom)
        }
    }
}

impl Serialize for RewardEntry {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        struct Tagged<'a> {
            kind: &'static str,
            #[serde(flatten)]
            model: &'a ModelReward,
        }
        match self {
            RewardEntry::Rule(spec) => spec.serialize(s),
            RewardEntry::Model(model) => Tagged {
                kind: "model",
                model,
            }
            .serialize(s),
        }
    }
}

impl RewardEntry {
    /// The weight of this reward in the sum.
    pub fn weight(&self) -> f64 {
        match self {
            RewardEntry::Rule(spec) => spec.weight(),
            RewardEntry::Model(m) => m.weight,
        }
    }
}

impl RolloutConfig {
    /// Checks the sampling parameters and every reward's fields (a model reward's folder must exist); errors name
    /// the field (`rollout.generation.top_p`, `reward[1].regex`, ...).
    pub fn validate(&self) -> Result<()> {
        if let Some(tools) = &self.tools {
            tools.validate().map_err(|message| TrainError::Config {
                path: "[rollout]".into(),
                message,
            })?;
        }
        check_sampling("rollout", &self.generation, &self.reward)
    }

    /// The weighted sum of the configured rewards; reward models are loaded on `device` (without autodiff).
    pub fn build_reward(&self, device: &Device) -> Result<WeightedSum> {
        build_reward(&self.reward, device)
    }
}

/// Checks the sampling parameters and the reward entries of the table `table` (`rollout`, `eval_task`); errors
/// name the field (`rollout.generation.top_p`, `reward[1].regex`, ...).
pub(crate) fn check_sampling(table: &str, generation: &GenerationParams, reward: &[RewardEntry]) -> Result<()> {
    let err = |message: String| TrainError::Config {
        path: format!("[{table}]").into(),
        message,
    };
    generation.validate().map_err(|e| err(format!("{table}.generation.{e}")))?;
    if generation.seed != 0 {
        return Err(err(format!(
            "{table}.generation.seed must be 0: rollouts are seeded from train.seed and the step"
        )));
    }
    if generation.max_new_tokens == 0 {
        return Err(err(format!("{table}.generation.max_new_tokens must be at least 1")));
    }
    for (i, entry) in reward.iter().enumerate() {
        match entry {
            RewardEntry::Rule(spec) => {
                spec.build(&format!("reward[{i}].")).map_err(|e| TrainError::Reward(e.to_string()))?;
            }
            RewardEntry::Model(m) => {
                if !m.weight.is_finite() {
                    return Err(TrainError::Reward(format!("reward[{i}].weight must be finite, got {}", m.weight)));
                }
                if !m.path.join("config.json").is_file() {
                    return Err(TrainError::Reward(format!(
                        "reward[{i}].path: {} is not a reward-model folder (no config.json)",
                        m.path.display()
                    )));
                }
            }
        }
    }
    Ok(())
}

/// The weighted sum of `entries`: rule rewards built from their specs, reward models loaded from their folders.
pub fn build_reward(entries: &[RewardEntry], device: &Device) -> Result<WeightedSum> {
    let mut parts: Vec<(f64, Box<dyn Reward>)> = Vec::with_capacity(entries.len());
    for (i, entry) in entries.iter().enumerate() {
        let reward: Box<dyn Reward> = match entry {
            RewardEntry::Rule(spec) => spec
                .build(&format!("reward[{i}]."))
                .map_err(|e| TrainError::Reward(e.to_string()))?,
            RewardEntry::Model(m) => {
                let name = m.name.clone().unwrap_or_else(|| "reward_model".into());
                Box::new(NeuralReward::load(&m.path, device)?.named(name))
            }
        };
        parts.push((entry.weight(), reward));
    }
    Ok(WeightedSum::new(parts))
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use serde::de::DeserializeOwned;

    use super::*;
    use crate::config::{load_toml, parse_toml};
    use crate::{
        CemRunConfig, DpoRunConfig, GrpoRunConfig, PpoRunConfig, RlooRunConfig, RmRunConfig,
        SftRunConfig,
    };

    fn parse_err<T: DeserializeOwned + std::fmt::Debug>(text: &str) -> String {
        parse_toml::<T>(text, Path::new("x.toml"))
            .expect_err(text)
            .to_string()
    }

    #[test]
    fn every_example_config_parses_into_its_type_and_validates() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples");
        let mut seen = Vec::new();
        for entry in std::fs::read_dir(&dir).expect("examples/") {
            let path = entry.expect("entry").path();
            if path.extension().is_none_or(|e| e != "toml") {
                continue;
            }
            let stem = path
                .file_stem()
                .and_then(|s| s.to_str())
                .unwrap_or_default()
                .to_string();
            let checked = match stem.as_str() {
                "grpo" => load_toml::<GrpoRunConfig>(&path).and_then(|c| c.validate()),
                "rloo" => load_toml::<RlooRunConfig>(&path).and_then(|c| c.validate()),
                "ppo" => load_toml::<PpoRunConfig>(&path).and_then(|c| c.validate()),
                "cem" => load_toml::<CemRunConfig>(&path).and_then(|c| c.validate()),
                "rm" => load_toml::<RmRunConfig>(&path).and_then(|c| c.validate()),
                "dpo" => load_toml::<DpoRunConfig>(&path).and_then(|c| c.validate()),
                "sft" => load_toml::<SftRunConfig>(&path).and_then(|c| {
                    c.train.validate().map_err(|message| TrainError::Config {
                        path: path.clone(),
                        message,
                    })
                }),
                other => panic!(
                    "examples/{other}.toml: no config type to check it against (add it to this test)"
                ),
            };
            checked.unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            seen.push(stem);
        }
        seen.sort();
        assert_eq!(seen, ["cem", "dpo", "grpo", "ppo", "rloo", "rm", "sft"]);
        // The values the examples document.
        let cem: CemRunConfig = load_toml(&dir.join("cem.toml")).expect("cem.toml");
        assert_eq!(
            (cem.cem.elite_fraction, cem.cem.min_reward),
            (0.25, Some(1.0))
        );
        let rloo: RlooRunConfig = load_toml(&dir.join("rloo.toml")).expect("rloo.toml");
        assert_eq!(
            (rloo.rloo.num_generations, rloo.rollout.reward.len()),
            (4, 2)
        );
        let ppo: PpoRunConfig = load_toml(&dir.join("ppo.toml")).expect("ppo.toml");
        assert_eq!((ppo.ppo_epochs, ppo.num_mini_batches), (2, 2));
        for run in [&cem.rollout, &rloo.rollout, &ppo.rollout] {
            assert_eq!(
                (run.model.as_str(), run.chat, &run.generation),
                ("smollm2", true, &rollout_generation())
            );
        }
    }

    #[test]
    fn misplaced_and_unknown_fields_are_errors_that_name_the_field() {
        // (config text, the name the error must contain)
        let grpo_cases = [
            ("model = \"smollm2\"\n", "model"),
            ("[generation]\nmax_new_tokens = 8\n", "generation"),
            ("[grpo]\nmax_new_tokens = 8\n", "max_new_tokens"),
            ("[grpo]\nnum_generation = 4\n", "num_generation"),
            ("[train]\nnum_generations = 4\n", "num_generations"),
            ("[rollout]\nsteps = 3\n", "steps"),
            ("[rollout.generation]\nmax_tokens = 3\n", "max_tokens"),
            ("[rollout.generation]\nchat = false\n", "chat"),
            (
                "[[rollout.reward]]\nkind = \"format\"\nregex = \"x\"\nweigth = 1.0\n",
                "weigth",
            ),
            (
                "[[rollout.reward]]\nkind = \"model\"\npath = \"runs/rm/final\"\nweigth = 1.0\n",
                "weigth",
            ),
            (
                "[rollout.task]\nkind = \"arithmetic\"\ntrain_sise = 3\n",
                "train_sise",
            ),
        ];
        for (text, field) in grpo_cases {
            let e = parse_err::<GrpoRunConfig>(text);
            assert!(e.contains(field), "{text:?}: {e}");
        }
        for (text, field) in [
            ("model = \"smollm2\"\n", "model"),
            ("[task]\nkind = \"arithmetic\"\n", "task"),
        ] {
            assert!(parse_err::<RlooRunConfig>(text).contains(field), "{text}");
            assert!(parse_err::<PpoRunConfig>(text).contains(field), "{text}");
            assert!(parse_err::<CemRunConfig>(text).contains(field), "{text}");
        }
        assert!(parse_err::<PpoRunConfig>("[ppo]\nppo_epochs = 2\n").contains("ppo_epochs"));
        assert!(parse_err::<CemRunConfig>("[cem]\ntemperature = 0.5\n").contains("temperature"));
    }

    #[test]
    fn generation_defaults_and_grpo_completion_length_follow_max_new_tokens() {
        let run: GrpoRunConfig = parse_toml("", Path::new("<defaults>")).expect("defaults");
        assert_eq!(
            (run.grpo.num_generations, run.grpo.max_completion_length),
            (4, 16)
        );
        // `temper grpo` without a config: the 20-step CPU demo.
        let t = &run.train;
        assert_eq!(
            (t.steps, t.batch_size, t.learning_rate, t.warmup_steps),
            (20, 16, 3e-5, 2)
        );
        assert_eq!(
            (t.eval_steps, t.save_steps, t.output_dir.as_path()),
            (5, 10, Path::new("runs/grpo"))
        );
        assert_eq!(
            (
                run.rollout.model.as_str(),
                run.rollout.device.as_str(),
                run.rollout.chat
            ),
            ("smollm2", "cpu", true)
        );
        assert_eq!(run.rollout.generation, rollout_generation());
        // A partial table falls back to the rollout defaults, field by field.
        let run: GrpoRunConfig = parse_toml(
            "[rollout.generation]\ntemperature = 0.7\nmax_new_tokens = 8\n",
            Path::new("x.toml"),
        )
        .expect("parses");
        assert_eq!(run.rollout.generation.stop, vec!["</answer>".to_string()]);
        assert_eq!(
            (
                run.rollout.generation.temperature,
                run.grpo.max_completion_length
            ),
            (0.7, 8)
        );
        run.validate().expect("valid");
        // With a [grpo] table: still derived; agreeing is fine; disagreeing is an error naming both fields.
        let run: GrpoRunConfig = parse_toml(
            "[rollout.generation]\nmax_new_tokens = 8\n[grpo]\nnum_generations = 2\n",
            Path::new("x.toml"),
        )
        .expect("parses");
        assert_eq!(
            (run.grpo.num_generations, run.grpo.max_completion_length),
            (2, 8)
        );
        parse_toml::<GrpoRunConfig>("[grpo]\nmax_completion_length = 16\n", Path::new("x.toml"))
            .expect("agrees");
        let e = parse_err::<GrpoRunConfig>(
            "[rollout.generation]\nmax_new_tokens = 8\n[grpo]\nmax_completion_length = 16\n",
        );
        assert!(
            e.contains("max_completion_length") && e.contains("max_new_tokens"),
            "{e}"
        );
        // Set by hand in code: validate catches the disagreement.
        let mut run = GrpoRunConfig::default();
        run.rollout.generation.max_new_tokens = 32;
        assert!(
            run.validate()
                .expect_err("16 vs 32")
                .to_string()
                .contains("max_completion_length")
        );
        // Values are checked with the field named; the seed comes from train.seed.
        let bad: RlooRunConfig =
            parse_toml("[rollout.generation]\ntop_p = 1.5\n", Path::new("x.toml")).expect("parses");
        assert!(
            bad.validate()
                .expect_err("top_p")
                .to_string()
                .contains("rollout.generation.top_p")
        );
        let bad: RlooRunConfig =
            parse_toml("[rollout.generation]\nseed = 3\n", Path::new("x.toml")).expect("parses");
        assert!(
            bad.validate()
                .expect_err("seed")
                .to_string()
                .contains("train.seed")
        );
        // A reward model entry round-trips and its folder is checked.
        let text = "[[rollout.reward]]\nkind = \"model\"\npath = \"no/such/rm\"\nweight = 0.5\n";
        let run: RlooRunConfig = parse_toml(text, Path::new("x.toml")).expect("parses");
        assert_eq!(
            run.rollout.reward,
            vec![RewardEntry::Model(ModelReward {
                path: "no/such/rm".into(),
                weight: 0.5,
                name: None
            })]
        );
        assert!(
            run.validate()
                .expect_err("missing folder")
                .to_string()
                .contains("reward[0].path")
        );
        let back: RlooRunConfig =
            parse_toml(&toml::to_string(&run).expect("toml"), Path::new("x.toml")).expect("again");
        assert_eq!(back.rollout, run.rollout);
    }
}
