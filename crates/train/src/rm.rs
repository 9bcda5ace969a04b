//! Reward models (TRL `RewardTrainer`): a Llama backbone + a scalar score head pooled at the last non-pad token
//! (HF `LlamaForSequenceClassification`), its HF loading and export, a Bradley–Terry trainer on the shared
//! [`Session`] loop (exact gradient accumulation, checkpoints and resume, LoRA with the score head trained in
//! full), held-out pairwise accuracy, and [`NeuralReward`], which lets the on-line trainers (GRPO, RLOO, PPO,
//! CEM) score completions with a trained reward model (`kind = "model"` in `[[rollout.reward]]`).

use std::path::{Path, PathBuf};

use burn::module::{Module, Param};
use burn::nn::Linear;
use burn::tensor::{Device, Int, Tensor, TensorData};
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};
use temper_models::{Architecture, AttentionInfo, HfWeights, Llama, LlamaConfig, WeightSource, build_llama};
use temper_rewards::{Reward, RewardError, RewardInput, RewardSpec, WeightedSum};
use temper_rl_objectives::{RewardConfig, reward_loss};
use temper_tokenizer::Tokenizer;

use crate::atomic::write_atomic;
use crate::batch::int_tensor;
use crate::config::TrainSettings;
use crate::data::{Cursor, PreferencePair, parse_preference, read_jsonl};
use crate::error::{Result, TrainError};
use crate::export::{HfTensors, hf_tensors, safetensors_bytes, write_hf_dir};
use crate::session::{Metrics, Observer, Session, StepReport, Trainable};
use crate::config::{default_device, default_model};

/// A sequence-level reward model: `reward = score(final_hidden[last non-pad token])`.
#[derive(Module, Debug)]
pub struct RewardModel {
    /// The transformer (its LM head, if any, is dropped).
    pub backbone: Llama,
    /// `H -> 1`, no bias (HF `score.weight [1, H]`).
    pub score: Linear,
    /// Padding id used for pooling (HF `config.pad_token_id`).
    #[module(skip)]
    pad_id: u32,
}

/// Index of the last token of each row whose id is not `pad` (HF `LlamaForSequenceClassification`'s rule: it
/// looks at ids, not at the attention mask); 0 for a row made only of padding.
pub fn pooled_index(ids: &[Vec<u32>], pad: u32) -> Vec<usize> {
    ids.iter()
        .map(|row| row.iter().rposition(|&t| t != pad).unwrap_or(0))
        .collect()
}

fn model_err(path: &Path, message: String) -> TrainError {
    TrainError::Checkpoint {
        path: path.to_path_buf(),
        message,
    }
}

