//! Dequantization of ggml tensor data (plain floats and block quantizations) to `f32`,
//! bit-exact with ggml's reference `dequantize_row_*` functions in `ggml-quants.c`.
//!
//! Every formula below follows the C reference operation by operation: the small integer
//! quants are converted to `f32` exactly, then multiplied by (and offset with) `f32` scales
//! decoded from IEEE half floats, in the same order and with the same intermediate roundings.
//! Rust never fuses a multiply and an add, so the results equal the reference built without
//! FMA contraction (and gguf-py's numpy `gguf.quants.dequantize`).
//!
//! Supported: F32, F16, BF16, F64, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q2_K, Q3_K, Q4_K, Q5_K,
//! Q6_K and IQ4_NL. Anything else is refused with [`DequantError::Unsupported`].

use vazhi_gguf::GgmlType;

/// Elements in a k-quant super-block (`QK_K`).
const QK_K: usize = 256;

/// The non-linear 4-bit grid of IQ4_NL (`kvalues_iq4nl` in `ggml-common.h`).
const IQ4_NL_VALUES: [i8; 16] = [
    -127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113,
];

/// Why tensor data could not be dequantized.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum DequantError {
    /// The element type has no dequantizer here.
    #[error(
        "ggml type {ggml_type} cannot be dequantized by model-tools (supported: {})",
        supported_names()
    )]
    Unsupported {
        /// The type.
        ggml_type: GgmlType,
    },
    /// The element count is not a whole number of blocks.
    #[error("{n_elements} elements of {ggml_type} are not a whole number of {block_size}-element blocks")]
    PartialBlock {
        /// The type.
        ggml_type: GgmlType,
        /// Elements asked for.
        n_elements: usize,
        /// Elements per block of the type.
        block_size: usize,
    },
    /// The byte slice does not hold exactly the data of `n_elements` elements.
    #[error("{n_elements} elements of {ggml_type} take {expected} bytes, but {actual} were given")]
    WrongLength {
        /// The type.
        ggml_type: GgmlType,
        /// Elements asked for.
        n_elements: usize,
        /// Bytes those elements take.
        expected: usize,
        /// Bytes given.
        actual: usize,
    },
}

/// The types [`dequantize`] handles, in ggml id order.
const SUPPORTED: [GgmlType; 15] = [
    GgmlType::F32,
    GgmlType::F16,
    GgmlType::Q4_0,
    GgmlType::Q4_1,
    GgmlType::Q5_0,
    GgmlType::Q5_1,
    GgmlType::Q8_0,
    GgmlType::Q2_K,
    GgmlType::Q3_K,
    GgmlType::Q4_K,
    GgmlType::Q5_K,
    GgmlType::Q6_K,
    GgmlType::IQ4_NL,
    GgmlType::F64,
    GgmlType::BF16,
];

fn supported_names() -> String {
    SUPPORTED
        .iter()
        .map(|t| t.name())
        .collect::<Vec<_>>()
        .join(", ")
}

/// Whether [`dequantize`] handles `ggml_type`.
pub fn supports(ggml_type: GgmlType) -> bool {
    SUPPORTED.contains(&ggml_type)
}

