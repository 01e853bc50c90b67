//! Safetensors element types and conversions between them and `f32`.

use half::{bf16, f16};

use super::HfError;

/// A safetensors dtype, by its name in the file header.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Dtype {
    /// 64-bit float.
    F64,
    /// 32-bit float.
    F32,
    /// IEEE half.
    F16,
    /// bfloat16.
    BF16,
    /// Signed 64-bit integer.
    I64,
    /// Signed 32-bit integer.
    I32,
    /// Signed 16-bit integer.
    I16,
    /// Signed 8-bit integer.
    I8,
    /// Unsigned 8-bit integer (also what bitsandbytes stores packed 4-bit weights in).
    U8,
    /// Unsigned 16-bit integer.
    U16,
    /// Unsigned 32-bit integer.
    U32,
    /// Unsigned 64-bit integer.
    U64,
    /// Boolean, one byte.
    Bool,
    /// 8-bit float, e4m3.
    F8E4M3,
    /// 8-bit float, e5m2.
    F8E5M2,
    /// Any other name; its size is unknown, so such tensors can only be refused.
    Other(String),
}

impl Dtype {
    /// Parses a header dtype name (`"F32"`, `"BF16"`, …).
    pub fn parse(name: &str) -> Dtype {
        match name {
            "F64" => Dtype::F64,
            "F32" => Dtype::F32,
            "F16" => Dtype::F16,
            "BF16" => Dtype::BF16,
            "I64" => Dtype::I64,
            "I32" => Dtype::I32,
            "I16" => Dtype::I16,
            "I8" => Dtype::I8,
            "U8" => Dtype::U8,
            "U16" => Dtype::U16,
            "U32" => Dtype::U32,
            "U64" => Dtype::U64,
            "BOOL" => Dtype::Bool,
            "F8_E4M3" => Dtype::F8E4M3,
            "F8_E5M2" => Dtype::F8E5M2,
            other => Dtype::Other(other.to_owned()),
        }
    }

    /// The header name.
    pub fn name(&self) -> &str {
        match self {
            Dtype::F64 => "F64",
            Dtype::F32 => "F32",
            Dtype::F16 => "F16",
            Dtype::BF16 => "BF16",
            Dtype::I64 => "I64",
            Dtype::I32 => "I32",
            Dtype::I16 => "I16",
            Dtype::I8 => "I8",
            Dtype::U8 => "U8",
            Dtype::U16 => "U16",
            Dtype::U32 => "U32",
            Dtype::U64 => "U64",
            Dtype::Bool => "BOOL",
            Dtype::F8E4M3 => "F8_E4M3",
            Dtype::F8E5M2 => "F8_E5M2",
            Dtype::Other(name) => name,
        }
    }

    /// Bytes per element; `None` for unknown dtypes.
    pub fn size(&self) -> Option<usize> {
        Some(match self {
            Dtype::F64 | Dtype::I64 | Dtype::U64 => 8,
            Dtype::F32 | Dtype::I32 | Dtype::U32 => 4,
            Dtype::F16 | Dtype::BF16 | Dtype::I16 | Dtype::U16 => 2,
            Dtype::I8 | Dtype::U8 | Dtype::Bool | Dtype::F8E4M3 | Dtype::F8E5M2 => 1,
            Dtype::Other(_) => return None,
        })
    }

    /// Whether this is a float type that [`TensorRef::to_f32`](super::TensorRef::to_f32) reads.
    pub fn is_float(&self) -> bool {
        matches!(self, Dtype::F64 | Dtype::F32 | Dtype::F16 | Dtype::BF16)
    }
}

impl std::fmt::Display for Dtype {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Appends `bytes` (little-endian elements of `dtype`) to `out` as `f32`; `tensor` names the
/// tensor in the error for non-float dtypes.
pub fn decode_to_f32(
    tensor: &str,
    dtype: &Dtype,
    bytes: &[u8],
    out: &mut Vec<f32>,
) -> Result<(), HfError> {
    match dtype {
        Dtype::F32 => out.extend(
            bytes
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])),
        ),
        Dtype::F16 => out.extend(
            bytes
                .chunks_exact(2)
                .map(|b| f16::from_le_bytes([b[0], b[1]]).to_f32()),
        ),
        Dtype::BF16 => out.extend(
            bytes
                .chunks_exact(2)
                .map(|b| bf16::from_le_bytes([b[0], b[1]]).to_f32()),
        ),
        Dtype::F64 => {
            out.extend(bytes.chunks_exact(8).map(|b| {
                f64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]) as f32
            }))
        }
        other => {
            return Err(HfError::UnsupportedDtype {
                tensor: tensor.to_owned(),
                dtype: other.name().to_owned(),
            })
        }
    }
    Ok(())
}

/// Encodes `values` as little-endian `dtype` elements (F32, F16 or BF16; the narrowing
/// conversions round to nearest, ties to even, as PyTorch does).
pub fn encode_f32(values: &[f32], dtype: &Dtype) -> Result<Vec<u8>, HfError> {
    let mut out = Vec::with_capacity(values.len() * dtype.size().unwrap_or(4));
    match dtype {
        Dtype::F32 => values
            .iter()
            .for_each(|v| out.extend_from_slice(&v.to_le_bytes())),
        Dtype::F16 => values
            .iter()
            .for_each(|v| out.extend_from_slice(&f16::from_f32(*v).to_le_bytes())),
        Dtype::BF16 => values
            .iter()
            .for_each(|v| out.extend_from_slice(&bf16::from_f32(*v).to_le_bytes())),
        other => {
            return Err(HfError::UnsupportedDtype {
                tensor: "(output)".to_owned(),
                dtype: other.name().to_owned(),
            })
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn float_round_trips_and_rounding() {
        let values = [0.0f32, -1.5, 3.140625, 65504.0, 1.0e-8];
        for dtype in [Dtype::F32, Dtype::F16, Dtype::BF16] {
            let bytes = encode_f32(&values, &dtype).expect("encode");
            assert_eq!(bytes.len(), values.len() * dtype.size().expect("size"));
            let mut back = Vec::new();
            decode_to_f32("t", &dtype, &bytes, &mut back).expect("decode");
            assert_eq!(back[1], -1.5, "{dtype}");
        }
        // 1 + 2^-8 is exactly half-way between two bf16 values: ties go to the even one (1.0).
        let tie = encode_f32(&[1.0 + 1.0 / 256.0], &Dtype::BF16).expect("encode");
        assert_eq!(u16::from_le_bytes([tie[0], tie[1]]), 0x3f80);
        // 1 + 3·2^-8 ties between 1+2^-7 (odd) and 1+2^-6 (even): rounds up.
        let tie = encode_f32(&[1.0 + 3.0 / 256.0], &Dtype::BF16).expect("encode");
        assert_eq!(u16::from_le_bytes([tie[0], tie[1]]), 0x3f82);
    }

    #[test]
    fn integer_dtypes_are_not_floats() {
        let mut out = Vec::new();
        let err = decode_to_f32("w.qweight", &Dtype::U8, &[1, 2], &mut out).expect_err("u8");
        assert!(err.to_string().contains("w.qweight"));
        assert_eq!(Dtype::parse("F8_E4M3").size(), Some(1));
        assert_eq!(Dtype::parse("Q4").size(), None);
    }
}