impl RewardModel {
    /// Wraps a causal LM as a reward model: its LM head is dropped and a fresh `H -> 1` head is drawn from
    /// `N(0, head_init_std²)` with `seed` (HF initialises it with `initializer_range = 0.02`; 0 gives zeros).
    pub fn from_backbone(mut backbone: Llama, head_init_std: f64, seed: u64, pad_id: u32, device: &Device) -> Self {
        backbone.lm_head = None;
        let h = backbone.config().hidden_size;
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        // Box–Muller: two uniforms to one standard normal.
        let w: Vec<f32> = (0..h)
            .map(|_| {
                let (u1, u2): (f64, f64) = (rng.random::<f64>().max(1e-12), rng.random::<f64>());
                ((-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos() * head_init_std) as f32
            })
            .collect();
        Self::with_head(backbone, w, pad_id, device)
    }

    fn with_head(backbone: Llama, weight: Vec<f32>, pad_id: u32, device: &Device) -> Self {
        let h = weight.len();
        let score = Linear {
            weight: Param::from_tensor(Tensor::from_data(TensorData::new(weight, [h, 1]), device)),
            bias: None,
        };
        Self {
            backbone,
            score,
            pad_id,
        }
    }

    /// Loads an HF sequence-classification folder (`config.json` + safetensors with `score.weight [1, H]`),
    /// e.g. one written by [`RewardModel::export`].
    pub fn load_hf_dir(dir: &Path, device: &Device) -> Result<Self> {
        let mut config = LlamaConfig::from_hf_json(&dir.join("config.json"))?;
        let weights = HfWeights::open(dir)?;
        let h = config.hidden_size;
        let (w, shape) = weights
            .get("score.weight")?
            .ok_or_else(|| model_err(dir, "no `score.weight`: not a sequence-classification model".into()))?;
        if shape != [1, h] {
            return Err(model_err(
                dir,
                format!("score.weight has shape {shape:?}, expected [1, {h}]"),
            ));
        }
        let pad = config.pad_token_id.or(config.eos_token_id).unwrap_or(0);
        // A classification checkpoint has no LM head: build the backbone as if tied (the head is never used).
        config.tie_word_embeddings = true;
        let backbone = build_llama(&config, &weights, device)?;
        Ok(Self::with_head(backbone, w, pad, device))
    }

    /// The padding id used for pooling.
    pub fn pad_id(&self) -> u32 {
        self.pad_id
    }

    /// Pooled rewards of right-padded rows.
    ///
    /// # Shapes
    /// - `ids`, `attention`: `[B, T]` host rows
    /// - output: `[B]`
    pub fn rewards(&self, ids: &[Vec<u32>], attention: &[Vec<u8>], device: &Device) -> Tensor<1> {
        let (b, t) = (ids.len(), ids.first().map_or(0, Vec::len));
        let info = AttentionInfo::from_mask(attention, false);
        let hidden = self.backbone.forward_hidden(int_tensor(ids, device), &info, None); // (B, T, H)
        let h = hidden.dims()[2];
        let flat: Vec<i64> = pooled_index(ids, self.pad_id)
            .iter()
            .enumerate()
            .map(|(r, &i)| (r * t + i) as i64)
            .collect();
        let idx = Tensor::<1, Int>::from_data(TensorData::new(flat, [b]), device);
        let pooled = hidden.reshape([b * t, h]).select(0, idx); // (B, H)
        self.score.forward(pooled).reshape([b]) // (B)
    }

    /// HF-named tensors: the backbone's plus `score.weight [1, H]`.
    pub fn hf_tensors(&self) -> Result<HfTensors> {
        let mut out = hf_tensors(&self.backbone)?;
        out.remove("lm_head.weight");
        let data = self.score.weight.val().into_data().convert::<f32>();
        let values: Vec<f32> = data
            .try_to_vec::<f32>()
            .map_err(|e| TrainError::Export(format!("score.weight: {e:?}")))?;
        let h = values.len();
        out.insert(
            "score.weight".into(),
            (vec![1, h], values.iter().flat_map(|v| v.to_le_bytes()).collect()),
        );
        Ok(out)
    }

    /// The HF `config.json` of the classification model (`num_labels = 1`, `pad_token_id` = the pooling id).
    pub fn hf_config(&self) -> serde_json::Value {
        let mut v = self.backbone.config().to_hf_json();
        let arch = match self.backbone.config().architecture {
            Architecture::Llama => "LlamaForSequenceClassification",
            Architecture::Qwen2 => "Qwen2ForSequenceClassification",
        };
        if let Some(o) = v.as_object_mut() {
            o.insert("architectures".into(), serde_json::json!([arch]));
            o.insert("id2label".into(), serde_json::json!({"0": "LABEL_0"}));
            o.insert("label2id".into(), serde_json::json!({"LABEL_0": 0}));
            o.insert("pad_token_id".into(), serde_json::json!(self.pad_id));
        }
        v
    }

    /// Writes `dir/model.safetensors` + `dir/config.json` (+ `extra` files) atomically; transformers loads it as
    /// `AutoModelForSequenceClassification` and [`RewardModel::load_hf_dir`] reloads it.
    pub fn export(&self, dir: &Path, extra: &[(&str, Vec<u8>)]) -> Result<()> {
        write_hf_dir(dir, &self.hf_tensors()?, &self.hf_config(), extra)
    }
}

impl Trainable for RewardModel {
    fn save_weights(&self, dir: &Path) -> Result<()> {
        write_atomic(&dir.join("model.safetensors"), &safetensors_bytes(&self.hf_tensors()?)?)
    }

    fn config_json(&self) -> serde_json::Value {
        self.hf_config()
    }

    fn load_weights(dir: &Path, device: &Device) -> Result<Self> {
        Self::load_hf_dir(dir, device)
    }

    /// The score head is new: it is trained in full under LoRA (TRL/PEFT `modules_to_save = ["score"]`).
    fn trained_in_full(path: &str) -> bool {
        path.starts_with("score.")
    }
}

/// A preference pair as token ids: `prompt + chosen + EOS` and `prompt + rejected + EOS` (TRL concatenates the
/// texts, then tokenises and appends EOS).
#[derive(Clone, Debug, PartialEq)]
pub struct EncodedRmPair {
    /// Chosen sequence ids.
    pub chosen: Vec<u32>,
    /// Rejected sequence ids.
    pub rejected: Vec<u32>,
    /// Optional margin.
    pub margin: Option<f64>,
}

/// Tokenises pairs for reward modelling (truncated to `max_length`).
pub fn encode_rm_pairs(
    tok: &Tokenizer,
    pairs: &[PreferencePair],
    eos: u32,
    max_length: usize,
) -> Result<Vec<EncodedRmPair>> {
    let enc = |p: &str, c: &str| -> Result<Vec<u32>> {
        let mut ids = tok.encode(&format!("{p}{c}"))?;
        ids.push(eos);
        ids.truncate(max_length);
        Ok(ids)
    };
    pairs
        .iter()
        .map(|p| {
            Ok(EncodedRmPair {
                chosen: enc(&p.prompt, &p.chosen)?,
                rejected: enc(&p.prompt, &p.rejected)?,
                margin: p.margin,
            })
        })
        .collect()
}

/// Right-pads `seqs` with `pad`: `(ids, attention)`, both `[n, max_len]` (at least one column).
pub fn pad_right(seqs: &[&[u32]], pad: u32) -> (Vec<Vec<u32>>, Vec<Vec<u8>>) {
    let t = seqs.iter().map(|s| s.len()).max().unwrap_or(0).max(1);
    let ids = seqs
        .iter()
        .map(|s| {
            let mut r = s.to_vec();
            r.resize(t, pad);
            r
        })
        .collect();
    let att = seqs
        .iter()
        .map(|s| {
            let mut a = vec![1u8; s.len()];
            a.resize(t, 0);
            a
        })
        .collect();
    (ids, att)
}

/// Rows `chosen_0..chosen_n, rejected_0..rejected_n`, right-padded with `pad`, and their attention mask.
pub fn rm_batch(pairs: &[&EncodedRmPair], pad: u32) -> (Vec<Vec<u32>>, Vec<Vec<u8>>) {
    let seqs: Vec<&[u32]> = pairs
        .iter()
        .map(|p| p.chosen.as_slice())
        .chain(pairs.iter().map(|p| p.rejected.as_slice()))
        .collect();
    pad_right(&seqs, pad)
}

fn d_head_std() -> f64 {
    0.02
}

/// `temper rm --config FILE.toml`.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RmRunConfig {
    /// Model to start from: a causal LM (asset name, GGUF file or HF folder; a fresh head is added) or an HF
    /// sequence-classification folder (with `score.weight`).
    #[serde(default = "default_model")]
    pub model: String,
    /// Device: cpu, wgpu, cuda.
    #[serde(default = "default_device")]
    pub device: String,
    /// Preference JSONL: `prompt`, `chosen`, `rejected`, optional `margin`.
    pub train_file: PathBuf,
    /// Held-out preference JSONL for `eval/accuracy`, `eval/margin`, `eval/loss`.
    #[serde(default)]
    pub eval_file: Option<PathBuf>,
    /// Std of the fresh score head's normal init (HF `initializer_range`, 0.02); 0 = zeros.
    #[serde(default = "d_head_std")]
    pub head_init_std: f64,
    /// Loop settings (`batch_size` counts pairs).
    #[serde(default)]
    pub train: TrainSettings,
    /// Objective settings (`center_rewards_coefficient`).
    #[serde(default)]
    pub rm: RewardConfig,
}

