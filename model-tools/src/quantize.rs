//! `quantize`: a GGUF to a smaller GGUF through llama.cpp's own `llama_model_quantize`.
//!
//! The raw C call is wrapped once, here. Before llama.cpp sees anything the input is vetted by
//! our GGUF reader (llama.cpp aborts the process on some malformed files rather than
//! returning an error), the type is checked against what the input can become, and an
//! importance matrix, when given, is read and handed over as llama.cpp expects it. The output
//! is written under a temporary name and renamed only after llama.cpp reports success and the
//! result reads back as a valid GGUF, so a failure never leaves a half-written model.

use std::collections::BTreeMap;
use std::ffi::CString;
use std::path::{Path, PathBuf};
use std::time::Instant;

use serde::Serialize;
use vazhi_gguf::{GgmlType, GgufFile, Limits};

use crate::hf::{sync_dir, temp_sibling};

/// A quantization preset, as `llama-quantize` names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct QuantType {
    /// The preset name, e.g. `Q4_K_M`.
    pub name: &'static str,
    /// llama.cpp's `llama_ftype` value.
    pub ftype: u32,
    /// Whether llama.cpp needs an importance matrix for it.
    pub needs_imatrix: bool,
}

/// Every preset `quantize` accepts (names as in llama.cpp's `QUANT_OPTIONS`).
pub const QUANT_TYPES: &[QuantType] = &[
    qt("Q4_0", 2, false),
    qt("Q4_1", 3, false),
    qt("Q5_0", 8, false),
    qt("Q5_1", 9, false),
    qt("Q8_0", 7, false),
    qt("Q2_K", 10, false),
    qt("Q2_K_S", 21, true),
    qt("Q3_K_S", 11, false),
    qt("Q3_K_M", 12, false),
    qt("Q3_K_L", 13, false),
    qt("Q4_K_S", 14, false),
    qt("Q4_K_M", 15, false),
    qt("Q5_K_S", 16, false),
    qt("Q5_K_M", 17, false),
    qt("Q6_K", 18, false),
    qt("IQ2_XXS", 19, true),
    qt("IQ2_XS", 20, true),
    qt("IQ2_S", 28, true),
    qt("IQ2_M", 29, true),
    qt("IQ3_XXS", 23, true),
    qt("IQ3_XS", 22, false),
    qt("IQ3_S", 26, false),
    qt("IQ3_M", 27, false),
    qt("IQ4_NL", 25, false),
    qt("IQ4_XS", 30, false),
    qt("IQ1_S", 24, true),
    qt("IQ1_M", 31, true),
    qt("F16", 1, false),
    qt("BF16", 32, false),
    qt("F32", 0, false),
];

const fn qt(name: &'static str, ftype: u32, needs_imatrix: bool) -> QuantType {
    QuantType {
        name,
        ftype,
        needs_imatrix,
    }
}

impl QuantType {
    /// Looks a preset up by name, case-insensitively (`q4_k_m` works).
    pub fn parse(name: &str) -> Result<QuantType, QuantizeError> {
        QUANT_TYPES
            .iter()
            .find(|t| t.name.eq_ignore_ascii_case(name))
            .copied()
            .ok_or_else(|| QuantizeError::UnknownType {
                name: name.to_owned(),
                known: QUANT_TYPES
                    .iter()
                    .map(|t| t.name)
                    .collect::<Vec<_>>()
                    .join(", "),
            })
    }
}

/// What to quantize, to what.
#[derive(Debug, Clone)]
pub struct QuantizeOptions {
    /// The input GGUF (F32, F16 or BF16; quantized inputs need `allow_requantize`).
    pub input: PathBuf,
    /// Where the quantized GGUF goes.
    pub output: PathBuf,
    /// The preset.
    pub qtype: QuantType,
    /// An importance matrix from `llama-imatrix` (GGUF format).
    pub imatrix: Option<PathBuf>,
    /// Worker threads; 0 lets llama.cpp use every core.
    pub threads: usize,
    /// Replace an existing output file.
    pub overwrite: bool,
    /// Accept an already quantized input (quality suffers: say so in the report).
    pub allow_requantize: bool,
}

