//! TRL 1.16 parity: every case of every fixture in `testdata/trl-parity` through Temper's objectives.
//!
//! The `parity` module reads a fixture file, asks a log-prob *source* for the per-token tensors each case
//! needs ([`parity::Request`] → [`parity::Forward`]), runs the objective and compares the loss and every metric
//! within `1e-4·|ref| + 1e-6`. [`parity::recorded`] replays the tensors TRL recorded; a model-backed source
//! (Temper's own forward on the fixture weights) can be plugged into the same [`parity::run_file`].
//! The fixture directory is `$TEMPER_TRL_FIXTURES` or `<workspace>/testdata/trl-parity`.

/// Fixture reading and case evaluation, reusable with any log-prob source.
pub mod parity {
    use std::collections::BTreeMap;
    use std::path::PathBuf;

    use burn::tensor::{Device, Tensor, TensorData};
    use serde_json::Value;
    use temper_rl_objectives::{
        DpoConfig, DpoInputs, DpoLoss, FDivergence, GrpoConfig, GrpoInputs, GrpoLoss,
        ImportanceSampling, Metrics, MultiObjectiveAggregation, RewardColumn, RewardConfig,
        RlooConfig, RlooInputs, RlooRewardInputs, ScaleRewards, SftConfig, SftInputs, SftLoss,
        WeightedDpoLoss, completion_metrics, dpo_loss, grpo_advantages, grpo_loss, mask_truncated,
        reward_loss, rloo_advantages, rloo_loss, sft_loss, truncated_completions,
    };

