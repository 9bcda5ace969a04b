//! LoRA ([Hu et al. 2021](https://arxiv.org/abs/2106.09685)) as a `[train] lora = {...}` option, on burn's own
//! weight-level adapters (`burn::module::LoraAdapter`, composed by `Param::val` as `W + (alpha/r)·A B`):
//! choosing the adapted projections, PEFT's initialisation (A ~ Kaiming-uniform, seeded; B = 0), freezing
//! every other weight except a trainer's task head, and the host copies a checkpoint needs (the trained
//! tensors by path, a checksum of the frozen base).

use burn::module::{LoraAdapter, Module, ModuleMapper, ModuleVisitor, Param, Reparameterizer};
use burn::tensor::{Tensor, TensorData};
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};

use crate::export::F32Tensors;
use crate::params::named_tensors_where;

/// The Llama projections an adapter can be attached to (PEFT's `target_modules` names).
pub const LORA_TARGETS: [&str; 7] = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"];

fn d_rank() -> usize {
    8
}
fn d_alpha() -> f64 {
    16.0
}
fn d_targets() -> Vec<String> {
    vec!["q_proj".into(), "v_proj".into()]
}

/// `[train] lora = { rank = 8, alpha = 16.0, dropout = 0.0, targets = ["q_proj", "v_proj"] }` (PEFT
/// `LoraConfig` names and defaults: `r`, `lora_alpha`, `lora_dropout`, `target_modules`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoraSettings {
    /// Rank `r` of the update `ΔW = (alpha / r)·A B` (PEFT default 8).
    #[serde(default = "d_rank")]
    pub rank: usize,
    /// Scaling numerator `alpha` (TRL's examples use 16 with r = 8).
    #[serde(default = "d_alpha")]
    pub alpha: f64,
    /// Dropout on the adapter's input. burn composes the adapter into the weight (`W + ΔW`), where input dropout
    /// cannot be expressed, so only 0 is accepted.
    #[serde(default)]
    pub dropout: f64,
    /// Projections to adapt, among q_proj k_proj v_proj o_proj gate_proj up_proj down_proj (PEFT's default for
    /// Llama: q_proj, v_proj).
    #[serde(default = "d_targets")]
    pub targets: Vec<String>,
}

impl Default for LoraSettings {
    fn default() -> Self {
        Self {
            rank: d_rank(),
            alpha: d_alpha(),
            dropout: 0.0,
            targets: d_targets(),
        }
    }
}

impl LoraSettings {
    /// Field checks (the message names the `train.lora` field).
    pub fn validate(&self) -> std::result::Result<(), String> {
        if self.rank == 0 {
            return Err("train.lora.rank must be at least 1".into());
        }
        if !(self.alpha.is_finite() && self.alpha > 0.0) {
            return Err(format!("train.lora.alpha must be a finite number > 0, got {}", self.alpha));
        }
        if self.dropout != 0.0 {
            return Err(format!(
                "train.lora.dropout = {} is not supported: burn merges the adapter into the weight (W + ΔW), where \
                 dropout on the adapter's input cannot be applied; set it to 0.0",
                self.dropout
            ));
        }
        if self.targets.is_empty() {
            return Err("train.lora.targets must name at least one projection".into());
        }
        for t in &self.targets {
            if !LORA_TARGETS.contains(&t.as_str()) {
                return Err(format!("train.lora.targets: unknown projection `{t}`; expected one of {LORA_TARGETS:?}"));
            }
        }
        Ok(())
    }

    /// `alpha / rank`.
    pub fn scale(&self) -> f64 {
        self.alpha / self.rank as f64
    }

    /// Whether the parameter at burn path `path` (e.g. `layers.3.self_attn.q_proj.weight`) gets an adapter.
    pub fn targets_path(&self, path: &str) -> bool {
        let mut parts = path.rsplit('.');
        parts.next() == Some("weight") && parts.next().is_some_and(|m| self.targets.iter().any(|t| t == m))
    }
}

/// burn [`Reparameterizer`]: freezes every float parameter, attaches an adapter to the targeted `[in, out]`
/// weights, and leaves the parameters `trained_in_full` accepts (a task head) trainable.
struct Attach<'a> {
    settings: &'a LoraSettings,
    trained_in_full: &'a dyn Fn(&str) -> bool,
    rng: rand::rngs::StdRng,
    attached: &'a mut usize,
}