/// The result of a quantization.
#[derive(Debug, Clone, Serialize)]
pub struct QuantizeReport {
    /// Input file.
    pub input: PathBuf,
    /// Output file.
    pub output: PathBuf,
    /// The preset used.
    pub qtype: &'static str,
    /// Input size in bytes.
    pub input_bytes: u64,
    /// Output size in bytes.
    pub output_bytes: u64,
    /// Parameters (elements of every tensor).
    pub parameters: u64,
    /// Bits per weight of the output's tensor data.
    pub bits_per_weight: f64,
    /// Output tensors per ggml type, e.g. `{"q4_K": 120, "q6_K": 15, "f32": 61}`.
    pub tensor_types: BTreeMap<String, usize>,
    /// 2-D tensors whose rows are not a multiple of 256 elements: llama.cpp cannot give them a
    /// k-quant and falls back to a 32-block type (Q5_0, Q8_0…). Zero for non-k presets.
    pub k_quant_fallbacks: usize,
    /// Whether an importance matrix was used.
    pub imatrix: bool,
    /// Wall time in seconds.
    pub seconds: f64,
}

impl std::fmt::Display for QuantizeReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "quantized {} → {} ({})",
            self.input.display(),
            self.output.display(),
            self.qtype
        )?;
        writeln!(
            f,
            "  size      {:.1} MiB → {:.1} MiB ({:.2}×)",
            mib(self.input_bytes),
            mib(self.output_bytes),
            self.input_bytes as f64 / self.output_bytes.max(1) as f64
        )?;
        writeln!(
            f,
            "  weights   {} parameters at {:.2} bits per weight",
            self.parameters, self.bits_per_weight
        )?;
        let types: Vec<String> = self
            .tensor_types
            .iter()
            .map(|(t, n)| format!("{t}×{n}"))
            .collect();
        writeln!(f, "  tensors   {}", types.join(", "))?;
        if self.k_quant_fallbacks > 0 {
            writeln!(
                f,
                "  note      {} tensors have rows that are not a multiple of 256: llama.cpp used 32-block types for them",
                self.k_quant_fallbacks
            )?;
        }
        write!(
            f,
            "  time      {:.1} s{}",
            self.seconds,
            if self.imatrix {
                " (with importance matrix)"
            } else {
                ""
            }
        )
    }
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

