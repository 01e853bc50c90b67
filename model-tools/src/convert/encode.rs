//! `f32` values → the bytes of a ggml tensor type (F32, F16, BF16, Q8_0), bit for bit as ggml's
//! reference code writes them.
//!
//! * F16: `ggml_compute_fp32_to_fp16` (round to nearest, ties to even; overflow to ±inf;
//!   subnormals kept; every NaN becomes `0x7e00` with its sign).
//! * BF16: `ggml_compute_fp32_to_bf16` (round to nearest even; NaN forced quiet by or-ing 64
//!   into the truncated bits).
//! * Q8_0: `quantize_row_q8_0_ref`: per block of 32, `d = amax / 127`, `q = roundf(x * (1/d))`
//!   (half away from zero), `d` stored as F16 before the 32 signed bytes.

use vazhi_gguf::GgmlType;

/// Elements per Q8_0 block.
pub const Q8_0_BLOCK: usize = 32;
/// Bytes per Q8_0 block (an F16 scale and 32 `i8`).
pub const Q8_0_BLOCK_BYTES: usize = 34;

/// Why values could not be encoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EncodeError {
    /// The type is not one this converter writes.
    #[error("cannot encode to ggml type {0}: only f32, f16, bf16 and q8_0 are written")]
    UnsupportedType(String),
    /// A Q8_0 row is not a whole number of blocks.
    #[error("q8_0 needs rows that are a multiple of 32 values, got {0} values")]
    NotWholeBlocks(usize),
}

/// ggml's `f32` → IEEE half conversion (`ggml_compute_fp32_to_fp16`), as raw bits.
pub fn f32_to_f16_bits(f: f32) -> u16 {
    let scale_to_inf = f32::from_bits(0x7780_0000); // 2^112
    let scale_to_zero = f32::from_bits(0x0880_0000); // 2^-110
    let mut base = (f.abs() * scale_to_inf) * scale_to_zero;

    let w = f.to_bits();
    let shl1_w = w.wrapping_add(w);
    let sign = w & 0x8000_0000;
    let bias = (shl1_w & 0xFF00_0000).max(0x7100_0000);

    base += f32::from_bits((bias >> 1) + 0x0780_0000);
    let bits = base.to_bits();
    let exp_bits = (bits >> 13) & 0x0000_7C00;
    let mantissa_bits = bits & 0x0000_0FFF;
    let nonsign = exp_bits + mantissa_bits;
    let magnitude = if shl1_w > 0xFF00_0000 {
        0x7E00
    } else {
        nonsign
    };
    ((sign >> 16) | magnitude) as u16
}

/// ggml's `f32` → bfloat16 conversion (`ggml_compute_fp32_to_bf16`), as raw bits.
pub fn f32_to_bf16_bits(s: f32) -> u16 {
    let i = s.to_bits();
    if i & 0x7fff_ffff > 0x7f80_0000 {
        return ((i >> 16) | 64) as u16;
    }
    (i.wrapping_add(0x7fff + ((i >> 16) & 1)) >> 16) as u16
}

/// Appends the Q8_0 blocks of `values` (a multiple of 32 long) to `out`.
pub fn quantize_q8_0(values: &[f32], out: &mut Vec<u8>) -> Result<(), EncodeError> {
    if !values.len().is_multiple_of(Q8_0_BLOCK) {
        return Err(EncodeError::NotWholeBlocks(values.len()));
    }
    out.reserve(values.len() / Q8_0_BLOCK * Q8_0_BLOCK_BYTES);
    for block in values.chunks_exact(Q8_0_BLOCK) {
        // `MAX(a, b)` is `a > b ? a : b` in ggml; the same comparison keeps NaN handling equal.
        let amax = block
            .iter()
            .fold(0.0f32, |m, v| if m > v.abs() { m } else { v.abs() });
        let d = amax / 127.0;
        let id = if d != 0.0 { 1.0 / d } else { 0.0 };
        out.extend_from_slice(&f32_to_f16_bits(d).to_le_bytes());
        out.extend(block.iter().map(|&x| (x * id).round() as i8 as u8));
    }
    Ok(())
}