impl RmRunConfig {
    /// Cross-field checks.
    pub fn validate(&self) -> Result<()> {
        let err = |message: String| TrainError::Config {
            path: "[rm]".into(),
            message,
        };
        self.train.validate().map_err(err)?;
        self.rm.validate()?;
        if !(self.head_init_std.is_finite() && self.head_init_std >= 0.0) {
            return Err(err(format!(
                "head_init_std must be finite and >= 0, got {}",
                self.head_init_std
            )));
        }
        Ok(())
    }

    /// The model to train from `path` (the resolved `model`) on `device`, with its tokenizer: an HF
    /// sequence-classification folder (with `tokenizer.json`) continues as is; a causal LM gets a fresh score head
    /// (`head_init_std`, seeded by `train.seed`) pooled at its padding id ([`Tokenizer::special_ids`]).
    pub fn load_model(&self, path: &Path, device: &Device) -> Result<(RewardModel, Tokenizer)> {
        let is_classifier = path.is_dir()
            && std::fs::read_to_string(path.join("config.json")).is_ok_and(|c| c.contains("ForSequenceClassification"));
        if is_classifier {
            let tok = Tokenizer::from_file(&path.join("tokenizer.json"))?;
            return Ok((RewardModel::load_hf_dir(path, device)?, tok));
        }
        let loaded = temper_models::load_model(path, device)?;
        let tok = loaded.tokenizer.ok_or_else(|| TrainError::Config {
            path: path.to_path_buf(),
            message: "the model has no tokenizer".into(),
        })?;
        let pad = tok.special_ids(loaded.model.config().eos_token_id).pad;
        let model = RewardModel::from_backbone(loaded.model, self.head_init_std, self.train.seed, pad, device);
        Ok((model, tok))
    }

    /// Reads the JSONL files named in the config.
    pub fn load_data(&self) -> Result<(Vec<PreferencePair>, Vec<PreferencePair>)> {
        let train = read_jsonl(&self.train_file, parse_preference)?;
        let eval = match &self.eval_file {
            Some(p) => read_jsonl(p, parse_preference)?,
            None => Vec::new(),
        };
        Ok((train, eval))
    }
}

/// Held-out results of a reward model.
#[derive(Clone, Debug, PartialEq)]
pub struct RmEval {
    /// `mean(r_c > r_r)`.
    pub accuracy: f64,
    /// `mean(r_c - r_r)`.
    pub margin: f64,
    /// Bradley–Terry loss (with the configured margin / centering).
    pub loss: f64,
}

/// Rewards of encoded pairs with a (non-autodiff) model, in chunks: `(chosen, rejected)`.
pub fn pair_rewards(
    model: &RewardModel,
    pairs: &[EncodedRmPair],
    chunk: usize,
    device: &Device,
) -> Result<(Vec<f64>, Vec<f64>)> {
    let (mut c, mut r) = (Vec::new(), Vec::new());
    for part in pairs.chunks(chunk.max(1)) {
        let refs: Vec<&EncodedRmPair> = part.iter().collect();
        let (ids, att) = rm_batch(&refs, model.pad_id);
        let v: Vec<f32> = model
            .rewards(&ids, &att, device)
            .into_data()
            .convert::<f32>()
            .try_to_vec::<f32>()
            .map_err(|e| TrainError::Export(format!("reading rewards: {e:?}")))?;
        let n = part.len();
        c.extend(v[..n].iter().map(|&x| f64::from(x)));
        r.extend(v[n..].iter().map(|&x| f64::from(x)));
    }
    Ok((c, r))
}

