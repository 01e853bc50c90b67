//! A streaming safetensors writer: the header is computed from a plan, then tensor bytes are
//! written in plan order (in as many pieces as the caller likes), so no tensor — let alone the
//! whole model — has to be in memory at once.
//!
//! The file is written under a temporary name; [`SafetensorsWriter::finish`] checks that every
//! planned byte arrived, fsyncs and renames it into place. Dropping an unfinished writer
//! removes the temporary file.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use super::atomic::{sync_dir, temp_sibling};
use super::{Dtype, HfError};

/// One tensor the writer will receive.
#[derive(Debug, Clone)]
pub struct PlannedTensor {
    /// Tensor name.
    pub name: String,
    /// Element type.
    pub dtype: Dtype,
    /// Shape, outermost dimension first.
    pub shape: Vec<usize>,
}

impl PlannedTensor {
    /// Bytes of data this tensor takes.
    pub fn byte_len(&self) -> Result<usize, HfError> {
        let size = self.dtype.size().ok_or_else(|| {
            HfError::WritePlan(format!(
                "{}: dtype {} has no known size",
                self.name, self.dtype
            ))
        })?;
        Ok(self.shape.iter().product::<usize>() * size)
    }
}

/// Writes one safetensors file from a plan; see the module docs.
#[derive(Debug)]
pub struct SafetensorsWriter {
    path: PathBuf,
    temp: PathBuf,
    out: Option<BufWriter<File>>,
    sizes: Vec<(String, usize)>,
    current: usize,
    written_in_current: usize,
}

impl SafetensorsWriter {
    /// Creates the temporary file and writes the header for `plan` (tensors are laid out in
    /// plan order) with `metadata` as `__metadata__`.
    pub fn create(
        path: &Path,
        plan: &[PlannedTensor],
        metadata: &BTreeMap<String, String>,
    ) -> Result<SafetensorsWriter, HfError> {
        let mut header = serde_json::Map::new();
        if !metadata.is_empty() {
            header.insert(
                "__metadata__".to_owned(),
                serde_json::to_value(metadata).unwrap_or_default(),
            );
        }
        let mut offset = 0usize;
        let mut sizes = Vec::with_capacity(plan.len());
        for tensor in plan {
            let len = tensor.byte_len()?;
            if header.contains_key(&tensor.name) {
                return Err(HfError::WritePlan(format!(
                    "tensor {} planned twice",
                    tensor.name
                )));
            }
            header.insert(
                tensor.name.clone(),
                serde_json::json!({
                    "dtype": tensor.dtype.name(),
                    "shape": tensor.shape,
                    "data_offsets": [offset, offset + len],
                }),
            );
            offset += len;
            sizes.push((tensor.name.clone(), len));
        }
        let mut header_bytes = serde_json::to_vec(&header).map_err(|source| HfError::Json {
            path: path.to_owned(),
            source,
        })?;
        // The data section starts 8-byte aligned, padded with spaces as the reference writer does.
        while (8 + header_bytes.len()) % 8 != 0 {
            header_bytes.push(b' ');
        }
        let temp = temp_sibling(path);
        let file = File::create(&temp).map_err(|source| HfError::io(&temp, source))?;
        let mut out = BufWriter::with_capacity(4 << 20, file);
        let start = (header_bytes.len() as u64)
            .to_le_bytes()
            .into_iter()
            .chain(header_bytes)
            .collect::<Vec<u8>>();
        let mut writer = SafetensorsWriter {
            path: path.to_owned(),
            temp,
            out: None,
            sizes,
            current: 0,
            written_in_current: 0,
        };
        out.write_all(&start)
            .map_err(|source| HfError::io(&writer.temp, source))?;
        writer.out = Some(out);
        writer.skip_empty();
        Ok(writer)
    }

    fn skip_empty(&mut self) {
        while self.current < self.sizes.len()
            && self.sizes[self.current].1 == self.written_in_current
        {
            self.current += 1;
            self.written_in_current = 0;
        }
    }

    /// The name of the tensor the next bytes belong to, if any remain.
    pub fn next_tensor(&self) -> Option<&str> {
        self.sizes.get(self.current).map(|(name, _)| name.as_str())
    }

    /// Appends bytes of the current tensor (a piece may not run past the tensor's end).
    pub fn write(&mut self, bytes: &[u8]) -> Result<(), HfError> {
        let Some((name, size)) = self.sizes.get(self.current) else {
            return Err(HfError::WritePlan(format!(
                "{} more bytes after the last planned tensor",
                bytes.len()
            )));
        };
        if self.written_in_current + bytes.len() > *size {
            return Err(HfError::WritePlan(format!(
                "tensor {name}: {} bytes given but it has {} left",
                bytes.len(),
                size - self.written_in_current
            )));
        }
        let out = self
            .out
            .as_mut()
            .ok_or_else(|| HfError::WritePlan("writer already closed".to_owned()))?;
        out.write_all(bytes)
            .map_err(|source| HfError::io(&self.temp, source))?;
        self.written_in_current += bytes.len();
        self.skip_empty();
        Ok(())
    }

