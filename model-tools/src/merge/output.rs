//! The merge's output directory: built in a temporary sibling of `--out`, renamed into place
//! only when complete, removed on failure. Also copies the base's non-weight files (config,
//! tokenizer, chat template, …) and writes the shard index.

use std::path::{Path, PathBuf};

use crate::hf::{read_json, remove_temp_dir, sync_dir, temp_sibling, write_json};
use crate::hf::{CONFIG_JSON, MODEL_SAFETENSORS_INDEX_JSON};

use super::MergeError;
use crate::hf::Dtype;

/// A temporary output directory that becomes `--out` on [`Staging::commit`] and disappears if
/// dropped before.
#[derive(Debug)]
pub(crate) struct Staging {
    temp: PathBuf,
    out: PathBuf,
    committed: bool,
}

impl Staging {
    /// Checks `out` (absent, an empty directory, or `overwrite`) and creates the temporary
    /// directory beside it.
    pub fn create(out: &Path, overwrite: bool) -> Result<Staging, MergeError> {
        if let Ok(meta) = std::fs::symlink_metadata(out) {
            let empty_dir = meta.is_dir()
                && std::fs::read_dir(out)
                    .map_err(|e| MergeError::io(out, e))?
                    .next()
                    .is_none();
            if !empty_dir && !overwrite {
                return Err(MergeError::OutputExists {
                    path: out.to_owned(),
                });
            }
        }
        if let Some(parent) = out.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(|e| MergeError::io(parent, e))?;
        }
        let temp = temp_sibling(out);
        std::fs::create_dir(&temp).map_err(|e| MergeError::io(&temp, e))?;
        Ok(Staging {
            temp,
            out: out.to_owned(),
            committed: false,
        })
    }

    /// The temporary directory to write into.
    pub fn path(&self) -> &Path {
        &self.temp
    }

    /// Moves the finished directory to `out`, replacing what was there.
    pub fn commit(mut self) -> Result<(), MergeError> {
        // `sync_dir` fsyncs the directory holding its argument: here the staging directory,
        // so the entries of the files written into it are durable before the rename.
        sync_dir(&self.temp.join("entries"))?;
        let old = if std::fs::symlink_metadata(&self.out).is_ok() {
            let old = temp_sibling(&self.out);
            std::fs::rename(&self.out, &old).map_err(|e| MergeError::io(&self.out, e))?;
            Some(old)
        } else {
            None
        };
        if let Err(e) = std::fs::rename(&self.temp, &self.out) {
            if let Some(old) = &old {
                let _ = std::fs::rename(old, &self.out);
            }
            return Err(MergeError::io(&self.out, e));
        }
        self.committed = true;
        if let Some(old) = old {
            if old.is_dir() {
                remove_temp_dir(&old);
            } else {
                let _ = std::fs::remove_file(&old);
            }
        }
        sync_dir(&self.out)?;
        Ok(())
    }
}

impl Drop for Staging {
    fn drop(&mut self) {
        if !self.committed {
            remove_temp_dir(&self.temp);
        }
    }
}

/// Whether a file in a model directory holds weights (which the merge writes itself or must
/// not carry over stale), judged by its name.
pub(crate) fn is_weights_file(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    const WEIGHT_EXTENSIONS: &[&str] = &[
        ".safetensors",
        ".bin",
        ".pt",
        ".pth",
        ".ckpt",
        ".h5",
        ".msgpack",
        ".gguf",
        ".onnx",
        ".ot",
    ];
    WEIGHT_EXTENSIONS.iter().any(|e| lower.ends_with(e))
        || lower.ends_with(".safetensors.index.json")
        || lower.ends_with(".bin.index.json")
}