fn margins_tensor(pairs: &[&EncodedRmPair], use_margin: bool, device: &Device) -> Option<Tensor<1>> {
    use_margin.then(|| {
        let m: Vec<f32> = pairs.iter().map(|p| p.margin.unwrap_or(0.0) as f32).collect();
        Tensor::from_data(TensorData::new(m, [pairs.len()]), device)
    })
}

/// A reward-model run on the shared [`Session`] loop (warm-up + schedule, exact accumulation, clipping,
/// non-finite checks, `metrics.jsonl`, atomic checkpoints with the HF classification weights, LoRA): the
/// tokenised pairs and the data cursor; the session over the [`RewardModel`] is the caller's, as for every trainer.
pub struct RmTrainer<'a> {
    tok: &'a Tokenizer,
    config: RewardConfig,
    train: Vec<EncodedRmPair>,
    eval: Vec<EncodedRmPair>,
    use_margin: bool,
    cursor: Cursor,
}

impl<'a> RmTrainer<'a> {
    /// Tokenises the pairs as `model` will read them (`prompt + completion + EOS`).
    pub fn new(
        tok: &'a Tokenizer,
        model: &RewardModel,
        train: &[PreferencePair],
        eval: &[PreferencePair],
        config: RewardConfig,
        settings: &TrainSettings,
    ) -> Result<Self> {
        settings.validate().map_err(|message| TrainError::Config {
            path: "[train]".into(),
            message,
        })?;
        config.validate()?;
        let eos = tok.special_ids(model.backbone.config().eos_token_id).eos.unwrap_or(0);
        let enc_train = encode_rm_pairs(tok, train, eos, settings.max_length)?;
        let enc_eval = encode_rm_pairs(tok, eval, eos, settings.max_length)?;
        if enc_train.is_empty() {
            return Err(TrainError::Config {
                path: "[rm]".into(),
                message: "train_file has no preference pairs".into(),
            });
        }
        Ok(Self {
            tok,
            config,
            use_margin: train.iter().any(|p| p.margin.is_some()),
            cursor: Cursor::new(enc_train.len(), settings.seed),
            train: enc_train,
            eval: enc_eval,
        })
    }

    /// The tokenizer in use.
    pub fn tokenizer(&self) -> &Tokenizer {
        self.tok
    }

    /// Held-out accuracy, margin and loss of the session's model (`None` without eval data).
    pub fn evaluate(&self, session: &Session<RewardModel>) -> Result<Option<RmEval>> {
        if self.eval.is_empty() {
            return Ok(None);
        }
        let model = session.model.valid();
        let device = session.device.clone().inner();
        let (c, r) = pair_rewards(&model, &self.eval, session.settings.micro_batch(), &device)?;
        let t = |v: &[f64]| {
            Tensor::<1>::from_data(
                TensorData::new(v.iter().map(|&x| x as f32).collect(), [v.len()]),
                &device,
            )
        };
        let refs: Vec<&EncodedRmPair> = self.eval.iter().collect();
        let out = reward_loss(
            &self.config,
            t(&c),
            t(&r),
            margins_tensor(&refs, self.use_margin, &device),
        )?;
        let loss = f64::from(out.loss.into_scalar::<f32>());
        let get = |k: &str| out.metrics.get(k).copied().unwrap_or(f64::NAN);
        Ok(Some(RmEval {
            accuracy: get("accuracy"),
            margin: get("margin"),
            loss,
        }))
    }

    fn log_eval(&self, session: &Session<RewardModel>, observer: &mut dyn Observer) -> Result<()> {
        if let Some(e) = self.evaluate(session)? {
            session.log_value(&serde_json::json!({
                "step": session.step, "eval/accuracy": e.accuracy, "eval/margin": e.margin, "eval/loss": e.loss,
            }))?;
            observer.on_message(&format!(
                "step {}: eval/accuracy {:.3} eval/margin {:.3} eval/loss {:.4}",
                session.step, e.accuracy, e.margin, e.loss
            ));
        }
        Ok(())
    }

    /// One optimizer step over the next `batch_size` pairs.
    pub fn train_step(&mut self, session: &mut Session<RewardModel>) -> Result<StepReport> {
        let cursor_before = self.cursor.clone();
        let picked = self.cursor.take(session.settings.batch_size);
        let total = picked.len();
        let chunks: Vec<&[usize]> = picked.chunks(session.settings.micro_batch()).collect();
        let device = session.device.clone();
        let (train, config, use_margin) = (&self.train, &self.config, self.use_margin);
        session.step(
            |model, i| {
                let pairs: Vec<&EncodedRmPair> = chunks[i].iter().map(|&k| &train[k]).collect();
                let (ids, att) = rm_batch(&pairs, model.pad_id);
                let r = model.rewards(&ids, &att, &device);
                let n = pairs.len();
                let (rc, rr) = (r.clone().narrow(0, 0, n), r.narrow(0, n, n));
                let out = reward_loss(config, rc, rr, margins_tensor(&pairs, use_margin, &device))?;
                // Both terms are means over pairs: weight each micro-batch by its share of the step's pairs.
                Ok((out.loss * (n as f64 / total as f64), out.metrics))
            },
            Metrics::new(),
            || serde_json::to_value(&cursor_before).unwrap_or_default(),
        )
    }

