//! Parameter bookkeeping: stable parameter ids, named host copies of every weight, and global-norm gradient
//! clipping (what `torch.nn.utils.clip_grad_norm_` does, over all parameters at once).

use burn::module::{Module, ModuleMapper, ModuleVisitor, Param, ParamId};
use burn::optim::GradientsParams;
use burn::tensor::{Tensor, TensorData};

/// Gives every float parameter the id `hash(path)`, so that a model rebuilt from a checkpoint has the same ids
/// as the one that was saved and the optimizer state (keyed by id) lines up.
pub fn stable_param_ids<M: Module>(module: M) -> M {
    struct Ids {
        path: Vec<String>,
    }
    impl ModuleMapper for Ids {
        fn enter_module(&mut self, name: &str, _: &str) {
            self.path.push(name.to_string());
        }
        fn exit_module(&mut self, _: &str, _: &str) {
            self.path.pop();
        }
        fn map_float<const D: usize>(&mut self, mut param: Param<Tensor<D>>) -> Param<Tensor<D>> {
            param.id = ParamId::from(fnv1a(self.path.join(".").as_bytes()));
            param
        }
    }
    module.map(&mut Ids { path: Vec::new() })
}

fn fnv1a(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// Every float parameter as `(burn path, data)`, e.g. `layers.0.self_attn.q_proj.weight`.
pub fn named_tensors<M: Module>(module: &M) -> Vec<(String, TensorData)> {
    named_tensors_where(module, false)
}

/// [`named_tensors`], keeping only the parameters that require a gradient when `trainable_only`.
pub(crate) fn named_tensors_where<M: Module>(module: &M, trainable_only: bool) -> Vec<(String, TensorData)> {
    struct Collect {
        path: Vec<String>,
        out: Vec<(String, TensorData)>,
        trainable_only: bool,
    }
    impl ModuleVisitor for Collect {
        fn enter_module(&mut self, name: &str, _: &str) {
            self.path.push(name.to_string());
        }
        fn exit_module(&mut self, _: &str, _: &str) {
            self.path.pop();
        }
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            if !self.trainable_only || param.is_require_grad() {
                self.out.push((self.path.join("."), param.val().into_data()));
            }
        }
    }
    let mut c = Collect {
        path: Vec::new(),
        out: Vec::new(),
        trainable_only,
    };
    module.visit(&mut c);
    c.out
}

/// Global L2 norm of all gradients.
pub fn grad_norm<M: Module>(module: &M, grads: &GradientsParams) -> f64 {
    struct Norm<'a> {
        grads: &'a GradientsParams,
        sq: f64,
    }
    impl ModuleVisitor for Norm<'_> {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            if let Some(g) = self.grads.get::<D>(param.id) {
                let s: f32 = g.square().sum().into_scalar();
                self.sq += f64::from(s);
            }
        }
    }
    let mut n = Norm { grads, sq: 0.0 };
    module.visit(&mut n);
    n.sq.sqrt()
}

/// Scales every gradient by `factor` (in place in `grads`).
pub fn scale_grads<M: Module>(module: &M, grads: &mut GradientsParams, factor: f64) {
    struct Scale<'a> {
        grads: &'a mut GradientsParams,
        factor: f64,
    }
    impl ModuleVisitor for Scale<'_> {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            if let Some(g) = self.grads.remove::<D>(param.id) {
                self.grads.register(param.id, g.mul_scalar(self.factor));
            }
        }
    }
    module.visit(&mut Scale { grads, factor });
}

/// Adds `other` into `acc` parameter by parameter (gradient accumulation).
pub fn add_grads<M: Module>(module: &M, acc: &mut GradientsParams, mut other: GradientsParams) {
    struct Add<'a> {
        acc: &'a mut GradientsParams,
        other: &'a mut GradientsParams,
    }
    impl ModuleVisitor for Add<'_> {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            if let Some(g) = self.other.remove::<D>(param.id) {
                let sum = match self.acc.remove::<D>(param.id) {
                    Some(a) => a + g,
                    None => g,
                };
                self.acc.register(param.id, sum);
            }
        }
    }
    module.visit(&mut Add {
        acc,
        other: &mut other,
    });
}

/// Clips gradients to a global norm of at most `max_norm` (torch's `clip_grad_norm_`: factor
/// `max_norm / (norm + 1e-6)` when that is below 1). Returns the norm before clipping.
pub fn clip_grad_norm<M: Module>(module: &M, grads: &mut GradientsParams, max_norm: f64) -> f64 {
    let norm = grad_norm(module, grads);
    let coef = max_norm / (norm + 1e-6);
    if coef < 1.0 {
        scale_grads(module, grads, coef);
    }
    norm
}