/// Copies every regular, non-hidden, non-weights file of `base` into `dest`; returns the names.
pub(crate) fn copy_side_files(base: &Path, dest: &Path) -> Result<Vec<String>, MergeError> {
    let mut copied = Vec::new();
    for entry in std::fs::read_dir(base).map_err(|e| MergeError::io(base, e))? {
        let entry = entry.map_err(|e| MergeError::io(base, e))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let path = entry.path();
        // Follows symlinks (Hugging Face cache snapshots are links into its blob store).
        let is_file = std::fs::metadata(&path).is_ok_and(|m| m.is_file());
        if !is_file || name.starts_with('.') || is_weights_file(&name) {
            continue;
        }
        let target = dest.join(&name);
        std::fs::copy(&path, &target).map_err(|e| MergeError::io(&path, e))?;
        std::fs::File::open(&target)
            .and_then(|f| f.sync_all())
            .map_err(|e| MergeError::io(&target, e))?;
        copied.push(name);
    }
    copied.sort();
    Ok(copied)
}

/// Records `dtype` as the checkpoint's dtype in `dir/config.json` (both the `torch_dtype` key
/// of transformers 4 and the `dtype` key of transformers 5), when there is a config.
pub(crate) fn set_config_dtype(dir: &Path, dtype: &Dtype) -> Result<(), MergeError> {
    let path = dir.join(CONFIG_JSON);
    if !path.is_file() {
        return Ok(());
    }
    let mut config = read_json(&path)?;
    let name = match dtype {
        Dtype::F32 => "float32",
        Dtype::F16 => "float16",
        Dtype::BF16 => "bfloat16",
        _ => return Ok(()),
    };
    if let Some(object) = config.as_object_mut() {
        for key in ["torch_dtype", "dtype"] {
            if key == "torch_dtype" || object.contains_key(key) {
                object.insert(key.to_owned(), name.into());
            }
        }
    }
    write_json(&path, &config)?;
    Ok(())
}

/// Writes `model.safetensors.index.json` into `dest` from the base's, with the new total size
/// (the weight map is unchanged: same tensors in the same shards).
pub(crate) fn write_index(
    base_index: &Path,
    dest: &Path,
    total_size: u64,
) -> Result<(), MergeError> {
    let mut index = read_json(base_index)?;
    let object = index
        .as_object_mut()
        .ok_or_else(|| MergeError::BaseTensor {
            tensor: "(index)".to_owned(),
            why: format!("{} is not a JSON object", base_index.display()),
        })?;
    let metadata = object
        .entry("metadata")
        .or_insert_with(|| serde_json::json!({}));
    if let Some(metadata) = metadata.as_object_mut() {
        metadata.insert("total_size".to_owned(), total_size.into());
    }
    write_json(&dest.join(MODEL_SAFETENSORS_INDEX_JSON), &index)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weights_files_are_recognised() {
        for name in [
            "model.safetensors",
            "model-00001-of-00002.safetensors",
            "model.safetensors.index.json",
            "pytorch_model.bin",
            "pytorch_model.bin.index.json",
            "consolidated.00.pth",
        ] {
            assert!(is_weights_file(name), "{name}");
        }
        for name in [
            "config.json",
            "tokenizer.json",
            "tokenizer.model",
            "merges.txt",
            "chat_template.jinja",
        ] {
            assert!(!is_weights_file(name), "{name}");
        }
    }

    #[test]
    fn staging_refuses_non_empty_out_and_cleans_up_when_dropped() {
        let dir = tempfile::tempdir().expect("tempdir");
        let out = dir.path().join("out");
        std::fs::create_dir(&out).expect("mkdir");
        std::fs::write(out.join("keep.txt"), b"user data").expect("write");
        assert!(matches!(
            Staging::create(&out, false),
            Err(MergeError::OutputExists { .. })
        ));
        {
            let staging = Staging::create(&out, true).expect("overwrite allowed");
            std::fs::write(staging.path().join("a"), b"partial").expect("write");
        }
        // Dropped without commit: the old output is untouched and no temp dir remains.
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .expect("list")
            .map(|e| e.expect("entry").file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("out")]);
        assert!(out.join("keep.txt").exists());

        let staging = Staging::create(&out, true).expect("overwrite allowed");
        std::fs::write(staging.path().join("a"), b"new").expect("write");
        staging.commit().expect("commit");
        assert!(!out.join("keep.txt").exists());
        assert_eq!(std::fs::read(out.join("a")).expect("read"), b"new");
        assert_eq!(std::fs::read_dir(dir.path()).expect("list").count(), 1);
    }
}