impl Reparameterizer for Attach<'_> {
    type Reparam = LoraAdapter;

    fn reparameterize<const D: usize>(&mut self, path: &str, param: Param<Tensor<D>>) -> (Param<Tensor<D>>, Option<LoraAdapter>) {
        if (self.trained_in_full)(path) {
            return (param, None);
        }
        if D != 2 || !self.settings.targets_path(path) {
            return (param.set_require_grad(false), None);
        }
        let base = param.set_require_grad(false);
        let value = base.base();
        let device = value.device();
        let [d_in, d_out] = [value.dims()[0], value.dims()[1]];
        let r = self.settings.rank;
        // PEFT: lora_A `[r, in]` with kaiming_uniform_(a = √5), i.e. U(-1/√in, 1/√in); burn stores A as `[in, r]`.
        let bound = 1.0 / (d_in as f64).sqrt();
        let a: Vec<f32> = (0..d_in * r).map(|_| ((self.rng.random::<f64>() * 2.0 - 1.0) * bound) as f32).collect();
        let a = Tensor::<2>::from_data(TensorData::new(a, [d_in, r]), &device);
        let b = Tensor::<2>::zeros([r, d_out], &device);
        *self.attached += 1;
        let adapter = LoraAdapter {
            a: Param::from_tensor(a),
            b: Param::from_tensor(b),
            scale: self.settings.scale(),
        };
        (base, Some(adapter))
    }
}

/// Attaches adapters to `model` (on an autodiff device): the targeted weights become `W + (alpha/r)·A B` with
/// `B = 0` (so the model's outputs are unchanged) and `A` drawn from `seed`; every other weight is frozen except
/// those `trained_in_full` accepts. Returns the model and the number of adapters (0 means no path matched).
pub fn attach<M: Module>(model: M, settings: &LoraSettings, seed: u64, trained_in_full: &dyn Fn(&str) -> bool) -> (M, usize) {
    let mut n = 0;
    let attach = Attach {
        settings,
        trained_in_full,
        rng: rand::rngs::StdRng::seed_from_u64(seed ^ 0x4c6f_5241_6164_6170),
        attached: &mut n,
    };
    let model = model.apply_reparameterization(attach);
    (model, n)
}

/// Every trainable float parameter (requires a gradient) as `(burn path, data)`: with LoRA the adapter factors
/// and a task head, without LoRA every weight.
pub fn trainable_tensors<M: Module>(model: &M) -> Vec<(String, TensorData)> {
    named_tensors_where(model, true)
}

/// Number of float values in trainable parameters (what receives gradients and optimizer state).
pub fn trainable_count<M: Module>(model: &M) -> usize {
    struct Count(usize);
    impl ModuleVisitor for Count {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            if param.is_require_grad() {
                self.0 += param.lazy_shape().num_elements();
            }
        }
    }
    let mut c = Count(0);
    model.visit(&mut c);
    c.0
}

/// `Σ |w|` over the frozen parameters, in f64 (a fingerprint of the base a LoRA run was started from; the same
/// base gives the same number bit for bit).
pub fn frozen_checksum<M: Module>(model: &M) -> f64 {
    struct Sum(f64);
    impl ModuleVisitor for Sum {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            if !param.is_require_grad() {
                let data = param.val().into_data().convert::<f32>();
                if let Ok(v) = data.as_slice::<f32>() {
                    self.0 += v.iter().map(|x| f64::from(x.abs())).sum::<f64>();
                }
            }
        }
    }
    let mut s = Sum(0.0);
    model.visit(&mut s);
    s.0
}

/// Replaces the values of the parameters named in `values` (burn path → shape and f32 data), keeping ids and
/// gradient settings. Returns the model and the paths that were not found or had another shape.
pub fn load_by_path<M: Module>(model: M, values: &F32Tensors) -> (M, Vec<String>) {
    struct Load<'a> {
        path: Vec<String>,
        values: &'a F32Tensors,
        seen: Vec<String>,
        bad: Vec<String>,
    }
    impl ModuleMapper for Load<'_> {
        fn enter_module(&mut self, name: &str, _: &str) {
            self.path.push(name.to_string());
        }
        fn exit_module(&mut self, _: &str, _: &str) {
            self.path.pop();
        }
        fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
            let path = self.path.join(".");
            let Some((shape, v)) = self.values.get(&path) else {
                return param;
            };
            self.seen.push(path.clone());
            let have = param.lazy_shape();
            if shape.as_slice() != have.as_slice() {
                self.bad.push(format!("{path}: shape {shape:?}, the model has {:?}", have.as_slice()));
                return param;
            }
            let require_grad = param.is_require_grad();
            param.map(|t| {
                let device = t.device();
                let t = Tensor::<D>::from_data(TensorData::new(v.clone(), shape.clone()), &device);
                if require_grad { t.require_grad() } else { t }
            })
        }
    }
    let mut l = Load {
        path: Vec::new(),
        values,
        seen: Vec::new(),
        bad: Vec::new(),
    };
    let model = model.map(&mut l);
    let mut bad = l.bad;
    for k in values.keys() {
        if !l.seen.contains(k) {
            bad.push(format!("{k}: no such parameter"));
        }
    }
    (model, bad)
}
