//! The model file: one safetensors container holding the weights as named tensors and everything else
//! as JSON metadata.
//!
//! Layout (readable by Python's `safetensors` package, `safe_open(path, "numpy")`):
//! - tensors `encoder.{i}.weight|bias`, `encoder.mean|log_var.weight|bias` (variational),
//!   `decoder.{i}.weight|bias` (all F32, weights as `(inputs, outputs)`), `scaler.offset`,
//!   `scaler.scale` (F32) and `sketch.points` (F64, the training-score sketch);
//! - one metadata key, `autoenc`, holding the JSON of [`ModelMetadata`]: format version, params,
//!   architecture, feature names, threshold, training report, library version and a CRC-32 of all
//!   tensor bytes (one key, because safetensors writes its metadata map in hash order).
//!
//! Loading checks the container, the format version, every tensor's dtype and shape against the stored
//! architecture, and the checksum, so a truncated or corrupted file is an error — never a panic or a
//! silently different model.

use std::collections::HashMap;
use std::path::Path;

use safetensors::tensor::{Dtype, SafeTensors, TensorView};
use serde::{Deserialize, Serialize};

use crate::anomaly::{ScoreSketch, Threshold};
use crate::error::{AutoencError, Result};
use crate::model::autoencoder::Autoencoder;
use crate::model::network::{Architecture, Network};
use crate::model::params::{AutoencoderValidParams, Scaling};
use crate::preprocess::Scaler;
use crate::train::report::TrainingReport;
use crate::train::trainer::TrainerState;

/// The version this library writes; it reads this and every older one.
pub const FORMAT_VERSION: u32 = 1;
/// The metadata key that marks an autoenc model file.
const FORMAT_NAME: &str = "autoenc";

/// Everything in the file besides the tensors.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ModelMetadata {
    pub format_version: u32,
    pub library_version: String,
    pub params: AutoencoderValidParams,
    pub architecture: Architecture,
    pub feature_names: Vec<String>,
    pub scaling: Scaling,
    pub threshold: Threshold,
    pub sketch_count: usize,
    pub sketch_exact: bool,
    pub report: TrainingReport,
    pub explained_variance: Option<Vec<f64>>,
    #[serde(default)]
    pub extra: serde_json::Map<String, serde_json::Value>,
    /// CRC-32 (IEEE) of the tensors' bytes, in the canonical tensor order.
    pub tensor_crc32: u32,
}

struct NamedTensor {
    name: String,
    dtype: Dtype,
    shape: Vec<usize>,
    bytes: Vec<u8>,
}

fn f32_bytes(values: &[f32]) -> Vec<u8> {
    values.iter().flat_map(|v| v.to_le_bytes()).collect()
}

fn f64_bytes(values: &[f64]) -> Vec<u8> {
    values.iter().flat_map(|v| v.to_le_bytes()).collect()
}

/// The model's tensors in canonical order (the order the checksum covers).
fn tensors_of(model: &Autoencoder) -> Vec<NamedTensor> {
    let mut out: Vec<NamedTensor> = model
        .network
        .tensor_names()
        .into_iter()
        .zip(model.network.tensors())
        .map(|((name, shape), values)| NamedTensor { name, dtype: Dtype::F32, shape, bytes: f32_bytes(values) })
        .collect();
    let d = model.scaler.features();
    for (name, values) in [("scaler.offset", &model.scaler.offset), ("scaler.scale", &model.scaler.scale)] {
        out.push(NamedTensor {
            name: name.into(),
            dtype: Dtype::F32,
            shape: vec![d],
            bytes: f32_bytes(&values.to_vec()),
        });
    }
    let points = &model.sketch.points;
    out.push(NamedTensor {
        name: "sketch.points".into(),
        dtype: Dtype::F64,
        shape: vec![points.len()],
        bytes: f64_bytes(points),
    });
    out
}

fn checksum(tensors: &[NamedTensor]) -> u32 {
    let mut hasher = crc32fast::Hasher::new();
    for t in tensors {
        hasher.update(&t.bytes);
    }
    hasher.finalize()
}

