//! `publish`: the SDK catalog entry for a finished GGUF — SHA-256, size, quantization,
//! architecture, context length, RAM needed and licence — validated by the SDK's own catalog
//! parser, printed, and optionally merged into a catalog file.

use std::io::Read;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use vazhi_core::download::{Catalog, CatalogEntry};
use vazhi_core::engine::{memory, validate_model, ValidationPolicy};

use crate::hf::write_json;

/// Context size the RAM estimate assumes (the engine's default ceiling on phones).
pub const RAM_ESTIMATE_CONTEXT: u32 = 2048;

/// What to publish.
#[derive(Debug, Clone)]
pub struct PublishOptions {
    /// The GGUF file.
    pub model: PathBuf,
    /// Download URLs, mirrors after the first (https).
    pub urls: Vec<String>,
    /// Catalog id; derived from the file name when absent.
    pub id: Option<String>,
    /// Display name; `general.name` when absent.
    pub name: Option<String>,
    /// Licence; `general.license` when absent.
    pub licence: Option<String>,
    /// A catalog file to add the entry to (replacing one with the same id).
    pub catalog: Option<PathBuf>,
}

/// Why no entry could be made.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PublishError {
    /// The model file was refused by the SDK's validator.
    #[error(transparent)]
    Model(#[from] vazhi_core::engine::ModelError),
    /// The SDK's catalog parser refused the entry or the catalog.
    #[error("the SDK would refuse this entry: {0}")]
    Catalog(#[from] vazhi_core::download::CatalogError),
    /// Something the entry needs is unknown.
    #[error("{0}")]
    Missing(String),
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// The catalog file could not be written.
    #[error(transparent)]
    Write(#[from] crate::hf::HfError),
}

/// Builds (and, with `catalog`, records) the entry; see the module docs.
pub fn publish(opts: &PublishOptions) -> Result<CatalogEntry, PublishError> {
    let _span = tracing::info_span!("publish").entered();
    let policy = ValidationPolicy {
        max_file_bytes: u64::MAX,
        ..ValidationPolicy::default()
    };
    let report = validate_model(&opts.model, &policy)?;
    let gguf = vazhi_gguf::read_file(&opts.model, &vazhi_gguf::Limits::default())
        .map_err(|e| PublishError::Missing(format!("{}: {e}", opts.model.display())))?;
    let quant = report
        .file_type
        .and_then(vazhi_gguf::file_type_label)
        .ok_or_else(|| {
            PublishError::Missing(
                "general.file_type is missing: cannot name the quantization".into(),
            )
        })?
        .to_owned();
    let licence = opts
        .licence
        .clone()
        .or_else(|| gguf.metadata.get_str("general.license").map(str::to_owned))
        .ok_or_else(|| {
            PublishError::Missing(
                "the file states no licence (general.license): pass --licence".into(),
            )
        })?;
    let plan = memory::plan_memory(&report, None, Some(RAM_ESTIMATE_CONTEXT), 512)
        .map_err(|e| PublishError::Missing(format!("memory estimate failed: {e}")))?;
    let min_ram_mb = plan.total_bytes().div_ceil(1 << 20).div_ceil(64) * 64;
    let id = match &opts.id {
        Some(id) => id.clone(),
        None => default_id(&opts.model),
    };
    let entry = CatalogEntry {
        name: opts
            .name
            .clone()
            .or_else(|| report.name.clone())
            .unwrap_or_else(|| id.clone()),
        id,
        urls: opts.urls.clone(),
        sha256: sha256_file(&opts.model)?,
        size: report.file_bytes,
        quant,
        arch: report.architecture.clone(),
        context_length: report.context_length,
        min_ram_mb,
        licence,
    };
    // The SDK's own parser is the judge of what a valid entry is.
    let probe = serde_json::json!({"format": 1, "models": [entry]});
    Catalog::from_json(&probe.to_string())?;
    if let Some(path) = &opts.catalog {
        add_to_catalog(path, &entry)?;
    }
    Ok(entry)
}

/// A catalog id from a file name: lowercase, with runs of other characters as `-`.
fn default_id(path: &Path) -> String {
    let stem = path
        .file_stem()
        .map(|s| s.to_string_lossy().to_lowercase())
        .unwrap_or_default();
    let mut id = String::new();
    for c in stem.chars() {
        if c.is_ascii_alphanumeric() || c == '_' || c == '.' {
            id.push(c);
        } else if !id.ends_with('-') {
            id.push('-');
        }
    }
    id.trim_matches('-').to_owned()
}

fn sha256_file(path: &Path) -> Result<String, PublishError> {
    let io = |source| PublishError::Io {
        path: path.to_owned(),
        source,
    };
    let mut file = std::fs::File::open(path).map_err(io)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = file.read(&mut buf).map_err(io)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect())
}

fn add_to_catalog(path: &Path, entry: &CatalogEntry) -> Result<(), PublishError> {
    let io = |source| PublishError::Io {
        path: path.to_owned(),
        source,
    };
    let mut catalog: serde_json::Value = if path.exists() {
        let text = std::fs::read_to_string(path).map_err(io)?;
        Catalog::from_json(&text)?;
        serde_json::from_str(&text)
            .map_err(|e| PublishError::Missing(format!("{}: {e}", path.display())))?
    } else {
        serde_json::json!({"format": 1, "models": []})
    };
    let models = catalog
        .get_mut("models")
        .and_then(|m| m.as_array_mut())
        .ok_or_else(|| PublishError::Missing(format!("{}: no models list", path.display())))?;
    let value = serde_json::to_value(entry)
        .map_err(|e| PublishError::Missing(format!("cannot serialise the entry: {e}")))?;
    match models
        .iter_mut()
        .find(|m| m.get("id").and_then(|i| i.as_str()) == Some(entry.id.as_str()))
    {
        Some(existing) => *existing = value,
        None => models.push(value),
    }
    let text = serde_json::to_string(&catalog)
        .map_err(|e| PublishError::Missing(format!("cannot serialise the catalog: {e}")))?;
    Catalog::from_json(&text)?;
    write_json(path, &catalog)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_from_file_names_are_catalog_safe() {
        assert_eq!(
            default_id(Path::new("/x/My Model Q4_K_M.gguf")),
            "my-model-q4_k_m"
        );
        assert_eq!(
            default_id(Path::new("tamil+chat--v2.gguf")),
            "tamil-chat-v2"
        );
        assert!(vazhi_core::download::catalog::is_valid_id(&default_id(
            Path::new("a b.gguf")
        )));
    }
}
