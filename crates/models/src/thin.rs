//! Thin matrix products on the CPU backend: the few-row `x · W` of decoding, split across cores.
//!
//! Decoding one token multiplies a handful of rows by every weight matrix, so the work is streaming ≈ 540 MB of
//! f32 weights (SmolLM2-135M) from memory, and burn's `flex` backend runs such products on one thread (its `gemm`
//! call only goes parallel above ≈ 7 M multiply-adds, and `gemm`'s matrix-vector path does not split even then):
//! one core's memory bandwidth is the limit. Splitting a product across cores pays only if
//! - the other cores are already awake: handing products to rayon's pool made decoding ≈ 40 % *slower* on this
//!   project's machine (its workers sleep between the ≈ 200 products of a token, and waking an idle vCPU is slow).
//!   [`HotWorkers`] keeps helper threads spinning for the duration of a decode loop instead, as OpenMP's workers
//!   spin under PyTorch;
//! - each thread streams a contiguous block of the stored matrix: splitting the *columns* of a row-major weight
//!   (two threads reading interleaved half-rows) was slower than one thread, splitting its *rows* and summing the
//!   partial products is fast ([`matmul_rows`]); the tied LM head is stored `[V, H]`, so there the output columns
//!   are the contiguous blocks ([`matmul_cols`]).
//!
//! Measured on the 2-core machine (SmolLM2, batch 1, other processes paused): decoder layers 32 → 23 ms per
//! token, LM head 11.7 → 6 ms, greedy decode 22 → 31.5 tokens/s with the same tokens (docs/benchmarks.md).
//! Without an active [`HotWorkers`] on the calling thread, on autodiff tensors, on other backends and on wide
//! inputs (prefill, training) every product is the plain `matmul` — for [`linear`] on the `[B·T, d_in]` rows.

use std::cell::RefCell;
use std::sync::mpsc::{Receiver, Sender, TryRecvError, channel};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use burn::nn::Linear;
use burn::tensor::{Device, Tensor};

/// At most this many rows count as thin (decode batches); prefill and training take the plain product.
const MAX_THIN_ROWS: usize = 16;
/// Below this many weight elements the hand-off costs more than it saves (a 576×576 product gains nothing).
const MIN_WEIGHT_ELEMS: usize = 1 << 19;
/// Column blocks start at multiples of this, so every block keeps whole SIMD lanes.
const ALIGN: usize = 64;
/// A helper that got no work for this long stops spinning and blocks until the next job.
const SPIN: Duration = Duration::from_millis(20);
/// Upper bound on helper threads.
const MAX_HELPERS: usize = 7;

type Job = Box<dyn FnOnce() -> Tensor<2> + Send>;

struct Helper {
    jobs: Sender<Job>,
    results: Receiver<Tensor<2>>,
    thread: Option<JoinHandle<()>>,
}

thread_local! {
    static HELPERS: RefCell<Vec<Helper>> = const { RefCell::new(Vec::new()) };
}

/// Spinning helper threads for the thin products issued by the current thread, while this guard lives.
///
/// Start it around a decode loop on the CPU backend ([`crate::generate`] does); dropping it stops the threads.
/// Nested or repeated starts on the same thread are no-ops.
pub struct HotWorkers {
    active: bool,
}

impl HotWorkers {
    /// Starts `available_parallelism − 1` helpers (at most 7) if `device` is the plain (non-autodiff) CPU
    /// device, the machine has more than one core, and none are running on this thread yet.
    pub fn start(device: &Device) -> Self {
        let helpers = std::thread::available_parallelism().map_or(1, |n| n.get()).saturating_sub(1).min(MAX_HELPERS);
        if helpers == 0 || !is_plain_cpu(device) {
            return Self { active: false };
        }
        let active = HELPERS.with(|h| {
            let mut h = h.borrow_mut();
            if !h.is_empty() {
                return false;
            }
            for i in 0..helpers {
                let (jobs, job_rx) = channel::<Job>();
                let (result_tx, results) = channel();
                let thread = std::thread::Builder::new()
                    .name(format!("temper-thin-{i}"))
                    .spawn(move || helper_loop(&job_rx, &result_tx))
                    .ok();
                if thread.is_none() {
                    break;
                }
                h.push(Helper { jobs, results, thread });
            }
            !h.is_empty()
        });
        Self { active }
    }
}

impl Drop for HotWorkers {
    fn drop(&mut self) {
        if !self.active {
            return;
        }
        let helpers = HELPERS.with(|h| std::mem::take(&mut *h.borrow_mut()));
        for mut helper in helpers {
            drop(helper.jobs); // disconnects: the loop ends
            if let Some(t) = helper.thread.take() {
                let _ = t.join();
            }
        }
    }
}

