//! AdamW as one pass over memory on the CPU backend.
//!
//! burn's `AdamW` builds each parameter's update from ≈ 12 whole-tensor operations (moments, bias corrections,
//! square root, division, decay), each a pass over memory that allocates its output, and runs them on one thread:
//! for SmolLM2's 134.5 M parameters that was ≈ 10 % of an SFT step's wall time (`perf`, 4 × 128 tokens on the
//! 2-core machine). [`FusedAdamW`] does the same arithmetic, in the same order and in `f32`, element by element
//! in one loop split across cores, so its updates are bit-identical to burn's (tested) and its state is burn's
//! [`AdamWState`] (checkpoints written by either load in the other).
//!
//! On other backends (WGPU, CUDA), for other float types and for AMSGrad it hands the step to burn's `AdamW`,
//! which keeps the tensors on their device.

use burn::optim::{AdamW, AdamWConfig, AdamWState, AdaptiveMomentumState, LearningRate, ModuleOptimizer, Optimizer};
use burn::tensor::{DType, Device, Tensor, TensorData};
use rayon::prelude::*;

/// Elements per parallel work item (large enough that the hand-off is noise, small enough to balance 2–8 cores).
const CHUNK: usize = 1 << 16;

/// AdamW with burn's semantics (decoupled weight decay `p ← p·(1 − lr·λ) − lr·m̂/(√v̂ + ε)`), fused on the CPU.
#[derive(Clone)]
pub struct FusedAdamW {
    beta_1: f32,
    beta_2: f32,
    epsilon: f32,
    weight_decay: f32,
    /// burn's implementation, for the cases the fused loop does not cover.
    fallback: AdamW,
}

impl FusedAdamW {
    /// burn's `AdamWConfig` with these four values and its other fields at their defaults (no AMSGrad, no cautious
    /// weight decay); a restored state that carries an AMSGrad maximum is stepped by burn's `AdamW`.
    pub fn new(beta_1: f32, beta_2: f32, epsilon: f32, weight_decay: f32) -> Self {
        let fallback = AdamWConfig::new()
            .with_beta_1(beta_1)
            .with_beta_2(beta_2)
            .with_epsilon(epsilon)
            .with_weight_decay(weight_decay)
            .build();
        Self {
            beta_1,
            beta_2,
            epsilon,
            weight_decay,
            fallback,
        }
    }

    /// Wrapped to optimize a whole module.
    pub fn init(self) -> ModuleOptimizer {
        ModuleOptimizer::from(self)
    }

    /// Whether `t` lives where the fused loop can reach it: `f32` on burn's CPU (`flex`) backend.
    fn fusable<const D: usize>(t: &Tensor<D>) -> bool {
        t.dtype() == DType::F32 && t.device() == Device::flex()
    }
}

/// One step's constants, in `f32` as burn's tensor operations apply them.
#[derive(Clone, Copy)]
struct Step {
    b1: f32,
    b2: f32,
    f1: f32,
    f2: f32,
    correction_1: f32,
    correction_2: f32,
    eps: f32,
    keep: f32,
    lr: f32,
}

impl Step {
    /// The update of one chunk: reads the gradient from `g_out` and leaves the new parameter there. Written as a
    /// branch-free indexed loop over equal-length slices so that it vectorizes (each operation is still the
    /// separately rounded `f32` operation burn performs, in its order).
    #[inline(always)]
    fn update<const FIRST: bool>(&self, p: &[f32], m: &mut [f32], v: &mut [f32], g_out: &mut [f32]) {
        let Self { b1, b2, f1, f2, correction_1, correction_2, eps, keep, lr } = *self;
        let n = g_out.len();
        let (p, m, v) = (&p[..n], &mut m[..n], &mut v[..n]);
        for i in 0..n {
            let gi = g_out[i];
            // burn: first step `m = g·(1−β₁)`, later `m = m·β₁ + g·(1−β₁)` (likewise `v` with `g²`).
            let (m1, m2) = if FIRST { (gi * f1, gi * gi * f2) } else { (m[i] * b1 + gi * f1, v[i] * b2 + gi * gi * f2) };
            m[i] = m1;
            v[i] = m2;
            let delta = (m1 / correction_1) / ((m2 / correction_2).sqrt() + eps);
            g_out[i] = p[i] * keep - delta * lr;
        }
    }
}

fn slice_mut(data: &mut TensorData) -> &mut [f32] {
    data.as_mut_slice::<f32>().expect("an f32 tensor's data is f32")
}

impl Optimizer for FusedAdamW {
    type State<const D: usize> = AdamWState<D>;

