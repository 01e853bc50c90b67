//! Every error path: a valid sample file with specific bytes corrupted, plus truncation at every
//! offset and a deterministic mutation loop that must never panic.

use super::*;
use crate::GgufError as E;

/// Sample bytes with `value` written at `at`.
fn patched(at: usize, value: &[u8]) -> Vec<u8> {
    let mut b = sample_bytes();
    patch(&mut b, at, value);
    b
}

/// Offsets of a tensor's `(n_dims, first dim, type, offset)` fields in the sample.
fn tensor_fields(bytes: &[u8], name: &str) -> (usize, usize, usize, usize) {
    let n_dims_at = after_string(bytes, name);
    let n_dims = u32::from_le_bytes(bytes[n_dims_at..n_dims_at + 4].try_into().unwrap()) as usize;
    let dims_at = n_dims_at + 4;
    let type_at = dims_at + 8 * n_dims;
    (n_dims_at, dims_at, type_at, type_at + 4)
}

/// Offset of a metadata value's type field and of its payload.
fn kv_fields(bytes: &[u8], key: &str) -> (usize, usize) {
    let type_at = after_string(bytes, key);
    (type_at, type_at + 4)
}

#[test]
fn truncation_at_every_offset_is_an_error() {
    let bytes = sample_bytes();
    let file = parse(&bytes).unwrap();
    for len in 0..bytes.len() {
        let err = parse(&bytes[..len]).expect_err("truncated file accepted");
        if (len as u64) < file.data_offset {
            assert!(matches!(err, E::UnexpectedEof { .. }), "len {len}: {err}");
        } else {
            assert!(
                matches!(err, E::TensorOutOfBounds { .. }),
                "len {len}: {err}"
            );
        }
    }
    // The offset reported is where the data ran out.
    assert!(matches!(
        parse(&bytes[..10]),
        Err(E::UnexpectedEof {
            offset: 8,
            needed: 8
        })
    ));
}

#[test]
fn bad_magic() {
    assert!(matches!(
        parse(&patched(0, b"GGUG")),
        Err(E::BadMagic {
            found: [b'G', b'G', b'U', b'G']
        })
    ));
    assert!(matches!(parse(b"GGML\0\0\0\0"), Err(E::BadMagic { .. })));
}

#[test]
fn unsupported_versions() {
    for v in [0u32, 1, 4, u32::MAX] {
        let err = parse(&patched(4, &v.to_le_bytes())).unwrap_err();
        assert!(
            matches!(err, E::UnsupportedVersion { version } if version == v),
            "{err}"
        );
    }
}

#[test]
fn huge_counts() {
    let max = u64::MAX.to_le_bytes();
    assert!(matches!(
        parse(&patched(8, &max)),
        Err(E::TooManyTensors {
            count: u64::MAX,
            ..
        })
    ));
    assert!(matches!(
        parse(&patched(16, &max)),
        Err(E::TooManyKv {
            count: u64::MAX,
            ..
        })
    ));
    // Within the limits, but more than the file holds.
    let many = 60_000u64.to_le_bytes();
    assert!(matches!(
        parse(&patched(8, &many)),
        Err(E::UnexpectedEof { .. })
    ));
    assert!(matches!(
        parse(&patched(16, &many)),
        Err(E::UnexpectedEof { .. })
    ));
    // Stricter limits.
    let small = Limits {
        max_kv: 5,
        ..Limits::default()
    };
    assert!(matches!(
        read_bytes(&sample_bytes(), &small),
        Err(E::TooManyKv { count: 30, max: 5 })
    ));
    let small = Limits {
        max_tensors: 3,
        ..Limits::default()
    };
    assert!(matches!(
        read_bytes(&sample_bytes(), &small),
        Err(E::TooManyTensors { count: 7, max: 3 })
    ));
}

#[test]
fn string_lengths() {
    // The first key's length field is at offset 24.
    let err = parse(&patched(24, &u64::MAX.to_le_bytes())).unwrap_err();
    assert!(
        matches!(
            err,
            E::StringTooLong {
                offset: 24,
                len: u64::MAX,
                ..
            }
        ),
        "{err}"
    );
    // Under the limit but past the end of the file.
    let err = parse(&patched(24, &(1u64 << 20).to_le_bytes())).unwrap_err();
    assert!(
        matches!(
            err,
            E::UnexpectedEof {
                offset: 32,
                needed: 1_048_576
            }
        ),
        "{err}"
    );
    // A string value, and the string limit.
    let bytes = sample_bytes();
    let (_, at) = kv_fields(&bytes, "t.str");
    assert!(matches!(
        parse(&patched(at, &u64::MAX.to_le_bytes())),
        Err(E::StringTooLong { .. })
    ));
    let tiny = Limits {
        max_string_len: 4,
        ..Limits::default()
    };
    assert!(matches!(
        read_bytes(&bytes, &tiny),
        Err(E::StringTooLong { len: 20, .. })
    ));
}