fn helper_loop(jobs: &Receiver<Job>, results: &Sender<Tensor<2>>) {
    let mut idle_since = Instant::now();
    loop {
        let job = match jobs.try_recv() {
            Ok(job) => job,
            Err(TryRecvError::Disconnected) => return,
            Err(TryRecvError::Empty) if idle_since.elapsed() < SPIN => {
                // Give the core to any other runnable thread (rayon's workers, which burn wakes for the sampler's
                // vocabulary-wide reductions) instead of holding it until the scheduler preempts the spin.
                std::thread::yield_now();
                continue;
            }
            Err(TryRecvError::Empty) => match jobs.recv() {
                Ok(job) => job,
                Err(_) => return,
            },
        };
        if results.send(job()).is_err() {
            return;
        }
        idle_since = Instant::now();
    }
}

/// Whether `device` is burn's plain (non-autodiff) CPU device — always false in a build without the `flex` backend.
fn is_plain_cpu(device: &Device) -> bool {
    #[cfg(feature = "flex")]
    {
        !device.is_autodiff() && *device == Device::flex()
    }
    #[cfg(not(feature = "flex"))]
    {
        let _ = device;
        false
    }
}

/// Number of column blocks for `x · W` with `rows` rows and a `k × n` weight (1 = plain product).
fn blocks(device: &Device, rows: usize, k: usize, n: usize) -> usize {
    if rows > MAX_THIN_ROWS || k * n < MIN_WEIGHT_ELEMS || !is_plain_cpu(device) {
        return 1;
    }
    let helpers = HELPERS.with(|h| h.borrow().len());
    (helpers + 1).min(n / ALIGN).max(1)
}

/// Computes `x_i · w_i` for every pair: pairs 1.. on the helpers, pair 0 on this thread; results in order.
fn fan_out(pairs: Vec<(Tensor<2>, Tensor<2>)>) -> Vec<Tensor<2>> {
    HELPERS.with(|h| {
        let h = h.borrow();
        let mut pairs = pairs.into_iter();
        let Some((x0, w0)) = pairs.next() else {
            return Vec::new();
        };
        let mut pending = Vec::new();
        for (i, (x, w)) in pairs.enumerate() {
            // More blocks than helpers, or a helper that is gone: this thread does the block itself.
            let (xc, wc) = (x.clone(), w.clone());
            let sent = h.get(i).filter(|helper| helper.jobs.send(Box::new(move || xc.matmul(wc))).is_ok());
            pending.push((sent, x, w));
        }
        let mut outs = vec![x0.matmul(w0)];
        for (sent, x, w) in pending {
            let y = sent.and_then(|helper| loop {
                match helper.results.try_recv() {
                    Ok(y) => break Some(y),
                    Err(TryRecvError::Empty) => {}
                    Err(TryRecvError::Disconnected) => break None,
                }
            });
            outs.push(y.unwrap_or_else(|| x.matmul(w)));
        }
        outs
    })
}

/// Splits `0..len` into `parts` ranges starting at multiples of [`ALIGN`].
fn ranges(len: usize, parts: usize) -> Vec<std::ops::Range<usize>> {
    let block = len.div_ceil(parts).div_ceil(ALIGN) * ALIGN;
    (0..len).step_by(block).map(|s| s..(s + block).min(len)).collect()
}

/// `x · w` for `x: [M, K]` and a column-major `w: [K, N]` (the transposed view of a `[N, K]` weight, like the
/// tied LM head): each thread takes a block of output columns = a contiguous block of the stored rows. Exact:
/// every output is the same dot product as in the plain product.
pub(crate) fn matmul_cols(x: Tensor<2>, w: Tensor<2>) -> Tensor<2> {
    let [m, k] = x.dims();
    let n = w.dims()[1];
    let parts = blocks(&x.device(), m, k, n);
    if parts <= 1 {
        return x.matmul(w);
    }
    let pairs = ranges(n, parts).into_iter().map(|r| (x.clone(), w.clone().slice([0..k, r]))).collect();
    Tensor::cat(fan_out(pairs), 1)
}

/// `x · w` for `x: [M, K]` and a row-major `w: [K, N]` (burn's `Linear` weight): each thread takes a contiguous
/// block of `w`'s rows and the partial products are summed. (Splitting the columns of a row-major matrix instead
/// was *slower* than one thread: two threads reading interleaved half-rows defeat the prefetcher.) The sum of
/// two partial dot products differs from one dot product in the last bits (≈ 1e-7 relative; tested).
pub(crate) fn matmul_rows(x: Tensor<2>, w: Tensor<2>) -> Tensor<2> {
    let [m, k] = x.dims();
    let n = w.dims()[1];
    let parts = blocks(&x.device(), m, k, n).min(k / ALIGN);
    if parts <= 1 {
        return x.matmul(w);
    }
    let pairs = ranges(k, parts)
        .into_iter()
        .map(|r| (x.clone().slice([0..m, r.clone()]), w.clone().slice([r, 0..n])))
        .collect();
    fan_out(pairs).into_iter().reduce(|a, b| a + b).unwrap_or_else(|| x.matmul(w))
}

