//! Test helpers: build tensors from `f64` slices, read them back, and f64 reference formulas.

use burn::tensor::{Device, Int, Tensor, TensorData};

pub(crate) fn t2(v: &[f64], shape: [usize; 2], d: &Device) -> Tensor<2> {
    let v: Vec<f32> = v.iter().map(|x| *x as f32).collect();
    Tensor::from_data(TensorData::new(v, shape), d)
}

pub(crate) fn t3(v: &[f64], shape: [usize; 3], d: &Device) -> Tensor<3> {
    let v: Vec<f32> = v.iter().map(|x| *x as f32).collect();
    Tensor::from_data(TensorData::new(v, shape), d)
}

pub(crate) fn t2i(v: &[i64], shape: [usize; 2], d: &Device) -> Tensor<2, Int> {
    Tensor::from_data(TensorData::new(v.to_vec(), shape), d)
}

pub(crate) fn values<const D: usize>(t: Tensor<D>) -> Vec<f64> {
    t.into_data().iter::<f32>().map(f64::from).collect()
}

pub(crate) fn assert_close(got: f64, want: f64, tol: f64) {
    assert!(
        (got - want).abs() <= tol * (1.0 + want.abs()),
        "got {got}, want {want} (tol {tol})"
    );
}

pub(crate) fn f64_log_softmax(row: &[f64]) -> Vec<f64> {
    let m = row.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
    let lse = m + row.iter().map(|v| (v - m).exp()).sum::<f64>().ln();
    row.iter().map(|v| v - lse).collect()
}

pub(crate) fn f64_entropy(row: &[f64]) -> f64 {
    f64_log_softmax(row)
        .iter()
        .filter(|l| l.is_finite())
        .map(|l| -l.exp() * l)
        .sum()
}