    /// The five fixture files.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub enum FixtureFile {
        /// `dpo.json`
        Dpo,
        /// `grpo.json`
        Grpo,
        /// `rloo.json`
        Rloo,
        /// `sft.json`
        Sft,
        /// `reward.json`
        Reward,
    }

    impl FixtureFile {
        /// All files, in report order.
        pub const ALL: [FixtureFile; 5] = [
            FixtureFile::Sft,
            FixtureFile::Reward,
            FixtureFile::Dpo,
            FixtureFile::Grpo,
            FixtureFile::Rloo,
        ];

        /// File name inside the fixture directory.
        pub fn file_name(self) -> &'static str {
            match self {
                FixtureFile::Dpo => "dpo.json",
                FixtureFile::Grpo => "grpo.json",
                FixtureFile::Rloo => "rloo.json",
                FixtureFile::Sft => "sft.json",
                FixtureFile::Reward => "reward.json",
            }
        }
    }

    /// The fixture directory: `$TEMPER_TRL_FIXTURES` or the workspace's `testdata/trl-parity`.
    pub fn fixture_dir() -> PathBuf {
        std::env::var_os("TEMPER_TRL_FIXTURES")
            .map(PathBuf::from)
            .unwrap_or_else(|| {
                PathBuf::from(concat!(
                    env!("CARGO_MANIFEST_DIR"),
                    "/../../testdata/trl-parity"
                ))
            })
    }

    /// Parse one fixture file.
    pub fn load(file: FixtureFile) -> Result<Value, String> {
        let path = fixture_dir().join(file.file_name());
        let text = std::fs::read_to_string(&path)
            .map_err(|e| format!("reading {}: {e}", path.display()))?;
        serde_json::from_str(&text).map_err(|e| format!("parsing {}: {e}", path.display()))
    }

    /// What a case asks its log-prob source for. A model-backed source builds the model inputs from `root`
    /// (DPO: `batch.input_ids/attention_mask`; GRPO/RLOO: `padded.*`; SFT: `case.input_ids/attention_mask`;
    /// reward: `batch.input_ids` + `batch.pooled_index`) and runs the policy / reference at `temperature`.
    pub struct Request<'a> {
        /// Which fixture file.
        pub file: FixtureFile,
        /// The whole fixture JSON.
        pub root: &'a Value,
        /// The case being evaluated.
        pub case: &'a Value,
        /// Logits are divided by this before the log-softmax (also for the reference).
        pub temperature: f64,
        /// Device to build the tensors on.
        pub device: &'a Device,
    }

    /// Per-token tensors (aligned with the fixture's loss positions) for one request; every field a case of
    /// that file uses must be set (`rewards` only for the reward file).
    #[derive(Default)]
    pub struct Forward {
        /// Policy per-token log-probs.
        pub policy_logps: Option<Tensor<2>>,
        /// Reference per-token log-probs.
        pub ref_logps: Option<Tensor<2>>,
        /// Policy per-token entropy.
        pub entropy: Option<Tensor<2>>,
        /// Policy per-position mean logit (DPO).
        pub mean_logits: Option<Tensor<2>>,
        /// 1 where the target is the first argmax (DPO, SFT).
        pub is_top1: Option<Tensor<2>>,
        /// `log Σ p²` per position (DPO WPO).
        pub log_sum_sq_probs: Option<Tensor<2>>,
        /// Pooled reward-model scores `[2B]` (reward file).
        pub rewards: Option<Tensor<1>>,
    }

    fn f64s(v: &Value) -> Vec<f64> {
        v.as_array()
            .map(|a| a.iter().map(|x| x.as_f64().unwrap_or(f64::NAN)).collect())
            .unwrap_or_default()
    }

    fn rows(v: &Value) -> Vec<Vec<f64>> {
        v.as_array()
            .map(|a| a.iter().map(f64s).collect())
            .unwrap_or_default()
    }

    fn ids(v: &Value) -> Vec<Vec<u32>> {
        v.as_array()
            .map(|a| {
                a.iter()
                    .map(|r| {
                        r.as_array()
                            .map(|x| x.iter().map(|i| i.as_u64().unwrap_or(0) as u32).collect())
                            .unwrap_or_default()
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    /// `[R, C]` tensor from a nested JSON array.
    pub fn t2(v: &Value, device: &Device) -> Tensor<2> {
        let r = rows(v);
        let c = r.first().map_or(0, Vec::len);
        let flat: Vec<f32> = r.iter().flatten().map(|x| *x as f32).collect();
        Tensor::from_data(TensorData::new(flat, [r.len(), c]), device)
    }

    /// `[N]` tensor from a JSON array.
    pub fn t1(v: &Value, device: &Device) -> Tensor<1> {
        let x: Vec<f32> = f64s(v).iter().map(|x| *x as f32).collect();
        let n = x.len();
        Tensor::from_data(TensorData::new(x, [n]), device)
    }

    fn t2_from(r: &[Vec<f64>], device: &Device) -> Tensor<2> {
        let c = r.first().map_or(0, Vec::len);
        let flat: Vec<f32> = r.iter().flatten().map(|x| *x as f32).collect();
        Tensor::from_data(TensorData::new(flat, [r.len(), c]), device)
    }

    /// The recorded source: replays TRL's own per-token tensors from the fixture JSON.
    pub fn recorded(req: &Request) -> Forward {
        let d = req.device;
        let opt = |v: &Value| if v.is_null() { None } else { Some(t2(v, d)) };
        match req.file {
            FixtureFile::Dpo => {
                let f = &req.root["forward"];
                Forward {
                    policy_logps: opt(&f["policy_per_token_logps"]),
                    ref_logps: opt(&f["ref_per_token_logps"]),
                    entropy: opt(&f["policy_per_token_entropy"]),
                    mean_logits: opt(&f["policy_per_token_mean_logits"]),
                    is_top1: opt(&f["policy_per_token_is_top1"]),
                    log_sum_sq_probs: opt(&f["policy_per_token_log_sum_sq_probs"]),
                    rewards: None,
                }
            }
            FixtureFile::Grpo | FixtureFile::Rloo => {
                let f = forward_at(req.root, req.temperature);
                Forward {
                    policy_logps: opt(&f["policy_per_token_logps"]),
                    ref_logps: opt(&f["ref_per_token_logps"]),
                    entropy: opt(&f["policy_per_token_entropy"]),
                    ..Forward::default()
                }
            }
            FixtureFile::Sft => Forward {
                policy_logps: opt(&req.case["per_token_logps"]),
                entropy: opt(&req.case["per_token_entropy"]),
                ..Forward::default()
            },
            FixtureFile::Reward => Forward {
                rewards: Some(t1(&req.root["batch"]["rewards"], d)),
                ..Forward::default()
            },
        }
    }

    /// The recorded `forward` block whose temperature matches (GRPO / RLOO).
    pub fn forward_at(root: &Value, temperature: f64) -> &Value {
        let same =
            |f: &Value| (f["temperature"].as_f64().unwrap_or(f64::NAN) - temperature).abs() < 1e-9;
        if same(&root["forward"]) {
            return &root["forward"];
        }
        root["forward_other_temperatures"]
            .as_array()
            .and_then(|a| a.iter().find(|f| same(f)))
            .unwrap_or(&Value::Null)
    }

    /// Outcome of one case.
    #[derive(Debug)]
    pub struct CaseResult {
        /// Case name.
        pub name: String,
        /// Values compared (loss + metrics + advantages ...).
        pub compared: usize,
        /// Expected values that could not be compared with this source (e.g. SFT accuracy without logits).
        pub skipped: Vec<String>,
        /// Every mismatch, in words.
        pub failures: Vec<String>,
    }

    /// `|got - want| <= 1e-4·|want| + 1e-6` (NaN only equals an expected NaN / null).
    pub fn close(got: f64, want: f64) -> bool {
        if want.is_nan() {
            return got.is_nan();
        }
        (got - want).abs() <= 1e-4 * want.abs() + 1e-6
    }

    struct Checker {
        res: CaseResult,
    }

    impl Checker {
        fn check(&mut self, what: &str, got: f64, want: f64) {
            self.res.compared += 1;
            if !close(got, want) {
                self.res.failures.push(format!(
                    "{what}: got {got}, want {want} (diff {:.3e})",
                    (got - want).abs()
                ));
            }
        }

        fn check_metrics(&mut self, got: &Metrics, want: &Value, skippable: &[&str]) {
            let Some(want) = want.as_object() else { return };
            for (k, v) in want {
                let w = v.as_f64().unwrap_or(f64::NAN);
                match got.get(k) {
                    Some(g) => self.check(k, *g, w),
                    None if skippable.contains(&k.as_str()) => self.res.skipped.push(k.clone()),
                    None => self
                        .res
                        .failures
                        .push(format!("metric {k} not produced (want {w})")),
                }
            }
        }

        fn check_vec(&mut self, what: &str, got: &[f64], want: &[f64]) {
            if got.len() != want.len() {
                self.res
                    .failures
                    .push(format!("{what}: length {} vs {}", got.len(), want.len()));
                return;
            }
            for (i, (g, w)) in got.iter().zip(want).enumerate() {
                self.check(&format!("{what}[{i}]"), *g, *w);
            }
        }
    }

    fn scalar(t: Tensor<1>) -> f64 {
        t.into_data()
            .iter::<f32>()
            .next()
            .map_or(f64::NAN, f64::from)
    }

    fn need(t: Option<Tensor<2>>, what: &str) -> Result<Tensor<2>, String> {
        t.ok_or_else(|| format!("log-prob source gave no {what}"))
    }

    /// DPO config from a fixture case config.
    pub fn dpo_config(c: &Value) -> Result<DpoConfig, String> {
        let eps = c["label_smoothing"].as_f64().unwrap_or(0.0);
        let tau = c["discopop_tau"].as_f64().unwrap_or(0.05);
        let names: Vec<&str> = c["loss_type"]
            .as_array()
            .map(|a| a.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        let weights = f64s(&c["loss_weights"]);
        let mut losses = Vec::new();
        for (i, name) in names.iter().enumerate() {
            let loss = match *name {
                "sigmoid" => DpoLoss::Sigmoid,
                "hinge" => DpoLoss::Hinge,
                "ipo" => DpoLoss::Ipo,
                "exo_pair" => DpoLoss::ExoPair {
                    label_smoothing: eps,
                },
                "nca_pair" => DpoLoss::NcaPair,
                "robust" => DpoLoss::Robust {
                    label_smoothing: eps,
                },
                "bco_pair" => DpoLoss::BcoPair,
                "sppo_hard" => DpoLoss::SppoHard,
                "aot" => DpoLoss::Aot {
                    label_smoothing: eps,
                },
                "aot_unpaired" => DpoLoss::AotUnpaired {
                    label_smoothing: eps,
                },
                "apo_zero" => DpoLoss::ApoZero,
                "apo_down" => DpoLoss::ApoDown,
                "discopop" => DpoLoss::DiscoPop { tau },
                "sft" => DpoLoss::Sft,
                "sigmoid_norm" => DpoLoss::SigmoidNorm,
                other => return Err(format!("unknown DPO loss_type {other}")),
            };
            losses.push(WeightedDpoLoss {
                loss,
                weight: weights.get(i).copied().unwrap_or(1.0),
            });
        }
        let f_divergence = match c["f_divergence_type"].as_str().unwrap_or("reverse_kl") {
            "reverse_kl" => FDivergence::ReverseKl,
            "forward_kl" => FDivergence::ForwardKl,
            "js_divergence" => FDivergence::JsDivergence,
            "alpha_divergence" => FDivergence::AlphaDivergence {
                alpha: c["f_alpha_divergence_coef"].as_f64().unwrap_or(0.5),
            },
            other => return Err(format!("unknown f_divergence_type {other}")),
        };
        DpoConfig::new(
            c["beta"].as_f64().unwrap_or(0.1),
            losses,
            f_divergence,
            c["ld_alpha"].as_f64(),
            c["use_weighting"].as_bool().unwrap_or(false),
        )
        .map_err(|e| e.to_string())
    }

    /// GRPO config from a fixture case config.
    pub fn grpo_config(c: &Value) -> Result<GrpoConfig, String> {
        let f = |k: &str| c[k].as_f64().unwrap_or(f64::NAN);
        let loss_type = match c["loss_type"].as_str().unwrap_or("") {
            "grpo" => GrpoLoss::Grpo,
            "bnpo" => GrpoLoss::Bnpo,
            "dr_grpo" => GrpoLoss::DrGrpo,
            "dapo" => GrpoLoss::Dapo,
            "cispo" => GrpoLoss::Cispo,
            "sapo" => GrpoLoss::Sapo {
                temperature_pos: f("sapo_temperature_pos"),
                temperature_neg: f("sapo_temperature_neg"),
            },
            "luspo" => GrpoLoss::Luspo,
            "vespo" => GrpoLoss::Vespo {
                k_pos: f("vespo_k_pos"),
                lambda_pos: f("vespo_lambda_pos"),
                k_neg: f("vespo_k_neg"),
                lambda_neg: f("vespo_lambda_neg"),
            },
            other => return Err(format!("unknown GRPO loss_type {other}")),
        };
        let scale_rewards = match c["scale_rewards"].as_str().unwrap_or("group") {
            "group" => ScaleRewards::Group,
            "batch" => ScaleRewards::Batch,
            "none" => ScaleRewards::None,
            other => return Err(format!("unknown scale_rewards {other}")),
        };
        let importance_sampling_level =
            match c["importance_sampling_level"].as_str().unwrap_or("token") {
                "token" => ImportanceSampling::Token,
                "sequence" => ImportanceSampling::Sequence,
                other => return Err(format!("unknown importance_sampling_level {other}")),
            };
        let multi_objective_aggregation = match c["multi_objective_aggregation"]
            .as_str()
            .unwrap_or("sum_then_normalize")
        {
            "sum_then_normalize" => MultiObjectiveAggregation::SumThenNormalize,
            "normalize_then_sum" => MultiObjectiveAggregation::NormalizeThenSum,
            other => return Err(format!("unknown multi_objective_aggregation {other}")),
        };
        GrpoConfig {
            loss_type,
            beta: f("beta"),
            epsilon: f("epsilon"),
            epsilon_high: c["epsilon_high"].as_f64(),
            delta: c["delta"].as_f64(),
            scale_rewards,
            importance_sampling_level,
            num_generations: c["num_generations"].as_u64().unwrap_or(0) as usize,
            max_completion_length: c["max_completion_length"].as_u64().unwrap_or(0) as usize,
            top_entropy_quantile: f("top_entropy_quantile"),
            entropy_coef: f("entropy_coef"),
            off_policy_mask_threshold: c["off_policy_mask_threshold"].as_f64(),
            use_bias_correction_kl: c["use_bias_correction_kl"].as_bool().unwrap_or(true),
            mask_truncated_completions: c["mask_truncated_completions"].as_bool().unwrap_or(false),
            multi_objective_aggregation,
            reward_weights: c["reward_weights"]
                .as_array()
                .map(|_| f64s(&c["reward_weights"])),
        }
        .checked()
        .map_err(|e| e.to_string())
    }

    fn eval_case(
        file: FixtureFile,
        root: &Value,
        case: &Value,
        source: &dyn Fn(&Request) -> Forward,
        chk: &mut Checker,
        device: &Device,
    ) -> Result<Tensor<1>, String> {
        let device = device.clone();
        let temperature = case["config"]["temperature"].as_f64().unwrap_or(1.0);
        let fwd = source(&Request {
            file,
            root,
            case,
            temperature,
            device: &device,
        });
        let (loss, metrics, skippable): (Tensor<1>, Metrics, &[&str]) = match file {
            FixtureFile::Sft => {
                let loss_type = match case["config"]["loss_type"].as_str() {
                    Some("dft") => SftLoss::Dft,
                    _ => SftLoss::Nll,
                };
                let labels = rows(&case["labels"]);
                let mask: Vec<Vec<f64>> = labels
                    .iter()
                    .map(|r| {
                        r[1..]
                            .iter()
                            .map(|l| f64::from(u8::from(*l != -100.0)))
                            .collect()
                    })
                    .collect();
                let inputs = SftInputs {
                    logps: need(fwd.policy_logps, "policy_logps")?,
                    mask: t2_from(&mask, &device),
                    entropy: fwd.entropy,
                    is_top1: fwd.is_top1,
                };
                let out = sft_loss(&SftConfig { loss_type }, inputs).map_err(|e| e.to_string())?;
                (out.loss, out.metrics, &["mean_token_accuracy"])
            }
            FixtureFile::Reward => {
                let cfg = RewardConfig::new(case["config"]["center_rewards_coefficient"].as_f64())
                    .map_err(|e| e.to_string())?;
                let r = fwd.rewards.ok_or("log-prob source gave no rewards")?;
                let b = root["batch_size"].as_u64().unwrap_or(0) as usize;
                let margin = case["config"]["uses_margin"]
                    .as_bool()
                    .unwrap_or(false)
                    .then(|| t1(&root["batch"]["margins"], &device));
                let out = reward_loss(&cfg, r.clone().narrow(0, 0, b), r.narrow(0, b, b), margin)
                    .map_err(|e| e.to_string())?;
                (out.loss, out.metrics, &[])
            }
            FixtureFile::Dpo => {
                let cfg = dpo_config(&case["config"])?;
                let mask = t2(&root["forward"]["shift_completion_mask"], &device);
                let inputs = DpoInputs {
                    policy_logps: need(fwd.policy_logps, "policy_logps")?,
                    ref_logps: need(fwd.ref_logps, "ref_logps")?,
                    mask,
                    log_sum_sq_probs: fwd.log_sum_sq_probs,
                    entropy: fwd.entropy,
                    mean_logits: fwd.mean_logits,
                    is_top1: fwd.is_top1,
                };
                let out = dpo_loss(&cfg, inputs).map_err(|e| e.to_string())?;
                (out.loss, out.metrics, &[])
            }
            FixtureFile::Grpo => {
                let cfg = grpo_config(&case["config"])?;
                let names: Vec<&str> = case["config"]["reward_funcs"]
                    .as_array()
                    .map(|a| a.iter().filter_map(Value::as_str).collect())
                    .unwrap_or_default();
                let columns: Vec<RewardColumn> = names
                    .iter()
                    .map(|n| RewardColumn::new(*n, f64s(&root["rewards"][*n])))
                    .collect();
                let adv = grpo_advantages(&cfg, &columns).map_err(|e| e.to_string())?;
                chk.check_vec("advantages", &adv.values, &f64s(&case["advantages"]));
                let completion_ids = ids(&root["completion_ids"]);
                let eos = root["eos_token_id"].as_u64().unwrap_or(2) as u32;
                let pad = root["pad_token_id"].as_u64().unwrap_or(0) as u32;
                let mut mask = t2(&root["padded"]["completion_mask"], &device);
                if cfg.mask_truncated_completions {
                    let truncated = truncated_completions(&completion_ids, &[eos], pad);
                    mask = mask_truncated(mask, &truncated).map_err(|e| e.to_string())?;
                }
                if !case["completion_mask"].is_null() {
                    let want = rows(&case["completion_mask"]);
                    let got: Vec<f64> = mask
                        .clone()
                        .into_data()
                        .iter::<f32>()
                        .map(f64::from)
                        .collect();
                    chk.check_vec("completion_mask", &got, &want.concat());
                }
                let old = match case["old_per_token_logps"].as_str() {
                    Some("perturbed") => Some(t2(&root["old_per_token_logps_perturbed"], &device)),
                    _ => None,
                };
                let n = adv.values.len();
                let adv_t = Tensor::<1>::from_data(
                    TensorData::new(
                        adv.values.iter().map(|a| *a as f32).collect::<Vec<_>>(),
                        [n],
                    ),
                    &device,
                );
                let inputs = GrpoInputs {
                    logps: need(fwd.policy_logps, "policy_logps")?,
                    old_logps: old,
                    ref_logps: fwd.ref_logps,
                    entropy: fwd.entropy,
                    mask,
                    advantages: adv_t,
                    num_items_in_batch: None,
                };
                let out = grpo_loss(&cfg, inputs).map_err(|e| e.to_string())?;
                let mut metrics = out.metrics;
                metrics.extend(adv.metrics);
                metrics.extend(completion_metrics(&completion_ids, &[eos], pad));
                (out.loss, metrics, &[])
            }
            FixtureFile::Rloo => {
                let c = &case["config"];
                let clip = c["reward_clip_range"].as_array().map(|_| {
                    let v = f64s(&c["reward_clip_range"]);
                    (v[0], v[1])
                });
                let cfg = RlooConfig {
                    beta: c["beta"].as_f64().unwrap_or(f64::NAN),
                    epsilon: c["epsilon"].as_f64().unwrap_or(f64::NAN),
                    epsilon_high: c["epsilon_high"].as_f64(),
                    normalize_advantages: c["normalize_advantages"].as_bool().unwrap_or(false),
                    reward_clip_range: clip,
                    num_generations: c["num_generations"].as_u64().unwrap_or(0) as usize,
                    reward_weights: None,
                }
                .checked()
                .map_err(|e| e.to_string())?;
                let mask = t2(&root["padded"]["completion_mask"], &device);
                let policy = need(fwd.policy_logps, "policy_logps")?;
                let reward_inputs = RlooRewardInputs {
                    rewards: vec![RewardColumn::new(
                        "reward_a",
                        f64s(&root["rewards"]["reward_a"]),
                    )],
                    gen_logps: Some(policy.clone()),
                    ref_logps: fwd.ref_logps,
                    mask: Some(mask.clone()),
                };
                let adv = rloo_advantages(&cfg, &reward_inputs).map_err(|e| e.to_string())?;
                chk.check_vec("advantages", &adv.values, &f64s(&case["advantages"]));
                let seq: Vec<f64> = (policy.clone() * mask.clone())
                    .sum_dim(1)
                    .into_data()
                    .iter::<f32>()
                    .map(f64::from)
                    .collect();
                chk.check_vec(
                    "old_logps_from_model",
                    &seq,
                    &f64s(&case["old_logps_from_model"]),
                );
                let n = adv.values.len();
                let adv_t = Tensor::<1>::from_data(
                    TensorData::new(
                        adv.values.iter().map(|a| *a as f32).collect::<Vec<_>>(),
                        [n],
                    ),
                    &device,
                );
                let inputs = RlooInputs {
                    logps: policy,
                    mask,
                    old_logps: Some(t1(&case["old_logps"], &device)),
                    advantages: adv_t,
                    entropy: fwd.entropy,
                };
                let out = rloo_loss(&cfg, inputs).map_err(|e| e.to_string())?;
                let mut metrics = out.metrics;
                metrics.extend(adv.metrics);
                (out.loss, metrics, &[])
            }
        };
        chk.check(
            "loss",
            scalar(loss.clone()),
            case["loss"].as_f64().unwrap_or(f64::NAN),
        );
        chk.check_metrics(&metrics, &case["metrics"], skippable);
        Ok(loss)
    }

    /// Evaluate one case with the given source on the CPU device.
    pub fn run_case(
        file: FixtureFile,
        root: &Value,
        case: &Value,
        source: &dyn Fn(&Request) -> Forward,
    ) -> CaseResult {
        run_case_on(file, root, case, source, &Device::default()).0
    }

    /// Evaluate one case on `device` (e.g. an autodiff device); also returns the loss tensor for backward.
    pub fn run_case_on(
        file: FixtureFile,
        root: &Value,
        case: &Value,
        source: &dyn Fn(&Request) -> Forward,
        device: &Device,
    ) -> (CaseResult, Option<Tensor<1>>) {
        let name = case["name"].as_str().unwrap_or("?").to_string();
        let mut chk = Checker {
            res: CaseResult {
                name,
                compared: 0,
                skipped: Vec::new(),
                failures: Vec::new(),
            },
        };
        match eval_case(file, root, case, source, &mut chk, device) {
            Ok(loss) => (chk.res, Some(loss)),
            Err(e) => {
                chk.res.failures.push(e);
                (chk.res, None)
            }
        }
    }

    /// Evaluate every case of a file; returns the per-case results.
    pub fn run_file(
        file: FixtureFile,
        source: &dyn Fn(&Request) -> Forward,
    ) -> Result<Vec<CaseResult>, String> {
        let root = load(file)?;
        let cases = root["cases"]
            .as_array()
            .ok_or_else(|| format!("{}: no cases", file.file_name()))?;
        Ok(cases
            .iter()
            .map(|c| run_case(file, &root, c, source))
            .collect())
    }

    /// Human-readable per-file summary line plus failure details; `true` when every case passed.
    pub fn report(
        file: FixtureFile,
        results: &[CaseResult],
        out: &mut BTreeMap<&'static str, (usize, usize)>,
    ) -> (bool, String) {
        let passed = results.iter().filter(|r| r.failures.is_empty()).count();
        out.insert(file.file_name(), (passed, results.len()));
        let compared: usize = results.iter().map(|r| r.compared).sum();
        let mut s = format!(
            "{}: {passed}/{} cases passed ({compared} values compared)\n",
            file.file_name(),
            results.len()
        );
        for r in results {
            if !r.skipped.is_empty() {
                s += &format!(
                    "  {}: not compared with this source: {:?}\n",
                    r.name, r.skipped
                );
            }
            for f in &r.failures {
                s += &format!("  FAIL {}: {f}\n", r.name);
            }
        }
        (passed == results.len(), s)
    }
}

use std::collections::BTreeMap;

use burn::tensor::Device;
use parity::{FixtureFile, recorded, report, run_file};
use temper_rl_objectives::{DpoInputs, dpo_loss};

#[test]
fn trl_parity_with_recorded_logprobs() {
    let mut summary = BTreeMap::new();
    let mut all_ok = true;
    let mut text = String::new();
    for file in FixtureFile::ALL {
        let results = run_file(file, &recorded).unwrap_or_else(|e| panic!("{e}"));
        assert!(!results.is_empty(), "{} has no cases", file.file_name());
        let (ok, s) = report(file, &results, &mut summary);
        all_ok &= ok;
        text += &s;
    }
    println!("{text}");
    assert_eq!(summary["dpo.json"].1, 33);
    assert_eq!(summary["grpo.json"].1, 57);
    assert_eq!(summary["rloo.json"].1, 8);
    assert_eq!(summary["sft.json"].1, 6);
    assert_eq!(summary["reward.json"].1, 4);
    assert!(all_ok, "TRL parity failures:\n{text}");
}

#[test]
fn dpo_losses_backpropagate_finite_gradients() {
    let root = parity::load(FixtureFile::Dpo).unwrap_or_else(|e| panic!("{e}"));
    let cases = root["cases"].as_array().cloned().unwrap_or_default();
    assert_eq!(cases.len(), 33);
    let device = Device::default().autodiff();
    let f = &root["forward"];
    for case in &cases {
        let cfg = parity::dpo_config(&case["config"]).unwrap_or_else(|e| panic!("{e}"));
        let lp = parity::t2(&f["policy_per_token_logps"], &device).require_grad();
        let mut inputs = DpoInputs::new(
            lp.clone(),
            parity::t2(&f["ref_per_token_logps"], &device),
            parity::t2(&f["shift_completion_mask"], &device),
        );
        inputs.log_sum_sq_probs =
            Some(parity::t2(&f["policy_per_token_log_sum_sq_probs"], &device));
        let out = dpo_loss(&cfg, inputs).unwrap_or_else(|e| panic!("{}: {e}", case["name"]));
        let grads = out.loss.backward();
        let g: Vec<f32> = lp
            .grad(&grads)
            .map(|g| g.into_data().iter::<f32>().collect())
            .unwrap_or_default();
        let mask: Vec<f32> = parity::t2(&f["shift_completion_mask"], &Device::default())
            .into_data()
            .iter::<f32>()
            .collect();
        assert_eq!(g.len(), mask.len(), "{}: no gradient", case["name"]);
        assert!(
            g.iter().all(|x| x.is_finite()),
            "{}: non-finite gradient",
            case["name"]
        );
        assert!(
            g.iter().zip(&mask).any(|(g, m)| *m != 0.0 && *g != 0.0),
            "{}: gradient is zero on every completion token",
            case["name"]
        );
        assert!(
            g.iter().zip(&mask).all(|(g, m)| *m != 0.0 || *g == 0.0),
            "{}: gradient leaks onto masked tokens",
            case["name"]
        );
    }
}

/// Every objective of every fixture case backpropagates: finite, not identically zero gradients w.r.t. the
/// policy log-probs (or the reward-model scores) — and the autodiff run reproduces the same loss and metrics.
#[test]
fn every_fixture_objective_backpropagates() {
    use burn::tensor::Tensor;
    use std::cell::RefCell;

    let device = Device::default().autodiff();
    let mut checked = 0;
    for file in FixtureFile::ALL {
        let root = parity::load(file).unwrap_or_else(|e| panic!("{e}"));
        let cases = root["cases"].as_array().cloned().unwrap_or_default();
        for case in &cases {
            let leaf2: RefCell<Option<Tensor<2>>> = RefCell::new(None);
            let leaf1: RefCell<Option<Tensor<1>>> = RefCell::new(None);
            let source = |req: &parity::Request| {
                let mut f = recorded(req);
                if let Some(lp) = f.policy_logps.take() {
                    let lp = lp.require_grad();
                    *leaf2.borrow_mut() = Some(lp.clone());
                    f.policy_logps = Some(lp);
                }
                if let Some(r) = f.rewards.take() {
                    let r = r.require_grad();
                    *leaf1.borrow_mut() = Some(r.clone());
                    f.rewards = Some(r);
                }
                f
            };
            let name = format!("{}:{}", file.file_name(), case["name"]);
            let (res, loss) = parity::run_case_on(file, &root, case, &source, &device);
            assert!(
                res.failures.is_empty(),
                "{name} on the autodiff device: {:?}",
                res.failures
            );
            let loss = loss.unwrap_or_else(|| panic!("{name}: no loss"));
            let grads = loss.backward();
            let g: Vec<f32> = match (leaf2.borrow().as_ref(), leaf1.borrow().as_ref()) {
                (Some(lp), _) => lp
                    .grad(&grads)
                    .map(|g| g.into_data().iter::<f32>().collect()),
                (None, Some(r)) => r
                    .grad(&grads)
                    .map(|g| g.into_data().iter::<f32>().collect()),
                _ => None,
            }
            .unwrap_or_else(|| panic!("{name}: no gradient"));
            assert!(
                g.iter().all(|x| x.is_finite()),
                "{name}: non-finite gradient"
            );
            // On-policy GRPO/RLOO with beta = 0 and A = 0 rows can legitimately give zero gradient on a row, but
            // never on the whole batch for these fixtures.
            assert!(
                g.iter().any(|x| *x != 0.0),
                "{name}: gradient is identically zero"
            );
            checked += 1;
        }
    }
    assert_eq!(checked, 33 + 57 + 8 + 6 + 4);
}