    fn step<const D: usize>(
        &self,
        lr: LearningRate,
        tensor: Tensor<D>,
        grad: Tensor<D>,
        state: Option<Self::State<D>>,
    ) -> (Tensor<D>, Option<Self::State<D>>) {
        let usable = Self::fusable(&tensor)
            && Self::fusable(&grad)
            && state.as_ref().is_none_or(|s| {
                s.momentum.max_moment_2.is_none() && Self::fusable(&s.momentum.moment_1) && Self::fusable(&s.momentum.moment_2)
            });
        if !usable {
            return self.fallback.step(lr, tensor, grad, state);
        }
        let device = tensor.device();
        let shape = tensor.shape();
        // `into_data` copies only when the tensor's storage is shared. The new parameter is written over the
        // gradient: the gradient's buffer is the step's own (the parameter's is usually still shared with the
        // caller's module, so writing there would mean a copy).
        let param = tensor.into_data();
        let p = param.as_slice::<f32>().expect("an f32 tensor's data is f32");
        let mut out = grad.into_data();
        let (time, mut m, mut v, fresh) = match state {
            Some(s) => (s.momentum.time + 1, s.momentum.moment_1.into_data(), s.momentum.moment_2.into_data(), false),
            None => {
                let zeros = || TensorData::new(vec![0f32; p.len()], shape.clone());
                (1, zeros(), zeros(), true)
            }
        };
        // The scalars exactly as burn's `AdamW::step` forms them (`f64` products rounded to the `f32` elements).
        let decay_rate = lr * f64::from(self.weight_decay);
        let k = Step {
            b1: self.beta_1,
            b2: self.beta_2,
            f1: 1.0 - self.beta_1,
            f2: 1.0 - self.beta_2,
            correction_1: 1f32 - self.beta_1.powi(time as i32),
            correction_2: 1f32 - self.beta_2.powi(time as i32),
            eps: self.epsilon,
            // burn skips the decay when `lr·λ = 0`; multiplying by exactly 1.0 changes no value either.
            keep: if decay_rate == 0.0 { 1.0 } else { (1.0 - decay_rate) as f32 },
            lr: lr as f32,
        };
        let chunks = p
            .par_chunks(CHUNK)
            .zip(slice_mut(&mut m).par_chunks_mut(CHUNK))
            .zip(slice_mut(&mut v).par_chunks_mut(CHUNK))
            .zip(slice_mut(&mut out).par_chunks_mut(CHUNK));
        if fresh {
            chunks.for_each(|(((p, m), v), g)| k.update::<true>(p, m, v, g));
        } else {
            chunks.for_each(|(((p, m), v), g)| k.update::<false>(p, m, v, g));
        }
        let state = AdamWState::new(AdaptiveMomentumState::new(
            time,
            Tensor::from_data(m, &device),
            Tensor::from_data(v, &device),
        ));
        (Tensor::from_data(out, &device), Some(state))
    }

    fn to_device<const D: usize>(state: Self::State<D>, device: &Device) -> Self::State<D> {
        <AdamW as Optimizer>::to_device(state, device)
    }
}

#[cfg(test)]
mod tests {
    use burn::nn::{Linear, LinearConfig};
    use burn::optim::GradientsParams;
    use burn::tensor::Distribution;

    use super::*;

    fn bits(t: Tensor<2>) -> Vec<u32> {
        t.into_data().try_to_vec::<f32>().expect("f32 data").into_iter().map(f32::to_bits).collect()
    }

    /// A linear layer large enough to span several parallel chunks, trained for a few steps by both optimizers
    /// on the same gradients: every weight bit-identical after each step, with and without weight decay, and the
    /// states interchangeable (a fused run resumes from burn's state and the other way round).
    #[test]
    fn fused_steps_equal_burns_adamw_bit_for_bit() {
        let device = Device::flex().autodiff();
        for weight_decay in [0.0, 0.01] {
            let layer: Linear = LinearConfig::new(384, 512).init(&device);
            let mut fused = FusedAdamW::new(0.9, 0.999, 1e-8, weight_decay).init();
            let mut burns = AdamWConfig::new()
                .with_beta_1(0.9)
                .with_beta_2(0.999)
                .with_epsilon(1e-8)
                .with_weight_decay(weight_decay)
                .init();
            assert!(FusedAdamW::fusable(&layer.weight.val().inner()), "the test exercises the fused loop");
            let (mut a, mut b) = (layer.clone(), layer);
            for step in 0..4 {
                let x = Tensor::<2>::random([8, 384], Distribution::Normal(0.0, 1.0), &device);
                let ga = GradientsParams::from_grads(a.forward(x.clone()).powi_scalar(2).sum().backward(), &a);
                let gb = GradientsParams::from_grads(b.forward(x).powi_scalar(2).sum().backward(), &b);
                let lr = 1e-3 * (step + 1) as f64;
                a = fused.step(lr, a, ga);
                b = burns.step(lr, b, gb);
                assert_eq!(bits(a.weight.val().inner()), bits(b.weight.val().inner()), "step {step}, λ {weight_decay}");
                let bias = |l: &Linear| l.bias.as_ref().map(|p| bits(p.val().inner().unsqueeze::<2>()));
                assert_eq!(bias(&a), bias(&b));
                if step == 1 {
                    // Swap the optimizers' states through their records: each continues from the other's.
                    let (ra, rb) = (fused.into_bytes().expect("fused record"), burns.into_bytes().expect("burn record"));
                    fused = fused.from_bytes(rb).expect("fused loads burn's record");
                    burns = burns.from_bytes(ra).expect("burn loads the fused record");
                }
            }
        }
    }

    #[test]
    fn non_f32_tensors_and_amsgrad_take_burns_path() {
        let device = Device::flex();
        let t = Tensor::<1>::ones([4], &device);
        assert!(FusedAdamW::fusable(&t));
        assert!(!FusedAdamW::fusable(&t.clone().cast(burn::tensor::FloatDType::F64)));
        // AMSGrad state goes to burn's AdamW, which keeps its max moment.
        let opt = FusedAdamW::new(0.9, 0.999, 1e-8, 0.0);
        let state = AdamWState::new(AdaptiveMomentumState {
            time: 1,
            moment_1: t.clone(),
            moment_2: t.clone(),
            max_moment_2: Some(t.clone()),
        });
        let (_, s) = opt.step(1e-3, t.clone(), t, Some(state));
        assert!(s.is_some_and(|s| s.momentum.max_moment_2.is_some()));
    }
}
