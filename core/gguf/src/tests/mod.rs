//! In-crate tests: round trips, every error path on corrupted files, and real models.

#![allow(clippy::unwrap_used)]

mod corrupt;
mod real_models;
mod round_trip;

use crate::{
    read_bytes, write_gguf, Array, ArrayData, GgmlType, GgufFile, GgufString, Limits, Metadata,
    TensorData, Value,
};

/// Alignment used by the sample file.
pub(crate) const SAMPLE_ALIGNMENT: u32 = 64;

/// Metadata with every value type, arrays of every element type, a nested array and a custom
/// alignment. Every key is a distinct substring so tests can find it in the bytes.
pub(crate) fn sample_metadata() -> Metadata {
    let mut m = Metadata::new();
    m.insert("general.architecture", "llama");
    m.insert("general.alignment", SAMPLE_ALIGNMENT);
    m.insert("general.file_type", 15u32);
    m.insert("t.u8", 200u8);
    m.insert("t.i8", -5i8);
    m.insert("t.u16", 60_000u16);
    m.insert("t.i16", -30_000i16);
    m.insert("t.u32", 4_000_000_000u32);
    m.insert("t.i32", -2_000_000_000i32);
    m.insert("t.f32", f32::NAN);
    m.insert("t.flag", true);
    m.insert("t.str", "héllo");
    m.insert("t.raw", GgufString::from(vec![0xff, 0xfe, b'x']));
    m.insert("t.u64", u64::MAX);
    m.insert("t.i64", i64::MIN);
    m.insert("t.f64", -0.0f64);
    m.insert("a.u8", Array::from(vec![1u8, 2, 3]));
    m.insert("a.i8", Array::from(vec![-1i8, 0, 1]));
    m.insert("a.u16", Array::from(vec![1u16, 65_535]));
    m.insert("a.i16", Array::from(vec![-1i16]));
    m.insert("a.u32", Array::from(vec![7u32; 5]));
    m.insert("a.i32", Array::from(vec![-7i32, 7]));
    m.insert("a.f32", Array::from(vec![0.5f32, -1.25, f32::INFINITY]));
    m.insert("a.bools", Array::from(vec![true, false, true]));
    m.insert("a.str", Array::from(vec!["<s>", "", "ab"]));
    m.insert("a.u64", Array::from(vec![u64::MAX, 0]));
    m.insert("a.i64", Array::from(vec![i64::MIN]));
    m.insert("a.f64", Array::from(vec![1e300f64]));
    m.insert(
        "a.empty",
        Array::new(ArrayData::empty(crate::ValueType::F32)),
    );
    m.insert(
        "a.nested",
        Array::from(vec![
            Array::from(vec![1u32, 2]),
            Array::from(vec!["x"]),
            Array::new(ArrayData::empty(crate::ValueType::Bool)),
        ]),
    );
    m
}

/// Tensor data for the sample: `(name, dims, type)` with deterministic contents.
pub(crate) fn sample_tensors() -> Vec<(String, Vec<u64>, GgmlType, Vec<u8>)> {
    let specs: Vec<(&str, Vec<u64>, GgmlType)> = vec![
        ("tensor.f32", vec![4, 3], GgmlType::F32),
        ("tensor.q4_0", vec![64, 2], GgmlType::Q4_0),
        ("tensor.q4_k", vec![256], GgmlType::Q4_K),
        ("tensor.f16", vec![5], GgmlType::F16),
        ("tensor.q8_0", vec![32, 1, 1, 2], GgmlType::Q8_0),
        ("tensor.i8", vec![7], GgmlType::I8),
        // Last: exactly 64 bytes, so the file has no trailing padding and any truncation of it
        // must be an error.
        ("tensor.last", vec![16], GgmlType::F32),
    ];
    specs
        .into_iter()
        .enumerate()
        .map(|(i, (name, dims, t))| {
            let info = crate::TensorInfo::new(name, dims.clone(), t);
            let data = (0..info.byte_size())
                .map(|b| (b as u8).wrapping_mul(31) ^ i as u8)
                .collect();
            (name.to_owned(), dims, t, data)
        })
        .collect()
}

/// Writes `metadata` plus the sample tensors.
pub(crate) fn write_with(metadata: &Metadata) -> Vec<u8> {
    let tensors = sample_tensors();
    let data: Vec<TensorData<'_>> = tensors
        .iter()
        .map(|(name, dims, t, data)| TensorData {
            name,
            dims,
            ggml_type: *t,
            data,
        })
        .collect();
    let mut out = Vec::new();
    write_gguf(&mut out, metadata, &data).unwrap();
    out
}

/// The sample file's bytes.
pub(crate) fn sample_bytes() -> Vec<u8> {
    write_with(&sample_metadata())
}

