//! Round trips through the writer and the reader, and writer misuse.

use super::*;
use crate::{GgufError, GgufWriter, TensorInfo, ValueType};

#[test]
fn round_trip_every_value_type() {
    let metadata = sample_metadata();
    let bytes = sample_bytes();
    let file = parse(&bytes).unwrap();
    assert_eq!(file.version, 3);
    assert_eq!(file.metadata, metadata);
    assert_eq!(file.alignment, u64::from(SAMPLE_ALIGNMENT));
    assert_eq!(file.data_offset % file.alignment, 0);
    assert_eq!(file.file_len, bytes.len() as u64);
    assert_eq!(file.architecture(), Some("llama"));
    assert_eq!(file.file_type(), Some(15));
    let nested = file.metadata.get_array("a.nested").unwrap();
    assert_eq!(nested.element_type(), ValueType::Array);
    assert_eq!(
        nested
            .get(1)
            .unwrap()
            .as_array()
            .unwrap()
            .as_strings()
            .unwrap()[0]
            .as_str(),
        Some("x")
    );

    let expected = sample_tensors();
    assert_eq!(file.tensors.len(), expected.len());
    let mut params = 0;
    for (t, (name, dims, ty, data)) in file.tensors.iter().zip(&expected) {
        assert_eq!((&t.name, &t.dims, t.ggml_type), (name, dims, *ty));
        assert_eq!(t.offset % file.alignment, 0);
        let r = file.tensor_data_range(t);
        assert_eq!(&bytes[r.start as usize..r.end as usize], &data[..]);
        assert_eq!(file.tensor(name), Some(t));
        params += t.n_elements();
    }
    assert_eq!(file.parameter_count(), params);
    assert_eq!(file.tensor("missing"), None);

    // Writing what was read reproduces the bytes.
    let data: Vec<TensorData<'_>> = file
        .tensors
        .iter()
        .map(|t| {
            let r = file.tensor_data_range(t);
            TensorData {
                name: &t.name,
                dims: &t.dims,
                ggml_type: t.ggml_type,
                data: &bytes[r.start as usize..r.end as usize],
            }
        })
        .collect();
    let mut again = Vec::new();
    write_gguf(&mut again, &file.metadata, &data).unwrap();
    assert_eq!(again, bytes);
}

#[test]
fn version_2_is_accepted() {
    let mut bytes = sample_bytes();
    patch(&mut bytes, 4, &2u32.to_le_bytes());
    let file = parse(&bytes).unwrap();
    assert_eq!(file.version, 2);
    assert_eq!(file.metadata, sample_metadata());
}

#[test]
fn empty_file_round_trip() {
    let mut out = Vec::new();
    write_gguf(&mut out, &Metadata::new(), &[]).unwrap();
    assert_eq!(out.len(), 32); // 24-byte header padded to 32
    let file = parse(&out).unwrap();
    assert!(file.metadata.is_empty() && file.tensors.is_empty());
    assert_eq!(file.data_offset, 32);
    assert_eq!(file.parameter_count(), 0);
    // Without its padding the data section would start past the end: truncated.
    assert!(matches!(
        parse(&out[..24]),
        Err(GgufError::UnexpectedEof { offset: 24, .. })
    ));
}

#[test]
fn streaming_writer_in_chunks() {
    let tensors = sample_tensors();
    let infos: Vec<TensorInfo> = tensors
        .iter()
        .map(|(n, d, t, _)| TensorInfo::new(n.as_str(), d.clone(), *t))
        .collect();
    let mut w = GgufWriter::new(Vec::new(), &sample_metadata(), &infos).unwrap();
    assert_eq!(w.alignment(), 64);
    let planned = w.tensors().to_vec();
    for (_, _, _, data) in &tensors {
        for chunk in data.chunks(7) {
            w.write_tensor_chunk(chunk).unwrap();
        }
    }
    let total = w.total_len();
    let out = w.finish().unwrap();
    assert_eq!(out.len() as u64, total);
    assert_eq!(out, sample_bytes());
    assert_eq!(parse(&out).unwrap().tensors, planned);
}

