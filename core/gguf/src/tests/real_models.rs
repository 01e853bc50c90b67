//! Real models (SmolLM2-135M Q4_1, Gemma 3 270M Q4_K_M): facts cross-checked against llama.cpp's
//! gguf-py `GGUFReader`, and byte-identical re-writing.
//!
//! Models are looked up in `$VAZHI_MODELS` (default `$HOME/.cache/vazhi/models`). When missing,
//! the tests fail if `CI` is set and are skipped (with a message) otherwise.

use std::fs::File;
use std::io::{BufReader, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

use super::*;
use crate::{read_file, GgufWriter, ValueType};

const SMOLLM2: &str = "SmolLM2-135M-Instruct.Q4_1.gguf";
const GEMMA3: &str = "gemma-3-270m-q4_k_m.gguf";

fn model(name: &str) -> Option<PathBuf> {
    let dir = std::env::var_os("VAZHI_MODELS")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/vazhi/models")));
    let path = dir.map(|d| d.join(name));
    match path {
        Some(p) if p.is_file() => Some(p),
        _ => {
            assert!(
                std::env::var_os("CI").is_none(),
                "model {name} missing and CI is set"
            );
            eprintln!("skipping: model {name} not found (set VAZHI_MODELS)");
            None
        }
    }
}

/// Reads a model's header, timing it.
fn read_timed(path: &Path) -> GgufFile {
    let start = Instant::now();
    let file = read_file(path, &Limits::default()).unwrap();
    let elapsed = start.elapsed();
    eprintln!("read {} header in {elapsed:?}", path.display());
    // Generous guard (the machine may be busy); typical is a few tens of milliseconds.
    assert!(elapsed.as_secs() < 5, "header read took {elapsed:?}");
    file
}

fn type_count(f: &GgufFile, t: GgmlType) -> usize {
    f.tensors.iter().filter(|x| x.ggml_type == t).count()
}

#[test]
fn smollm2_matches_gguf_py() {
    let Some(path) = model(SMOLLM2) else { return };
    let f = read_timed(&path);
    // Values below were printed by gguf-py's GGUFReader (llama-cpp-python 0.3.36 vendor tree).
    assert_eq!(f.version, 3);
    assert_eq!(f.architecture(), Some("llama"));
    assert_eq!(f.file_type(), Some(3));
    assert_eq!(f.file_type_name(), Some("MOSTLY_Q4_1"));
    assert_eq!(f.tensors.len(), 272);
    assert_eq!(f.metadata.len(), 33);
    assert_eq!(f.alignment, 32);
    assert_eq!(f.data_offset, 1_785_664);
    assert_eq!(f.file_len, 98_362_432);
    assert_eq!(f.parameter_count(), 134_515_008);
    let m = &f.metadata;
    assert_eq!(m.get_u32("llama.block_count"), Some(30));
    assert_eq!(m.get_u32("llama.context_length"), Some(8192));
    assert_eq!(m.get_u32("llama.embedding_length"), Some(576));
    assert_eq!(m.get_f32("llama.rope.freq_base"), Some(100_000.0));
    assert_eq!(m.get_str("tokenizer.ggml.model"), Some("gpt2"));
    assert_eq!(m.get_u32("tokenizer.ggml.bos_token_id"), Some(1));
    assert_eq!(m.get_u32("general.quantization_version"), Some(2));
    assert_eq!(
        m.get_string_array_len("tokenizer.ggml.tokens"),
        Some(49_152)
    );
    assert_eq!(
        m.get_string_array_len("tokenizer.ggml.merges"),
        Some(48_900)
    );
    let tokens = m.get_array("tokenizer.ggml.tokens").unwrap();
    assert_eq!(
        tokens.get(0).and_then(|v| v.as_str()),
        Some("<|endoftext|>")
    );
    assert_eq!(tokens.get(49_151).and_then(|v| v.as_str()), Some("ectable"));
    let tt = m.get_array("tokenizer.ggml.token_type").unwrap();
    assert_eq!((tt.element_type(), tt.len()), (ValueType::I32, 49_152));
    let embd = f.tensor("token_embd.weight").unwrap();
    assert_eq!(
        (&embd.dims[..], embd.ggml_type, embd.offset),
        (&[576, 49_152][..], GgmlType::Q8_0, 0)
    );
    assert_eq!(embd.byte_size(), 30_081_024);
    let ffn = f.tensor("blk.0.ffn_down.weight").unwrap();
    assert_eq!(
        (ffn.ggml_type, ffn.offset, ffn.byte_size()),
        (GgmlType::Q4_1, 30_083_328, 552_960)
    );
    assert_eq!(f.tensor("output_norm.weight").unwrap().offset, 96_574_464);
    assert_eq!(
        (
            type_count(&f, GgmlType::Q4_1),
            type_count(&f, GgmlType::F32),
            type_count(&f, GgmlType::Q8_0)
        ),
        (210, 61, 1)
    );
}

#[test]
fn gemma3_matches_gguf_py() {
    let Some(path) = model(GEMMA3) else { return };
    let f = read_timed(&path);
    assert_eq!(f.version, 3);
    assert_eq!(f.architecture(), Some("gemma3"));
    assert_eq!(f.file_type(), Some(15));
    assert_eq!(f.file_type_name(), Some("MOSTLY_Q4_K_M"));
    assert_eq!(crate::file_type_label(15), Some("Q4_K_M"));
    assert_eq!(f.tensors.len(), 236);
    assert_eq!(f.metadata.len(), 33);
    assert_eq!(f.alignment, 32);
    assert_eq!(f.data_offset, 6_525_120);
    assert_eq!(f.file_len, 253_113_024);
    assert_eq!(f.parameter_count(), 268_098_176);
    let m = &f.metadata;
    assert_eq!(m.get_u32("gemma3.block_count"), Some(18));
    assert_eq!(m.get_u32("gemma3.context_length"), Some(32_768));
    assert_eq!(m.get_f32("gemma3.rope.freq_base"), Some(1_000_000.0));
    assert_eq!(m.get_str("tokenizer.ggml.model"), Some("llama"));
    assert_eq!(m.get_u32("tokenizer.ggml.bos_token_id"), Some(2));
    assert_eq!(
        m.get_string_array_len("tokenizer.ggml.tokens"),
        Some(262_144)
    );
    let tokens = m
        .get_array("tokenizer.ggml.tokens")
        .unwrap()
        .as_strings()
        .unwrap();
    assert_eq!(tokens[0].as_str(), Some("<pad>"));
    assert_eq!(tokens[262_143].as_str(), Some("<unused6241>"));
    let scores = m.get_array("tokenizer.ggml.scores").unwrap();
    assert_eq!(
        (scores.element_type(), scores.len()),
        (ValueType::F32, 262_144)
    );
    let embd = f.tensor("token_embd.weight").unwrap();
    assert_eq!(
        (&embd.dims[..], embd.ggml_type, embd.offset),
        (&[640, 262_144][..], GgmlType::Q8_0, 2560)
    );
    assert_eq!(embd.byte_size(), 178_257_920);
    assert_eq!(
        f.tensor("blk.0.attn_k.weight").unwrap().ggml_type,
        GgmlType::Q5_0
    );
    let last = f.tensor("blk.17.post_ffw_norm.weight").unwrap();
    assert_eq!(f.tensor_data_range(last).end, f.file_len);
    assert_eq!(
        [
            GgmlType::F32,
            GgmlType::Q5_0,
            GgmlType::Q4_K,
            GgmlType::Q8_0,
            GgmlType::Q6_K
        ]
        .map(|t| type_count(&f, t)),
        [109, 81, 27, 10, 9]
    );
}

/// A `Write` that compares everything written with a reference file, byte for byte.
struct CompareWriter {
    reference: BufReader<File>,
    position: u64,
    buf: Vec<u8>,
}

impl Write for CompareWriter {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.buf.resize(data.len(), 0);
        self.reference.read_exact(&mut self.buf)?;
        if let Some(i) = data.iter().zip(&self.buf).position(|(a, b)| a != b) {
            return Err(std::io::Error::other(format!(
                "output differs from the original at byte {}",
                self.position + i as u64
            )));
        }
        self.position += data.len() as u64;
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Re-writes a model from its parsed header plus its tensor bytes (streamed in 1 MiB chunks,
/// never holding a whole copy) and checks the output equals the original byte for byte.
fn rewrite_identical(path: &Path) {
    let f = read_file(path, &Limits::default()).unwrap();
    let out = CompareWriter {
        reference: BufReader::with_capacity(1 << 20, File::open(path).unwrap()),
        position: 0,
        buf: Vec::new(),
    };
    let mut w = GgufWriter::new(out, &f.metadata, &f.tensors).unwrap();
    assert_eq!(w.data_offset(), f.data_offset);
    assert_eq!(
        w.tensors(),
        &f.tensors[..],
        "computed offsets differ from the file's"
    );
    let mut src = File::open(path).unwrap();
    let mut chunk = vec![0u8; 1 << 20];
    for t in &f.tensors {
        let range = f.tensor_data_range(t);
        src.seek(SeekFrom::Start(range.start)).unwrap();
        let mut left = range.end - range.start;
        while left > 0 {
            let n = left.min(chunk.len() as u64) as usize;
            src.read_exact(&mut chunk[..n]).unwrap();
            w.write_tensor_chunk(&chunk[..n]).unwrap();
            left -= n as u64;
        }
    }
    assert_eq!(w.total_len(), f.file_len);
    let mut out = w.finish().unwrap();
    assert_eq!(out.position, f.file_len);
    // Nothing left over in the original.
    assert_eq!(out.reference.read(&mut [0u8; 1]).unwrap(), 0);
}

#[test]
fn smollm2_rewrite_is_byte_identical() {
    let Some(path) = model(SMOLLM2) else { return };
    rewrite_identical(&path);
}

#[test]
fn gemma3_rewrite_is_byte_identical() {
    let Some(path) = model(GEMMA3) else { return };
    rewrite_identical(&path);
}