/// Parses with default limits.
pub(crate) fn parse(bytes: &[u8]) -> Result<GgufFile, crate::GgufError> {
    read_bytes(bytes, &Limits::default())
}

/// Position of the only occurrence of `needle` in `hay`.
pub(crate) fn find_unique(hay: &[u8], needle: &[u8]) -> usize {
    let hits: Vec<usize> = hay
        .windows(needle.len())
        .enumerate()
        .filter(|(_, w)| *w == needle)
        .map(|(i, _)| i)
        .collect();
    assert_eq!(
        hits.len(),
        1,
        "{:?} found {} times",
        String::from_utf8_lossy(needle),
        hits.len()
    );
    hits[0]
}

/// Position of the byte right after a length-prefixed string `s` (a key or tensor name).
pub(crate) fn after_string(bytes: &[u8], s: &str) -> usize {
    let mut needle = (s.len() as u64).to_le_bytes().to_vec();
    needle.extend_from_slice(s.as_bytes());
    find_unique(bytes, &needle) + needle.len()
}

/// Overwrites `bytes[at..at + value.len()]`.
pub(crate) fn patch(bytes: &mut [u8], at: usize, value: &[u8]) {
    bytes[at..at + value.len()].copy_from_slice(value);
}

#[test]
fn value_helpers_on_sample() {
    let f = parse(&sample_bytes()).unwrap();
    let m = &f.metadata;
    assert_eq!(m.get("t.u8"), Some(&Value::U8(200)));
    assert_eq!(m.get_u32("t.u16"), Some(60_000));
    assert_eq!(m.get_u32("t.i8"), None);
    assert_eq!(m.get_u64("t.u64"), Some(u64::MAX));
    assert_eq!(m.get_str("t.str"), Some("héllo"));
    assert_eq!(m.get_str("t.raw"), None);
    assert_eq!(
        m.get_string("t.raw").map(GgufString::as_bytes),
        Some(&[0xff, 0xfe, b'x'][..])
    );
    assert!(m.get_f32("t.f32").unwrap().is_nan());
    assert_eq!(m.get_bool("t.flag"), Some(true));
    assert_eq!(m.get_string_array_len("a.str"), Some(3));
    assert_eq!(m.get("t.i64").map(Value::type_id), Some(11));
    assert_eq!(f.file_type_name(), Some("MOSTLY_Q4_K_M"));
}

/// Writes small valid seed files for the fuzzer into `$VAZHI_GGUF_SEED_DIR`:
/// `VAZHI_GGUF_SEED_DIR=core/gguf/fuzz/corpus/parse cargo test --release -p vazhi-gguf
/// write_fuzz_seeds -- --ignored`.
#[test]
#[ignore = "generates the fuzz corpus on request"]
fn write_fuzz_seeds() {
    let dir = std::path::PathBuf::from(std::env::var_os("VAZHI_GGUF_SEED_DIR").unwrap());
    std::fs::create_dir_all(&dir).unwrap();
    let mut seeds: Vec<(&str, Vec<u8>)> = vec![("sample_all_types", sample_bytes())];
    let mut empty = Vec::new();
    write_gguf(&mut empty, &Metadata::new(), &[]).unwrap();
    seeds.push(("empty", empty));

    let mut meta = Metadata::new();
    meta.insert("general.architecture", "llama");
    meta.insert("tokenizer.ggml.tokens", Array::from(vec!["<s>", "a", "b"]));
    meta.insert(
        "tokenizer.ggml.scores",
        Array::from(vec![0.0f32, -1.0, -2.0]),
    );
    let mut kv_only = Vec::new();
    write_gguf(&mut kv_only, &meta, &[]).unwrap();
    seeds.push(("kv_only", kv_only));

    for (name, alignment) in [("align1", 1u32), ("align8", 8), ("align32", 32)] {
        let mut m = meta.clone();
        m.insert("general.alignment", alignment);
        let q = vec![7u8; 18];
        let f = vec![1u8; 12];
        let k = vec![3u8; 144];
        let tensors = [
            TensorData {
                name: "q",
                dims: &[32],
                ggml_type: GgmlType::Q4_0,
                data: &q,
            },
            TensorData {
                name: "f",
                dims: &[3],
                ggml_type: GgmlType::F32,
                data: &f,
            },
            TensorData {
                name: "k",
                dims: &[256],
                ggml_type: GgmlType::Q4_K,
                data: &k,
            },
        ];
        let mut out = Vec::new();
        write_gguf(&mut out, &m, &tensors).unwrap();
        seeds.push((name, out));
    }
    let mut v2 = seeds[0].1.clone();
    patch(&mut v2, 4, &2u32.to_le_bytes());
    seeds.push(("sample_v2", v2));
    for (name, bytes) in seeds {
        assert!(parse(&bytes).is_ok(), "{name}");
        std::fs::write(dir.join(name), bytes).unwrap();
    }
}
