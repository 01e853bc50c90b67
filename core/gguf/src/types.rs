//! ggml tensor types ([`GgmlType`]): ids, llama.cpp names, block sizes and block byte sizes.
//!
//! The table mirrors `GGMLQuantizationType` and `GGML_QUANT_SIZES` in llama.cpp's
//! `gguf-py/gguf/constants.py` (llama.cpp as vendored by llama-cpp-python 0.3.36) and the
//! `type_name`s in `ggml.c`. Removed ids (4, 5: Q4_2/Q4_3; 31-33: Q4_0_x_x; 36-38: IQ4_NL_x_x)
//! are deliberately unknown: [`GgmlType::from_id`] returns `None` for them.

use std::fmt;

/// A ggml tensor element type, as stored in a GGUF tensor info.
///
/// Variant names follow llama.cpp's `GGMLQuantizationType`.
#[allow(non_camel_case_types)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum GgmlType {
    /// 32-bit float.
    F32,
    /// 16-bit IEEE float.
    F16,
    /// 4-bit, blocks of 32 with an f16 scale.
    Q4_0,
    /// 4-bit, blocks of 32 with f16 scale and min.
    Q4_1,
    /// 5-bit, blocks of 32.
    Q5_0,
    /// 5-bit with min, blocks of 32.
    Q5_1,
    /// 8-bit, blocks of 32.
    Q8_0,
    /// 8-bit with sum, blocks of 32.
    Q8_1,
    /// 2-bit k-quant, super-blocks of 256.
    Q2_K,
    /// 3-bit k-quant.
    Q3_K,
    /// 4-bit k-quant.
    Q4_K,
    /// 5-bit k-quant.
    Q5_K,
    /// 6-bit k-quant.
    Q6_K,
    /// 8-bit k-quant (intermediate type).
    Q8_K,
    /// i-quant 2.06 bpw.
    IQ2_XXS,
    /// i-quant 2.31 bpw.
    IQ2_XS,
    /// i-quant 3.06 bpw.
    IQ3_XXS,
    /// i-quant 1.56 bpw.
    IQ1_S,
    /// 4-bit non-linear, blocks of 32.
    IQ4_NL,
    /// i-quant 3.44 bpw.
    IQ3_S,
    /// i-quant 2.5 bpw.
    IQ2_S,
    /// i-quant 4.25 bpw.
    IQ4_XS,
    /// 8-bit integer.
    I8,
    /// 16-bit integer.
    I16,
    /// 32-bit integer.
    I32,
    /// 64-bit integer.
    I64,
    /// 64-bit float.
    F64,
    /// i-quant 1.75 bpw.
    IQ1_M,
    /// bfloat16.
    BF16,
    /// ternary 1.69 bpw.
    TQ1_0,
    /// ternary 2.06 bpw.
    TQ2_0,
    /// MX FP4, blocks of 32.
    MXFP4,
    /// NV FP4, blocks of 64.
    NVFP4,
    /// 1-bit, blocks of 128.
    Q1_0,
    /// 2-bit, blocks of 64.
    Q2_0,
}

