//! `GgmlType`: the tensor element types this reader knows, with their ids and block sizes.

use std::fmt;

/// A ggml tensor type. Quantized types store values in blocks of [`GgmlType::block_size`] elements
/// taking [`GgmlType::block_bytes`] bytes each.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[allow(non_camel_case_types)]
pub enum GgmlType {
    /// id 0: IEEE f32.
    F32,
    /// id 1: IEEE f16.
    F16,
    /// id 2: blocks of 32: f16 scale `d` + 16 bytes of 4-bit values, `x = d * (q - 8)`.
    Q4_0,
    /// id 3: blocks of 32: f16 `d`, f16 `m` + 16 bytes of 4-bit values, `x = d * q + m`.
    Q4_1,
    /// id 6: blocks of 32: f16 `d`, 32 high bits, 16 bytes of low nibbles, `x = d * (q - 16)`.
    Q5_0,
    /// id 7: blocks of 32: f16 `d`, f16 `m`, 32 high bits, 16 bytes of low nibbles, `x = d * q + m`.
    Q5_1,
    /// id 8: blocks of 32: f16 `d` + 32 signed bytes, `x = d * q`.
    Q8_0,
    /// id 9: blocks of 32: f16 `d`, f16 sum + 32 signed bytes, `x = d * q`.
    Q8_1,
    /// id 10: super-blocks of 256, 2-bit values with 4-bit scales and mins.
    Q2_K,
    /// id 11: super-blocks of 256, 3-bit values with 6-bit scales.
    Q3_K,
    /// id 12: super-blocks of 256, 4-bit values with 6-bit scales and mins.
    Q4_K,
    /// id 13: super-blocks of 256, 5-bit values with 6-bit scales and mins.
    Q5_K,
    /// id 14: super-blocks of 256, 6-bit values with 8-bit scales.
    Q6_K,
    /// id 24: signed 8-bit integers.
    I8,
    /// id 25: signed 16-bit integers.
    I16,
    /// id 26: signed 32-bit integers.
    I32,
    /// id 27: signed 64-bit integers.
    I64,
    /// id 28: IEEE f64.
    F64,
    /// id 30: bfloat16.
    BF16,
}

impl GgmlType {
    /// The type for a ggml type id, or `None` if the id is unknown (or a type this reader cannot decode).
    pub fn from_id(id: u32) -> Option<GgmlType> {
        Some(match id {
            0 => GgmlType::F32,
            1 => GgmlType::F16,
            2 => GgmlType::Q4_0,
            3 => GgmlType::Q4_1,
            6 => GgmlType::Q5_0,
            7 => GgmlType::Q5_1,
            8 => GgmlType::Q8_0,
            9 => GgmlType::Q8_1,
            10 => GgmlType::Q2_K,
            11 => GgmlType::Q3_K,
            12 => GgmlType::Q4_K,
            13 => GgmlType::Q5_K,
            14 => GgmlType::Q6_K,
            24 => GgmlType::I8,
            25 => GgmlType::I16,
            26 => GgmlType::I32,
            27 => GgmlType::I64,
            28 => GgmlType::F64,
            30 => GgmlType::BF16,
            _ => return None,
        })
    }

    /// The ggml type id.
    pub fn id(self) -> u32 {
        match self {
            GgmlType::F32 => 0,
            GgmlType::F16 => 1,
            GgmlType::Q4_0 => 2,
            GgmlType::Q4_1 => 3,
            GgmlType::Q5_0 => 6,
            GgmlType::Q5_1 => 7,
            GgmlType::Q8_0 => 8,
            GgmlType::Q8_1 => 9,
            GgmlType::Q2_K => 10,
            GgmlType::Q3_K => 11,
            GgmlType::Q4_K => 12,
            GgmlType::Q5_K => 13,
            GgmlType::Q6_K => 14,
            GgmlType::I8 => 24,
            GgmlType::I16 => 25,
            GgmlType::I32 => 26,
            GgmlType::I64 => 27,
            GgmlType::F64 => 28,
            GgmlType::BF16 => 30,
        }
    }