impl Autoencoder {
    /// The model as the bytes of a model file.
    pub fn to_bytes(&self) -> Result<Vec<u8>> {
        let tensors = tensors_of(self);
        let metadata = ModelMetadata {
            format_version: FORMAT_VERSION,
            library_version: env!("CARGO_PKG_VERSION").to_string(),
            params: self.params.clone(),
            architecture: self.architecture.clone(),
            feature_names: self.feature_names.clone(),
            scaling: self.scaler.kind,
            threshold: self.threshold,
            sketch_count: self.sketch.count,
            sketch_exact: self.sketch.exact,
            report: self.report.clone(),
            explained_variance: self.explained_variance.clone(),
            extra: self.extra.clone(),
            tensor_crc32: checksum(&tensors),
        };
        // One metadata key only: safetensors writes its metadata map in hash order, and a single key
        // keeps the file byte-for-byte reproducible.
        let info = HashMap::from([(FORMAT_NAME.to_string(), serde_json::to_string(&metadata)?)]);
        let views = tensors
            .iter()
            .map(|t| {
                TensorView::new(t.dtype, t.shape.clone(), &t.bytes)
                    .map(|view| (t.name.clone(), view))
                    .map_err(|e| AutoencError::ModelFile(format!("tensor {}: {e}", t.name)))
            })
            .collect::<Result<Vec<_>>>()?;
        safetensors::tensor::serialize(views, Some(info)).map_err(|e| AutoencError::ModelFile(e.to_string()))
    }

    /// Writes the model file atomically: to a temporary file beside `path`, then renamed over it, so a
    /// reader (or a crash) never sees half a file.
    pub fn save(&self, path: impl AsRef<Path>) -> Result<()> {
        write_atomically(path.as_ref(), &self.to_bytes()?)
    }

    /// Reads a model file.
    pub fn load(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let bytes = std::fs::read(path)
            .map_err(|e| AutoencError::Io(std::io::Error::new(e.kind(), format!("{}: {e}", path.display()))))?;
        Self::from_bytes(&bytes).map_err(|e| match e {
            AutoencError::ModelFile(msg) => AutoencError::ModelFile(format!("{}: {msg}", path.display())),
            other => other,
        })
    }

    /// Reads a model from the bytes of a model file (e.g. a SQL binary value).
    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        let bad = |msg: String| AutoencError::ModelFile(msg);
        let (_, header) =
            SafeTensors::read_metadata(bytes).map_err(|e| bad(format!("not a safetensors container ({e})")))?;
        let container = SafeTensors::deserialize(bytes).map_err(|e| bad(format!("damaged container ({e})")))?;
        let json = header
            .metadata()
            .as_ref()
            .and_then(|m| m.get(FORMAT_NAME))
            .ok_or_else(|| bad("no metadata; not an autoenc model".into()))?;
        let meta = parse_metadata(json)?;
        let arch = &meta.architecture;
        if meta.feature_names.len() != arch.inputs || arch.inputs == 0 || arch.latent == 0 {
            return Err(bad("metadata is inconsistent (feature names vs. architecture)".into()));
        }
        let mut network: Network<f32> = Network::zeros(arch);
        let mut tensors = Vec::new();
        for (name, shape) in network.tensor_names() {
            tensors.push(read_tensor(&container, &name, Dtype::F32, &shape)?);
        }
        for (slot, t) in network.tensors_mut().into_iter().zip(&tensors) {
            for (value, chunk) in slot.0.iter_mut().zip(t.bytes.chunks_exact(4)) {
                *value = f32::from_le_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]);
            }
        }
        let offset = read_tensor(&container, "scaler.offset", Dtype::F32, &[arch.inputs])?;
        let scale = read_tensor(&container, "scaler.scale", Dtype::F32, &[arch.inputs])?;
        let points = read_tensor(
            &container,
            "sketch.points",
            Dtype::F64,
            &[meta.sketch_count.min(crate::anomaly::SKETCH_POINTS)],
        )?;
        let crc = {
            let mut all: Vec<NamedTensor> = tensors;
            all.extend([offset, scale, points]);
            let crc = checksum(&all);
            (crc, all)
        };
        let (crc, mut all) = crc;
        if crc != meta.tensor_crc32 {
            return Err(bad(format!(
                "tensor data is corrupted (checksum {crc:08x}, expected {:08x})",
                meta.tensor_crc32
            )));
        }
        let points = all.pop().map(|t| decode_f64(&t.bytes)).unwrap_or_default();
        let scale = all.pop().map(|t| decode_f32(&t.bytes)).unwrap_or_default();
        let offset = all.pop().map(|t| decode_f32(&t.bytes)).unwrap_or_default();
        if scale.iter().any(|s| !s.is_finite() || *s == 0.0) || offset.iter().any(|o| !o.is_finite()) {
            return Err(bad("scaler holds non-finite or zero values".into()));
        }
        Ok(Autoencoder {
            params: meta.params,
            architecture: meta.architecture,
            network,
            scaler: Scaler { kind: meta.scaling, offset: offset.into(), scale: scale.into() },
            feature_names: meta.feature_names,
            threshold: meta.threshold,
            sketch: ScoreSketch { points, count: meta.sketch_count, exact: meta.sketch_exact },
            report: meta.report,
            explained_variance: meta.explained_variance,
            extra: meta.extra,
            trainer: TrainerState::default(),
            folded_first_layer: Default::default(),
        })
    }
}

