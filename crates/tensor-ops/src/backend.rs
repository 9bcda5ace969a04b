//! Checks of the CPU backend through burn's tensor API, for the changes Temper patches into burn flex
//! (`vendor/burn-flex/TEMPER.md`): results on every memory layout against f64 references.

use burn::tensor::{Device, Tensor, TensorData};

use crate::test_util::{t2, values};

/// The CPU backend's `exp`, `sigmoid` and `softmax` (Temper's patched burn flex: a polynomial `exp` in place of
/// libm's) against f64, on a tensor owned once, a shared one and a transposed view, long enough to run in
/// parallel chunks: within 3e-7 relative where the result is a normal float, 1e-44 absolute below that, `inf`
/// above `f32::MAX`.
#[test]
fn backend_exp_sigmoid_and_softmax_are_accurate_on_every_layout() {
    let d = Device::default();
    let (rows, cols) = (1000usize, 128usize);
    let n = rows * cols;
    let mut xs: Vec<f64> = (0..n).map(|i| -105.0 + 194.0 * ((i * 7919) % n) as f64 / n as f64).collect();
    xs[5] = f64::NEG_INFINITY;
    let f32s: Vec<f64> = xs.iter().map(|&x| x as f32 as f64).collect();
    let check = |got: &[f64], want: &dyn Fn(f64) -> f64, what: &str| {
        assert_eq!(got.len(), f32s.len());
        for (i, (&g, &x)) in got.iter().zip(&f32s).enumerate() {
            let w = want(x);
            let ok = if w > f32::MAX as f64 {
                g == f64::INFINITY
            } else if w.abs() >= f32::MIN_POSITIVE as f64 {
                ((g - w) / w).abs() <= 3e-7
            } else {
                (g - w).abs() <= 1e-44
            };
            assert!(ok, "{what}: element {i}, x = {x}: got {g}, want {w}");
        }
    };
    let x = t2(&xs, [rows, cols], &d);
    let sigmoid = |x: f64| 1.0 / (1.0 + (-x).exp());
    // Shared: `x` is still alive, so the backend writes a new buffer.
    check(&values(x.clone().exp()), &f64::exp, "exp of a shared tensor");
    check(&values(burn::tensor::activation::sigmoid(x.clone())), &sigmoid, "sigmoid of a shared tensor");
    // Transposed view: read back in the original order.
    let back = |t: Tensor<2>| values(t.swap_dims(0, 1));
    check(&back(x.clone().swap_dims(0, 1).exp()), &f64::exp, "exp of a transposed view");
    // Owned once: updated in place.
    check(&values(x.clone().detach().add_scalar(0.0).exp()), &f64::exp, "exp of a unique tensor");
    // Softmax over rows of 128 (attention's shape), against f64.
    let got = values(burn::tensor::activation::softmax(x, 1));
    for (r, row) in f32s.chunks(cols).enumerate() {
        let m = row.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
        let z: f64 = row.iter().map(|v| (v - m).exp()).sum();
        for (c, v) in row.iter().enumerate() {
            let (g, w) = (got[r * cols + c], (v - m).exp() / z);
            assert!((g - w).abs() <= 1e-5 * w + 1e-30, "softmax row {r} col {c}: got {g}, want {w}");
        }
    }
}

/// `[.., m, k] · [.., k, n]` in f64 from row-major values.
fn f64_matmul(a: &[f64], b: &[f64], batch: usize, (m, k, n): (usize, usize, usize)) -> Vec<f64> {
    let mut out = vec![0.0; batch * m * n];
    for z in 0..batch {
        for i in 0..m {
            for j in 0..n {
                out[(z * m + i) * n + j] = (0..k).map(|p| a[(z * m + i) * k + p] * b[(z * k + p) * n + j]).sum();
            }
        }
    }
    out
}

/// Drops a NaN-filled tensor of `len` elements first, so that the next allocation of that size most likely gets
/// its memory back: an output that the backend read before writing would then come out NaN.
fn poison_allocator(len: usize, d: &Device) {
    let nan: Tensor<1> = Tensor::from_data(TensorData::new(vec![f32::NAN; len], [len]), d);
    drop(nan.into_data());
}

