//! Dequantization of every [`GgmlType`] to f32, block by block, following llama.cpp's `ggml-quants.c`.

use crate::GgmlType;
use half::f16;

/// Elements in a K-quant super-block.
const QK_K: usize = 256;

/// Decodes `bytes` (whole blocks of `dtype`) into f32 values, appended to `out`.
///
/// The caller checks that `bytes.len()` is a multiple of `dtype.block_bytes()`; a trailing partial
/// block would be ignored.
pub(crate) fn dequantize_into(dtype: GgmlType, bytes: &[u8], out: &mut Vec<f32>) {
    let blocks = bytes.chunks_exact(dtype.block_bytes());
    out.reserve(blocks.len() * dtype.block_size());
    match dtype {
        GgmlType::F32 => out.extend(blocks.map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))),
        GgmlType::F16 => out.extend(blocks.map(|b| f16_at(b, 0))),
        GgmlType::BF16 => out.extend(
            blocks.map(|b| f32::from_bits(u32::from(u16::from_le_bytes([b[0], b[1]])) << 16)),
        ),
        GgmlType::F64 => out.extend(blocks.map(|b| {
            #[allow(clippy::cast_possible_truncation)]
            let v = f64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]) as f32;
            v
        })),
        GgmlType::I8 => out.extend(blocks.map(|b| f32::from(b[0] as i8))),
        GgmlType::I16 => out.extend(blocks.map(|b| f32::from(i16::from_le_bytes([b[0], b[1]])))),
        #[allow(clippy::cast_precision_loss)]
        GgmlType::I32 => {
            out.extend(blocks.map(|b| i32::from_le_bytes([b[0], b[1], b[2], b[3]]) as f32))
        }
        #[allow(clippy::cast_precision_loss)]
        GgmlType::I64 => {
            out.extend(blocks.map(|b| {
                i64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]) as f32
            }))
        }
        GgmlType::Q4_0 => blocks.for_each(|b| q4_0(b, out)),
        GgmlType::Q4_1 => blocks.for_each(|b| q4_1(b, out)),
        GgmlType::Q5_0 => blocks.for_each(|b| q5_0(b, out)),
        GgmlType::Q5_1 => blocks.for_each(|b| q5_1(b, out)),
        GgmlType::Q8_0 => blocks.for_each(|b| q8(b, 2, out)),
        GgmlType::Q8_1 => blocks.for_each(|b| q8(b, 4, out)),
        GgmlType::Q2_K => blocks.for_each(|b| q2_k(b, out)),
        GgmlType::Q3_K => blocks.for_each(|b| q3_k(b, out)),
        GgmlType::Q4_K => blocks.for_each(|b| q4_k(b, out)),
        GgmlType::Q5_K => blocks.for_each(|b| q5_k(b, out)),
        GgmlType::Q6_K => blocks.for_each(|b| q6_k(b, out)),
    }
}

/// The little-endian f16 at byte `at`, widened to f32.
fn f16_at(b: &[u8], at: usize) -> f32 {
    f16::from_bits(u16::from_le_bytes([b[at], b[at + 1]])).to_f32()
}

/// Q4_0: `d: f16, qs: [u8; 16]`; element j is the low nibble of `qs[j]`, element j+16 the high one.
fn q4_0(b: &[u8], out: &mut Vec<f32>) {
    let d = f16_at(b, 0);
    let qs = &b[2..18];
    out.extend(qs.iter().map(|&q| d * (f32::from(q & 0x0f) - 8.0)));
    out.extend(qs.iter().map(|&q| d * (f32::from(q >> 4) - 8.0)));
}

/// Q4_1: `d: f16, m: f16, qs: [u8; 16]`, `x = d * q + m`.
fn q4_1(b: &[u8], out: &mut Vec<f32>) {
    let (d, m) = (f16_at(b, 0), f16_at(b, 2));
    let qs = &b[4..20];
    out.extend(qs.iter().map(|&q| d * f32::from(q & 0x0f) + m));
    out.extend(qs.iter().map(|&q| d * f32::from(q >> 4) + m));
}