#[test]
fn writer_rejects_misuse() {
    let meta = Metadata::new();
    let infos = vec![
        TensorInfo::new("a", vec![4], GgmlType::F32),
        TensorInfo::new("b", vec![2], GgmlType::F16),
    ];
    // Wrong size for whole-tensor writes.
    let mut w = GgufWriter::new(Vec::new(), &meta, &infos).unwrap();
    assert!(matches!(
        w.write_tensor_data(&[0; 15]),
        Err(GgufError::TensorDataSizeMismatch {
            expected: 16,
            actual: 15,
            ..
        })
    ));
    // A chunk running past the end of the tensor.
    w.write_tensor_chunk(&[0; 10]).unwrap();
    assert!(matches!(
        w.write_tensor_chunk(&[0; 7]),
        Err(GgufError::TensorDataSizeMismatch {
            expected: 16,
            actual: 17,
            ..
        })
    ));
    // Whole-tensor write while a tensor is half written.
    assert!(matches!(
        w.write_tensor_data(&[0; 16]),
        Err(GgufError::TensorDataSizeMismatch { .. })
    ));
    w.write_tensor_chunk(&[0; 6]).unwrap();
    // finish too early.
    let early = GgufWriter::new(Vec::new(), &meta, &infos).unwrap();
    assert!(matches!(
        early.finish(),
        Err(GgufError::MissingTensorData {
            written: 0,
            declared: 2
        })
    ));
    w.write_tensor_data(&[0; 4]).unwrap();
    // Too many tensors.
    assert!(matches!(
        w.write_tensor_data(&[0; 4]),
        Err(GgufError::UnexpectedTensorData { declared: 2 })
    ));
    assert!(parse(&w.finish().unwrap()).is_ok());

    // write_gguf checks sizes before writing anything.
    let mut out = Vec::new();
    let bad = [TensorData {
        name: "a",
        dims: &[4],
        ggml_type: GgmlType::F32,
        data: &[0; 3],
    }];
    assert!(write_gguf(&mut out, &meta, &bad).is_err());
    assert!(out.is_empty());

    let check =
        |meta: &Metadata, infos: &[TensorInfo]| GgufWriter::new(Vec::new(), meta, infos).err();
    let dup = [
        TensorInfo::new("a", vec![1], GgmlType::F32),
        TensorInfo::new("a", vec![1], GgmlType::F32),
    ];
    assert!(matches!(
        check(&meta, &dup),
        Some(GgufError::DuplicateTensor { .. })
    ));
    let long = [TensorInfo::new("x".repeat(64), vec![1], GgmlType::F32)];
    assert!(matches!(
        check(&meta, &long),
        Some(GgufError::TensorNameTooLong { .. })
    ));
    let block = [TensorInfo::new("q", vec![16], GgmlType::Q4_K)];
    assert!(matches!(
        check(&meta, &block),
        Some(GgufError::BlockSizeMismatch { .. })
    ));

    let mut m = Metadata::new();
    m.insert("general.alignment", 64u64);
    assert!(matches!(
        check(&m, &[]),
        Some(GgufError::AlignmentWrongType {
            found: ValueType::U64
        })
    ));
    m.insert("general.alignment", 48u32);
    assert!(matches!(
        check(&m, &[]),
        Some(GgufError::InvalidAlignment { alignment: 48 })
    ));
    let mut m = Metadata::new();
    let deep = Array::from(vec![Array::from(vec![Array::from(vec![1u8])])]);
    m.insert("deep", deep);
    assert!(matches!(
        check(&m, &[]),
        Some(GgufError::ArrayNestingTooDeep { .. })
    ));
}

#[test]
fn read_file_and_short_reader() {
    let bytes = sample_bytes();
    let dir = std::env::temp_dir().join(format!("vazhi-gguf-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("sample.gguf");
    std::fs::write(&path, &bytes).unwrap();
    let from_file = crate::read_file(&path, &Limits::default()).unwrap();
    assert_eq!(from_file, parse(&bytes).unwrap());
    std::fs::remove_dir_all(&dir).unwrap();
    assert!(matches!(
        crate::read_file(&dir.join("nope.gguf"), &Limits::default()),
        Err(GgufError::Io(_))
    ));
    // A reader that ends before the length it claims.
    let short = &bytes[..100];
    assert!(matches!(
        crate::read_from(short, bytes.len() as u64, &Limits::default()),
        Err(GgufError::UnexpectedEof { offset: 100, .. })
    ));
    // A reader longer than the claimed length is only read up to it.
    let mut longer = bytes.clone();
    longer.extend_from_slice(&[0xAA; 1000]);
    let f = crate::read_from(&longer[..], bytes.len() as u64, &Limits::default()).unwrap();
    assert_eq!(f.file_len, bytes.len() as u64);
}