/// `Linear::forward` as one `[B·T, d_in] · [d_in, d_out]` product (through [`matmul_rows`]): `[B, T, d_in] ->
/// [B, T, d_out]`.
///
/// Always merged, also where burn's `Linear` would not: when `T` fills its row tiles it keeps a batched product
/// with the weight broadcast over `B`, and under autodiff the weight's gradient then comes out as `B` products
/// of the weight's size (inner dimension `T`) summed over the batch afterwards — for SmolLM2 at B = 4, ≈ 2 GB
/// written and read again per training step, where the merged product writes the gradient once.
pub(crate) fn linear(layer: &Linear, x: Tensor<3>) -> Tensor<3> {
    let [b, t, d_in] = x.dims();
    let y = matmul_rows(x.reshape([b * t, d_in]), layer.weight.val());
    let y = match &layer.bias {
        Some(bias) => y + bias.val().unsqueeze_dim(0),
        None => y,
    };
    let d_out = y.dims()[1];
    y.reshape([b, t, d_out])
}

#[cfg(test)]
mod tests {
    use burn::nn::LinearConfig;
    use burn::tensor::{Distribution, Tensor};

    use super::*;

    fn max_diff(a: Tensor<2>, b: Tensor<2>) -> f32 {
        (a - b).abs().max().into_scalar()
    }

    fn cores() -> usize {
        std::thread::available_parallelism().map_or(1, |n| n.get())
    }

    #[test]
    fn split_products_equal_the_plain_product() {
        let device = Device::flex();
        let _hot = HotWorkers::start(&device);
        for (m, k, n) in [(1, 576, 1536), (3, 512, 1088), (8, 1536, 576), (1, 576, 49_152 / 8)] {
            if cores() > 1 {
                assert!(blocks(&device, m, k, n) > 1, "{m}x{k}x{n} is split");
            }
            let x = Tensor::<2>::random([m, k], Distribution::Normal(0.0, 1.0), &device);
            let w = Tensor::<2>::random([k, n], Distribution::Normal(0.0, 1.0), &device);
            // Row-major weight, split over rows: partial sums, so equal up to the summation order. Any order of a
            // k-term f32 dot product is within k·ε·Σ|x_i·w_i| of the exact one, so two orders are within twice
            // that (a dropped or doubled partial would be off by the size of the product itself).
            let plain = x.clone().matmul(w.clone());
            let magnitude: f32 = x.clone().abs().matmul(w.clone().abs()).max().into_scalar();
            let bound = 2.0 * k as f32 * f32::EPSILON * magnitude;
            let diff = max_diff(matmul_rows(x.clone(), w.clone()), plain);
            assert!(diff <= bound, "{m}x{k}x{n}: {diff} exceeds the rounding bound {bound}");
            // Column-major weight (a transposed view, as the tied LM head), split over columns: bit-identical.
            let stored = Tensor::<2>::from_data(w.transpose().into_data(), &device); // [N, K]
            let plain_t = x.clone().matmul(stored.clone().transpose());
            assert_eq!(max_diff(matmul_cols(x, stored.transpose()), plain_t), 0.0, "{m}x{k}x{n} transposed");
        }
    }

    #[test]
    fn linear_with_bias_equals_burns_linear() {
        let device = Device::flex();
        let _hot = HotWorkers::start(&device);
        let layer = LinearConfig::new(512, 1088).with_bias(true).init(&device);
        let x = Tensor::<3>::random([2, 1, 512], Distribution::Normal(0.0, 1.0), &device);
        let got = linear(&layer, x.clone()).reshape([2, 1088]);
        let want = layer.forward(x).reshape([2, 1088]);
        assert!(max_diff(got, want) < 1e-5);
    }

    #[test]
    fn only_thin_cpu_products_inside_a_hot_scope_are_split() {
        let device = Device::flex();
        assert_eq!(blocks(&device, 1, 576, 1536), 1, "no helpers outside a hot scope");
        let hot = HotWorkers::start(&device);
        let nested = HotWorkers::start(&device);
        assert!(!nested.active, "a second start on the same thread is a no-op");
        drop(nested);
        assert_eq!(blocks(&device, 1, 576, 1536), cores().min(MAX_HELPERS + 1).min(1536 / ALIGN));
        assert_eq!(blocks(&device.clone().autodiff(), 1, 576, 1536), 1);
        assert_eq!(blocks(&device, 128, 576, 1536), 1);
        assert_eq!(blocks(&device, 1, 576, 576), 1);
        assert!(!HotWorkers::start(&device.clone().autodiff()).active);
        drop(hot);
        assert_eq!(blocks(&device, 1, 576, 1536), 1, "helpers stop with the guard");
    }
}
