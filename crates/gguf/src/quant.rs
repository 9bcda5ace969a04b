//! Quantization of f32 values into GGUF blocks (F32, F16, Q8_0, Q4_0, Q4_1), following the reference quantizers
//! of llama.cpp's `ggml-quants.c` (`quantize_row_*_ref`), so a file written here holds the bytes llama.cpp's own
//! converter would write for the same values. [`dequantize_into`](crate::dequant) is the inverse up to rounding.

use half::f16;

use crate::GgmlType;

/// Why values could not be quantized.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QuantizeError {
    /// No quantizer is written for this type.
    #[error("quantizing to {0:?} is not supported (supported: F32, F16, Q8_0, Q4_0, Q4_1)")]
    Unsupported(GgmlType),
    /// The number of values (or bytes, when decoding) is not a whole number of blocks.
    #[error("{len} values or bytes are not a whole number of {dtype:?} blocks of {block}")]
    PartialBlock {
        /// The type.
        dtype: GgmlType,
        /// Values given.
        len: usize,
        /// Values per block.
        block: usize,
    },
}

/// Encodes `values` (a whole number of blocks) as `dtype`.
pub fn quantize(dtype: GgmlType, values: &[f32]) -> Result<Vec<u8>, QuantizeError> {
    let block = match dtype {
        GgmlType::F32 | GgmlType::F16 => 1,
        GgmlType::Q8_0 | GgmlType::Q4_0 | GgmlType::Q4_1 => 32,
        other => return Err(QuantizeError::Unsupported(other)),
    };
    if !values.len().is_multiple_of(block) {
        return Err(QuantizeError::PartialBlock {
            dtype,
            len: values.len(),
            block,
        });
    }
    let mut out = Vec::with_capacity(values.len() / block * dtype.block_bytes());
    match dtype {
        GgmlType::F32 => values.iter().for_each(|v| out.extend_from_slice(&v.to_le_bytes())),
        GgmlType::F16 => values.iter().for_each(|v| out.extend_from_slice(&f16::from_f32(*v).to_le_bytes())),
        GgmlType::Q8_0 => values.chunks_exact(32).for_each(|b| q8_0(b, &mut out)),
        GgmlType::Q4_0 => values.chunks_exact(32).for_each(|b| q4_0(b, &mut out)),
        GgmlType::Q4_1 => values.chunks_exact(32).for_each(|b| q4_1(b, &mut out)),
        _ => unreachable!("checked above"),
    }
    Ok(out)
}

/// Decodes `bytes` (whole blocks of `dtype`) into f32 values appended to `out`: the inverse of [`quantize`] up to
/// rounding, for every type the reader knows.
pub fn dequantize(dtype: GgmlType, bytes: &[u8], out: &mut Vec<f32>) -> Result<(), QuantizeError> {
    if !bytes.len().is_multiple_of(dtype.block_bytes()) {
        return Err(QuantizeError::PartialBlock {
            dtype,
            len: bytes.len(),
            block: dtype.block_bytes(),
        });
    }
    crate::dequant::dequantize_into(dtype, bytes, out);
    Ok(())
}

fn put_f16(out: &mut Vec<u8>, v: f32) {
    out.extend_from_slice(&f16::from_f32(v).to_le_bytes());
}

/// `quantize_row_q8_0_ref`: `d = max|x| / 127`, `q = round(x / d)`.
fn q8_0(x: &[f32], out: &mut Vec<u8>) {
    let amax = x.iter().fold(0.0f32, |m, v| m.max(v.abs()));
    let d = amax / 127.0;
    let id = if d != 0.0 { 1.0 / d } else { 0.0 };
    put_f16(out, d);
    out.extend(x.iter().map(|v| (v * id).round() as i8 as u8));
}