/// Matmul outputs are written by `gemm` without being zeroed first (the patched burn flex): for every kernel path
/// — single rows and columns (gemv), tiny products, an empty inner dimension, one matrix large enough to split
/// over threads, batches run in parallel and broadcast batches, transposed operands — each element equals the
/// f64 product within 1e-5 relative to the row's scale, also right after NaN garbage was freed.
#[test]
fn backend_matmul_writes_every_output_element_on_every_path() {
    let d = Device::default();
    let shapes: [(usize, usize, usize, usize); 9] = [
        (1, 1, 300, 700),  // one row: gemv
        (1, 300, 200, 1),  // one column
        (1, 7, 5, 9),      // tiny (gemm's small-product kernel)
        (1, 6, 0, 5),      // empty inner dimension: all zeros
        (1, 257, 300, 251), // above the parallel threshold, ragged tiles
        (36, 64, 32, 64),  // attention-like batch, batch-parallel
        (2, 200, 192, 200), // batch of large matrices
        (3, 4, 6, 5),      // small batch, single-threaded
        (1, 0, 4, 3),      // empty output
    ];
    for (batch, m, k, n) in shapes {
        let a: Vec<f64> = (0..batch * m * k).map(|i| ((i * 7919) % 1009) as f64 / 1009.0 - 0.5).collect();
        let b: Vec<f64> = (0..batch * k * n).map(|i| ((i * 104_729) % 997) as f64 / 997.0 - 0.5).collect();
        let want = f64_matmul(&a, &b, batch, (m, k, n));
        let ta = Tensor::<3>::from_data(TensorData::new(a.iter().map(|&x| x as f32).collect(), [batch, m, k]), &d);
        let tb = Tensor::<3>::from_data(TensorData::new(b.iter().map(|&x| x as f32).collect(), [batch, k, n]), &d);
        let check = |got: Vec<f64>, what: &str| {
            assert_eq!(got.len(), want.len(), "{what} [{batch}, {m}, {k}] x [{batch}, {k}, {n}]");
            for (i, (g, w)) in got.iter().zip(&want).enumerate() {
                assert!(
                    (g - w).abs() <= 1e-5 * (1.0 + k as f64),
                    "{what} [{batch}, {m}, {k}] x [{batch}, {k}, {n}], element {i}: got {g}, want {w}"
                );
            }
        };
        poison_allocator(batch * m * n, &d);
        check(values(ta.clone().matmul(tb.clone())), "batched");
        if batch == 1 {
            let (a2, b2) = (ta.clone().squeeze_dim::<2>(0), tb.clone().squeeze_dim::<2>(0));
            poison_allocator(m * n, &d);
            check(values(a2.clone().matmul(b2.clone())), "2-d");
            // Transposed operands: (bᵀ aᵀ)ᵀ = a b, read back in a's row order.
            poison_allocator(m * n, &d);
            check(values(b2.transpose().matmul(a2.transpose()).transpose()), "2-d transposed");
        }
        // The same right-hand matrix broadcast over a batch of four left-hand ones.
        if batch == 1 && m * k * n > 0 {
            let a4: Vec<f64> = (0..4).flat_map(|_| a.iter().copied()).collect();
            let want4: Vec<f64> = (0..4).flat_map(|_| want.iter().copied()).collect();
            let ta4 = Tensor::<3>::from_data(TensorData::new(a4.iter().map(|&x| x as f32).collect(), [4, m, k]), &d);
            poison_allocator(4 * m * n, &d);
            let got = values(ta4.matmul(tb.clone()));
            for (i, (g, w)) in got.iter().zip(&want4).enumerate() {
                assert!((g - w).abs() <= 1e-5 * (1.0 + k as f64), "broadcast [{m}, {k}, {n}] element {i}: {g} vs {w}");
            }
        }
    }
}