    /// Runs until `settings.steps` (resuming the data cursor of a resumed session), evaluating and checkpointing
    /// as configured.
    pub fn train(&mut self, session: &mut Session<RewardModel>, observer: &mut dyn Observer) -> Result<()> {
        if let Some(state) = session.take_resumed_state("reward-model data cursor")? {
            self.cursor = state;
        }
        if session.step == 0 {
            self.log_eval(session, observer)?;
        }
        while session.running() {
            let report = self.train_step(session)?;
            observer.on_step(&report);
            if session.eval_due() {
                self.log_eval(session, observer)?;
            }
            session.checkpoint_if_due(&self.cursor, observer)?;
        }
        Ok(())
    }
}

/// A trained reward model as a [`Reward`]: scores `prompt + completion + EOS` (the layout it was trained on).
pub struct NeuralReward {
    name: String,
    model: RewardModel,
    tok: Tokenizer,
    eos: u32,
    max_length: usize,
    batch: usize,
    device: Device,
}

impl NeuralReward {
    /// Wraps a model (moved to `device` without gradients) and its tokenizer.
    pub fn new(name: impl Into<String>, model: RewardModel, tok: Tokenizer, device: &Device) -> Self {
        let eos = tok.special_ids(model.backbone.config().eos_token_id).eos.unwrap_or(0);
        let max_length = model.backbone.config().max_position_embeddings;
        Self {
            name: name.into(),
            model: model.valid().fork(device),
            tok,
            eos,
            max_length,
            batch: 16,
            device: device.clone(),
        }
    }

    /// The same reward under another name (its metrics column).
    pub fn named(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    /// Loads an exported reward model folder (`config.json`, `model.safetensors` with `score.weight`,
    /// `tokenizer.json`).
    pub fn load(dir: &Path, device: &Device) -> Result<Self> {
        let model = RewardModel::load_hf_dir(dir, device)?;
        let tok = Tokenizer::from_file(&dir.join("tokenizer.json"))?;
        Ok(Self::new("reward_model", model, tok, device))
    }

    /// Raw scores of full texts (`text + EOS` each).
    pub fn score_texts(&self, texts: &[String]) -> Result<Vec<f64>> {
        let mut out = Vec::with_capacity(texts.len());
        for part in texts.chunks(self.batch) {
            let seqs: Vec<Vec<u32>> = part
                .iter()
                .map(|t| {
                    let mut ids = self.tok.encode(t)?;
                    ids.push(self.eos);
                    // Keep the end (the completion and its EOS) when too long.
                    let start = ids.len().saturating_sub(self.max_length);
                    Ok(ids.split_off(start))
                })
                .collect::<Result<_>>()?;
            let refs: Vec<&[u32]> = seqs.iter().map(Vec::as_slice).collect();
            let (ids, att) = pad_right(&refs, self.model.pad_id);
            let v: Vec<f32> = self
                .model
                .rewards(&ids, &att, &self.device)
                .into_data()
                .convert::<f32>()
                .try_to_vec::<f32>()
                .map_err(|e| TrainError::Export(format!("reading rewards: {e:?}")))?;
            out.extend(v.iter().map(|&x| f64::from(x)));
        }
        Ok(out)
    }
}

impl Reward for NeuralReward {
    fn name(&self) -> &str {
        &self.name
    }