/// Why quantization failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum QuantizeError {
    /// The preset name is not known.
    #[error("unknown quantization type {name:?}; known: {known}")]
    UnknownType {
        /// What was asked for.
        name: String,
        /// Every accepted name.
        known: String,
    },
    /// The input is not a GGUF llama.cpp could quantize.
    #[error("{path}: {reason}")]
    BadInput {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The output exists and `overwrite` was not given.
    #[error("{0} exists; pass --overwrite to replace it")]
    OutputExists(PathBuf),
    /// The preset needs an importance matrix and none was given.
    #[error("{0} needs an importance matrix (--imatrix FILE from llama-imatrix): without one these types destroy the model")]
    NeedsImatrix(&'static str),
    /// The importance matrix file is unusable.
    #[error("importance matrix {path}: {reason}")]
    BadImatrix {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// llama.cpp's backend failed to start.
    #[error(transparent)]
    Backend(#[from] vazhi_core::engine::EngineError),
    /// llama.cpp reported failure.
    #[error("llama.cpp failed to quantize {0} (see the log above; run with RUST_LOG=debug for llama.cpp's own messages)")]
    Llama(PathBuf),
    /// A file operation failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
}

/// Quantizes `opts.input` into `opts.output`; see the module docs.
pub fn quantize(opts: &QuantizeOptions) -> Result<QuantizeReport, QuantizeError> {
    let _span = tracing::info_span!("quantize", qtype = opts.qtype.name).entered();
    let started = Instant::now();
    let input = read_gguf(&opts.input)?;
    check_input(opts, &input)?;
    let k_quant_fallbacks = if opts.qtype.name.contains("_K") {
        input
            .tensors
            .iter()
            .filter(|t| t.dims.len() >= 2 && t.dims[0] % 256 != 0)
            .count()
    } else {
        0
    };
    if opts.output.exists() && !opts.overwrite {
        return Err(QuantizeError::OutputExists(opts.output.clone()));
    }
    if opts.qtype.needs_imatrix && opts.imatrix.is_none() {
        return Err(QuantizeError::NeedsImatrix(opts.qtype.name));
    }
    let imatrix = match &opts.imatrix {
        Some(path) => Some(ImatrixData::load(path)?),
        None => None,
    };
    vazhi_core::engine::init_backend()?;

    let temp = temp_sibling(&opts.output);
    let result = run_llama_quantize(opts, &temp, imatrix.as_ref());
    let finished = result.and_then(|()| {
        // llama.cpp said yes; check for ourselves before the file takes the final name.
        read_gguf(&temp).map_err(|e| match e {
            QuantizeError::BadInput { reason, .. } => QuantizeError::BadInput {
                path: opts.output.clone(),
                reason: format!("llama.cpp wrote an unreadable file: {reason}"),
            },
            other => other,
        })
    });
    let output = match finished {
        Ok(file) => file,
        Err(e) => {
            let _ = std::fs::remove_file(&temp);
            return Err(e);
        }
    };
    std::fs::File::open(&temp)
        .and_then(|f| f.sync_all())
        .and_then(|()| std::fs::rename(&temp, &opts.output))
        .map_err(|source| {
            let _ = std::fs::remove_file(&temp);
            QuantizeError::Io {
                path: opts.output.clone(),
                source,
            }
        })?;
    sync_dir(&opts.output).map_err(|e| QuantizeError::Io {
        path: opts.output.clone(),
        source: std::io::Error::other(e.to_string()),
    })?;

    let mut tensor_types = BTreeMap::new();
    let mut data_bytes = 0u64;
    for tensor in &output.tensors {
        *tensor_types
            .entry(tensor.ggml_type.name().to_owned())
            .or_insert(0) += 1;
        data_bytes += tensor.byte_size();
    }
    let parameters = output.parameter_count();
    Ok(QuantizeReport {
        input: opts.input.clone(),
        output: opts.output.clone(),
        qtype: opts.qtype.name,
        input_bytes: file_len(&opts.input),
        output_bytes: file_len(&opts.output),
        parameters,
        bits_per_weight: data_bytes as f64 * 8.0 / parameters.max(1) as f64,
        tensor_types,
        k_quant_fallbacks,
        imatrix: imatrix.is_some(),
        seconds: started.elapsed().as_secs_f64(),
    })
}

fn file_len(path: &Path) -> u64 {
    std::fs::metadata(path).map(|m| m.len()).unwrap_or(0)
}

fn read_gguf(path: &Path) -> Result<GgufFile, QuantizeError> {
    vazhi_gguf::read_file(path, &Limits::default()).map_err(|e| QuantizeError::BadInput {
        path: path.to_owned(),
        reason: e.to_string(),
    })
}

fn check_input(opts: &QuantizeOptions, input: &GgufFile) -> Result<(), QuantizeError> {
    let bad = |reason: String| QuantizeError::BadInput {
        path: opts.input.clone(),
        reason,
    };
    if input.architecture().is_none() {
        return Err(bad("no general.architecture: not a model file".to_owned()));
    }
    let quantized: Vec<&str> = input
        .tensors
        .iter()
        .filter(|t| !matches!(t.ggml_type, GgmlType::F32 | GgmlType::F16 | GgmlType::BF16))
        .map(|t| t.name.as_str())
        .take(3)
        .collect();
    if !quantized.is_empty() && !opts.allow_requantize {
        return Err(bad(format!(
            "already quantized (e.g. {}); quantize from the F32/F16/BF16 file that `convert` \
             writes, or pass --allow-requantize and accept the extra loss",
            quantized.join(", ")
        )));
    }
    Ok(())
}

/// An importance matrix as llama.cpp's quantizer takes it: per tensor, one weight per input
/// column (per expert), i.e. the mean of the squared activations.
#[derive(Debug)]
struct ImatrixData {
    names: Vec<CString>,
    values: Vec<Vec<f32>>,
}

impl ImatrixData {
    /// Reads a GGUF importance matrix (`<tensor>.in_sum2` and `<tensor>.counts` pairs, as
    /// `llama-imatrix` writes them) and normalises the sums by the counts.
    fn load(path: &Path) -> Result<ImatrixData, QuantizeError> {
        let bad = |reason: String| QuantizeError::BadImatrix {
            path: path.to_owned(),
            reason,
        };
        let bytes = std::fs::read(path).map_err(|source| QuantizeError::Io {
            path: path.to_owned(),
            source,
        })?;
        let file = vazhi_gguf::read_bytes(&bytes, &Limits::default()).map_err(|e| {
            bad(format!(
                "{e} (only the GGUF imatrix format of current llama-imatrix is read; convert \
                 a legacy .dat file with `llama-imatrix --in-file old.dat -o new.gguf`)"
            ))
        })?;
        let f32_data = |name: &str| -> Result<Vec<f32>, QuantizeError> {
            let info = file
                .tensor(name)
                .ok_or_else(|| bad(format!("{name} is missing")))?;
            if info.ggml_type != GgmlType::F32 {
                return Err(bad(format!(
                    "{name} is {}, expected f32",
                    info.ggml_type.name()
                )));
            }
            let range = file.tensor_data_range(info);
            let slice = bytes
                .get(range.start as usize..range.end as usize)
                .ok_or_else(|| bad(format!("{name} lies outside the file")))?;
            Ok(slice
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect())
        };
        let mut names = Vec::new();
        let mut values = Vec::new();
        for tensor in &file.tensors {
            let Some(base) = tensor.name.strip_suffix(".in_sum2") else {
                continue;
            };
            let sums = f32_data(&tensor.name)?;
            let counts = f32_data(&format!("{base}.counts"))?;
            if counts.is_empty() || sums.len() % counts.len() != 0 {
                return Err(bad(format!(
                    "{base}: {} sums for {} counts",
                    sums.len(),
                    counts.len()
                )));
            }
            let per_expert = sums.len() / counts.len();
            let mut normalised = Vec::with_capacity(sums.len());
            for (j, &count) in counts.iter().enumerate() {
                let row = &sums[j * per_expert..(j + 1) * per_expert];
                if count > 0.0 {
                    normalised.extend(row.iter().map(|s| s / count));
                } else {
                    normalised.extend(std::iter::repeat_n(1.0, per_expert));
                }
            }
            names.push(CString::new(base).map_err(|_| bad(format!("{base:?} has a NUL byte")))?);
            values.push(normalised);
        }
        if names.is_empty() {
            return Err(bad(
                "no <tensor>.in_sum2 entries: not an importance matrix".to_owned()
            ));
        }
        Ok(ImatrixData { names, values })
    }
}

fn path_cstring(path: &Path) -> Result<CString, QuantizeError> {
    path.to_str()
        .and_then(|s| CString::new(s).ok())
        .ok_or_else(|| QuantizeError::BadInput {
            path: path.to_owned(),
            reason: "path is not valid UTF-8 or contains a NUL byte".to_owned(),
        })
}

/// The one call into llama.cpp's quantizer.
fn run_llama_quantize(
    opts: &QuantizeOptions,
    temp_output: &Path,
    imatrix: Option<&ImatrixData>,
) -> Result<(), QuantizeError> {
    use llama_cpp_sys_2 as sys;

    let input = path_cstring(&opts.input)?;
    let output = path_cstring(temp_output)?;
    // llama.cpp walks the array until an entry with a null name.
    let entries: Vec<sys::llama_model_imatrix_data> = imatrix
        .map(|m| {
            m.names
                .iter()
                .zip(&m.values)
                .map(|(name, data)| sys::llama_model_imatrix_data {
                    name: name.as_ptr(),
                    data: data.as_ptr(),
                    size: data.len(),
                })
                .chain(std::iter::once(sys::llama_model_imatrix_data {
                    name: std::ptr::null(),
                    data: std::ptr::null(),
                    size: 0,
                }))
                .collect()
        })
        .unwrap_or_default();

    // SAFETY: returns a plain struct by value.
    let mut params = unsafe { sys::llama_model_quantize_default_params() };
    params.nthread = i32::try_from(opts.threads).unwrap_or(0);
    params.ftype = opts.qtype.ftype as _;
    params.allow_requantize = opts.allow_requantize;
    if !entries.is_empty() {
        params.imatrix = entries.as_ptr();
    }
    let _span = tracing::info_span!("llama_model_quantize").entered();
    // SAFETY: both paths are NUL-terminated and outlive the call; `params` points into
    // `entries`, `imatrix`'s names and values, all of which outlive the call and are only
    // read; the input was vetted by our GGUF reader first.
    let status = unsafe { sys::llama_model_quantize(input.as_ptr(), output.as_ptr(), &params) };
    if status == 0 {
        Ok(())
    } else {
        Err(QuantizeError::Llama(opts.input.clone()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn presets_parse_case_insensitively_and_unknown_names_list_the_known_ones() {
        assert_eq!(QuantType::parse("q4_k_m").expect("known").ftype, 15);
        assert_eq!(QuantType::parse("Q8_0").expect("known").ftype, 7);
        let err = QuantType::parse("Q4_K_XL").expect_err("unknown");
        assert!(err.to_string().contains("Q5_K_M"), "{err}");
        let mut names: Vec<_> = QUANT_TYPES.iter().map(|t| t.name).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), QUANT_TYPES.len(), "no preset listed twice");
    }

    #[test]
    fn imatrix_types_without_an_imatrix_are_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let input = dir.path().join("in.gguf");
        let mut metadata = vazhi_gguf::Metadata::new();
        metadata.insert("general.architecture", "llama");
        let mut bytes = Vec::new();
        vazhi_gguf::write_gguf(&mut bytes, &metadata, &[]).expect("write");
        std::fs::write(&input, bytes).expect("save");
        let opts = QuantizeOptions {
            input,
            output: dir.path().join("out.gguf"),
            qtype: QuantType::parse("IQ2_XXS").expect("known"),
            imatrix: None,
            threads: 1,
            overwrite: false,
            allow_requantize: false,
        };
        let err = quantize(&opts).expect_err("needs an imatrix");
        assert!(
            matches!(err, QuantizeError::NeedsImatrix("IQ2_XXS")),
            "{err}"
        );
    }

    #[test]
    fn garbage_input_is_refused_before_llama_cpp() {
        let dir = tempfile::tempdir().expect("tempdir");
        let input = dir.path().join("in.gguf");
        std::fs::write(&input, b"GGUF but not really").expect("write");
        let opts = QuantizeOptions {
            input: input.clone(),
            output: dir.path().join("out.gguf"),
            qtype: QuantType::parse("Q4_K_M").expect("known"),
            imatrix: None,
            threads: 1,
            overwrite: false,
            allow_requantize: false,
        };
        let err = quantize(&opts).expect_err("garbage");
        assert!(matches!(err, QuantizeError::BadInput { .. }), "{err}");
        assert!(!opts.output.exists());
    }
}