    /// Checks that every planned byte was written, then fsyncs and renames the file into
    /// place.
    pub fn finish(mut self) -> Result<(), HfError> {
        if let Some((name, size)) = self.sizes.get(self.current) {
            return Err(HfError::WritePlan(format!(
                "tensor {name} got {} of its {size} bytes",
                self.written_in_current
            )));
        }
        let out = self
            .out
            .take()
            .ok_or_else(|| HfError::WritePlan("writer already closed".to_owned()))?;
        let file = out
            .into_inner()
            .map_err(|e| HfError::io(&self.temp, e.into_error()))?;
        file.sync_all()
            .map_err(|source| HfError::io(&self.temp, source))?;
        std::fs::rename(&self.temp, &self.path)
            .map_err(|source| HfError::io(&self.path, source))?;
        sync_dir(&self.path)
    }
}

impl Drop for SafetensorsWriter {
    fn drop(&mut self) {
        if self.out.take().is_some() {
            let _ = std::fs::remove_file(&self.temp);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::{encode_f32, Checkpoint};
    use super::*;

    fn plan() -> Vec<PlannedTensor> {
        vec![
            PlannedTensor {
                name: "a.weight".into(),
                dtype: Dtype::BF16,
                shape: vec![3, 2],
            },
            PlannedTensor {
                name: "empty".into(),
                dtype: Dtype::F32,
                shape: vec![0],
            },
            PlannedTensor {
                name: "b.bias".into(),
                dtype: Dtype::F32,
                shape: vec![2],
            },
        ]
    }

    #[test]
    fn round_trip_through_the_checkpoint_reader() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("model.safetensors");
        let metadata = BTreeMap::from([("format".to_owned(), "pt".to_owned())]);
        let mut writer = SafetensorsWriter::create(&path, &plan(), &metadata).expect("create");
        let a = encode_f32(&[1.0, 2.0, 3.0, 4.0, 5.0, 6.0], &Dtype::BF16).expect("encode");
        writer.write(&a[..4]).expect("first row");
        writer.write(&a[4..]).expect("other rows");
        assert_eq!(writer.next_tensor(), Some("b.bias"));
        writer
            .write(&encode_f32(&[-1.0, 0.5], &Dtype::F32).expect("encode"))
            .expect("bias");
        writer.finish().expect("finish");

        let checkpoint = Checkpoint::open(dir.path()).expect("open");
        assert_eq!(checkpoint.names(), vec!["a.weight", "b.bias", "empty"]);
        assert_eq!(
            checkpoint.metadata().get("format").map(String::as_str),
            Some("pt")
        );
        let a = checkpoint.tensor("a.weight").expect("a");
        assert_eq!(a.shape, vec![3, 2]);
        assert_eq!(a.rows_to_f32(1, 2).expect("rows"), vec![3.0, 4.0, 5.0, 6.0]);
        assert!(a.rows_to_f32(2, 2).is_err());
        assert_eq!(
            checkpoint
                .tensor("b.bias")
                .expect("b")
                .to_f32()
                .expect("f32"),
            vec![-1.0, 0.5]
        );
        checkpoint.release("a.weight");
        assert_eq!(
            checkpoint
                .tensor("a.weight")
                .expect("a")
                .to_f32()
                .expect("f32")[0],
            1.0
        );
    }

    #[test]
    fn short_or_long_writes_are_refused_and_leave_no_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("model.safetensors");
        let mut writer =
            SafetensorsWriter::create(&path, &plan(), &BTreeMap::new()).expect("create");
        assert!(
            writer.write(&[0u8; 13]).is_err(),
            "more than the tensor holds"
        );
        writer.write(&[0u8; 12]).expect("a");
        let err = writer.finish().expect_err("bias missing");
        assert!(err.to_string().contains("b.bias"), "{err}");
        assert_eq!(std::fs::read_dir(dir.path()).expect("list").count(), 0);
    }

    #[test]
    fn malformed_files_are_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("model.safetensors");
        let header = br#"{"w":{"dtype":"F32","shape":[4],"data_offsets":[0,8]}}"#;
        let mut bytes = (header.len() as u64).to_le_bytes().to_vec();
        bytes.extend_from_slice(header);
        bytes.extend_from_slice(&[0u8; 16]);
        std::fs::write(&path, &bytes).expect("write");
        let err = Checkpoint::open(dir.path()).expect_err("shape/offset mismatch");
        assert!(err.to_string().contains("needs 16 bytes"), "{err}");

        std::fs::write(&path, [255u8; 12]).expect("write");
        assert!(Checkpoint::open(dir.path()).is_err());
        std::fs::remove_file(&path).expect("rm");
        std::fs::write(dir.path().join("pytorch_model.bin"), b"pickle").expect("write");
        let err = Checkpoint::open(dir.path()).expect_err("pickle only");
        assert!(err.to_string().contains("pickles"), "{err}");
    }
}