/// `quantize_row_q4_0_ref`: the value of largest magnitude `max` maps to -8: `d = max / -8`,
/// `q = min(15, trunc(x / d + 8.5))`; element j in the low nibble of byte j, element j + 16 in its high nibble.
fn q4_0(x: &[f32], out: &mut Vec<u8>) {
    let (mut amax, mut max) = (0.0f32, 0.0f32);
    for &v in x {
        if v.abs() > amax {
            amax = v.abs();
            max = v;
        }
    }
    let d = max / -8.0;
    let id = if d != 0.0 { 1.0 / d } else { 0.0 };
    put_f16(out, d);
    let q = |v: f32| ((v * id + 8.5) as u8).min(15);
    out.extend((0..16).map(|j| q(x[j]) | (q(x[j + 16]) << 4)));
}

/// `quantize_row_q4_1_ref`: `d = (max - min) / 15`, `m = min`, `q = min(15, trunc((x - min) / d + 0.5))`.
fn q4_1(x: &[f32], out: &mut Vec<u8>) {
    let min = x.iter().copied().fold(f32::INFINITY, f32::min);
    let max = x.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let d = (max - min) / 15.0;
    let id = if d != 0.0 { 1.0 / d } else { 0.0 };
    put_f16(out, d);
    put_f16(out, min);
    let q = |v: f32| (((v - min) * id + 0.5) as u8).min(15);
    out.extend((0..16).map(|j| q(x[j]) | (q(x[j + 16]) << 4)));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn roundtrip(dtype: GgmlType, x: &[f32]) -> Vec<f32> {
        let bytes = quantize(dtype, x).expect("quantize");
        assert_eq!(bytes.len(), x.len() / dtype.block_size() * dtype.block_bytes());
        let mut back = Vec::new();
        dequantize(dtype, &bytes, &mut back).expect("whole blocks");
        back
    }

    #[test]
    fn every_type_roundtrips_within_its_step() {
        let x: Vec<f32> = (0..256).map(|i| ((i * 37 % 101) as f32 - 50.0) / 17.0).collect();
        assert_eq!(roundtrip(GgmlType::F32, &x), x);
        // Half a step of each grid (|x| <= 2.95 here); Q4_0 maps the largest magnitude to -8·d, so the other sign
        // reaches only 7·d and may lose up to a whole step there (llama.cpp's behaviour too).
        for (dtype, tolerance) in
            [(GgmlType::F16, 1e-3), (GgmlType::Q8_0, 3.0 / 127.0 / 2.0), (GgmlType::Q4_0, 3.0 / 8.0), (GgmlType::Q4_1, 6.0 / 15.0 / 2.0)]
        {
            let back = roundtrip(dtype, &x);
            for (a, b) in x.iter().zip(&back) {
                assert!((a - b).abs() <= tolerance + 1e-3, "{dtype:?}: {a} -> {b}");
            }
        }
    }

    #[test]
    fn values_already_on_the_grid_come_back_exactly() {
        // Q8_0 of integers with max 127 (d = 1) and Q4_1 of 0..15 (d = 1, m = 0) are exact.
        let ints: Vec<f32> = (0..32).map(|i| (i * 8 % 255) as f32 - 127.0).map(|v| v.clamp(-127.0, 127.0)).collect();
        let mut with_max = ints.clone();
        with_max[0] = 127.0;
        assert_eq!(roundtrip(GgmlType::Q8_0, &with_max), with_max);
        let nibbles: Vec<f32> = (0..32).map(|i| (i % 16) as f32).collect();
        assert_eq!(roundtrip(GgmlType::Q4_1, &nibbles), nibbles);
        assert_eq!(roundtrip(GgmlType::Q8_0, &[0.0; 32]), vec![0.0; 32]);
    }

    #[test]
    fn unsupported_types_and_partial_blocks_are_errors() {
        assert_eq!(quantize(GgmlType::Q6_K, &[0.0; 256]), Err(QuantizeError::Unsupported(GgmlType::Q6_K)));
        assert!(matches!(quantize(GgmlType::Q8_0, &[0.0; 33]), Err(QuantizeError::PartialBlock { len: 33, .. })));
    }
}