/// The 5-bit values of a Q5_0/Q5_1 block: low nibbles from `qs`, the fifth bit from the u32 `qh`.
fn q5_values(qh: &[u8], qs: &[u8]) -> [u8; 32] {
    let qh = u32::from_le_bytes([qh[0], qh[1], qh[2], qh[3]]);
    let mut v = [0u8; 32];
    for (j, &q) in qs.iter().enumerate() {
        let h0 = ((qh >> j) << 4) & 0x10;
        let h1 = (qh >> (j + 12)) & 0x10;
        // both fit in 5 bits
        v[j] = (q & 0x0f) | h0 as u8;
        v[j + 16] = (q >> 4) | h1 as u8;
    }
    v
}

/// Q5_0: `d: f16, qh: [u8; 4], qs: [u8; 16]`, `x = d * (q - 16)`.
fn q5_0(b: &[u8], out: &mut Vec<f32>) {
    let d = f16_at(b, 0);
    let v = q5_values(&b[2..6], &b[6..22]);
    out.extend(v.iter().map(|&q| d * (f32::from(q) - 16.0)));
}

/// Q5_1: `d: f16, m: f16, qh: [u8; 4], qs: [u8; 16]`, `x = d * q + m`.
fn q5_1(b: &[u8], out: &mut Vec<f32>) {
    let (d, m) = (f16_at(b, 0), f16_at(b, 2));
    let v = q5_values(&b[4..8], &b[8..24]);
    out.extend(v.iter().map(|&q| d * f32::from(q) + m));
}

/// Q8_0 (`header` = 2: `d`) and Q8_1 (`header` = 4: `d`, sum): then 32 signed bytes, `x = d * q`.
fn q8(b: &[u8], header: usize, out: &mut Vec<f32>) {
    let d = f16_at(b, 0);
    out.extend(
        b[header..header + 32]
            .iter()
            .map(|&q| d * f32::from(q as i8)),
    );
}

/// Q2_K: `scales: [u8; 16], qs: [u8; 64], d: f16, dmin: f16`.
fn q2_k(b: &[u8], out: &mut Vec<f32>) {
    let scales = &b[0..16];
    let d = f16_at(b, 80);
    let min = f16_at(b, 82);
    let mut is = 0;
    for half in 0..2 {
        let q = &b[16 + 32 * half..16 + 32 * half + 32];
        for shift in [0u32, 2, 4, 6] {
            for part in 0..2 {
                let sc = scales[is];
                is += 1;
                let dl = d * f32::from(sc & 0x0f);
                let ml = min * f32::from(sc >> 4);
                out.extend(
                    q[16 * part..16 * part + 16]
                        .iter()
                        .map(|&x| dl * f32::from((x >> shift) & 3) - ml),
                );
            }
        }
    }
}

/// Q3_K: `hmask: [u8; 32], qs: [u8; 64], scales: [u8; 12], d: f16`.
fn q3_k(b: &[u8], out: &mut Vec<f32>) {
    const KMASK1: u32 = 0x0303_0303;
    const KMASK2: u32 = 0x0f0f_0f0f;
    let hm = &b[0..32];
    let s = &b[96..108];
    let d_all = f16_at(b, 108);
    let word = |i: usize| u32::from_le_bytes([s[4 * i], s[4 * i + 1], s[4 * i + 2], s[4 * i + 3]]);
    let (a0, a1, tmp) = (word(0), word(1), word(2));
    let aux = [
        (a0 & KMASK2) | ((tmp & KMASK1) << 4),
        (a1 & KMASK2) | (((tmp >> 2) & KMASK1) << 4),
        ((a0 >> 4) & KMASK2) | (((tmp >> 4) & KMASK1) << 4),
        ((a1 >> 4) & KMASK2) | (((tmp >> 6) & KMASK1) << 4),
    ];
    let mut scales = [0i8; 16];
    for (i, w) in aux.iter().enumerate() {
        for (k, byte) in w.to_le_bytes().iter().enumerate() {
            scales[4 * i + k] = *byte as i8;
        }
    }
    let mut is = 0;
    let mut m = 1u8;
    for half in 0..2 {
        let q = &b[32 + 32 * half..32 + 32 * half + 32];
        for shift in [0u32, 2, 4, 6] {
            for part in 0..2 {
                let dl = d_all * f32::from(i16::from(scales[is]) - 32);
                is += 1;
                let range = 16 * part..16 * part + 16;
                out.extend(q[range.clone()].iter().zip(&hm[range]).map(|(&x, &h)| {
                    let low = i16::from((x >> shift) & 3);
                    let val = if h & m != 0 { low } else { low - 4 };
                    dl * f32::from(val)
                }));
            }
            m <<= 1;
        }
    }
}