#[test]
fn absurd_array_counts() {
    let bytes = sample_bytes();
    for key in ["a.u32", "a.str", "a.nested", "a.bools", "a.u8"] {
        let (_, at) = kv_fields(&bytes, key);
        let count_at = at + 4;
        let err = parse(&patched(count_at, &u64::MAX.to_le_bytes())).unwrap_err();
        assert!(
            matches!(&err, E::ArrayTooLong { key: k, len: u64::MAX, .. } if k == key),
            "{err}"
        );
        // Under the limit, but needing more bytes than remain (checked before allocating).
        let err = parse(&patched(count_at, &(1u64 << 23).to_le_bytes())).unwrap_err();
        assert!(matches!(err, E::UnexpectedEof { .. }), "{key}: {err}");
    }
    let small = Limits {
        max_array_len: 4,
        ..Limits::default()
    };
    assert!(matches!(
        read_bytes(&bytes, &small),
        Err(E::ArrayTooLong { len: 5, .. })
    ));
}

#[test]
fn unknown_value_types_and_nesting() {
    let bytes = sample_bytes();
    let (type_at, _) = kv_fields(&bytes, "t.u8");
    let err = parse(&patched(type_at, &13u32.to_le_bytes())).unwrap_err();
    assert!(
        matches!(&err, E::UnknownValueType { key, type_id: 13, .. } if key == "t.u8"),
        "{err}"
    );
    let (_, elem_at) = kv_fields(&bytes, "a.u32");
    let err = parse(&patched(elem_at, &99u32.to_le_bytes())).unwrap_err();
    assert!(
        matches!(err, E::UnknownValueType { type_id: 99, .. }),
        "{err}"
    );
    // a.nested's first inner array: turn its element type (u32) into "array" → depth 3.
    let (_, outer_at) = kv_fields(&bytes, "a.nested");
    let inner_type_at = outer_at + 4 + 8;
    assert_eq!(bytes[inner_type_at..inner_type_at + 4], 4u32.to_le_bytes());
    let err = parse(&patched(inner_type_at, &9u32.to_le_bytes())).unwrap_err();
    assert!(
        matches!(err, E::ArrayNestingTooDeep { max_depth: 2, .. }),
        "{err}"
    );
}

#[test]
fn invalid_bools() {
    let bytes = sample_bytes();
    let (_, at) = kv_fields(&bytes, "t.flag");
    let err = parse(&patched(at, &[2])).unwrap_err();
    assert!(
        matches!(&err, E::InvalidBool { key, value: 2, offset } if key == "t.flag" && *offset == at as u64),
        "{err}"
    );
    let (_, at) = kv_fields(&bytes, "a.bools");
    let err = parse(&patched(at + 12 + 1, &[0xff])).unwrap_err();
    assert!(matches!(err, E::InvalidBool { value: 0xff, .. }), "{err}");
}

#[test]
fn duplicate_key_and_bad_utf8_key() {
    let bytes = sample_bytes();
    // "t.u16" → "t.u32" (same length) duplicates a later key.
    let at = after_string(&bytes, "t.u16") - 2;
    let err = parse(&patched(at, b"32")).unwrap_err();
    assert!(
        matches!(&err, E::DuplicateKey { key } if key == "t.u32"),
        "{err}"
    );
    let at = after_string(&bytes, "t.u16") - 1;
    let err = parse(&patched(at, &[0xff])).unwrap_err();
    assert!(matches!(err, E::InvalidKeyUtf8 { .. }), "{err}");
}

#[test]
fn bad_alignment() {
    let bytes = sample_bytes();
    let (type_at, at) = kv_fields(&bytes, "general.alignment");
    for bad in [0u32, 3, 48] {
        let err = parse(&patched(at, &bad.to_le_bytes())).unwrap_err();
        assert!(
            matches!(err, E::InvalidAlignment { alignment } if alignment == u64::from(bad)),
            "{err}"
        );
    }
    let err = parse(&patched(type_at, &5u32.to_le_bytes())).unwrap_err();
    assert!(
        matches!(
            err,
            E::AlignmentWrongType {
                found: crate::ValueType::I32
            }
        ),
        "{err}"
    );
    // A smaller power of two still accepts the file (offsets stay multiples of it).
    assert_eq!(
        parse(&patched(at, &32u32.to_le_bytes())).unwrap().alignment,
        32
    );
}

