//! [`TensorInfo`]: one tensor's name, shape, type and data offset, and the checked arithmetic
//! that validates a shape and computes its size.

use crate::error::{short, GgufError};
use crate::limits::{MAX_DIMS, MAX_TENSOR_NAME_LEN};
use crate::types::GgmlType;

/// One tensor's description from the tensor-info section.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TensorInfo {
    /// Tensor name, e.g. `blk.0.attn_q.weight`.
    pub name: String,
    /// Dimensions, innermost (contiguous) first, as stored in the file: 1 to 4 entries, each ≥ 1.
    pub dims: Vec<u64>,
    /// Element type.
    pub ggml_type: GgmlType,
    /// Offset of the data relative to the start of the data section
    /// ([`GgufFile::data_offset`](crate::GgufFile::data_offset)).
    pub offset: u64,
}

impl TensorInfo {
    /// A tensor description with offset 0 (the writer computes offsets itself).
    pub fn new(name: impl Into<String>, dims: Vec<u64>, ggml_type: GgmlType) -> Self {
        TensorInfo {
            name: name.into(),
            dims,
            ggml_type,
            offset: 0,
        }
    }

    /// Number of elements (product of the dimensions). Exact for every tensor the reader
    /// returns; for a hand-built, invalid shape it saturates at `u64::MAX`.
    pub fn n_elements(&self) -> u64 {
        self.dims.iter().fold(1u64, |acc, &d| acc.saturating_mul(d))
    }

    /// Size of the data in bytes (`n_elements / block_size * type_size`). Exact for every tensor
    /// the reader returns; for a hand-built, invalid shape it saturates at `u64::MAX`.
    pub fn byte_size(&self) -> u64 {
        (self.n_elements() / self.ggml_type.block_size()).saturating_mul(self.ggml_type.type_size())
    }

    /// Checks the name length, dimension count, zero dimensions, element-count overflow (ggml
    /// counts in `i64`) and block-size divisibility; returns the size in bytes.
    pub fn validate(&self) -> Result<u64, GgufError> {
        let name_len = self.name.len() as u64;
        if name_len > MAX_TENSOR_NAME_LEN {
            return Err(GgufError::TensorNameTooLong {
                name: short(&self.name),
                len: name_len,
                max: MAX_TENSOR_NAME_LEN,
            });
        }
        byte_size_of(&self.name, &self.dims, self.ggml_type)
    }
}

/// Validates a shape for `ggml_type` and returns its size in bytes, all arithmetic checked.
pub(crate) fn byte_size_of(
    name: &str,
    dims: &[u64],
    ggml_type: GgmlType,
) -> Result<u64, GgufError> {
    if dims.is_empty() || dims.len() > MAX_DIMS {
        return Err(GgufError::InvalidDimCount {
            tensor: short(name),
            n_dims: dims.len() as u64,
        });
    }
    if let Some(index) = dims.iter().position(|&d| d == 0) {
        return Err(GgufError::ZeroDimension {
            tensor: short(name),
            index,
        });
    }
    let overflow = || GgufError::ElementCountOverflow {
        tensor: short(name),
        dims: dims.to_vec(),
    };
    let mut n_elements: u64 = 1;
    for &d in dims {
        n_elements = n_elements.checked_mul(d).ok_or_else(overflow)?;
    }
    if n_elements > i64::MAX as u64 {
        return Err(overflow());
    }
    let block_size = ggml_type.block_size();
    let first_dim = dims.first().copied().unwrap_or(0);
    if first_dim % block_size != 0 {
        return Err(GgufError::BlockSizeMismatch {
            tensor: short(name),
            ggml_type,
            first_dim,
            block_size,
        });
    }
    (n_elements / block_size)
        .checked_mul(ggml_type.type_size())
        .ok_or_else(|| GgufError::TensorSizeOverflow {
            tensor: short(name),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        let t = TensorInfo::new("w", vec![576, 49152], GgmlType::Q8_0);
        assert_eq!(t.n_elements(), 576 * 49152);
        assert_eq!(t.byte_size(), 30_081_024); // gguf-py: SmolLM2 token_embd.weight
        assert_eq!(t.validate().ok(), Some(30_081_024));
        let f = TensorInfo::new("n", vec![576], GgmlType::F32);
        assert_eq!(f.byte_size(), 2304);
    }

    #[test]
    fn invalid_shapes() {
        let check = |dims: Vec<u64>, t| TensorInfo::new("x", dims, t).validate();
        assert!(matches!(
            check(vec![], GgmlType::F32),
            Err(GgufError::InvalidDimCount { .. })
        ));
        assert!(matches!(
            check(vec![1; 5], GgmlType::F32),
            Err(GgufError::InvalidDimCount { .. })
        ));
        assert!(matches!(
            check(vec![4, 0], GgmlType::F32),
            Err(GgufError::ZeroDimension { index: 1, .. })
        ));
        assert!(matches!(
            check(vec![1 << 32, 1 << 32], GgmlType::F32),
            Err(GgufError::ElementCountOverflow { .. })
        ));
        assert!(matches!(
            check(vec![1 << 62, 4], GgmlType::F32),
            Err(GgufError::ElementCountOverflow { .. })
        ));
        assert!(matches!(
            check(vec![33], GgmlType::Q4_0),
            Err(GgufError::BlockSizeMismatch { block_size: 32, .. })
        ));
        assert!(matches!(
            check(vec![1 << 62], GgmlType::F32),
            Err(GgufError::TensorSizeOverflow { .. })
        ));
        let long = TensorInfo::new("n".repeat(64), vec![1], GgmlType::F32);
        assert!(matches!(
            long.validate(),
            Err(GgufError::TensorNameTooLong { len: 64, .. })
        ));
        assert!(TensorInfo::new("n".repeat(63), vec![1], GgmlType::F32)
            .validate()
            .is_ok());
    }
}