/// The 6-bit scale and min of sub-block `j` (0..8) packed in the 12 `scales` bytes of Q4_K/Q5_K.
fn scale_min_k4(j: usize, q: &[u8]) -> (u8, u8) {
    if j < 4 {
        (q[j] & 63, q[j + 4] & 63)
    } else {
        (
            (q[j + 4] & 0x0f) | ((q[j - 4] >> 6) << 4),
            (q[j + 4] >> 4) | ((q[j] >> 6) << 4),
        )
    }
}

/// Q4_K: `d: f16, dmin: f16, scales: [u8; 12], qs: [u8; 128]`.
fn q4_k(b: &[u8], out: &mut Vec<f32>) {
    let d = f16_at(b, 0);
    let min = f16_at(b, 2);
    let scales = &b[4..16];
    for chunk in 0..QK_K / 64 {
        let q = &b[16 + 32 * chunk..16 + 32 * chunk + 32];
        let (sc1, m1) = scale_min_k4(2 * chunk, scales);
        let (sc2, m2) = scale_min_k4(2 * chunk + 1, scales);
        let (d1, m1) = (d * f32::from(sc1), min * f32::from(m1));
        let (d2, m2) = (d * f32::from(sc2), min * f32::from(m2));
        out.extend(q.iter().map(|&x| d1 * f32::from(x & 0x0f) - m1));
        out.extend(q.iter().map(|&x| d2 * f32::from(x >> 4) - m2));
    }
}

/// Q5_K: `d: f16, dmin: f16, scales: [u8; 12], qh: [u8; 32], qs: [u8; 128]`.
fn q5_k(b: &[u8], out: &mut Vec<f32>) {
    let d = f16_at(b, 0);
    let min = f16_at(b, 2);
    let scales = &b[4..16];
    let qh = &b[16..48];
    for chunk in 0..QK_K / 64 {
        let ql = &b[48 + 32 * chunk..48 + 32 * chunk + 32];
        let (u1, u2) = (1u8 << (2 * chunk), 2u8 << (2 * chunk));
        let (sc1, m1) = scale_min_k4(2 * chunk, scales);
        let (sc2, m2) = scale_min_k4(2 * chunk + 1, scales);
        let (d1, m1) = (d * f32::from(sc1), min * f32::from(m1));
        let (d2, m2) = (d * f32::from(sc2), min * f32::from(m2));
        out.extend(
            ql.iter()
                .zip(qh)
                .map(|(&x, &h)| d1 * f32::from((x & 0x0f) + if h & u1 != 0 { 16 } else { 0 }) - m1),
        );
        out.extend(
            ql.iter()
                .zip(qh)
                .map(|(&x, &h)| d2 * f32::from((x >> 4) + if h & u2 != 0 { 16 } else { 0 }) - m2),
        );
    }
}