/// Dequantizes `n_elements` elements of `ggml_type` stored in `data` (ggml's on-disk layout,
/// little-endian) into `out`, which is cleared first and then holds exactly `n_elements`
/// values.
///
/// `data` must hold exactly the bytes of those elements: `n_elements / block_size *
/// type_size`. For quantized types `n_elements` must be a multiple of the block size (every
/// row of a valid GGUF tensor is).
pub fn dequantize(
    ggml_type: GgmlType,
    data: &[u8],
    n_elements: usize,
    out: &mut Vec<f32>,
) -> Result<(), DequantError> {
    if !supports(ggml_type) {
        return Err(DequantError::Unsupported { ggml_type });
    }
    let block_size = ggml_type.block_size() as usize;
    let type_size = ggml_type.type_size() as usize;
    if !n_elements.is_multiple_of(block_size) {
        return Err(DequantError::PartialBlock {
            ggml_type,
            n_elements,
            block_size,
        });
    }
    let expected = (n_elements / block_size).checked_mul(type_size);
    if expected != Some(data.len()) {
        return Err(DequantError::WrongLength {
            ggml_type,
            n_elements,
            expected: expected.unwrap_or(usize::MAX),
            actual: data.len(),
        });
    }
    out.clear();
    out.reserve(n_elements);
    let blocks = data.chunks_exact(type_size);
    match ggml_type {
        GgmlType::F32 => out.extend(blocks.map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))),
        GgmlType::F16 => out.extend(blocks.map(|b| f16(b, 0))),
        GgmlType::BF16 => out.extend(blocks.map(|b| bf16(b, 0))),
        GgmlType::F64 => {
            out.extend(blocks.map(|b| {
                f64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]) as f32
            }))
        }
        GgmlType::Q4_0 => blocks.for_each(|b| q4_0(b, out)),
        GgmlType::Q4_1 => blocks.for_each(|b| q4_1(b, out)),
        GgmlType::Q5_0 => blocks.for_each(|b| q5_0(b, out)),
        GgmlType::Q5_1 => blocks.for_each(|b| q5_1(b, out)),
        GgmlType::Q8_0 => blocks.for_each(|b| q8_0(b, out)),
        GgmlType::Q2_K => blocks.for_each(|b| q2_k(b, out)),
        GgmlType::Q3_K => blocks.for_each(|b| q3_k(b, out)),
        GgmlType::Q4_K => blocks.for_each(|b| q4_k(b, out)),
        GgmlType::Q5_K => blocks.for_each(|b| q5_k(b, out)),
        GgmlType::Q6_K => blocks.for_each(|b| q6_k(b, out)),
        GgmlType::IQ4_NL => blocks.for_each(|b| iq4_nl(b, out)),
        _ => return Err(DequantError::Unsupported { ggml_type }),
    }
    Ok(())
}

/// The IEEE half float at `b[at..at + 2]`, widened exactly (`GGML_FP16_TO_FP32`).
fn f16(b: &[u8], at: usize) -> f32 {
    half::f16::from_le_bytes([b[at], b[at + 1]]).to_f32()
}

/// The bfloat16 at `b[at..at + 2]`, widened exactly.
fn bf16(b: &[u8], at: usize) -> f32 {
    f32::from_bits(u32::from(u16::from_le_bytes([b[at], b[at + 1]])) << 16)
}

/// `block_q4_0` (18 bytes): `d: f16, qs[16]`. Element `j` is the low nibble of `qs[j]`,
/// element `j + 16` its high nibble; value = `(nibble - 8) * d`.
fn q4_0(b: &[u8], out: &mut Vec<f32>) {
    let d = f16(b, 0);
    let qs = &b[2..18];
    out.extend(qs.iter().map(|&q| (i32::from(q & 0x0F) - 8) as f32 * d));
    out.extend(qs.iter().map(|&q| (i32::from(q >> 4) - 8) as f32 * d));
}

/// `block_q4_1` (20 bytes): `d: f16, m: f16, qs[16]`; value = `nibble * d + m`.
fn q4_1(b: &[u8], out: &mut Vec<f32>) {
    let d = f16(b, 0);
    let m = f16(b, 2);
    let qs = &b[4..20];
    out.extend(qs.iter().map(|&q| f32::from(q & 0x0F) * d + m));
    out.extend(qs.iter().map(|&q| f32::from(q >> 4) * d + m));
}

/// The 5th bits of `block_q5_*`: bit `j` of the little-endian `qh` word belongs to element
/// `j` (low half), bit `j + 16` to element `j + 16`; returns `(high_lo, high_hi)` as 0 or 16.
fn q5_high_bits(qh: u32, j: usize) -> (u8, u8) {
    let lo = (((qh >> j) << 4) & 0x10) as u8;
    let hi = ((qh >> (j + 12)) & 0x10) as u8;
    (lo, hi)
}