/// `(type, id, llama.cpp name, block size in elements, block size in bytes)`.
const TABLE: &[(GgmlType, u32, &str, u64, u64)] = &[
    (GgmlType::F32, 0, "f32", 1, 4),
    (GgmlType::F16, 1, "f16", 1, 2),
    (GgmlType::Q4_0, 2, "q4_0", 32, 18),
    (GgmlType::Q4_1, 3, "q4_1", 32, 20),
    (GgmlType::Q5_0, 6, "q5_0", 32, 22),
    (GgmlType::Q5_1, 7, "q5_1", 32, 24),
    (GgmlType::Q8_0, 8, "q8_0", 32, 34),
    (GgmlType::Q8_1, 9, "q8_1", 32, 36),
    (GgmlType::Q2_K, 10, "q2_K", 256, 84),
    (GgmlType::Q3_K, 11, "q3_K", 256, 110),
    (GgmlType::Q4_K, 12, "q4_K", 256, 144),
    (GgmlType::Q5_K, 13, "q5_K", 256, 176),
    (GgmlType::Q6_K, 14, "q6_K", 256, 210),
    (GgmlType::Q8_K, 15, "q8_K", 256, 292),
    (GgmlType::IQ2_XXS, 16, "iq2_xxs", 256, 66),
    (GgmlType::IQ2_XS, 17, "iq2_xs", 256, 74),
    (GgmlType::IQ3_XXS, 18, "iq3_xxs", 256, 98),
    (GgmlType::IQ1_S, 19, "iq1_s", 256, 50),
    (GgmlType::IQ4_NL, 20, "iq4_nl", 32, 18),
    (GgmlType::IQ3_S, 21, "iq3_s", 256, 110),
    (GgmlType::IQ2_S, 22, "iq2_s", 256, 82),
    (GgmlType::IQ4_XS, 23, "iq4_xs", 256, 136),
    (GgmlType::I8, 24, "i8", 1, 1),
    (GgmlType::I16, 25, "i16", 1, 2),
    (GgmlType::I32, 26, "i32", 1, 4),
    (GgmlType::I64, 27, "i64", 1, 8),
    (GgmlType::F64, 28, "f64", 1, 8),
    (GgmlType::IQ1_M, 29, "iq1_m", 256, 56),
    (GgmlType::BF16, 30, "bf16", 1, 2),
    (GgmlType::TQ1_0, 34, "tq1_0", 256, 54),
    (GgmlType::TQ2_0, 35, "tq2_0", 256, 66),
    (GgmlType::MXFP4, 39, "mxfp4", 32, 17),
    (GgmlType::NVFP4, 40, "nvfp4", 64, 36),
    (GgmlType::Q1_0, 41, "q1_0", 128, 18),
    (GgmlType::Q2_0, 42, "q2_0", 64, 18),
];

impl GgmlType {
    /// Every known type, in id order.
    pub fn all() -> impl Iterator<Item = GgmlType> {
        TABLE.iter().map(|row| row.0)
    }

    /// The type with this on-disk id, or `None` for unknown and removed ids.
    pub fn from_id(id: u32) -> Option<Self> {
        TABLE.iter().find(|row| row.1 == id).map(|row| row.0)
    }

    fn row(self) -> &'static (GgmlType, u32, &'static str, u64, u64) {
        // The table holds every variant exactly once (checked by a test); the fallback row is
        // never reached but keeps this total without a panic path.
        TABLE.iter().find(|row| row.0 == self).unwrap_or(&TABLE[0])
    }

    /// The on-disk id.
    pub fn id(self) -> u32 {
        self.row().1
    }

    /// llama.cpp's name for the type (`ggml_type_name`), e.g. `"q4_K"`, `"f32"`, `"bf16"`.
    pub fn name(self) -> &'static str {
        self.row().2
    }

    /// Elements per block (1 for plain types, 32 or 256 for most quantizations).
    pub fn block_size(self) -> u64 {
        self.row().3
    }

    /// Bytes per block.
    pub fn type_size(self) -> u64 {
        self.row().4
    }

    /// Whether the type is block-quantized (block size > 1).
    pub fn is_quantized(self) -> bool {
        self.block_size() > 1
    }
}

impl fmt::Display for GgmlType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// `(general.file_type value, LlamaFileType name, short label)`.
const FILE_TYPES: &[(u32, &str, &str)] = &[
    (0, "ALL_F32", "F32"),
    (1, "MOSTLY_F16", "F16"),
    (2, "MOSTLY_Q4_0", "Q4_0"),
    (3, "MOSTLY_Q4_1", "Q4_1"),
    (7, "MOSTLY_Q8_0", "Q8_0"),
    (8, "MOSTLY_Q5_0", "Q5_0"),
    (9, "MOSTLY_Q5_1", "Q5_1"),
    (10, "MOSTLY_Q2_K", "Q2_K"),
    (11, "MOSTLY_Q3_K_S", "Q3_K_S"),
    (12, "MOSTLY_Q3_K_M", "Q3_K_M"),
    (13, "MOSTLY_Q3_K_L", "Q3_K_L"),
    (14, "MOSTLY_Q4_K_S", "Q4_K_S"),
    (15, "MOSTLY_Q4_K_M", "Q4_K_M"),
    (16, "MOSTLY_Q5_K_S", "Q5_K_S"),
    (17, "MOSTLY_Q5_K_M", "Q5_K_M"),
    (18, "MOSTLY_Q6_K", "Q6_K"),
    (19, "MOSTLY_IQ2_XXS", "IQ2_XXS"),
    (20, "MOSTLY_IQ2_XS", "IQ2_XS"),
    (21, "MOSTLY_Q2_K_S", "Q2_K_S"),
    (22, "MOSTLY_IQ3_XS", "IQ3_XS"),
    (23, "MOSTLY_IQ3_XXS", "IQ3_XXS"),
    (24, "MOSTLY_IQ1_S", "IQ1_S"),
    (25, "MOSTLY_IQ4_NL", "IQ4_NL"),
    (26, "MOSTLY_IQ3_S", "IQ3_S"),
    (27, "MOSTLY_IQ3_M", "IQ3_M"),
    (28, "MOSTLY_IQ2_S", "IQ2_S"),
    (29, "MOSTLY_IQ2_M", "IQ2_M"),
    (30, "MOSTLY_IQ4_XS", "IQ4_XS"),
    (31, "MOSTLY_IQ1_M", "IQ1_M"),
    (32, "MOSTLY_BF16", "BF16"),
    (36, "MOSTLY_TQ1_0", "TQ1_0"),
    (37, "MOSTLY_TQ2_0", "TQ2_0"),
    (38, "MOSTLY_MXFP4_MOE", "MXFP4_MOE"),
    (39, "MOSTLY_NVFP4", "NVFP4"),
    (40, "MOSTLY_Q1_0", "Q1_0"),
    (41, "MOSTLY_Q2_0", "Q2_0"),
    (1024, "GUESSED", "GUESSED"),
];

