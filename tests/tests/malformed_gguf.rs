//! A corpus of malformed model files, made by mutating the real test models, must be refused
//! by our validation with the right typed error — and must never reach llama.cpp.
//!
//! Everything runs in one test function so that the process-wide count of llama.cpp load
//! attempts is not disturbed by other tests: it must still be zero after every malformed file
//! has been refused, and grow by one for each real model loaded at the end.

#![allow(clippy::unwrap_used)]

use std::fs::{self, OpenOptions};
use std::io::{Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use vazhi_core::engine::{llama_load_attempts, Engine, EngineConfig, EngineError, ModelError};
use vazhi_gguf::{GgufError, Limits};

/// A copy of a real model that cases patch and restore in place.
struct Mutable {
    path: PathBuf,
    original: Vec<u8>,
    header_len: usize,
}

impl Mutable {
    fn new(dir: &Path, source: &Path) -> Self {
        let path = dir.join(source.file_name().unwrap());
        fs::copy(source, &path).unwrap();
        let parsed = vazhi_gguf::read_file(source, &Limits::default()).unwrap();
        let header_len = usize::try_from(parsed.data_offset).unwrap();
        let original = fs::read(source).unwrap()[..header_len].to_vec();
        Self {
            path,
            original,
            header_len,
        }
    }

    /// Offset of the value of metadata key `key` (just after its type tag).
    fn value_offset(&self, key: &str) -> usize {
        let mut needle = (key.len() as u64).to_le_bytes().to_vec();
        needle.extend_from_slice(key.as_bytes());
        let at = find(&self.original, &needle).unwrap_or_else(|| panic!("key {key} not found"));
        at + needle.len() + 4
    }

    /// Offset of tensor info `name`'s fields (n_dims) in the header.
    fn tensor_offset(&self, name: &str) -> usize {
        let mut needle = (name.len() as u64).to_le_bytes().to_vec();
        needle.extend_from_slice(name.as_bytes());
        // Tensor infos follow the metadata: take the last occurrence.
        let at = rfind(&self.original, &needle).unwrap();
        at + needle.len()
    }

    /// Writes `bytes` at `offset`, runs `check`, restores the file.
    fn with_patch(&self, offset: usize, bytes: &[u8], check: impl FnOnce(&Path)) {
        assert!(offset + bytes.len() <= self.header_len);
        patch(&self.path, offset, bytes);
        check(&self.path);
        patch(
            &self.path,
            offset,
            &self.original[offset..offset + bytes.len()],
        );
    }
}

fn patch(path: &Path, offset: usize, bytes: &[u8]) {
    let mut f = OpenOptions::new().write(true).open(path).unwrap();
    f.seek(SeekFrom::Start(offset as u64)).unwrap();
    f.write_all(bytes).unwrap();
    f.sync_all().unwrap();
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

fn rfind(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).rposition(|w| w == needle)
}

fn load(path: &Path) -> Result<Engine, EngineError> {
    Engine::load(
        path,
        EngineConfig {
            n_ctx: Some(256),
            ..EngineConfig::default()
        },
    )
}

fn refused(path: &Path, what: &str, expected: impl Fn(&EngineError) -> bool) {
    match load(path) {
        Ok(_) => panic!("{what}: a malformed file was accepted"),
        Err(e) => assert!(expected(&e), "{what}: unexpected error {e:?}"),
    }
}

fn format_err(pred: impl Fn(&GgufError) -> bool) -> impl Fn(&EngineError) -> bool {
    move |e| matches!(e, EngineError::Model(ModelError::Format(g)) if pred(g))
}

fn any_format_err(e: &EngineError) -> bool {
    matches!(e, EngineError::Model(ModelError::Format(_)))
}

#[test]
fn malformed_corpus_is_refused_before_llama_cpp() {
    let (Some(smol), Some(gemma)) = (
        vazhi_tests::model(vazhi_tests::SMOLLM2),
        vazhi_tests::model(vazhi_tests::GEMMA3),
    ) else {
        return;
    };
    assert_eq!(llama_load_attempts(), 0);
    let dir = tempfile::tempdir().unwrap();
    let mut cases = 0;

    // Missing file and a directory.
    refused(&dir.path().join("nope.gguf"), "missing", |e| {
        matches!(e, EngineError::Model(ModelError::NotFound(_)))
    });
    refused(dir.path(), "directory", |e| {
        matches!(e, EngineError::Model(ModelError::NotFound(_)))
    });
    cases += 2;

    // Truncations at many offsets: header, metadata, tensor infos, data.
    let bytes = fs::read(&smol).unwrap();
    let parsed = vazhi_gguf::read_file(&smol, &Limits::default()).unwrap();
    let data_offset = usize::try_from(parsed.data_offset).unwrap();
    let mut cuts = vec![
        0,
        1,
        3,
        4,
        7,
        8,
        15,
        16,
        23,
        24,
        25,
        100,
        4096,
        65_536,
        1 << 20,
    ];
    cuts.extend([
        data_offset - 1,
        data_offset,
        data_offset + 1,
        bytes.len() / 2,
        bytes.len() - 1,
    ]);
    for cut in cuts {
        let p = dir.path().join(format!("truncated-{cut}.gguf"));
        fs::write(&p, &bytes[..cut]).unwrap();
        refused(&p, &format!("truncated at {cut}"), any_format_err);
        fs::remove_file(&p).unwrap();
        cases += 1;
    }
    drop(bytes);

    let m = Mutable::new(dir.path(), &smol);
    // Header fields.
    m.with_patch(0, b"GGUX", |p| {
        refused(
            p,
            "wrong magic",
            format_err(|g| matches!(g, GgufError::BadMagic { .. })),
        )
    });
    for version in [1u32, 4, 0xFFFF_FFFF] {
        m.with_patch(4, &version.to_le_bytes(), |p| {
            refused(
                p,
                &format!("version {version}"),
                format_err(|g| matches!(g, GgufError::UnsupportedVersion { .. })),
            )
        });
    }
    m.with_patch(8, &u64::MAX.to_le_bytes(), |p| {
        refused(p, "tensor count", any_format_err)
    });
    m.with_patch(16, &(u64::MAX / 3).to_le_bytes(), |p| {
        refused(p, "kv count", any_format_err)
    });
    // The first key's string length.
    m.with_patch(24, &u64::MAX.to_le_bytes(), |p| {
        refused(p, "key length", any_format_err)
    });
    m.with_patch(24, &(1u64 << 40).to_le_bytes(), |p| {
        refused(p, "key length past EOF", any_format_err)
    });
    cases += 8;

    // Metadata values.
    let tokens = m.value_offset("tokenizer.ggml.tokens");
    m.with_patch(tokens + 4, &(u64::MAX / 2).to_le_bytes(), |p| {
        refused(p, "array count", any_format_err)
    });
    m.with_patch(tokens, &99u32.to_le_bytes(), |p| {
        refused(
            p,
            "array element type",
            format_err(|g| matches!(g, GgufError::UnknownValueType { .. })),
        )
    });
    let add_bos = m.value_offset("tokenizer.ggml.add_bos_token");
    m.with_patch(add_bos, &[2], |p| {
        refused(
            p,
            "bool = 2",
            format_err(|g| matches!(g, GgufError::InvalidBool { .. })),
        )
    });
    let arch = m.value_offset("general.architecture");
    m.with_patch(arch + 8, b"xlama", |p| {
        refused(p, "unknown architecture", |e| {
            matches!(e, EngineError::Model(ModelError::UnknownArchitecture(_)))
        })
    });
    m.with_patch(arch, &u64::MAX.to_le_bytes(), |p| {
        refused(p, "string length", any_format_err)
    });
    cases += 5;

    // Metadata inconsistent with the tensors.
    let inconsistent = |e: &EngineError| {
        matches!(
            e,
            EngineError::Model(ModelError::Inconsistent(_) | ModelError::MissingKey(_))
        )
    };
    let blocks = m.value_offset("llama.block_count");
    for bad in [29u32, 31, 0, u32::MAX] {
        m.with_patch(blocks, &bad.to_le_bytes(), |p| {
            refused(p, &format!("block_count {bad}"), inconsistent)
        });
    }
    let width = m.value_offset("llama.embedding_length");
    m.with_patch(width, &577u32.to_le_bytes(), |p| {
        refused(p, "embedding_length", inconsistent)
    });
    cases += 4;

    // Tensor infos: type, dims, offsets.
    let embd = m.tensor_offset("token_embd.weight");
    // n_dims u32, dims 2 × u64, type u32, offset u64.
    let ty = embd + 4 + 16;
    let offset = ty + 4;
    m.with_patch(ty, &4u32.to_le_bytes(), |p| {
        refused(
            p,
            "removed ggml type 4",
            format_err(|g| matches!(g, GgufError::UnknownGgmlType { .. })),
        )
    });
    m.with_patch(ty, &9999u32.to_le_bytes(), |p| {
        refused(
            p,
            "unknown ggml type",
            format_err(|g| matches!(g, GgufError::UnknownGgmlType { .. })),
        )
    });
    m.with_patch(embd, &0u32.to_le_bytes(), |p| {
        refused(
            p,
            "zero dims",
            format_err(|g| matches!(g, GgufError::InvalidDimCount { .. })),
        )
    });
    m.with_patch(embd, &9u32.to_le_bytes(), |p| {
        refused(
            p,
            "nine dims",
            format_err(|g| matches!(g, GgufError::InvalidDimCount { .. })),
        )
    });
    m.with_patch(embd + 4, &0u64.to_le_bytes(), |p| {
        refused(
            p,
            "dim 0",
            format_err(|g| matches!(g, GgufError::ZeroDimension { .. })),
        )
    });
    m.with_patch(embd + 4, &(u64::MAX / 2).to_le_bytes(), |p| {
        refused(p, "huge dim", any_format_err)
    });
    m.with_patch(embd + 4, &33u64.to_le_bytes(), |p| {
        refused(
            p,
            "dim not a block multiple",
            format_err(|g| matches!(g, GgufError::BlockSizeMismatch { .. })),
        )
    });
    m.with_patch(offset, &(1u64 << 40).to_le_bytes(), |p| {
        refused(
            p,
            "tensor past EOF",
            format_err(|g| matches!(g, GgufError::TensorOutOfBounds { .. })),
        )
    });
    m.with_patch(offset, &u64::MAX.to_le_bytes(), |p| {
        refused(p, "offset overflow", any_format_err)
    });
    let original_offset = u64::from_le_bytes(m.original[offset..offset + 8].try_into().unwrap());
    m.with_patch(offset, &(original_offset + 1).to_le_bytes(), |p| {
        refused(
            p,
            "misaligned offset",
            format_err(|g| matches!(g, GgufError::MisalignedTensor { .. })),
        )
    });
    cases += 10;

    // Random byte flips in the header: each file is refused or passes validation, never
    // crashes; none of them is handed to llama.cpp here.
    let mut seed = 0x9E37_79B9_7F4A_7C15u64;
    let mut next = || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let mut refused_flips = 0;
    for _ in 0..300 {
        let at = (next() % 4096) as usize;
        let value = [(next() & 0xFF) as u8];
        m.with_patch(at, &value, |p| {
            if vazhi_core::engine::validate_model(p, &Default::default()).is_err() {
                refused_flips += 1;
            }
        });
    }
    assert!(
        refused_flips > 50,
        "only {refused_flips} of 300 header flips were caught"
    );

    // Over the size budget.
    let tight = EngineConfig {
        policy: vazhi_core::engine::ValidationPolicy {
            max_file_bytes: 50 << 20,
            ..Default::default()
        },
        ..EngineConfig::default()
    };
    let err = Engine::load(&smol, tight).unwrap_err();
    assert!(
        matches!(err, EngineError::Model(ModelError::TooLarge { .. })),
        "{err}"
    );
    cases += 1;

    assert_eq!(
        llama_load_attempts(),
        0,
        "a malformed file reached llama.cpp"
    );
    eprintln!("{cases} malformed files and 300 header flips refused before llama.cpp");

    // The restored copy and both real models pass and load.
    drop(load(&m.path).unwrap());
    drop(load(&smol).unwrap());
    drop(load(&gemma).unwrap());
    assert_eq!(llama_load_attempts(), 3);
}
