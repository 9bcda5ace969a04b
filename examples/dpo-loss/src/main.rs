//! `temper-rl-objectives` alone: TRL's DPO sigmoid loss `mean_pairs(-logσ(β·δ))`, its metrics and its gradient on
//! hand-made per-token log-prob tensors — no model, no tokenizer. `δ = (π_c − ref_c) − (π_r − ref_r)` with each
//! term the masked sum of a completion's token log-probs. Run: `cargo run -p example-dpo-loss`.

use burn::tensor::{Device, Tensor, TensorData};
use temper_rl_objectives::{DpoConfig, DpoInputs, Metrics, ObjectiveError, dpo_loss};

/// Pairs in the batch and tokens per completion.
const PAIRS: usize = 2;
const TOKENS: usize = 3;
/// DPO's β (TRL's default).
const BETA: f64 = 0.1;

/// Policy log-probs of each completion's tokens: rows 0..2 the chosen completions, rows 2..4 the rejected ones
/// (TRL's concatenated batch).
const POLICY: [[f32; TOKENS]; 2 * PAIRS] =
    [[-0.5, -1.0, -0.25], [-2.0, -0.75, -9.0], [-1.5, -2.0, -0.5], [-0.5, -1.25, -3.0]];
/// The frozen reference model's log-probs of the same tokens.
const REFERENCE: [[f32; TOKENS]; 2 * PAIRS] =
    [[-1.0, -1.0, -0.5], [-1.5, -1.0, -4.0], [-1.0, -1.5, -0.5], [-1.0, -1.0, -2.0]];
/// 1 on completion tokens; the last token of pair 2's completions is padding.
const MASK: [[f32; TOKENS]; 2 * PAIRS] = [[1.0, 1.0, 1.0], [1.0, 1.0, 0.0], [1.0, 1.0, 1.0], [1.0, 1.0, 0.0]];

/// The loss, TRL's metrics, and `∂loss/∂policy` per token (`[2B, T]`, row-major).
#[derive(Debug)]
struct Output {
    loss: f64,
    metrics: Metrics,
    policy_grad: Vec<f32>,
}

fn tensor(rows: &[[f32; TOKENS]; 2 * PAIRS], device: &Device) -> Tensor<2> {
    let flat: Vec<f32> = rows.iter().flatten().copied().collect();
    Tensor::from_data(TensorData::new(flat, [2 * PAIRS, TOKENS]), device)
}

/// Computes the DPO sigmoid loss of [`POLICY`] against [`REFERENCE`] and backpropagates it to the policy.
fn run() -> Result<Output, ObjectiveError> {
    let device = Device::flex().autodiff();
    let policy = tensor(&POLICY, &device).require_grad();
    let inputs = DpoInputs::new(policy.clone(), tensor(&REFERENCE, &device), tensor(&MASK, &device));
    let config = DpoConfig { beta: BETA, ..DpoConfig::default() };
    let out = dpo_loss(&config, inputs)?;
    let loss = f64::from(out.loss.clone().into_scalar::<f32>());
    let grads = out.loss.backward();
    let policy_grad = policy
        .grad(&grads)
        .map(|g| g.into_data().try_to_vec::<f32>().unwrap_or_default())
        .unwrap_or_default();
    Ok(Output { loss, metrics: out.metrics, policy_grad })
}

fn main() -> Result<(), ObjectiveError> {
    let out = run()?;
    println!("DPO sigmoid loss (β = {BETA}, {PAIRS} pairs): {:.6}", out.loss);
    for (name, value) in &out.metrics {
        println!("  {name:<20} {value:.6}");
    }
    println!("∂loss/∂policy log-prob, one row per completion:");
    for row in out.policy_grad.chunks(TOKENS) {
        println!("  {row:?}");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Masked sum of row `i`'s log-probs, in f64.
    fn seq(rows: &[[f32; TOKENS]; 2 * PAIRS], i: usize) -> f64 {
        rows[i].iter().zip(&MASK[i]).map(|(&x, &m)| f64::from(x) * f64::from(m)).sum()
    }

    /// Per pair: β·(π_c − ref_c) and β·(π_r − ref_r), computed by hand.
    fn rewards() -> Vec<(f64, f64)> {
        (0..PAIRS)
            .map(|p| {
                let c = BETA * (seq(&POLICY, p) - seq(&REFERENCE, p));
                let r = BETA * (seq(&POLICY, PAIRS + p) - seq(&REFERENCE, PAIRS + p));
                (c, r)
            })
            .collect()
    }

    fn sigmoid(x: f64) -> f64 {
        1.0 / (1.0 + (-x).exp())
    }

    fn close(got: f64, want: f64, what: &str) {
        assert!((got - want).abs() < 1e-5, "{what}: got {got}, want {want}");
    }

    #[test]
    fn loss_and_metrics_equal_the_formula() {
        let out = run().expect("dpo loss");
        let rw = rewards();
        // Pair 1: δ = (−1.75 + 2.5) − (−4.0 + 3.0) = 1.75; pair 2: δ = (−2.75 + 2.5) − (−1.75 + 2.0) = −0.5.
        let margins: Vec<f64> = rw.iter().map(|(c, r)| c - r).collect();
        close(margins[0], 0.175, "pair 1 margin");
        close(margins[1], -0.05, "pair 2 margin");
        let want_loss = margins.iter().map(|m| -sigmoid(*m).ln()).sum::<f64>() / PAIRS as f64;
        close(out.loss, want_loss, "loss");
        let mean = |v: Vec<f64>| v.iter().sum::<f64>() / v.len() as f64;
        let metric = |name: &str| *out.metrics.get(name).unwrap_or_else(|| panic!("metric {name} missing"));
        close(metric("rewards/chosen"), mean(rw.iter().map(|p| p.0).collect()), "rewards/chosen");
        close(metric("rewards/rejected"), mean(rw.iter().map(|p| p.1).collect()), "rewards/rejected");
        close(metric("rewards/margins"), mean(margins.clone()), "rewards/margins");
        // One pair of two ranks chosen above rejected.
        close(metric("rewards/accuracies"), 0.5, "rewards/accuracies");
        close(metric("logps/chosen"), mean((0..PAIRS).map(|p| seq(&POLICY, p)).collect()), "logps/chosen");
        close(metric("logps/rejected"), mean((PAIRS..2 * PAIRS).map(|i| seq(&POLICY, i)).collect()), "logps/rejected");
    }

    #[test]
    fn gradient_equals_the_formula() {
        // ∂/∂π_c,t = −β·σ(−β·δ)/B on the chosen row's unmasked tokens, the opposite on the rejected row, 0 on padding.
        let out = run().expect("dpo loss");
        assert_eq!(out.policy_grad.len(), 2 * PAIRS * TOKENS);
        for (p, (c, r)) in rewards().into_iter().enumerate() {
            let g = BETA * sigmoid(-(c - r)) / PAIRS as f64;
            let chosen = &out.policy_grad[p * TOKENS..(p + 1) * TOKENS];
            let rejected = &out.policy_grad[(PAIRS + p) * TOKENS..(PAIRS + p + 1) * TOKENS];
            for (got, m) in chosen.iter().zip(&MASK[p]) {
                close(f64::from(*got), -g * f64::from(*m), "chosen gradient");
            }
            for (got, m) in rejected.iter().zip(&MASK[PAIRS + p]) {
                close(f64::from(*got), g * f64::from(*m), "rejected gradient");
            }
        }
    }
}