/// `block_q5_0` (22 bytes): `d: f16, qh[4], qs[16]`; value = `((nibble | high << 4) - 16) * d`.
fn q5_0(b: &[u8], out: &mut Vec<f32>) {
    let d = f16(b, 0);
    let qh = u32::from_le_bytes([b[2], b[3], b[4], b[5]]);
    let qs = &b[6..22];
    let start = out.len();
    out.resize(start + 32, 0.0);
    for (j, &q) in qs.iter().enumerate() {
        let (h0, h1) = q5_high_bits(qh, j);
        out[start + j] = (i32::from((q & 0x0F) | h0) - 16) as f32 * d;
        out[start + j + 16] = (i32::from((q >> 4) | h1) - 16) as f32 * d;
    }
}

/// `block_q5_1` (24 bytes): `d: f16, m: f16, qh[4], qs[16]`; value = `(nibble | high << 4) * d + m`.
fn q5_1(b: &[u8], out: &mut Vec<f32>) {
    let d = f16(b, 0);
    let m = f16(b, 2);
    let qh = u32::from_le_bytes([b[4], b[5], b[6], b[7]]);
    let qs = &b[8..24];
    let start = out.len();
    out.resize(start + 32, 0.0);
    for (j, &q) in qs.iter().enumerate() {
        let (h0, h1) = q5_high_bits(qh, j);
        out[start + j] = f32::from((q & 0x0F) | h0) * d + m;
        out[start + j + 16] = f32::from((q >> 4) | h1) * d + m;
    }
}

/// `block_q8_0` (34 bytes): `d: f16, qs[32]: i8`; value = `q * d`.
fn q8_0(b: &[u8], out: &mut Vec<f32>) {
    let d = f16(b, 0);
    out.extend(b[2..34].iter().map(|&q| f32::from(q as i8) * d));
}

/// The 6-bit scale and min `j` (0..8) packed in the 12 `scales` bytes of Q4_K / Q5_K
/// (`get_scale_min_k4`).
fn scale_min_k4(j: usize, q: &[u8]) -> (u8, u8) {
    if j < 4 {
        (q[j] & 63, q[j + 4] & 63)
    } else {
        (
            (q[j + 4] & 0x0F) | ((q[j - 4] >> 6) << 4),
            (q[j + 4] >> 4) | ((q[j] >> 6) << 4),
        )
    }
}

/// `block_q2_K` (84 bytes): `scales[16], qs[64], d: f16, dmin: f16`. Sixteen groups of 16;
/// group scale `d * (sc & 0xF)`, group min `dmin * (sc >> 4)`; value = `dl * q - ml` with `q`
/// the 2-bit field at `shift` in `qs`.
fn q2_k(b: &[u8], out: &mut Vec<f32>) {
    let scales = &b[0..16];
    let d = f16(b, 80);
    let min = f16(b, 82);
    let mut is = 0;
    for half in 0..2 {
        let q = &b[16 + 32 * half..16 + 32 * half + 32];
        for shift in [0u32, 2, 4, 6] {
            for part in 0..2 {
                let sc = scales[is];
                is += 1;
                let dl = d * f32::from(sc & 0x0F);
                let ml = min * f32::from(sc >> 4);
                let group = &q[16 * part..16 * part + 16];
                out.extend(group.iter().map(|&x| dl * f32::from((x >> shift) & 3) - ml));
            }
        }
    }
}

