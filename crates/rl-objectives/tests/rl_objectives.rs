//! TRL 1.16 parity: every case of every fixture in `testdata/trl-parity` through Temper's objectives.
//!
//! The `parity` module reads a fixture file, asks a log-prob *source* for the per-token tensors each case
//! needs ([`parity::Request`] → [`parity::Forward`]), runs the objective and compares the loss and every metric
//! within `1e-4·|ref| + 1e-6`. Two sources: [`parity::recorded`] replays the tensors TRL recorded, and
//! [`model::ModelSource`] runs Temper's own Llama forward on the set's safetensors weights (policy, reference,
//! reward model) and is also checked against the recorded per-token tensors (atol 5e-5 on log-probs).
//! The fixture directory is `$TEMPER_TRL_FIXTURES` or `<workspace>/testdata/trl-parity`, so any set in the
//! same format is checked with `TEMPER_TRL_FIXTURES=<dir> cargo test -p temper-rl-objectives`; the per-file
//! "N/M cases passed" lines are printed (`-- --nocapture`) and any failing case fails the test.

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

    /// Number of cases per file in the repository's copy of the set; `None` for a set chosen with
    /// `$TEMPER_TRL_FIXTURES` (any count is fine there, as long as it is not zero).
    pub fn expected_cases(file: FixtureFile) -> Option<usize> {
        if std::env::var_os("TEMPER_TRL_FIXTURES").is_some() {
            return None;
        }
        Some(match file {
            FixtureFile::Dpo => 33,
            FixtureFile::Grpo => 57,
            FixtureFile::Rloo => 8,
            FixtureFile::Sft => 6,
            FixtureFile::Reward => 4,
        })
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

    /// A log-prob source: what a case needs, or why it cannot be produced.
    pub type Source<'s> = &'s dyn Fn(&Request) -> Result<Forward, String>;

    /// The recorded source: replays TRL's own per-token tensors from the fixture JSON.
    pub fn recorded(req: &Request) -> Result<Forward, String> {
        let d = req.device;
        let opt = |v: &Value| if v.is_null() { None } else { Some(t2(v, d)) };
        Ok(match req.file {
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
        })
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
        source: Source<'_>,
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
        })?;
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
                    // "none": TRL got no old log-probs and used the policy's own, detached (ratio exactly 1);
                    // the recorded `old_logps` are TRL's forward, which differs from this source's by f32
                    // rounding, and with beta = 0 the loss -mean(A·ratio) is a cancellation near 0 that
                    // would turn that rounding into the whole value. "perturbed": the recorded values.
                    old_logps: match case["old_logps_kind"].as_str() {
                        Some("none") => None,
                        _ => Some(t1(&case["old_logps"], &device)),
                    },
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
        source: Source<'_>,
    ) -> CaseResult {
        run_case_on(file, root, case, source, &Device::default()).0
    }

    /// Evaluate one case on `device` (e.g. an autodiff device); also returns the loss tensor for backward.
    pub fn run_case_on(
        file: FixtureFile,
        root: &Value,
        case: &Value,
        source: Source<'_>,
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
    pub fn run_file(file: FixtureFile, source: Source<'_>) -> Result<Vec<CaseResult>, String> {
        let root = load(file)?;
        let cases = root["cases"]
            .as_array()
            .ok_or_else(|| format!("{}: no cases", file.file_name()))?;
        Ok(cases
            .iter()
            .map(|c| run_case(file, &root, c, source))
            .collect())
    }

    /// Human-readable per-file summary line (`<file>: <source>: N/M cases passed`) plus failure details;
    /// `true` when every case passed.
    pub fn report(
        file: FixtureFile,
        source: &str,
        results: &[CaseResult],
        out: &mut BTreeMap<&'static str, (usize, usize)>,
    ) -> (bool, String) {
        let passed = results.iter().filter(|r| r.failures.is_empty()).count();
        out.insert(file.file_name(), (passed, results.len()));
        let compared: usize = results.iter().map(|r| r.compared).sum();
        let mut s = format!(
            "{}: {source}: {passed}/{} cases passed ({compared} values compared)\n",
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

/// Temper's own forward on the fixture weights, as a log-prob source for [`parity::run_file`].
///
/// The inputs are built exactly as TRL builds them (see the set's `README.md`): DPO / SFT rows are right padded
/// with positions `0..T`; GRPO / RLOO rows are `concat(left-padded prompt, right-padded completion)` with
/// positions `0..P+C-1` whatever the padding (HF's default `position_ids`), so both use
/// `AttentionInfo::from_mask(mask, false)`. Logits are divided by the case temperature (policy and reference),
/// every per-token statistic comes from [`temper_tensor_ops::token_stats`] and is zeroed where the target is
/// masked, as TRL's fused LM head does.
pub mod model {
    use std::path::Path;

    use burn::tensor::{Device, Int, Tensor, TensorData};
    use serde_json::Value;
    use temper_models::{
        AttentionInfo, HfWeights, Llama, LlamaConfig, WeightSource, build_llama, load_hf_dir,
    };
    use temper_tensor_ops::{TokenStats, token_stats};

    use crate::parity::{FixtureFile, Forward, Request};

    /// Tolerance on per-token log-probs against the recorded tensors (the set's recommendation).
    pub const LOGP_ATOL: f64 = 5e-5;
    /// Tolerance on logits and the other logit statistics (entropy, mean logit, `log Σ p²`, rewards).
    pub const LOGIT_ATOL: f64 = 1e-4;

    /// Policy (`model/`), reference (`ref_model/`) and reward model (`reward_model/`) of one fixture set.
    pub struct ModelSource {
        policy: Llama,
        reference: Llama,
        reward: Llama,
        /// `score.weight` transposed: `[H, 1]`.
        score: Tensor<2>,
        device: Device,
    }

    /// A `[R][C]` integer matrix from JSON (every row the same length).
    pub(crate) fn int_rows(v: &Value, what: &str) -> Result<Vec<Vec<i64>>, String> {
        let rows = v
            .as_array()
            .ok_or_else(|| format!("{what}: expected a list of rows"))?;
        let mut out = Vec::with_capacity(rows.len());
        for (r, row) in rows.iter().enumerate() {
            let row = row
                .as_array()
                .ok_or_else(|| format!("{what}[{r}]: expected a list"))?;
            let vals = row
                .iter()
                .enumerate()
                .map(|(c, x)| {
                    x.as_i64()
                        .ok_or_else(|| format!("{what}[{r}][{c}]: expected an integer, got {x}"))
                })
                .collect::<Result<Vec<_>, _>>()?;
            out.push(vals);
        }
        if let Some(first) = out.first()
            && let Some(r) = out.iter().position(|x| x.len() != first.len())
        {
            return Err(format!(
                "{what}: row {r} has length {}, row 0 has {}",
                out[r].len(),
                first.len()
            ));
        }
        if out.is_empty() || out[0].is_empty() {
            return Err(format!("{what}: empty"));
        }
        Ok(out)
    }

    fn mask_of(rows: &[Vec<i64>]) -> Vec<Vec<u8>> {
        rows.iter()
            .map(|r| r.iter().map(|&m| u8::from(m != 0)).collect())
            .collect()
    }

    fn int_tensor(rows: &[Vec<i64>], device: &Device) -> Tensor<2, Int> {
        let c = rows.first().map_or(0, Vec::len);
        let flat: Vec<i64> = rows.iter().flatten().copied().collect();
        Tensor::from_data(TensorData::new(flat, [rows.len(), c]), device)
    }

    fn float_tensor(rows: &[Vec<f32>], device: &Device) -> Tensor<2> {
        let c = rows.first().map_or(0, Vec::len);
        let flat: Vec<f32> = rows.iter().flatten().copied().collect();
        Tensor::from_data(TensorData::new(flat, [rows.len(), c]), device)
    }

    fn same_shape(a: &[Vec<i64>], b: &[Vec<i64>], what: &str) -> Result<(), String> {
        let (ra, ca) = (a.len(), a.first().map_or(0, Vec::len));
        let (rb, cb) = (b.len(), b.first().map_or(0, Vec::len));
        if (ra, ca) != (rb, cb) {
            return Err(format!(
                "{what}: shapes [{ra}, {ca}] and [{rb}, {cb}] differ"
            ));
        }
        Ok(())
    }

    /// One causal-LM input: `ids`/`attn` `[B, T]`; the statistics of the logits at positions `start..start+L`
    /// are taken for `targets` `[B, L]` (label `-100` allowed) and zeroed where `loss_mask` `[B, L]` is 0.
    struct LmBatch {
        ids: Vec<Vec<i64>>,
        attn: Vec<Vec<u8>>,
        start: usize,
        targets: Vec<Vec<i64>>,
        loss_mask: Vec<Vec<f32>>,
    }

    fn score_tokens(model: &Llama, b: &LmBatch, temperature: f64, device: &Device) -> TokenStats {
        let len = b.targets.first().map_or(0, Vec::len);
        let info = AttentionInfo::from_mask(&b.attn, false);
        let logits = model.forward(int_tensor(&b.ids, device), &info, None); // (B, T, V)
        let logits = logits.narrow(1, b.start, len).div_scalar(temperature); // (B, L, V)
        // Masked targets (label -100) point at id 0; their statistics are zeroed below.
        let safe: Vec<Vec<i64>> = b
            .targets
            .iter()
            .map(|r| r.iter().map(|&t| t.max(0)).collect())
            .collect();
        let s = token_stats(logits, int_tensor(&safe, device), true);
        let m = float_tensor(&b.loss_mask, device); // (B, L)
        TokenStats {
            logps: s.logps * m.clone(),
            entropy: s.entropy * m.clone(),
            mean_logits: s.mean_logits * m.clone(),
            is_top1: s.is_top1 * m.clone(),
            log_sum_sq_probs: s.log_sum_sq_probs.map(|l| l * m),
        }
    }

    fn ones(rows: &[Vec<i64>]) -> Vec<Vec<f32>> {
        rows.iter()
            .map(|r| r.iter().map(|&m| f32::from(u8::from(m != 0))).collect())
            .collect()
    }

    impl ModelSource {
        /// Loads `model/`, `ref_model/` and `reward_model/` (a `LlamaForSequenceClassification`: the decoder
        /// plus `score.weight [1, H]`, no LM head) from a fixture-set directory.
        pub fn load(dir: &Path, device: &Device) -> Result<Self, String> {
            let causal = |sub: &str| {
                load_hf_dir(&dir.join(sub), device).map_err(|e| format!("loading {sub}/: {e}"))
            };
            let policy = causal("model")?;
            let reference = causal("ref_model")?;
            let rdir = dir.join("reward_model");
            let err = |e: temper_models::ModelError| format!("loading reward_model/: {e}");
            let mut config = LlamaConfig::from_hf_json(&rdir.join("config.json")).map_err(err)?;
            // The classifier checkpoint has no `lm_head.weight`; only the hidden states are used, so build the
            // decoder with the (unused) tied head.
            config.tie_word_embeddings = true;
            let weights = HfWeights::open(&rdir).map_err(err)?;
            let reward = build_llama(&config, &weights, device).map_err(err)?;
            let (w, shape) = weights
                .get("score.weight")
                .map_err(err)?
                .ok_or_else(|| format!("{}: no tensor score.weight", rdir.display()))?;
            let h = config.hidden_size;
            if shape != [1, h] {
                return Err(format!(
                    "{}: score.weight has shape {shape:?}, expected [1, {h}]",
                    rdir.display()
                ));
            }
            Ok(Self {
                policy,
                reference,
                reward,
                score: Tensor::from_data(TensorData::new(w, [h, 1]), device),
                device: device.clone(),
            })
        }

        /// The policy model (`model/`).
        pub fn policy(&self) -> &Llama {
            &self.policy
        }

        /// The reference model (`ref_model/`); its outputs are detached.
        pub fn reference(&self) -> &Llama {
            &self.reference
        }

        /// The reward model's decoder (`reward_model/` without `score.weight`).
        pub fn reward_model(&self) -> &Llama {
            &self.reward
        }

        /// The per-token tensors a case needs, computed by the models (on the device given to [`Self::load`]).
        pub fn forward(&self, req: &Request) -> Result<Forward, String> {
            let d = &self.device;
            let t = req.temperature;
            match req.file {
                FixtureFile::Dpo => {
                    let b = &req.root["batch"];
                    let ids = int_rows(&b["input_ids"], "batch.input_ids")?;
                    let attn = int_rows(&b["attention_mask"], "batch.attention_mask")?;
                    let comp = int_rows(&b["completion_mask"], "batch.completion_mask")?;
                    same_shape(&ids, &attn, "batch.input_ids / attention_mask")?;
                    same_shape(&ids, &comp, "batch.input_ids / completion_mask")?;
                    // Right padded, positions 0..T; targets ids[:, 1:], loss mask completion_mask[:, 1:].
                    let shift = |rows: &[Vec<i64>]| -> Vec<Vec<i64>> {
                        rows.iter().map(|r| r[1..].to_vec()).collect()
                    };
                    let batch = LmBatch {
                        targets: shift(&ids),
                        loss_mask: ones(&shift(&comp)),
                        attn: mask_of(&attn),
                        ids,
                        start: 0,
                    };
                    let p = score_tokens(&self.policy, &batch, t, d);
                    // The reference is a constant of the objective (TRL runs it under no_grad).
                    let r = score_tokens(&self.reference, &batch, t, d).logps.detach();
                    Ok(Forward {
                        policy_logps: Some(p.logps),
                        ref_logps: Some(r),
                        entropy: Some(p.entropy),
                        mean_logits: Some(p.mean_logits),
                        is_top1: Some(p.is_top1),
                        log_sum_sq_probs: p.log_sum_sq_probs,
                        rewards: None,
                    })
                }
                FixtureFile::Sft => {
                    let c = req.case;
                    let ids = int_rows(&c["input_ids"], "input_ids")?;
                    let attn = int_rows(&c["attention_mask"], "attention_mask")?;
                    let labels = int_rows(&c["labels"], "labels")?;
                    same_shape(&ids, &attn, "input_ids / attention_mask")?;
                    same_shape(&ids, &labels, "input_ids / labels")?;
                    // Right padded, positions 0..T; targets labels[:, 1:], scored where they are not -100.
                    let targets: Vec<Vec<i64>> = labels.iter().map(|r| r[1..].to_vec()).collect();
                    let loss_mask: Vec<Vec<f32>> = targets
                        .iter()
                        .map(|r| r.iter().map(|&l| f32::from(u8::from(l != -100))).collect())
                        .collect();
                    let batch = LmBatch {
                        ids,
                        attn: mask_of(&attn),
                        start: 0,
                        targets,
                        loss_mask,
                    };
                    let p = score_tokens(&self.policy, &batch, t, d);
                    Ok(Forward {
                        policy_logps: Some(p.logps),
                        entropy: Some(p.entropy),
                        is_top1: Some(p.is_top1),
                        ..Forward::default()
                    })
                }
                FixtureFile::Grpo | FixtureFile::Rloo => {
                    let pad = &req.root["padded"];
                    let prompt = int_rows(&pad["prompt_ids"], "padded.prompt_ids")?;
                    let prompt_mask = int_rows(&pad["prompt_mask"], "padded.prompt_mask")?;
                    let comp = int_rows(&pad["completion_ids"], "padded.completion_ids")?;
                    let comp_mask = int_rows(&pad["completion_mask"], "padded.completion_mask")?;
                    same_shape(&prompt, &prompt_mask, "padded.prompt_ids / prompt_mask")?;
                    same_shape(&comp, &comp_mask, "padded.completion_ids / completion_mask")?;
                    if prompt.len() != comp.len() {
                        return Err(format!(
                            "padded: {} prompt rows but {} completion rows",
                            prompt.len(),
                            comp.len()
                        ));
                    }
                    let cat = |a: &[Vec<i64>], b: &[Vec<i64>]| -> Vec<Vec<i64>> {
                        a.iter()
                            .zip(b)
                            .map(|(x, y)| [x.as_slice(), y].concat())
                            .collect()
                    };
                    // (N, P + C): left-padded prompt then right-padded completion, positions 0..P+C-1
                    // whatever the padding; completion token j is predicted at input position P + j - 1.
                    let batch = LmBatch {
                        ids: cat(&prompt, &comp),
                        attn: mask_of(&cat(&prompt_mask, &comp_mask)),
                        start: prompt[0].len() - 1,
                        loss_mask: ones(&comp_mask),
                        targets: comp,
                    };
                    let p = score_tokens(&self.policy, &batch, t, d);
                    // The reference is a constant of the objective (TRL runs it under no_grad).
                    let r = score_tokens(&self.reference, &batch, t, d).logps.detach();
                    Ok(Forward {
                        policy_logps: Some(p.logps),
                        ref_logps: Some(r),
                        entropy: Some(p.entropy),
                        ..Forward::default()
                    })
                }
                FixtureFile::Reward => Ok(Forward {
                    rewards: Some(self.rewards(req.root)?),
                    ..Forward::default()
                }),
            }
        }

        /// Pooled reward-model scores `[2B]`: `final-normed hidden · score.weightᵀ` at the last position whose
        /// id is not the pad id (HF's rule), checked against the recorded `batch.pooled_index` when present.
        fn rewards(&self, root: &Value) -> Result<Tensor<1>, String> {
            let d = &self.device;
            let b = &root["batch"];
            let ids = int_rows(&b["input_ids"], "batch.input_ids")?;
            let attn = int_rows(&b["attention_mask"], "batch.attention_mask")?;
            same_shape(&ids, &attn, "batch.input_ids / attention_mask")?;
            let pad = root["pad_token_id"]
                .as_i64()
                .ok_or("reward.json: no integer pad_token_id")?;
            let pooled = ids
                .iter()
                .enumerate()
                .map(|(r, row)| {
                    row.iter()
                        .rposition(|&i| i != pad)
                        .ok_or_else(|| format!("batch.input_ids[{r}]: only padding"))
                })
                .collect::<Result<Vec<usize>, String>>()?;
            if let Some(want) = b["pooled_index"].as_array() {
                let want: Vec<Option<u64>> = want.iter().map(Value::as_u64).collect();
                let got: Vec<Option<u64>> = pooled.iter().map(|&i| Some(i as u64)).collect();
                if want != got {
                    return Err(format!(
                        "pooled index {pooled:?} differs from the recorded batch.pooled_index {want:?}"
                    ));
                }
            }
            let (n, len) = (ids.len(), ids[0].len());
            let info = AttentionInfo::from_mask(&mask_of(&attn), false);
            let hidden = self.reward.forward_hidden(int_tensor(&ids, d), &info, None); // (2B, L, H)
            let h = hidden.dims()[2];
            let scores = hidden
                .reshape([n * len, h])
                .matmul(self.score.clone())
                .reshape([n, len]); // (2B, L)
            let idx: Vec<Vec<i64>> = pooled.iter().map(|&i| vec![i as i64]).collect();
            Ok(scores.gather(1, int_tensor(&idx, d)).reshape([n])) // (2B,)
        }
    }

    fn host(t: Tensor<2>) -> ([usize; 2], Vec<f32>) {
        (t.dims(), t.into_data().iter::<f32>().collect())
    }

    /// Largest `|model - recorded|` of every per-token tensor both sources give (and of the pooled rewards),
    /// or an error naming the first tensor beyond its tolerance ([`LOGP_ATOL`] for log-probs, exact for
    /// `is_top1`, [`LOGIT_ATOL`] otherwise) with the row and column.
    pub fn compare_with_recorded(
        model: &Forward,
        rec: &Forward,
    ) -> Result<Vec<(&'static str, f64)>, String> {
        let pairs: [(&'static str, &Option<Tensor<2>>, &Option<Tensor<2>>, f64); 6] = [
            (
                "policy_logps",
                &model.policy_logps,
                &rec.policy_logps,
                LOGP_ATOL,
            ),
            ("ref_logps", &model.ref_logps, &rec.ref_logps, LOGP_ATOL),
            ("entropy", &model.entropy, &rec.entropy, LOGIT_ATOL),
            (
                "mean_logits",
                &model.mean_logits,
                &rec.mean_logits,
                LOGIT_ATOL,
            ),
            ("is_top1", &model.is_top1, &rec.is_top1, 0.0),
            (
                "log_sum_sq_probs",
                &model.log_sum_sq_probs,
                &rec.log_sum_sq_probs,
                LOGIT_ATOL,
            ),
        ];
        let mut out = Vec::new();
        for (name, got, want, atol) in pairs {
            let (Some(got), Some(want)) = (got, want) else {
                continue;
            };
            let (gd, g) = host(got.clone());
            let (wd, w) = host(want.clone());
            if gd != wd {
                return Err(format!("{name}: model shape {gd:?}, recorded {wd:?}"));
            }
            let mut worst = (0.0f64, 0usize);
            for (i, (a, b)) in g.iter().zip(&w).enumerate() {
                let diff = (f64::from(*a) - f64::from(*b)).abs();
                if diff > worst.0 || diff.is_nan() {
                    worst = (diff, i);
                }
            }
            if worst.0.is_nan() || worst.0 > atol {
                let (r, c) = (worst.1 / gd[1].max(1), worst.1 % gd[1].max(1));
                return Err(format!(
                    "{name}[{r}][{c}]: model {} vs recorded {} (|diff| {:.3e} > atol {atol:e})",
                    g[worst.1], w[worst.1], worst.0
                ));
            }
            out.push((name, worst.0));
        }
        if let (Some(got), Some(want)) = (&model.rewards, &rec.rewards) {
            let g: Vec<f32> = got.clone().into_data().iter::<f32>().collect();
            let w: Vec<f32> = want.clone().into_data().iter::<f32>().collect();
            if g.len() != w.len() {
                return Err(format!(
                    "rewards: model {} values, recorded {}",
                    g.len(),
                    w.len()
                ));
            }
            let mut worst = 0.0f64;
            for (i, (a, b)) in g.iter().zip(&w).enumerate() {
                let diff = (f64::from(*a) - f64::from(*b)).abs();
                if diff.is_nan() || diff > LOGIT_ATOL {
                    return Err(format!(
                        "rewards[{i}]: model {a} vs recorded {b} (|diff| {diff:.3e} > atol {LOGIT_ATOL:e})"
                    ));
                }
                worst = worst.max(diff);
            }
            out.push(("rewards", worst));
        }
        Ok(out)
    }

    /// Checks the policy's full logits against `model/logits.json` (atol [`LOGIT_ATOL`] on every real
    /// position); returns `(cases, values compared, max |diff|)`.
    pub fn check_logits(
        dir: &Path,
        policy: &Llama,
        device: &Device,
    ) -> Result<(usize, usize, f64), String> {
        let path = dir.join("model").join("logits.json");
        let text = std::fs::read_to_string(&path)
            .map_err(|e| format!("reading {}: {e}", path.display()))?;
        let root: Value =
            serde_json::from_str(&text).map_err(|e| format!("parsing {}: {e}", path.display()))?;
        let cases = root["cases"]
            .as_array()
            .ok_or_else(|| format!("{}: no cases", path.display()))?;
        let (mut compared, mut worst) = (0usize, 0.0f64);
        for case in cases {
            let name = case["name"].as_str().unwrap_or("?");
            let ids = int_rows(&case["input_ids"], "input_ids")?;
            let attn = int_rows(&case["attention_mask"], "attention_mask")?;
            same_shape(&ids, &attn, "input_ids / attention_mask")?;
            let (b, t) = (ids.len(), ids[0].len());
            let info = if case["passes_attention_mask"].as_bool().unwrap_or(true) {
                AttentionInfo::from_mask(&mask_of(&attn), false)
            } else {
                AttentionInfo::full(b, t)
            };
            let got: Vec<f32> = policy
                .forward(int_tensor(&ids, device), &info, None)
                .into_data()
                .iter::<f32>()
                .collect();
            let want = case["logits"]
                .as_array()
                .ok_or_else(|| format!("{name}: no logits"))?;
            let v = got.len() / (b * t).max(1);
            for (r, row) in want.iter().enumerate() {
                for (p, pos) in row.as_array().into_iter().flatten().enumerate() {
                    if attn.get(r).and_then(|a| a.get(p)) == Some(&0) {
                        continue; // padding query: never scored (stored as 0.0)
                    }
                    let pos = pos
                        .as_array()
                        .ok_or_else(|| format!("{name}: logits[{r}][{p}]"))?;
                    if pos.len() != v {
                        return Err(format!(
                            "{name}: logits[{r}][{p}] has {} values, model gives {v}",
                            pos.len()
                        ));
                    }
                    for (k, x) in pos.iter().enumerate() {
                        let w = x.as_f64().unwrap_or(f64::NAN);
                        let g = f64::from(got[(r * t + p) * v + k]);
                        let diff = (g - w).abs();
                        if diff.is_nan() || diff > LOGIT_ATOL {
                            return Err(format!(
                                "{name}: logits[{r}][{p}][{k}]: model {g} vs recorded {w} (|diff| {diff:.3e})"
                            ));
                        }
                        worst = worst.max(diff);
                        compared += 1;
                    }
                }
            }
        }
        Ok((cases.len(), compared, worst))
    }
}

use std::cell::RefCell;
use std::collections::BTreeMap;

use burn::tensor::Device;
use model::ModelSource;
use parity::{FixtureFile, expected_cases, recorded, report, run_file};
use temper_rl_objectives::{DpoInputs, dpo_loss};

#[test]
fn trl_parity_with_recorded_logprobs() {
    let mut summary = BTreeMap::new();
    let mut all_ok = true;
    let mut text = String::new();
    for file in FixtureFile::ALL {
        let results = run_file(file, &recorded).unwrap_or_else(|e| panic!("{e}"));
        assert!(!results.is_empty(), "{} has no cases", file.file_name());
        if let Some(n) = expected_cases(file) {
            assert_eq!(results.len(), n, "{}", file.file_name());
        }
        let (ok, s) = report(file, "recorded log-probs", &results, &mut summary);
        all_ok &= ok;
        text += &s;
    }
    println!("{text}");
    assert!(
        all_ok,
        "TRL parity failures with the recorded log-probs (report above)"
    );
}

/// The acceptance test: every case of every file with the per-token tensors computed by Temper's own forward
/// from the set's safetensors weights (policy, reference, reward model), each loss / metric / advantage within
/// `1e-4·|ref| + 1e-6`, every value compared (SFT `mean_token_accuracy` included); and every per-token tensor
/// the model produces matches the one TRL recorded for that case (atol 5e-5 on log-probs, 1e-4 on the rest,
/// `is_top1` exactly).
#[test]
fn trl_parity_through_model_forward() {
    let dir = parity::fixture_dir();
    let device = Device::default();
    let models = ModelSource::load(&dir, &device).unwrap_or_else(|e| panic!("{e}"));
    let mut summary = BTreeMap::new();
    let mut all_ok = true;
    let mut text = String::new();
    for file in FixtureFile::ALL {
        let worst: RefCell<BTreeMap<&'static str, f64>> = RefCell::new(BTreeMap::new());
        // (case name, mismatch) between the model's per-token tensors and the recorded ones.
        let mismatches: RefCell<Vec<(String, String)>> = RefCell::new(Vec::new());
        let calls = RefCell::new(0usize);
        let source = |req: &parity::Request| {
            let got = models.forward(req)?;
            *calls.borrow_mut() += 1;
            match model::compare_with_recorded(&got, &recorded(req)?) {
                Ok(diffs) => {
                    let mut w = worst.borrow_mut();
                    for (name, d) in diffs {
                        let e = w.entry(name).or_insert(0.0);
                        *e = e.max(d);
                    }
                }
                Err(e) => {
                    let case = req.case["name"].as_str().unwrap_or("?").to_string();
                    mismatches
                        .borrow_mut()
                        .push((case, format!("model forward vs recorded forward: {e}")));
                }
            }
            Ok(got)
        };
        let mut results = run_file(file, &source).unwrap_or_else(|e| panic!("{e}"));
        assert!(!results.is_empty(), "{} has no cases", file.file_name());
        if let Some(n) = expected_cases(file) {
            assert_eq!(results.len(), n, "{}", file.file_name());
        }
        for (case, e) in mismatches.take() {
            if let Some(r) = results.iter_mut().find(|r| r.name == case) {
                r.failures.push(e);
            }
        }
        for r in &mut results {
            if !r.skipped.is_empty() {
                r.failures.push(format!(
                    "values not compared: {:?}",
                    std::mem::take(&mut r.skipped)
                ));
            }
        }
        let (ok, s) = report(file, "model forward", &results, &mut summary);
        all_ok &= ok;
        text += &s;
        let w = worst.borrow();
        let diffs: Vec<String> = w.iter().map(|(k, d)| format!("{k} {d:.1e}")).collect();
        text += &format!(
            "  per-token max |model - recorded| over {} forwards: {}\n",
            calls.borrow(),
            diffs.join(", ")
        );
        // Every case ran the model, and every tensor the file needs was compared with the recorded one.
        let fields: &[&str] = match file {
            FixtureFile::Dpo => &[
                "entropy",
                "is_top1",
                "log_sum_sq_probs",
                "mean_logits",
                "policy_logps",
                "ref_logps",
            ],
            FixtureFile::Grpo | FixtureFile::Rloo => &["entropy", "policy_logps", "ref_logps"],
            FixtureFile::Sft => &["entropy", "policy_logps"],
            FixtureFile::Reward => &["rewards"],
        };
        let compared: Vec<&str> = w.keys().copied().collect();
        if *calls.borrow() != results.len() || (ok && compared != fields) {
            all_ok = false;
            text += &format!(
                "  FAIL {} model forwards for {} cases; compared with the recorded forward: {compared:?}, \
                 expected {fields:?}\n",
                calls.borrow(),
                results.len()
            );
        }
    }
    println!("fixture set {}\n{text}", dir.display());
    assert!(
        all_ok,
        "TRL parity failures through the model forward (report above)"
    );
}

/// The policy's full logits match `model/logits.json` (unpadded, right-padded and left-padded batches).
#[test]
fn model_forward_reproduces_recorded_logits() {
    let dir = parity::fixture_dir();
    let device = Device::default();
    let models = ModelSource::load(&dir, &device).unwrap_or_else(|e| panic!("{e}"));
    let (cases, compared, worst) =
        model::check_logits(&dir, models.policy(), &device).unwrap_or_else(|e| panic!("{e}"));
    println!("model/logits.json: {cases} cases, {compared} logits, max |diff| {worst:.2e}");
    assert!(cases >= 1 && compared > 0);
    if expected_cases(FixtureFile::Dpo).is_some() {
        assert_eq!(cases, 3);
    }
    assert!(worst <= model::LOGIT_ATOL);
}

#[test]
fn dpo_losses_backpropagate_finite_gradients() {
    let root = parity::load(FixtureFile::Dpo).unwrap_or_else(|e| panic!("{e}"));
    let cases = root["cases"].as_array().cloned().unwrap_or_default();
    if let Some(n) = expected_cases(FixtureFile::Dpo) {
        assert_eq!(cases.len(), n);
    }
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
                let mut f = recorded(req)?;
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
                Ok(f)
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
    if let Some(n) = FixtureFile::ALL
        .iter()
        .map(|f| expected_cases(*f))
        .sum::<Option<usize>>()
    {
        assert_eq!(checked, n);
    }
    assert!(checked > 0);
}

/// Summary of the gradients a module's float parameters received.
struct GradSummary<'a> {
    grads: &'a burn::tensor::Gradients,
    params: usize,
    with_grad: usize,
    nonzero: usize,
    non_finite: usize,
}

impl<'a> GradSummary<'a> {
    fn of(module: &temper_models::Llama, grads: &'a burn::tensor::Gradients) -> Self {
        use burn::module::Module;
        let mut s = GradSummary {
            grads,
            params: 0,
            with_grad: 0,
            nonzero: 0,
            non_finite: 0,
        };
        module.visit(&mut s);
        s
    }
}

impl burn::module::ModuleVisitor for GradSummary<'_> {
    fn visit_float<const D: usize>(
        &mut self,
        param: &burn::module::Param<burn::tensor::Tensor<D>>,
    ) {
        self.params += 1;
        if let Some(g) = param.val().grad(self.grads) {
            self.with_grad += 1;
            let v: Vec<f32> = g.into_data().iter::<f32>().collect();
            self.non_finite += v.iter().filter(|x| !x.is_finite()).count();
            self.nonzero += usize::from(v.iter().any(|x| *x != 0.0));
        }
    }
}

/// Every objective of every case, computed from the model forward on an autodiff device, reproduces the
/// fixture values and backpropagates into the weights: every policy (reward-model) parameter gets a finite,
/// not identically zero gradient, and the reference model gets none.
#[test]
fn every_objective_backpropagates_into_the_model_weights() {
    let device = Device::default().autodiff();
    let models =
        ModelSource::load(&parity::fixture_dir(), &device).unwrap_or_else(|e| panic!("{e}"));
    let source = |req: &parity::Request| models.forward(req);
    let mut checked = 0;
    for file in FixtureFile::ALL {
        let root = parity::load(file).unwrap_or_else(|e| panic!("{e}"));
        let cases = root["cases"].as_array().cloned().unwrap_or_default();
        for case in &cases {
            let name = format!("{}:{}", file.file_name(), case["name"]);
            let (res, loss) = parity::run_case_on(file, &root, case, &source, &device);
            assert!(
                res.failures.is_empty(),
                "{name} through the model on the autodiff device: {:?}",
                res.failures
            );
            let grads = loss.unwrap_or_else(|| panic!("{name}: no loss")).backward();
            let trained = match file {
                FixtureFile::Reward => models.reward_model(),
                _ => models.policy(),
            };
            let s = GradSummary::of(trained, &grads);
            assert!(s.params > 0, "{name}: no parameters visited");
            assert_eq!(s.with_grad, s.params, "{name}: parameters without gradient");
            assert_eq!(s.non_finite, 0, "{name}: non-finite gradient values");
            assert_eq!(
                s.nonzero, s.params,
                "{name}: parameters with an all-zero gradient"
            );
            let r = GradSummary::of(models.reference(), &grads);
            assert_eq!(
                r.with_grad, 0,
                "{name}: gradient leaked into the reference model"
            );
            checked += 1;
        }
    }
    if let Some(n) = FixtureFile::ALL
        .iter()
        .map(|f| expected_cases(*f))
        .sum::<Option<usize>>()
    {
        assert_eq!(checked, n);
    }
    assert!(checked > 0);
}