/// Bytes that `n` values take in `ggml_type` (`n` a multiple of the block size).
pub fn encoded_len(n: usize, ggml_type: GgmlType) -> Result<usize, EncodeError> {
    match ggml_type {
        GgmlType::F32 => Ok(n * 4),
        GgmlType::F16 | GgmlType::BF16 => Ok(n * 2),
        GgmlType::Q8_0 if n.is_multiple_of(Q8_0_BLOCK) => Ok(n / Q8_0_BLOCK * Q8_0_BLOCK_BYTES),
        GgmlType::Q8_0 => Err(EncodeError::NotWholeBlocks(n)),
        other => Err(EncodeError::UnsupportedType(other.name().to_owned())),
    }
}

/// Appends `values` encoded as `ggml_type` to `out`. For Q8_0, `values` must be whole rows
/// (blocks never straddle a call).
pub fn encode(values: &[f32], ggml_type: GgmlType, out: &mut Vec<u8>) -> Result<(), EncodeError> {
    match ggml_type {
        GgmlType::F32 => {
            out.reserve(values.len() * 4);
            values
                .iter()
                .for_each(|v| out.extend_from_slice(&v.to_le_bytes()));
        }
        GgmlType::F16 => {
            out.reserve(values.len() * 2);
            values
                .iter()
                .for_each(|&v| out.extend_from_slice(&f32_to_f16_bits(v).to_le_bytes()));
        }
        GgmlType::BF16 => {
            out.reserve(values.len() * 2);
            values
                .iter()
                .for_each(|&v| out.extend_from_slice(&f32_to_bf16_bits(v).to_le_bytes()));
        }
        GgmlType::Q8_0 => quantize_q8_0(values, out)?,
        other => return Err(EncodeError::UnsupportedType(other.name().to_owned())),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use half::f16;

    #[test]
    fn f16_exact_values_and_specials() {
        assert_eq!(f32_to_f16_bits(0.0), 0x0000);
        assert_eq!(f32_to_f16_bits(-0.0), 0x8000);
        assert_eq!(f32_to_f16_bits(1.0), 0x3c00);
        assert_eq!(f32_to_f16_bits(-2.0), 0xc000);
        assert_eq!(f32_to_f16_bits(65504.0), 0x7bff); // largest finite half
        assert_eq!(f32_to_f16_bits(f32::INFINITY), 0x7c00);
        assert_eq!(f32_to_f16_bits(f32::NEG_INFINITY), 0xfc00);
        // Every NaN becomes the canonical quiet NaN, sign kept.
        assert_eq!(f32_to_f16_bits(f32::from_bits(0x7f80_0001)), 0x7e00);
        assert_eq!(f32_to_f16_bits(f32::from_bits(0xffc1_2345)), 0xfe00);
    }

    #[test]
    fn f16_rounding_ties_overflow_and_subnormals() {
        // 1 + 2^-11 lies half-way between 1 (0x3c00, even) and 1 + 2^-10 (0x3c01): to even.
        assert_eq!(f32_to_f16_bits(1.0 + 2f32.powi(-11)), 0x3c00);
        // 1 + 3·2^-11 lies half-way between 0x3c01 (odd) and 0x3c02 (even): up.
        assert_eq!(f32_to_f16_bits(1.0 + 3.0 * 2f32.powi(-11)), 0x3c02);
        // Just above the tie rounds up.
        assert_eq!(
            f32_to_f16_bits(1.0 + 2f32.powi(-11) + 2f32.powi(-20)),
            0x3c01
        );
        // 65520 is the tie between 65504 and 65536 (=inf): to even, i.e. overflow to inf.
        assert_eq!(f32_to_f16_bits(65519.99), 0x7bff);
        assert_eq!(f32_to_f16_bits(65520.0), 0x7c00);
        assert_eq!(f32_to_f16_bits(1.0e6), 0x7c00);
        assert_eq!(f32_to_f16_bits(-1.0e6), 0xfc00);
        // Smallest subnormal half is 2^-24; half of it ties to 0 (even), 0.75 of it rounds up.
        assert_eq!(f32_to_f16_bits(2f32.powi(-24)), 0x0001);
        assert_eq!(f32_to_f16_bits(2f32.powi(-25)), 0x0000);
        assert_eq!(f32_to_f16_bits(1.5 * 2f32.powi(-24)), 0x0002); // tie 1↔2 → even 2
        assert_eq!(f32_to_f16_bits(0.75 * 2f32.powi(-24)), 0x0001);
        assert_eq!(f32_to_f16_bits(-3.0 * 2f32.powi(-24)), 0x8003);
        // Largest subnormal and smallest normal.
        assert_eq!(f32_to_f16_bits(1023.0 * 2f32.powi(-24)), 0x03ff);
        assert_eq!(f32_to_f16_bits(2f32.powi(-14)), 0x0400);
    }

    #[test]
    fn f16_agrees_with_round_to_nearest_even_everywhere() {
        // An independent implementation (the `half` crate) over a spread of bit patterns.
        let mut bits: u32 = 0;
        for _ in 0..200_000 {
            let f = f32::from_bits(bits);
            if !f.is_nan() {
                assert_eq!(
                    f32_to_f16_bits(f),
                    f16::from_f32(f).to_bits(),
                    "value {f:e} (bits {bits:#010x})"
                );
            }
            bits = bits.wrapping_add(21_474); // ~ 2^32 / 200k, odd stride hits every exponent
        }
    }

    #[test]
    fn bf16_rounding_and_nan() {
        assert_eq!(f32_to_bf16_bits(1.0), 0x3f80);
        assert_eq!(f32_to_bf16_bits(-2.5), 0xc020);
        // 1 + 2^-8 ties between 0x3f80 (even) and 0x3f81: stays.
        assert_eq!(f32_to_bf16_bits(1.0 + 2f32.powi(-8)), 0x3f80);
        // 1 + 3·2^-8 ties between 0x3f81 (odd) and 0x3f82: up.
        assert_eq!(f32_to_bf16_bits(1.0 + 3.0 * 2f32.powi(-8)), 0x3f82);
        // Rounding up past the largest finite bf16 gives infinity.
        assert_eq!(f32_to_bf16_bits(f32::MAX), 0x7f80);
        assert_eq!(f32_to_bf16_bits(f32::INFINITY), 0x7f80);
        // A signalling NaN whose payload lives only in the low bits stays a NaN (quiet bit 64).
        assert_eq!(f32_to_bf16_bits(f32::from_bits(0x7f80_0001)), 0x7fc0);
        assert_eq!(f32_to_bf16_bits(f32::from_bits(0xff81_0000)), 0xffc1);
        // Exact bf16 values round-trip.
        for b in [0x0001u16, 0x3f80, 0x4049, 0xc2f7, 0x7f7f] {
            assert_eq!(f32_to_bf16_bits(f32::from_bits(u32::from(b) << 16)), b);
        }
    }

    #[test]
    fn q8_0_block_by_hand() {
        // amax = 31.75 → d = 31.75 / 127 = 0.25 exactly, id = 4: q = roundf(4x).
        let mut block = [0.0f32; 32];
        block[0] = 31.75; // 127
        block[1] = -31.75; // -127
        block[2] = 0.125; // 0.5 → away from zero → 1
        block[3] = -0.125; // -0.5 → -1
        block[4] = 10.0; // 40
        block[5] = 0.36; // 1.44 → 1
        block[6] = -0.625; // -2.5 → -3
        let mut out = Vec::new();
        quantize_q8_0(&block, &mut out).expect("whole block");
        assert_eq!(out.len(), 34);
        assert_eq!(u16::from_le_bytes([out[0], out[1]]), 0x3400); // 0.25 as f16
        let q: Vec<i8> = out[2..].iter().map(|&b| b as i8).collect();
        assert_eq!(&q[..7], &[127, -127, 1, -1, 40, 1, -3]);
        assert!(q[7..].iter().all(|&v| v == 0));

        // An all-zero block has d = 0 and q = 0.
        let mut zeros = Vec::new();
        quantize_q8_0(&[0.0; 32], &mut zeros).expect("zeros");
        assert!(zeros.iter().all(|&b| b == 0));

        assert_eq!(
            quantize_q8_0(&[1.0; 33], &mut Vec::new()),
            Err(EncodeError::NotWholeBlocks(33))
        );
    }

    #[test]
    fn encode_dispatch_and_lengths() {
        let values = [1.0f32, -1.0, 0.5, 2.0];
        for (ty, len) in [(GgmlType::F32, 16), (GgmlType::F16, 8), (GgmlType::BF16, 8)] {
            let mut out = Vec::new();
            encode(&values, ty, &mut out).expect("encode");
            assert_eq!(out.len(), len);
            assert_eq!(encoded_len(values.len(), ty), Ok(len));
        }
        assert_eq!(encoded_len(64, GgmlType::Q8_0), Ok(68));
        assert!(encode(&values, GgmlType::Q4_0, &mut Vec::new()).is_err());
    }
}