/// Q6_K: `ql: [u8; 128], qh: [u8; 64], scales: [i8; 16], d: f16`.
fn q6_k(b: &[u8], out: &mut Vec<f32>) {
    let d = f16_at(b, 208);
    let mut y = [0f32; QK_K];
    for half in 0..2 {
        let ql = &b[64 * half..64 * half + 64];
        let qh = &b[128 + 32 * half..128 + 32 * half + 32];
        let sc = &b[192 + 8 * half..192 + 8 * half + 8];
        let y = &mut y[128 * half..128 * half + 128];
        for l in 0..32 {
            let is = l / 16;
            let q1 = i16::from((ql[l] & 0x0f) | ((qh[l] & 3) << 4)) - 32;
            let q2 = i16::from((ql[l + 32] & 0x0f) | (((qh[l] >> 2) & 3) << 4)) - 32;
            let q3 = i16::from((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
            let q4 = i16::from((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
            let s = |k: usize| f32::from(sc[is + k] as i8);
            y[l] = d * s(0) * f32::from(q1);
            y[l + 32] = d * s(2) * f32::from(q2);
            y[l + 64] = d * s(4) * f32::from(q3);
            y[l + 96] = d * s(6) * f32::from(q4);
        }
    }
    out.extend_from_slice(&y);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode(dtype: GgmlType, bytes: &[u8]) -> Vec<f32> {
        let mut out = Vec::new();
        dequantize_into(dtype, bytes, &mut out);
        out
    }

    fn f16_bytes(x: f32) -> [u8; 2] {
        f16::from_f32(x).to_le_bytes()
    }

    #[test]
    fn plain_types_decode_exactly() {
        let f16s = [0x3c00u16, 0xc000, 0x3555, 0x7bff, 0x0001];
        let bytes: Vec<u8> = f16s.iter().flat_map(|b| b.to_le_bytes()).collect();
        assert_eq!(
            decode(GgmlType::F16, &bytes),
            [1.0, -2.0, 0.333_251_95, 65504.0, 5.960_464_5e-8]
        );

        let bf16s = [0x3f80u16, 0xc0a0, 0x3eab, 0x4049];
        let bytes: Vec<u8> = bf16s.iter().flat_map(|b| b.to_le_bytes()).collect();
        assert_eq!(
            decode(GgmlType::BF16, &bytes),
            [1.0, -5.0, 0.333_984_38, 3.140_625]
        );

        let bytes: Vec<u8> = [1.5f32, -0.25]
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect();
        assert_eq!(decode(GgmlType::F32, &bytes), [1.5, -0.25]);
        let bytes: Vec<u8> = [0.1f64, -3.0]
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect();
        assert_eq!(decode(GgmlType::F64, &bytes), [0.1f32, -3.0]);
        assert_eq!(decode(GgmlType::I8, &[0xff, 0x7f]), [-1.0, 127.0]);
        assert_eq!(decode(GgmlType::I16, &[0x00, 0x80]), [-32768.0]);
        assert_eq!(
            decode(GgmlType::I32, &(-70000i32).to_le_bytes()),
            [-70000.0]
        );
        assert_eq!(
            decode(GgmlType::I64, &(1i64 << 40).to_le_bytes()),
            [1_099_511_627_776.0]
        );
    }

    #[test]
    fn q8_0_and_q8_1_scale_signed_bytes() {
        let qs: Vec<i8> = (0..32).map(|j| (j * 8 - 128) as i8).collect(); // -128, -120, ..., 120
        let mut block = f16_bytes(0.5).to_vec();
        block.extend(qs.iter().map(|&q| q as u8));
        let expected: Vec<f32> = (0..32).map(|j| 0.5 * (j * 8 - 128) as f32).collect();
        assert_eq!(decode(GgmlType::Q8_0, &block), expected);
        assert_eq!(expected[0], -64.0);
        assert_eq!(expected[31], 60.0);

        // Q8_1 has an extra f16 (the sum of the quants times d) that decoding ignores
        let mut block = f16_bytes(0.5).to_vec();
        block.extend(f16_bytes(123.0));
        block.extend(qs.iter().map(|&q| q as u8));
        assert_eq!(decode(GgmlType::Q8_1, &block), expected);
    }

    #[test]
    fn q4_0_low_nibbles_first_then_high() {
        // qs[j] = j | (15 - j) << 4: element j = 2 * (j - 8), element j + 16 = 2 * (7 - j)
        let mut block = f16_bytes(2.0).to_vec();
        block.extend((0..16u8).map(|j| j | ((15 - j) << 4)));
        let got = decode(GgmlType::Q4_0, &block);
        let expected = [
            -16.0, -14.0, -12.0, -10.0, -8.0, -6.0, -4.0, -2.0, 0.0, 2.0, 4.0, 6.0, 8.0, 10.0,
            12.0, 14.0, //
            14.0, 12.0, 10.0, 8.0, 6.0, 4.0, 2.0, 0.0, -2.0, -4.0, -6.0, -8.0, -10.0, -12.0, -14.0,
            -16.0,
        ];
        assert_eq!(got, expected);
    }

    #[test]
    fn q4_1_adds_the_min() {
        let mut block = f16_bytes(0.25).to_vec();
        block.extend(f16_bytes(-1.0));
        block.extend((0..16u8).map(|j| j | ((15 - j) << 4)));
        let got = decode(GgmlType::Q4_1, &block);
        assert_eq!(&got[..4], [-1.0, -0.75, -0.5, -0.25]);
        assert_eq!(got[15], 2.75);
        assert_eq!(&got[16..18], [2.75, 2.5]);
        assert_eq!(got[31], -1.0);
    }

    #[test]
    fn q5_takes_the_fifth_bit_from_qh() {
        // qh bit j is the fifth bit of element j (j < 16) and bit j + 16 that of element j + 16
        let qh: u32 = 1 | (1 << 16) | (1 << 31) | (1 << 5);
        let mut qs = [0u8; 16];
        qs[0] = 0x0f;
        qs[15] = 0x30;
        let mut block = f16_bytes(1.0).to_vec();
        block.extend(qh.to_le_bytes());
        block.extend(qs);
        let mut expected = [-16.0f32; 32];
        expected[0] = 15.0; // 0x0f | 0x10 = 31
        expected[5] = 0.0; // 0 | 0x10
        expected[16] = 0.0; // 0 | 0x10
        expected[31] = 3.0; // 3 | 0x10 = 19
        assert_eq!(decode(GgmlType::Q5_0, &block), expected);

        let mut block = f16_bytes(0.5).to_vec();
        block.extend(f16_bytes(10.0));
        block.extend(qh.to_le_bytes());
        block.extend(qs);
        let expected: Vec<f32> = expected.iter().map(|&v| 0.5 * (v + 16.0) + 10.0).collect();
        assert_eq!(decode(GgmlType::Q5_1, &block), expected);
        assert_eq!(expected[0], 25.5);
    }

    #[test]
    fn q4_k_scales_and_mins_by_hand() {
        // d = 1, dmin = 0.5; sub-block 0: scale 2, min 3; sub-block 1: scale 1, min 0;
        // sub-block 4 (uses the packed high bits): scale 0x25 = 37, min 0x11 = 17
        let mut block = f16_bytes(1.0).to_vec();
        block.extend(f16_bytes(0.5));
        let mut scales = [0u8; 12];
        scales[0] = 2;
        scales[4] = 3;
        scales[1] = 1;
        scales[8] = 0x15; // low nibble: scale bits of sub-block 4, high nibble: min bits
        scales[0] |= 0x80; // top two bits of sub-block 4's scale: 0b10 << 4 = 32
        scales[4] |= 0x40; // top two bits of sub-block 4's min: 0b01 << 4 = 16
        block.extend(scales);
        block.extend([0x57u8; 128]); // every low nibble 7, every high nibble 5
        let got = decode(GgmlType::Q4_K, &block);
        assert_eq!(got.len(), 256);
        assert_eq!(got[0], 2.0 * 7.0 - 1.5);
        assert_eq!(got[32], 5.0);
        assert_eq!(got[128], 37.0 * 7.0 - 0.5 * 17.0);
    }
}