/// Reads the metadata of a model file without building the model (for `inspect` and `ae_model_info`).
pub fn read_metadata(bytes: &[u8]) -> Result<ModelMetadata> {
    let (_, header) = SafeTensors::read_metadata(bytes)
        .map_err(|e| AutoencError::ModelFile(format!("not a safetensors container ({e})")))?;
    let json = header
        .metadata()
        .as_ref()
        .and_then(|m| m.get(FORMAT_NAME))
        .ok_or_else(|| AutoencError::ModelFile("no metadata; not an autoenc model".into()))?;
    parse_metadata(json)
}

/// Checks the format marker and version before reading the rest, so that a newer file gets an
/// "upgrade" message rather than a confusing field error.
fn parse_metadata(json: &str) -> Result<ModelMetadata> {
    let bad = |msg: String| AutoencError::ModelFile(msg);
    let value: serde_json::Value = serde_json::from_str(json).map_err(|e| bad(format!("unreadable metadata ({e})")))?;
    let version = value
        .get("format_version")
        .and_then(|v| v.as_u64())
        .ok_or_else(|| bad("missing or unreadable format_version".into()))?;
    let version = u32::try_from(version).unwrap_or(u32::MAX);
    if version > FORMAT_VERSION {
        return Err(AutoencError::UnsupportedFormatVersion { found: version, supported: FORMAT_VERSION });
    }
    serde_json::from_value(value).map_err(|e| bad(format!("unreadable metadata ({e})")))
}

fn read_tensor(container: &SafeTensors, name: &str, dtype: Dtype, shape: &[usize]) -> Result<NamedTensor> {
    let view = container.tensor(name).map_err(|_| AutoencError::ModelFile(format!("tensor '{name}' is missing")))?;
    if view.dtype() != dtype || view.shape() != shape {
        return Err(AutoencError::ModelFile(format!(
            "tensor '{name}' is {:?} {:?}, expected {dtype:?} {shape:?}",
            view.dtype(),
            view.shape()
        )));
    }
    Ok(NamedTensor { name: name.into(), dtype, shape: shape.to_vec(), bytes: view.data().to_vec() })
}

fn decode_f32(bytes: &[u8]) -> Vec<f32> {
    bytes.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect()
}

fn decode_f64(bytes: &[u8]) -> Vec<f64> {
    bytes.chunks_exact(8).map(|c| f64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]])).collect()
}

/// Writes `bytes` to a temporary file beside `path`, flushes it to disk, then renames it over `path`: a
/// reader, a crashed process or a power cut sees the old file or the new one, never half of one. A
/// failed write removes its temporary file.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    use std::io::Write;
    let file_name = path.file_name().and_then(|n| n.to_str()).unwrap_or("model");
    let temporary = path.with_file_name(format!(".{file_name}.{}.tmp", std::process::id()));
    let written = std::fs::File::create(&temporary)
        .and_then(|mut file| file.write_all(bytes).and_then(|()| file.sync_all()))
        .and_then(|()| std::fs::rename(&temporary, path));
    if let Err(error) = written {
        let _ = std::fs::remove_file(&temporary);
        return Err(error.into());
    }
    // The rename itself is durable once the directory is synced (best effort: not every platform allows it).
    if let Some(directory) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        let _ = std::fs::File::open(directory).and_then(|d| d.sync_all());
    }
    Ok(())
}