/// The sixteen 6-bit signed scales (stored with +32) packed in the 12 `scales` bytes of
/// Q3_K, unpacked exactly like the reference (little-endian 32-bit words).
fn q3_k_scales(packed: &[u8]) -> [i8; 16] {
    const KMASK1: u32 = 0x0303_0303;
    const KMASK2: u32 = 0x0f0f_0f0f;
    let word = |i: usize| {
        u32::from_le_bytes([
            packed[4 * i],
            packed[4 * i + 1],
            packed[4 * i + 2],
            packed[4 * i + 3],
        ])
    };
    let (a0, a1, tmp) = (word(0), word(1), word(2));
    let aux = [
        (a0 & KMASK2) | ((tmp & KMASK1) << 4),
        (a1 & KMASK2) | (((tmp >> 2) & KMASK1) << 4),
        ((a0 >> 4) & KMASK2) | (((tmp >> 4) & KMASK1) << 4),
        ((a1 >> 4) & KMASK2) | (((tmp >> 6) & KMASK1) << 4),
    ];
    let mut scales = [0i8; 16];
    for (i, word) in aux.iter().enumerate() {
        for (k, byte) in word.to_le_bytes().iter().enumerate() {
            scales[4 * i + k] = *byte as i8;
        }
    }
    scales
}

/// `block_q3_K` (110 bytes): `hmask[32], qs[64], scales[12], d: f16`. Sixteen groups of 16;
/// group scale `d * (scale - 32)`; value = `dl * (q2 - (hbit ? 0 : 4))`.
fn q3_k(b: &[u8], out: &mut Vec<f32>) {
    let hmask = &b[0..32];
    let scales = q3_k_scales(&b[96..108]);
    let d_all = f16(b, 108);
    let mut is = 0;
    let mut m: u8 = 1;
    for half in 0..2 {
        let q = &b[32 + 32 * half..32 + 32 * half + 32];
        for shift in [0u32, 2, 4, 6] {
            for part in 0..2 {
                let dl = d_all * f32::from(i16::from(scales[is]) - 32);
                is += 1;
                let range = 16 * part..16 * part + 16;
                out.extend(q[range.clone()].iter().zip(&hmask[range]).map(|(&x, &h)| {
                    let low = i32::from((x >> shift) & 3);
                    let high = if h & m != 0 { 0 } else { 4 };
                    dl * (low - high) as f32
                }));
            }
            m <<= 1;
        }
    }
}

/// `block_q4_K` (144 bytes): `d: f16, dmin: f16, scales[12], qs[128]`. Eight groups of 32
/// with 6-bit scales/mins; value = `d * sc * nibble - dmin * m`.
fn q4_k(b: &[u8], out: &mut Vec<f32>) {
    let d = f16(b, 0);
    let min = f16(b, 2);
    let scales = &b[4..16];
    for (chunk, q) in b[16..144].chunks_exact(32).enumerate() {
        let (sc1, m1) = scale_min_k4(2 * chunk, scales);
        let (sc2, m2) = scale_min_k4(2 * chunk + 1, scales);
        let (d1, m1) = (d * f32::from(sc1), min * f32::from(m1));
        let (d2, m2) = (d * f32::from(sc2), min * f32::from(m2));
        out.extend(q.iter().map(|&x| d1 * f32::from(x & 0x0F) - m1));
        out.extend(q.iter().map(|&x| d2 * f32::from(x >> 4) - m2));
    }
}

/// `block_q5_K` (176 bytes): `d: f16, dmin: f16, scales[12], qh[32], qs[128]`. Like Q4_K with
/// a 5th bit per element from `qh` (bit `2 * chunk` for low nibbles, `2 * chunk + 1` for high).
fn q5_k(b: &[u8], out: &mut Vec<f32>) {
    let d = f16(b, 0);
    let min = f16(b, 2);
    let scales = &b[4..16];
    let qh = &b[16..48];
    for (chunk, ql) in b[48..176].chunks_exact(32).enumerate() {
        let (sc1, m1) = scale_min_k4(2 * chunk, scales);
        let (sc2, m2) = scale_min_k4(2 * chunk + 1, scales);
        let (d1, m1) = (d * f32::from(sc1), min * f32::from(m1));
        let (d2, m2) = (d * f32::from(sc2), min * f32::from(m2));
        let u1 = 1u8 << (2 * chunk);
        let u2 = 2u8 << (2 * chunk);
        out.extend(ql.iter().zip(qh).map(|(&x, &h)| {
            let high = if h & u1 != 0 { 16 } else { 0 };
            d1 * f32::from((x & 0x0F) + high) - m1
        }));
        out.extend(ql.iter().zip(qh).map(|(&x, &h)| {
            let high = if h & u2 != 0 { 16 } else { 0 };
            d2 * f32::from((x >> 4) + high) - m2
        }));
    }
}