/// The `LlamaFileType` name for a `general.file_type` value, e.g. `3` → `"MOSTLY_Q4_1"`,
/// `15` → `"MOSTLY_Q4_K_M"`, `0` → `"ALL_F32"`. `None` for unknown and removed values (4-6,
/// 33-35).
pub fn file_type_name(ft: u32) -> Option<&'static str> {
    FILE_TYPES.iter().find(|row| row.0 == ft).map(|row| row.1)
}

/// The short label users know from file names, e.g. `3` → `"Q4_1"`, `15` → `"Q4_K_M"`,
/// `0` → `"F32"`. `None` where [`file_type_name`] is `None`.
pub fn file_type_label(ft: u32) -> Option<&'static str> {
    FILE_TYPES.iter().find(|row| row.0 == ft).map(|row| row.2)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_is_consistent() {
        let mut seen = std::collections::HashSet::new();
        for &(t, id, name, block, size) in TABLE {
            assert!(seen.insert(id), "duplicate id {id}");
            assert_eq!(GgmlType::from_id(id), Some(t));
            assert_eq!(t.id(), id);
            assert_eq!(t.name(), name);
            assert_eq!(t.to_string(), name);
            assert!(block >= 1 && size >= 1);
        }
        assert_eq!(GgmlType::all().count(), TABLE.len());
    }

    #[test]
    fn known_sizes_match_gguf_py() {
        // Spot checks against GGML_QUANT_SIZES (QK_K = 256).
        assert_eq!(
            (GgmlType::Q4_K.block_size(), GgmlType::Q4_K.type_size()),
            (256, 144)
        );
        assert_eq!(
            (GgmlType::Q4_1.block_size(), GgmlType::Q4_1.type_size()),
            (32, 20)
        );
        assert_eq!(
            (GgmlType::Q6_K.block_size(), GgmlType::Q6_K.type_size()),
            (256, 210)
        );
        assert_eq!(
            (GgmlType::IQ1_M.block_size(), GgmlType::IQ1_M.type_size()),
            (256, 56)
        );
        assert_eq!(
            (GgmlType::NVFP4.block_size(), GgmlType::NVFP4.type_size()),
            (64, 36)
        );
        assert_eq!(GgmlType::Q4_K.name(), "q4_K");
        assert!(GgmlType::Q4_K.is_quantized() && !GgmlType::BF16.is_quantized());
    }

    #[test]
    fn removed_and_unknown_ids() {
        for id in [4, 5, 31, 32, 33, 36, 37, 38, 43, 1000, u32::MAX] {
            assert_eq!(GgmlType::from_id(id), None, "id {id}");
        }
    }

    #[test]
    fn file_types() {
        assert_eq!(file_type_name(3), Some("MOSTLY_Q4_1"));
        assert_eq!(file_type_name(15), Some("MOSTLY_Q4_K_M"));
        assert_eq!(file_type_label(15), Some("Q4_K_M"));
        assert_eq!(file_type_name(0), Some("ALL_F32"));
        assert_eq!(file_type_name(1024), Some("GUESSED"));
        for removed in [4, 5, 6, 33, 34, 35, 42] {
            assert_eq!(file_type_name(removed), None);
            assert_eq!(file_type_label(removed), None);
        }
    }
}