    fn score(&self, batch: &[RewardInput<'_>]) -> temper_rewards::Result<Vec<f64>> {
        let texts: Vec<String> = batch.iter().map(|x| format!("{}{}", x.prompt, x.completion)).collect();
        self.score_texts(&texts).map_err(|e| RewardError::InvalidInput {
            what: "NeuralReward::score",
            message: e.to_string(),
        })
    }
}

/// Rule rewards from `specs` plus, when given, a reward model with its weight, as one [`WeightedSum`], for code
/// that builds its rewards itself. A run config names the model in its reward list instead:
/// `[[rollout.reward]] kind = "model", path = "runs/rm/final"` ([`crate::RewardEntry`]).
pub fn rewards_with_model(specs: &[RewardSpec], model: Option<(NeuralReward, f64)>) -> Result<WeightedSum> {
    let mut parts: Vec<(f64, Box<dyn Reward>)> = Vec::with_capacity(specs.len() + 1);
    for (i, s) in specs.iter().enumerate() {
        let r = s
            .build(&format!("reward[{i}]."))
            .map_err(|e| TrainError::Reward(e.to_string()))?;
        parts.push((s.weight(), r));
    }
    if let Some((m, w)) = model {
        if !w.is_finite() {
            return Err(TrainError::Reward(format!(
                "reward model weight must be finite, got {w}"
            )));
        }
        parts.push((w, Box::new(m)));
    }
    if parts.is_empty() {
        return Err(TrainError::Reward(
            "no rewards: give [[reward]] entries or a reward model".into(),
        ));
    }
    Ok(WeightedSum::new(parts))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::session::Quiet;
    use temper_models::load_hf_dir;

    fn testdata(rel: &str) -> PathBuf {
        Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../../testdata")).join(rel)
    }

    fn tmp(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("temper-rm-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        d
    }

    fn fixture() -> serde_json::Value {
        let text = std::fs::read_to_string(testdata("trl-parity/reward.json")).expect("reward.json");
        serde_json::from_str(&text).expect("json")
    }

    fn rows<T: serde::de::DeserializeOwned>(v: &serde_json::Value) -> Vec<T> {
        serde_json::from_value(v.clone()).expect("rows")
    }

    fn close(got: f64, want: f64) -> bool {
        (got - want).abs() <= 1e-4 * want.abs() + 1e-6
    }

    #[test]
    fn trl_reward_fixture_through_our_forward() {
        let f = fixture();
        let device = Device::flex();
        let model = RewardModel::load_hf_dir(&testdata("trl-parity/reward_model"), &device).expect("reward model");
        assert_eq!(model.pad_id(), 0);
        let b = &f["batch"];
        let ids: Vec<Vec<u32>> = rows(&b["input_ids"]);
        let att: Vec<Vec<u8>> = rows(&b["attention_mask"]);
        let want_idx: Vec<usize> = rows(&b["pooled_index"]);
        assert_eq!(pooled_index(&ids, 0), want_idx);
        let want: Vec<f64> = rows(&b["rewards"]);
        let got: Vec<f32> = model
            .rewards(&ids, &att, &device)
            .into_data()
            .try_to_vec()
            .expect("f32");
        for (g, w) in got.iter().zip(&want) {
            assert!((f64::from(*g) - w).abs() < 1e-4, "reward {g} vs TRL {w}");
        }
        let n = ids.len() / 2;
        let margins: Vec<f64> = rows(&b["margins"]);
        let t = |v: &[f32]| Tensor::<1>::from_data(TensorData::new(v.to_vec(), [v.len()]), &device);
        let cases = f["cases"].as_array().expect("cases");
        assert_eq!(cases.len(), 4);
        for case in cases {
            let cfg = RewardConfig {
                center_rewards_coefficient: case["config"]["center_rewards_coefficient"].as_f64(),
            };
            let margin = case["config"]["uses_margin"]
                .as_bool()
                .unwrap_or(false)
                .then(|| t(&margins.iter().map(|&m| m as f32).collect::<Vec<_>>()));
            let out = reward_loss(&cfg, t(&got[..n]), t(&got[n..]), margin).expect("loss");
            let loss = f64::from(out.loss.into_scalar::<f32>());
            let want_loss = case["loss"].as_f64().expect("loss");
            assert!(close(loss, want_loss), "{}: loss {loss} vs {want_loss}", case["name"]);
            for (k, w) in case["metrics"].as_object().expect("metrics") {
                let w = w.as_f64().expect("number");
                let g = out.metrics[k.as_str()];
                assert!(close(g, w), "{} {k}: {g} vs {w}", case["name"]);
            }
        }
    }

    #[test]
    fn example_config_parses_and_validates() {
        let path = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/rm.toml"));
        let run: RmRunConfig = crate::config::load_toml(path).expect("examples/rm.toml");
        run.validate().expect("valid");
        assert_eq!(run.rm.center_rewards_coefficient, Some(0.01));
        let bad = crate::config::parse_toml::<RmRunConfig>("train_file = \"x\"\nhead_init = 1\n", Path::new("rm.toml"));
        assert!(bad.expect_err("unknown field").to_string().contains("head_init"));
    }

    fn tiny_rm(device: &Device) -> (RewardModel, Tokenizer) {
        let llama = load_hf_dir(&testdata("trl-parity/model"), device).expect("tiny llama");
        let tok = Tokenizer::from_file(&testdata("trl-parity/tokenizer/tokenizer.json")).expect("tokenizer");
        (RewardModel::from_backbone(llama, 0.02, 7, 0, device), tok)
    }

    /// Chosen completions use low token ids, rejected ones high ids: a rule the head can learn.
    fn pairs(n: usize, offset: usize) -> Vec<PreferencePair> {
        let words = |base: usize, i: usize, k: usize| -> String {
            (0..k)
                .map(|j| format!(" t{}", base + (i * 7 + j * 3) % 40))
                .collect::<String>()
        };
        (0..n)
            .map(|i| PreferencePair {
                prompt: (0..3)
                    .map(|j| format!("t{}", 150 + (i + offset + j * 5) % 60))
                    .collect::<Vec<_>>()
                    .join(" "),
                chosen: words(10, i + offset, 2 + i % 3),
                rejected: words(260, i + offset, 2 + (i + 1) % 3),
                margin: None,
            })
            .collect()
    }

    fn settings(out: &Path, steps: usize, batch: usize, micro: usize) -> TrainSettings {
        TrainSettings {
            output_dir: out.to_path_buf(),
            steps,
            batch_size: batch,
            micro_batch_size: Some(micro),
            learning_rate: 5e-3,
            warmup_steps: 0,
            save_steps: 2,
            eval_steps: 0,
            // Constant: a run stopped after k steps followed the same schedule as the full run.
            lr_schedule: crate::schedule::Schedule::Constant,
            ..TrainSettings::default()
        }
    }

    /// The trainer and a (possibly resumed) session over a copy of `rm`.
    fn start<'a>(
        tok: &'a Tokenizer,
        rm: &RewardModel,
        device: &Device,
        train: &[PreferencePair],
        eval: &[PreferencePair],
        s: TrainSettings,
    ) -> (RmTrainer<'a>, Session<RewardModel>) {
        let t = RmTrainer::new(tok, rm, train, eval, RewardConfig::default(), &s).expect("trainer");
        (t, Session::start(rm.clone(), device, s).expect("session"))
    }

    #[derive(Default)]
    struct Collect(Vec<StepReport>);

    impl Observer for Collect {
        fn on_step(&mut self, r: &StepReport) {
            self.0.push(r.clone());
        }
    }

    #[test]
    fn first_step_loss_is_bradley_terry_and_accumulation_is_exact() {
        let device = Device::flex().autodiff();
        let (rm, tok) = tiny_rm(&device);
        let train = pairs(8, 0);
        // Independent value: rewards of the first batch (cursor order) from the untouched model, BT by hand.
        let s = settings(&tmp("golden-a"), 1, 4, 4);
        let enc = encode_rm_pairs(&tok, &train, 2, s.max_length).expect("encode");
        let first: Vec<EncodedRmPair> = Cursor::new(8, s.seed).take(4).iter().map(|&i| enc[i].clone()).collect();
        let (c, r) = pair_rewards(&rm.valid(), &first, 4, &device.clone().inner()).expect("rewards");
        let want: f64 = c.iter().zip(&r).map(|(c, r)| (1.0 + (r - c).exp()).ln()).sum::<f64>() / 4.0;
        let mut losses = Vec::new();
        let mut weights = Vec::new();
        for (name, micro) in [("golden-a", 4), ("golden-b", 1)] {
            let s = settings(&tmp(name), 1, 4, micro);
            let mut t = RmTrainer::new(&tok, &rm, &train, &[], RewardConfig::default(), &s).expect("trainer");
            let mut session = Session::start(rm.clone(), &device, s).expect("session");
            let rep = t.train_step(&mut session).expect("step");
            losses.push(rep.loss);
            let w: Vec<f32> = session.model.score.weight.val().into_data().try_to_vec().expect("w");
            weights.push(w);
        }
        assert!(
            (losses[0] - want).abs() < 1e-5,
            "first loss {} vs direct {want}",
            losses[0]
        );
        assert!(
            (losses[0] - losses[1]).abs() < 1e-5,
            "1x4 {} vs 4x1 {}",
            losses[0],
            losses[1]
        );
        let dw = weights[0]
            .iter()
            .zip(&weights[1])
            .map(|(a, b)| (a - b).abs())
            .fold(0.0f32, f32::max);
        assert!(dw < 1e-5, "head after one step differs by {dw}");
    }

    #[test]
    fn reward_model_learns_and_resumes_exactly_and_exports() {
        let device = Device::flex().autodiff();
        let (rm, tok) = tiny_rm(&device);
        let (train, eval) = (pairs(16, 0), pairs(8, 100));
        let out = tmp("learn");
        let (mut t, mut session) = start(&tok, &rm, &device, &train, &eval, settings(&out, 12, 4, 2));
        let before = t.evaluate(&session).expect("eval").expect("has eval");
        let mut obs = Collect::default();
        t.train(&mut session, &mut obs).expect("train");
        let after = t.evaluate(&session).expect("eval").expect("has eval");
        assert!(
            after.loss < before.loss - 0.1,
            "eval loss {} -> {}",
            before.loss,
            after.loss
        );
        assert!(
            after.accuracy >= 0.99 && after.margin > before.margin + 0.5,
            "{before:?} -> {after:?}"
        );
        let log = std::fs::read_to_string(out.join("metrics.jsonl")).expect("metrics");
        assert!(log.lines().any(|l| l.contains("\"eval/accuracy\"")), "{log}");

        // Resume: stop after 6 steps, then continue to 12 from the checkpoint: the same last losses.
        let out2 = tmp("resume");
        let (mut a, mut a_session) = start(&tok, &rm, &device, &train, &eval, settings(&out2, 6, 4, 2));
        a.train(&mut a_session, &mut Quiet).expect("first half");
        let (mut b, mut b_session) = start(&tok, &rm, &device, &train, &eval, settings(&out2, 12, 4, 2));
        assert_eq!(b_session.step, 6);
        let mut obs2 = Collect::default();
        b.train(&mut b_session, &mut obs2).expect("second half");
        for (x, y) in obs.0[6..].iter().zip(&obs2.0) {
            assert_eq!(x.step, y.step);
            assert!(
                (x.loss - y.loss).abs() < 1e-5,
                "step {}: {} vs {}",
                x.step,
                x.loss,
                y.loss
            );
        }

        // Export, reload, and score through the Reward seam: the same numbers.
        let dir = out.join("final");
        let tok_json = tok.inner().to_string(false).expect("tokenizer json");
        session
            .merged()
            .export(&dir, &[("tokenizer.json", tok_json.into_bytes())])
            .expect("export");
        let plain = Device::flex();
        let neural = NeuralReward::load(&dir, &plain).expect("load");
        let texts: Vec<(String, String)> = eval
            .iter()
            .take(3)
            .map(|p| (p.prompt.clone(), p.chosen.clone()))
            .collect();
        let inputs: Vec<RewardInput<'_>> = texts.iter().map(|(p, c)| RewardInput::unreferenced(p, c)).collect();
        let got = neural.score(&inputs).expect("score");
        let enc = encode_rm_pairs(&tok, &eval[..3], 2, 512).expect("encode");
        let (want, _) = pair_rewards(&session.model.valid(), &enc, 3, &plain).expect("rewards");
        for (g, w) in got.iter().zip(&want) {
            assert!((g - w).abs() < 1e-5, "neural reward {g} vs trained model {w}");
        }
        // Combined with a rule reward: total = 1·format + 0.5·model.
        let fmt = RewardSpec::Format {
            weight: 1.0,
            regex: r"^\s*t1\d\b.*".into(),
            dot_all: true,
        };
        let sum = rewards_with_model(&[fmt], Some((neural, 0.5))).expect("sum");
        let parts = sum.score_parts(&inputs).expect("parts");
        for (i, total) in parts.total.iter().enumerate() {
            let rule = if texts[i].1.trim_start().starts_with("t1") {
                1.0
            } else {
                0.0
            };
            assert!(
                (total - (rule + 0.5 * got[i])).abs() < 1e-9,
                "{total} vs {rule} + 0.5·{}",
                got[i]
            );
        }
        let cfg: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(dir.join("config.json")).expect("config")).expect("json");
        assert_eq!(cfg["architectures"][0], "LlamaForSequenceClassification");
        for d in [out, out2] {
            let _ = std::fs::remove_dir_all(d);
        }
    }

