//! Fuzz target `parse`: `read_bytes` must never panic; whatever it accepts must satisfy the
//! reader's documented invariants and survive a write → read round trip unchanged.
#![no_main]

use libfuzzer_sys::fuzz_target;
use vazhi_gguf::{read_bytes, write_gguf, GgufFile, Limits, TensorData};

fn check_invariants(file: &GgufFile, len: usize) {
    assert_eq!(file.file_len, len as u64);
    assert!(file.data_offset <= file.file_len);
    assert!(file.alignment.is_power_of_two());
    assert_eq!(file.data_offset % file.alignment, 0);
    let mut ranges: Vec<_> = file
        .tensors
        .iter()
        .map(|t| file.tensor_data_range(t))
        .collect();
    for (t, r) in file.tensors.iter().zip(&ranges) {
        assert_eq!(t.offset % file.alignment, 0);
        assert!(r.start < r.end && r.end <= file.file_len);
    }
    ranges.sort_by_key(|r| r.start);
    for w in ranges.windows(2) {
        assert!(w[0].end <= w[1].start, "overlap accepted");
    }
}

fuzz_target!(|data: &[u8]| {
    let small = Limits {
        max_tensors: 8,
        max_kv: 8,
        max_string_len: 64,
        max_array_len: 16,
    };
    if let Ok(file) = read_bytes(data, &small) {
        check_invariants(&file, data.len());
    }
    let Ok(file) = read_bytes(data, &Limits::default()) else {
        return;
    };
    check_invariants(&file, data.len());

    let tensors: Vec<TensorData<'_>> = file
        .tensors
        .iter()
        .map(|t| {
            let r = file.tensor_data_range(t);
            TensorData {
                name: &t.name,
                dims: &t.dims,
                ggml_type: t.ggml_type,
                data: &data[r.start as usize..r.end as usize],
            }
        })
        .collect();
    let mut out = Vec::new();
    write_gguf(&mut out, &file.metadata, &tensors).expect("re-writing an accepted file failed");
    let again = read_bytes(&out, &Limits::default()).expect("re-reading a written file failed");
    assert_eq!(again.version, 3);
    assert_eq!(again.metadata, file.metadata);
    assert_eq!(again.alignment, file.alignment);
    assert_eq!(again.tensors.len(), file.tensors.len());
    for ((a, b), original) in again.tensors.iter().zip(&file.tensors).zip(&tensors) {
        assert_eq!(
            (&a.name, &a.dims, a.ggml_type),
            (&b.name, &b.dims, b.ggml_type)
        );
        let r = again.tensor_data_range(a);
        assert_eq!(&out[r.start as usize..r.end as usize], original.data);
    }
    // The writer's layout is canonical: writing the re-read file again is a fixed point.
    let tensors2: Vec<TensorData<'_>> = again
        .tensors
        .iter()
        .map(|t| {
            let r = again.tensor_data_range(t);
            TensorData {
                name: &t.name,
                dims: &t.dims,
                ggml_type: t.ggml_type,
                data: &out[r.start as usize..r.end as usize],
            }
        })
        .collect();
    let mut out2 = Vec::new();
    write_gguf(&mut out2, &again.metadata, &tensors2).expect("second re-write failed");
    assert_eq!(out2, out, "writer output is not a fixed point");
});