/// `block_q6_K` (210 bytes): `ql[128], qh[64], scales[16]: i8, d: f16`. Sixteen groups of
/// 16; value = `d * scale * (q6 - 32)` with `q6` = 4 low bits from `ql`, 2 high bits from `qh`.
fn q6_k(b: &[u8], out: &mut Vec<f32>) {
    let d = f16(b, 208);
    let start = out.len();
    out.resize(start + QK_K, 0.0);
    let y = &mut out[start..];
    for n in 0..2 {
        let ql = &b[64 * n..64 * n + 64];
        let qh = &b[128 + 32 * n..128 + 32 * n + 32];
        let sc = &b[192 + 8 * n..192 + 8 * n + 8];
        let y = &mut y[128 * n..128 * n + 128];
        for l in 0..32 {
            let is = l / 16;
            let q1 = ((ql[l] & 0x0F) | ((qh[l] & 3) << 4)) as i8 - 32;
            let q2 = ((ql[l + 32] & 0x0F) | (((qh[l] >> 2) & 3) << 4)) as i8 - 32;
            let q3 = ((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) as i8 - 32;
            let q4 = ((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) as i8 - 32;
            let scale = |k: usize| d * f32::from(sc[is + k] as i8);
            y[l] = scale(0) * f32::from(q1);
            y[l + 32] = scale(2) * f32::from(q2);
            y[l + 64] = scale(4) * f32::from(q3);
            y[l + 96] = scale(6) * f32::from(q4);
        }
    }
}

/// `block_iq4_nl` (18 bytes): `d: f16, qs[16]`; value = `d * IQ4_NL_VALUES[nibble]`, low
/// nibbles first.
fn iq4_nl(b: &[u8], out: &mut Vec<f32>) {
    let d = f16(b, 0);
    let qs = &b[2..18];
    out.extend(
        qs.iter()
            .map(|&q| d * f32::from(IQ4_NL_VALUES[usize::from(q & 0x0F)])),
    );
    out.extend(
        qs.iter()
            .map(|&q| d * f32::from(IQ4_NL_VALUES[usize::from(q >> 4)])),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Little-endian bytes of an f16 that is exactly `x`.
    fn h(x: f32) -> [u8; 2] {
        let v = half::f16::from_f32(x);
        assert_eq!(v.to_f32(), x, "{x} must be exact in f16");
        v.to_le_bytes()
    }

    fn run(t: GgmlType, data: &[u8], n: usize) -> Vec<f32> {
        let mut out = vec![123.0; 3]; // stale contents must be cleared
        dequantize(t, data, n, &mut out).expect("dequantize");
        assert_eq!(out.len(), n);
        out
    }

    #[test]
    fn plain_floats() {
        let f32_bytes: Vec<u8> = [1.5f32, -2.25]
            .iter()
            .flat_map(|x| x.to_le_bytes())
            .collect();
        assert_eq!(run(GgmlType::F32, &f32_bytes, 2), vec![1.5, -2.25]);
        let f16_bytes = [h(0.5), h(-3.0)].concat();
        assert_eq!(run(GgmlType::F16, &f16_bytes, 2), vec![0.5, -3.0]);
        // bf16 is the top half of an f32: 1.0 = 0x3F80, -0.5 = 0xBF00.
        assert_eq!(
            run(GgmlType::BF16, &[0x80, 0x3F, 0x00, 0xBF], 2),
            vec![1.0, -0.5]
        );
        assert_eq!(run(GgmlType::F64, &2.5f64.to_le_bytes(), 1), vec![2.5]);
    }

    #[test]
    fn q4_0_block() {
        // d = 0.5; qs[j] = (hi << 4) | lo with lo = j, hi = 15 - j.
        // Element j = (j - 8) * 0.5, element 16 + j = (15 - j - 8) * 0.5.
        let mut b = h(0.5).to_vec();
        b.extend((0..16u8).map(|j| ((15 - j) << 4) | j));
        let out = run(GgmlType::Q4_0, &b, 32);
        for j in 0..16 {
            assert_eq!(out[j], (j as f32 - 8.0) * 0.5);
            assert_eq!(out[16 + j], (7.0 - j as f32) * 0.5);
        }
    }

    #[test]
    fn q4_1_block() {
        // d = 2, m = -1: element = nibble * 2 - 1. All bytes 0x3A: lo = 10, hi = 3.
        let mut b = [h(2.0), h(-1.0)].concat();
        b.extend([0x3A; 16]);
        let out = run(GgmlType::Q4_1, &b, 32);
        assert!(out[..16].iter().all(|&v| v == 19.0));
        assert!(out[16..].iter().all(|&v| v == 5.0));
    }

    #[test]
    fn q5_0_block() {
        // d = 1; qs all 0x21 (lo 1, hi 2); qh bit 0 (element 0) and bit 16 (element 16) set.
        // Element 0: (1 | 16) - 16 = 1; element 1: 1 - 16 = -15;
        // element 16: (2 | 16) - 16 = 2; element 17: 2 - 16 = -14.
        let mut b = h(1.0).to_vec();
        b.extend(0x0001_0001u32.to_le_bytes());
        b.extend([0x21; 16]);
        let out = run(GgmlType::Q5_0, &b, 32);
        assert_eq!(&out[..2], &[1.0, -15.0]);
        assert_eq!(&out[16..18], &[2.0, -14.0]);
        assert!(out[2..16].iter().all(|&v| v == -15.0));
    }

    #[test]
    fn q5_1_block() {
        // d = 0.5, m = 10; qs all 0xF0 (lo 0, hi 15); qh bit 31 (element 31) set.
        // Low elements: 0 * 0.5 + 10 = 10; element 16..31: 15 * 0.5 + 10 = 17.5;
        // element 31: (15 | 16) * 0.5 + 10 = 25.5.
        let mut b = [h(0.5), h(10.0)].concat();
        b.extend(0x8000_0000u32.to_le_bytes());
        b.extend([0xF0; 16]);
        let out = run(GgmlType::Q5_1, &b, 32);
        assert!(out[..16].iter().all(|&v| v == 10.0));
        assert!(out[16..31].iter().all(|&v| v == 17.5));
        assert_eq!(out[31], 25.5);
    }

    #[test]
    fn q8_0_block() {
        // d = 0.25; qs[j] = j - 16 as i8: element j = (j - 16) / 4.
        let mut b = h(0.25).to_vec();
        b.extend((0..32i32).map(|j| (j - 16) as i8 as u8));
        let out = run(GgmlType::Q8_0, &b, 32);
        for (j, v) in out.iter().enumerate() {
            assert_eq!(*v, (j as f32 - 16.0) * 0.25);
        }
    }

    #[test]
    fn iq4_nl_block() {
        // d = 2; qs[j] = (15 - lo) << 4 | lo with lo = j.
        let mut b = h(2.0).to_vec();
        b.extend((0..16u8).map(|j| ((15 - j) << 4) | j));
        let out = run(GgmlType::IQ4_NL, &b, 32);
        assert_eq!(out[0], -254.0); // 2 * -127
        assert_eq!(out[15], 226.0); // 2 * 113
        assert_eq!(out[16], 226.0); // nibble 15
        assert_eq!(out[31], -254.0); // nibble 0
    }

    #[test]
    fn q2_k_block() {
        // d = 1, dmin = 0.5. scales[g] = (min_g << 4) | scale_g with scale_g = g % 16 and
        // min_g = 1. qs = 0b11_10_01_00 (0xE4) everywhere: the 2-bit field at shift 0 is 0,
        // at 2 is 1, at 4 is 2, at 6 is 3.
        // Group g (16 elements) uses shift 2 * ((g / 2) % 4): value = g * q(shift) - 0.5.
        let mut b: Vec<u8> = (0..16u8).map(|g| (1 << 4) | g).collect();
        b.extend([0xE4; 64]);
        b.extend(h(1.0));
        b.extend(h(0.5));
        let out = run(GgmlType::Q2_K, &b, 256);
        for g in 0..16 {
            let q = ((g / 2) % 4) as f32;
            for v in &out[16 * g..16 * g + 16] {
                assert_eq!(*v, g as f32 * q - 0.5, "group {g}");
            }
        }
    }

    #[test]
    fn q3_k_block() {
        // Scales: 16 6-bit values s_i stored as (s_i + 32); low 4 bits in bytes 0..8 (two
        // per byte: scale i in byte i % 8, nibble i / 8), high 2 bits in bytes 8..12 (scale i
        // in byte 8 + i % 4 at bit 2 * (i / 4)). Choose every stored scale = 33 (s = +1):
        // low nibble 1, high bits 0b10.
        let mut scales = [0u8; 12];
        for i in 0..16 {
            scales[i % 8] |= 1 << (4 * (i / 8));
            scales[8 + i % 4] |= 0b10 << (2 * (i / 4));
        }
        // qs = 0xE4 (fields 0,1,2,3 at shifts 0,2,4,6); hmask: all high bits set except
        // element 0 of each group at bit 0 (bit m = 1 << (shift/2 + 4*half)).
        let mut hmask = [0xFFu8; 32];
        hmask[0] = 0xFE; // element 0 (group 0, shift 0, half 0) loses its high bit: q - 4
        let mut b = hmask.to_vec();
        b.extend([0xE4; 64]);
        b.extend(scales);
        b.extend(h(0.5));
        let out = run(GgmlType::Q3_K, &b, 256);
        // value = 0.5 * 1 * (q - (hbit ? 0 : 4)); group g uses shift 2 * ((g / 2) % 4).
        assert_eq!(out[0], 0.5 * (0.0 - 4.0));
        for g in 0..16 {
            let q = ((g / 2) % 4) as f32;
            let first = if g == 0 { 1 } else { 0 };
            for v in &out[16 * g + first..16 * g + 16] {
                assert_eq!(*v, 0.5 * q, "group {g}");
            }
        }
    }

    /// Packs eight 6-bit (scale, min) pairs the way `get_scale_min_k4` reads them.
    fn pack_k4(pairs: [(u8, u8); 8]) -> [u8; 12] {
        let mut q = [0u8; 12];
        for (j, &(sc, m)) in pairs.iter().enumerate() {
            if j < 4 {
                q[j] |= sc & 63;
                q[j + 4] |= m & 63;
            } else {
                q[j + 4] |= (sc & 0x0F) | ((m & 0x0F) << 4);
                q[j - 4] |= (sc >> 4) << 6;
                q[j] |= (m >> 4) << 6;
            }
        }
        q
    }

    #[test]
    fn k4_scale_packing_round_trips() {
        let pairs = [
            (1, 2),
            (63, 0),
            (17, 33),
            (40, 63),
            (5, 6),
            (62, 61),
            (16, 48),
            (33, 1),
        ];
        let q = pack_k4(pairs);
        for (j, &pair) in pairs.iter().enumerate() {
            assert_eq!(scale_min_k4(j, &q), pair, "pair {j}");
        }
    }

    #[test]
    fn q4_k_block() {
        // d = 0.5, dmin = 0.25; group j (32 elements) has scale j + 1 and min 2 * j.
        // qs bytes 0x71: low nibble 1 (groups 0, 2, 4, 6), high nibble 7 (groups 1, 3, 5, 7).
        // value = 0.5 * (j + 1) * nibble - 0.25 * 2j.
        let pairs: [(u8, u8); 8] = std::array::from_fn(|j| (j as u8 + 1, 2 * j as u8));
        let mut b = [h(0.5), h(0.25)].concat();
        b.extend(pack_k4(pairs));
        b.extend([0x71; 128]);
        let out = run(GgmlType::Q4_K, &b, 256);
        for j in 0..8 {
            let nibble = if j % 2 == 0 { 1.0 } else { 7.0 };
            let want = 0.5 * (j as f32 + 1.0) * nibble - 0.25 * (2.0 * j as f32);
            assert!(
                out[32 * j..32 * j + 32].iter().all(|&v| v == want),
                "group {j}"
            );
        }
    }

    #[test]
    fn q5_k_block() {
        // Same scales as q4_k; qs 0x71; qh: every element of group j gets its 5th bit iff j is
        // odd (bit j of each qh byte, here 0b1010_1010 = 0xAA).
        let pairs: [(u8, u8); 8] = std::array::from_fn(|j| (j as u8 + 1, 2 * j as u8));
        let mut b = [h(0.5), h(0.25)].concat();
        b.extend(pack_k4(pairs));
        b.extend([0xAA; 32]);
        b.extend([0x71; 128]);
        let out = run(GgmlType::Q5_K, &b, 256);
        for j in 0..8 {
            let q = if j % 2 == 0 { 1.0 } else { 7.0 + 16.0 };
            let want = 0.5 * (j as f32 + 1.0) * q - 0.25 * (2.0 * j as f32);
            assert!(
                out[32 * j..32 * j + 32].iter().all(|&v| v == want),
                "group {j}"
            );
        }
    }

    #[test]
    fn q6_k_block() {
        // d = 0.5; scales[g] = g - 8 (i8). ql = 0x21 (lo 1, hi 2), qh = 0b11_10_01_00.
        // Within each 128-half n, element l (0..32) of quarter k (0..4) takes its low 4 bits
        // from ql[l + 32*(k%2)] (nibble k/2) and its high 2 bits from qh[l] at shift 2k:
        // quarter 0: 1 | 0<<4 = 1, quarter 1: 1 | 1<<4 = 17, quarter 2: 2 | 2<<4 = 34,
        // quarter 3: 2 | 3<<4 = 50; q6 - 32 = -31, -15, 2, 18. Scale index = 8n + l/16 + 2k.
        let mut b = vec![0x21u8; 128];
        b.extend([0xE4; 64]);
        b.extend((0..16i32).map(|g| (g - 8) as i8 as u8));
        b.extend(h(0.5));
        let out = run(GgmlType::Q6_K, &b, 256);
        let q = [-31.0, -15.0, 2.0, 18.0];
        for n in 0..2 {
            for (k, &qk) in q.iter().enumerate() {
                for l in 0..32 {
                    let scale = (8 * n + l / 16 + 2 * k) as f32 - 8.0;
                    assert_eq!(
                        out[128 * n + 32 * k + l],
                        0.5 * scale * qk,
                        "n{n} k{k} l{l}"
                    );
                }
            }
        }
    }

    #[test]
    fn bad_input_is_refused() {
        let mut out = Vec::new();
        let err = dequantize(GgmlType::IQ2_XXS, &[0; 66], 256, &mut out).expect_err("iq2");
        assert!(err.to_string().contains("iq2_xxs"), "{err}");
        assert!(!supports(GgmlType::IQ2_XXS) && supports(GgmlType::Q6_K));
        let err = dequantize(GgmlType::Q4_0, &[0; 18], 31, &mut out).expect_err("partial");
        assert!(matches!(err, DequantError::PartialBlock { .. }));
        let err = dequantize(GgmlType::Q4_0, &[0; 17], 32, &mut out).expect_err("short");
        assert!(matches!(
            err,
            DequantError::WrongLength { expected: 18, .. }
        ));
        let err = dequantize(GgmlType::F32, &[0; 4], 2, &mut out).expect_err("short f32");
        assert!(matches!(err, DequantError::WrongLength { .. }));
    }
}