    #[test]
    fn lora_trains_adapters_and_the_score_head_and_resumes_exactly() {
        let device = Device::flex().autodiff();
        let (rm, tok) = tiny_rm(&device);
        let train = pairs(16, 0);
        let with_lora = |out: &Path, steps: usize| TrainSettings {
            lora: Some(crate::lora::LoraSettings {
                rank: 4,
                alpha: 8.0,
                dropout: 0.0,
                targets: vec!["q_proj".into(), "v_proj".into()],
            }),
            ..settings(out, steps, 4, 2)
        };
        let run = |out: &Path, steps: usize| {
            let (mut t, mut session) = start(&tok, &rm, &device, &train, &[], with_lora(out, steps));
            let mut obs = Collect::default();
            t.train(&mut session, &mut obs).expect("train");
            (session, obs.0)
        };
        let (straight, split) = (tmp("lora-straight"), tmp("lora-split"));
        let (t, full) = run(&straight, 4);
        // Trained: the adapters and the (new) score head, nothing else.
        let trained: Vec<String> = crate::lora::trainable_tensors(&t.model).into_iter().map(|(n, _)| n).collect();
        assert_eq!(trained.len(), 2 * 2 * 2 + 1, "{trained:?}");
        assert!(trained.iter().all(|n| n == "score.weight" || n.ends_with(".lora.a") || n.ends_with(".lora.b")), "{trained:?}");
        let head0: Vec<f32> = rm.score.weight.val().into_data().try_to_vec().expect("w");
        let head: Vec<f32> = t.model.score.weight.val().into_data().try_to_vec().expect("w");
        assert!(head0.iter().zip(&head).any(|(a, b)| (a - b).abs() > 1e-4), "the score head is trained");
        let emb = |m: &RewardModel| -> Vec<f32> { m.backbone.embed_tokens.weight.val().into_data().try_to_vec().expect("emb") };
        assert_eq!(emb(&rm), emb(&t.model), "frozen embeddings");
        // Stop after 2, rerun to 4: the same losses as never stopping (the head comes back from the checkpoint).
        let (_, first) = run(&split, 2);
        assert_eq!(first.len(), 2);
        let (_, second) = run(&split, 4);
        assert_eq!(second.iter().map(|r| r.step).collect::<Vec<_>>(), vec![3, 4]);
        for (x, y) in full[2..].iter().zip(&second) {
            assert!((x.loss - y.loss).abs() < 1e-6, "step {}: {} vs resumed {}", x.step, x.loss, y.loss);
        }
        // The checkpoint's merged model is a plain HF classifier with the trained head.
        let back = RewardModel::load_hf_dir(&straight.join("checkpoint-4"), &Device::flex()).expect("reload");
        let enc = encode_rm_pairs(&tok, &train[..3], 2, 512).expect("encode");
        let (want, _) = pair_rewards(&t.merged(), &enc, 3, &Device::flex()).expect("rewards");
        let (got, _) = pair_rewards(&back, &enc, 3, &Device::flex()).expect("rewards");
        for (g, w) in got.iter().zip(&want) {
            assert!((g - w).abs() < 1e-5, "reloaded reward {g} vs trained {w}");
        }
        for d in [straight, split] {
            let _ = std::fs::remove_dir_all(d);
        }
    }
}