    /// Number of elements in one block (1 for plain types, 32 for Q*_0/Q*_1, 256 for K-quants).
    pub fn block_size(self) -> usize {
        match self {
            GgmlType::F32
            | GgmlType::F16
            | GgmlType::BF16
            | GgmlType::I8
            | GgmlType::I16
            | GgmlType::I32
            | GgmlType::I64
            | GgmlType::F64 => 1,
            GgmlType::Q4_0
            | GgmlType::Q4_1
            | GgmlType::Q5_0
            | GgmlType::Q5_1
            | GgmlType::Q8_0
            | GgmlType::Q8_1 => 32,
            GgmlType::Q2_K | GgmlType::Q3_K | GgmlType::Q4_K | GgmlType::Q5_K | GgmlType::Q6_K => {
                256
            }
        }
    }

    /// Number of bytes one block takes.
    pub fn block_bytes(self) -> usize {
        match self {
            GgmlType::F32 | GgmlType::I32 => 4,
            GgmlType::F16 | GgmlType::BF16 | GgmlType::I16 => 2,
            GgmlType::I8 => 1,
            GgmlType::I64 | GgmlType::F64 => 8,
            GgmlType::Q4_0 => 18,
            GgmlType::Q4_1 => 20,
            GgmlType::Q5_0 => 22,
            GgmlType::Q5_1 => 24,
            GgmlType::Q8_0 => 34,
            GgmlType::Q8_1 => 36,
            GgmlType::Q2_K => 84,
            GgmlType::Q3_K => 110,
            GgmlType::Q4_K => 144,
            GgmlType::Q5_K => 176,
            GgmlType::Q6_K => 210,
        }
    }

    /// Whether values are stored in quantized blocks (block size > 1).
    pub fn is_quantized(self) -> bool {
        self.block_size() > 1
    }

    /// The llama.cpp name of the type, e.g. `"Q4_1"`.
    pub fn name(self) -> &'static str {
        match self {
            GgmlType::F32 => "F32",
            GgmlType::F16 => "F16",
            GgmlType::Q4_0 => "Q4_0",
            GgmlType::Q4_1 => "Q4_1",
            GgmlType::Q5_0 => "Q5_0",
            GgmlType::Q5_1 => "Q5_1",
            GgmlType::Q8_0 => "Q8_0",
            GgmlType::Q8_1 => "Q8_1",
            GgmlType::Q2_K => "Q2_K",
            GgmlType::Q3_K => "Q3_K",
            GgmlType::Q4_K => "Q4_K",
            GgmlType::Q5_K => "Q5_K",
            GgmlType::Q6_K => "Q6_K",
            GgmlType::I8 => "I8",
            GgmlType::I16 => "I16",
            GgmlType::I32 => "I32",
            GgmlType::I64 => "I64",
            GgmlType::F64 => "F64",
            GgmlType::BF16 => "BF16",
        }
    }
}

impl fmt::Display for GgmlType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip_and_unknown_ids_are_rejected() {
        let mut known = 0;
        for id in 0..64 {
            if let Some(t) = GgmlType::from_id(id) {
                assert_eq!(t.id(), id, "{t}");
                known += 1;
            }
        }
        assert_eq!(known, 19);
        assert_eq!(GgmlType::from_id(4), None); // removed Q4_2
        assert_eq!(GgmlType::from_id(29), None); // IQ1_M: not decoded here
        // bits per weight of the quantized formats, as llama.cpp documents them
        let bpw = |t: GgmlType| 8.0 * t.block_bytes() as f64 / t.block_size() as f64;
        assert_eq!(bpw(GgmlType::Q4_0), 4.5);
        assert_eq!(bpw(GgmlType::Q4_1), 5.0);
        assert_eq!(bpw(GgmlType::Q8_0), 8.5);
        assert_eq!(bpw(GgmlType::Q4_K), 4.5);
        assert_eq!(bpw(GgmlType::Q6_K), 6.5625);
        assert_eq!(bpw(GgmlType::Q2_K), 2.625);
        assert_eq!(bpw(GgmlType::Q3_K), 3.4375);
        assert_eq!(bpw(GgmlType::Q5_K), 5.5);
    }
}