#[test]
fn tensor_offsets() {
    let bytes = sample_bytes();
    let file = parse(&bytes).unwrap();
    let (.., offset_at) = tensor_fields(&bytes, "tensor.q4_k");
    let set = |v: u64| parse(&patched(offset_at, &v.to_le_bytes())).unwrap_err();
    // Past the end.
    let past = (bytes.len() as u64).next_multiple_of(64);
    assert!(matches!(set(past), E::TensorOutOfBounds { .. }));
    // Overflowing data_offset + offset.
    assert!(matches!(set(u64::MAX - 63), E::TensorOutOfBounds { .. }));
    // Misaligned.
    let real = file.tensor("tensor.q4_k").unwrap().offset;
    let err = set(real + 1);
    assert!(
        matches!(&err, E::MisalignedTensor { tensor, alignment: 64, .. } if tensor == "tensor.q4_k"),
        "{err}"
    );
    // Overlapping: same offset as the first tensor.
    let err = set(0);
    assert!(matches!(err, E::OverlappingTensors { .. }), "{err}");
    // Partial overlap: starts inside the previous tensor.
    let prev = file.tensor("tensor.q4_0").unwrap();
    assert!(prev.byte_size() > 64);
    let err = set(prev.offset + 64);
    assert!(
        matches!(&err, E::OverlappingTensors { first, second } if first == "tensor.q4_0" && second == "tensor.q4_k"),
        "{err}"
    );
}

#[test]
fn tensor_types_and_shapes() {
    let bytes = sample_bytes();
    let (n_dims_at, dims_at, type_at, _) = tensor_fields(&bytes, "tensor.q4_0");
    for removed in [4u32, 5, 31, 36, 43, u32::MAX] {
        let err = parse(&patched(type_at, &removed.to_le_bytes())).unwrap_err();
        assert!(
            matches!(&err, E::UnknownGgmlType { type_id, tensor } if *type_id == removed && tensor == "tensor.q4_0"),
            "{err}"
        );
    }
    let err = parse(&patched(dims_at + 8, &0u64.to_le_bytes())).unwrap_err();
    assert!(matches!(err, E::ZeroDimension { index: 1, .. }), "{err}");
    let err = parse(&patched(dims_at, &33u64.to_le_bytes())).unwrap_err();
    assert!(
        matches!(
            err,
            E::BlockSizeMismatch {
                first_dim: 33,
                block_size: 32,
                ..
            }
        ),
        "{err}"
    );
    let mut b = sample_bytes();
    patch(&mut b, dims_at, &(1u64 << 40).to_le_bytes());
    patch(&mut b, dims_at + 8, &(1u64 << 40).to_le_bytes());
    assert!(matches!(parse(&b), Err(E::ElementCountOverflow { .. })));
    for n in [0u32, 5, u32::MAX] {
        let err = parse(&patched(n_dims_at, &n.to_le_bytes())).unwrap_err();
        assert!(
            matches!(err, E::InvalidDimCount { n_dims, .. } if n_dims == u64::from(n)),
            "{err}"
        );
    }
    // Same-type bigger shape that no longer fits in the file.
    let err = parse(&patched(dims_at + 8, &1000u64.to_le_bytes())).unwrap_err();
    assert!(matches!(err, E::TensorOutOfBounds { .. }), "{err}");
}

#[test]
fn tensor_names() {
    let bytes = sample_bytes();
    // "tensor.q4_0" → "tensor.q4_k" (same length) duplicates a later tensor.
    let at = after_string(&bytes, "tensor.q4_0") - 1;
    let err = parse(&patched(at, b"k")).unwrap_err();
    assert!(
        matches!(&err, E::DuplicateTensor { name } if name == "tensor.q4_k"),
        "{err}"
    );
    let err = parse(&patched(at, &[0xc3])).unwrap_err();
    assert!(matches!(err, E::InvalidTensorNameUtf8 { .. }), "{err}");
    // A 64-byte name (llama.cpp's limit is 63).
    let name_len_at = after_string(&bytes, "tensor.q4_0") - "tensor.q4_0".len() - 8;
    let err = parse(&patched(name_len_at, &64u64.to_le_bytes())).unwrap_err();
    assert!(matches!(err, E::TensorNameTooLong { len: 64, .. }), "{err}");
}

/// xorshift64*: deterministic pseudo-random numbers without a dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
}

#[test]
fn random_mutations_never_panic() {
    let bytes = sample_bytes();
    let header_len = parse(&bytes).unwrap().data_offset as usize;
    let interesting: [u64; 8] = [0, 1, 2, 63, 64, u64::MAX, u64::MAX / 2, 1 << 32];
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut ok = 0;
    for _ in 0..20_000 {
        let mut b = bytes.clone();
        for _ in 0..1 + rng.next() % 4 {
            let at = (rng.next() % header_len as u64) as usize;
            match rng.next() % 3 {
                0 => b[at] = rng.next() as u8,
                1 => b[at] ^= 1 << (rng.next() % 8),
                _ => {
                    let v = interesting[(rng.next() % 8) as usize].to_le_bytes();
                    let end = (at + 8).min(b.len());
                    b[at..end].copy_from_slice(&v[..end - at]);
                }
            }
        }
        if rng.next().is_multiple_of(8) {
            b.truncate((rng.next() % b.len() as u64) as usize);
        }
        if let Ok(f) = parse(&b) {
            ok += 1;
            assert!(f.data_offset <= f.file_len);
            for t in &f.tensors {
                assert!(f.tensor_data_range(t).end <= f.file_len);
            }
        }
    }
    assert!(
        ok > 0,
        "no mutant parsed at all: the mutations are too destructive to be useful"
    );
}
