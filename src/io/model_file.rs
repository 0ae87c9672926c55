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
//! Loading trusts nothing in the file. In order, and before anything is allocated from the file's
//! numbers: the file's size and its header's size are bounded ([`crate::limits`]); the container is
//! parsed; the format version is read; the metadata checksum is checked (format 2: a CRC-32 over the
//! metadata text, so a changed digit, name or activation is refused); the hyper-parameters are
//! validated as they are read, by the same `check` that built them; the architecture is checked
//! against sane bounds, against the hyper-parameters it was derived from, and against the shape of
//! every tensor the container declares, and a tensor the model does not have is refused; then the
//! tensors are read, their checksum compared, and their values checked (finite weights, a finite
//! non-zero scaler, a finite non-negative threshold, an ascending finite score sketch). A truncated,
//! corrupted, edited or crafted file is an error — never a panic, an outsized allocation or a silently
//! different model.
//!
//! The checksums detect damage and edits, they do not authenticate: anyone can recompute a CRC. Format
//! 1 files (no metadata checksum) still load, with every other check.
//!
//! Format 3 adds the feature kinds (`feature_kinds`: each feature numeric or categorical, with its
//! vocabulary). Only a model with a categorical feature is written as format 3; a numeric one is
//! written as format 2, byte for byte as before, so older readers still load it. On load the kinds
//! must agree with the feature names, the network's input width and the scaler (a categorical
//! feature's code passes it unchanged: offset 0, scale 1).

use std::collections::HashMap;
use std::path::Path;

use safetensors::tensor::{Dtype, SafeTensors, TensorView};
use serde::{Deserialize, Serialize};

use crate::anomaly::{SKETCH_POINTS, ScoreSketch, Threshold, ThresholdRule};
use crate::error::{AutoencError, Result};
pub use crate::io::atomic::write_atomically;
use crate::limits::{MAX_MODEL_FILE_BYTES, MAX_MODEL_HEADER_BYTES};
use crate::model::autoencoder::Autoencoder;
use crate::model::features::{FeatureKind, FeatureLayout};
use crate::model::network::{Architecture, Network};
use crate::model::params::{AutoencoderValidParams, Scaling};
use crate::model::training_report::TrainingReport;
use crate::preprocess::Scaler;

/// The newest version this library writes; it reads this and every older one. Version 2 added the
/// metadata checksum, version 3 the feature kinds (written only for a model with a categorical feature).
pub const FORMAT_VERSION: u32 = 3;
/// The version a model with numeric features only is written as.
const NUMERIC_FORMAT_VERSION: u32 = 2;
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
    /// Each feature's kind (format 3 on; absent: every feature numeric).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub feature_kinds: Option<Vec<FeatureKind>>,
    /// CRC-32 (IEEE) of the tensors' bytes, in the canonical tensor order.
    pub tensor_crc32: u32,
    /// CRC-32 (IEEE) of the metadata JSON text as stored, with this field's eight hex digits written as
    /// `00000000` (format 2 on; it is always the last field, so a reader in any language can zero it
    /// without re-serialising: see [`metadata_checksum`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata_crc32: Option<String>,
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
        let mixed = self.features.is_mixed();
        let metadata = ModelMetadata {
            format_version: if mixed { FORMAT_VERSION } else { NUMERIC_FORMAT_VERSION },
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
            feature_kinds: mixed.then(|| self.features.kinds().to_vec()),
            tensor_crc32: checksum(&tensors),
            metadata_crc32: Some(CHECKSUM_PLACEHOLDER.into()),
        };
        let mut json = serde_json::to_string(&metadata)?;
        let crc = metadata_checksum(&json)
            .ok_or_else(|| AutoencError::ModelFile("metadata checksum field is not last".into()))?;
        json.replace_range(json.len() - CHECKSUM_SUFFIX_LEN..json.len() - 2, &format!("{crc:08x}"));
        // One metadata key only: safetensors writes its metadata map in hash order, and a single key
        // keeps the file byte-for-byte reproducible.
        let info = HashMap::from([(FORMAT_NAME.to_string(), json)]);
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

    /// Reads a model file. At most [`MAX_MODEL_FILE_BYTES`] are read, and only as many as the file's
    /// header declares, so a device, a pipe or a huge file is refused rather than read to the end.
    pub fn load(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let in_file = |e: AutoencError| match e {
            AutoencError::ModelFile(msg) => AutoencError::ModelFile(format!("{}: {msg}", path.display())),
            AutoencError::Io(err) => {
                AutoencError::Io(std::io::Error::new(err.kind(), format!("{}: {err}", path.display())))
            }
            other => other,
        };
        let bytes = read_model_file(path).map_err(in_file)?;
        Self::from_bytes(&bytes).map_err(in_file)
    }

    /// Reads a model from the bytes of a model file (e.g. a SQL binary value).
    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        if bytes.len() as u64 > MAX_MODEL_FILE_BYTES {
            return Err(bad(format!(
                "{} bytes is larger than the largest model file ({MAX_MODEL_FILE_BYTES} bytes)",
                bytes.len()
            )));
        }
        let (_, header) =
            SafeTensors::read_metadata(bytes).map_err(|e| bad(format!("not a safetensors container ({e})")))?;
        let meta = metadata_of(&header)?;
        let arch = &meta.architecture;
        let layout = check_architecture(&meta)?;
        // Every tensor the container declares must be one this architecture has, with its shape —
        // checked on the header alone, before the network (sized by the metadata) is allocated.
        let expected = expected_tensors(&meta);
        let declared = header.tensors();
        for (name, info) in &declared {
            match expected.iter().find(|(n, _, _)| n == name) {
                None => return Err(bad(format!("unexpected tensor '{name}' (not part of this architecture)"))),
                Some((_, dtype, shape)) if info.dtype != *dtype || info.shape != *shape => {
                    return Err(bad(format!(
                        "tensor '{name}' is {:?} {:?}, expected {dtype:?} {shape:?}",
                        info.dtype, info.shape
                    )));
                }
                Some(_) => {}
            }
        }
        if let Some((name, _, _)) = expected.iter().find(|(n, _, _)| !declared.contains_key(n)) {
            return Err(bad(format!("tensor '{name}' is missing")));
        }
        let container = SafeTensors::deserialize(bytes).map_err(|e| bad(format!("damaged container ({e})")))?;
        let mut network: Network<f32> = Network::zeros(arch);
        let mut tensors = Vec::new();
        for (name, dtype, shape) in &expected {
            tensors.push(read_tensor(&container, name, *dtype, shape)?);
        }
        let crc = checksum(&tensors);
        if crc != meta.tensor_crc32 {
            return Err(bad(format!(
                "tensor data is corrupted (checksum {crc:08x}, expected {:08x})",
                meta.tensor_crc32
            )));
        }
        let points = tensors.pop().map(|t| decode_f64(&t.bytes)).unwrap_or_default();
        let scale = tensors.pop().map(|t| decode_f32(&t.bytes)).unwrap_or_default();
        let offset = tensors.pop().map(|t| decode_f32(&t.bytes)).unwrap_or_default();
        for ((slot, _), t) in network.tensors_mut().into_iter().zip(&tensors) {
            for (value, chunk) in slot.iter_mut().zip(t.bytes.chunks_exact(4)) {
                *value = f32::from_le_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]);
            }
            if let Some(position) = slot.iter().position(|v| !v.is_finite()) {
                return Err(bad(format!("tensor '{}' holds a non-finite value at index {position}", t.name)));
            }
        }
        if scale.iter().any(|s| !s.is_finite() || *s == 0.0) || offset.iter().any(|o| !o.is_finite()) {
            return Err(bad("scaler holds non-finite or zero values".into()));
        }
        if points.iter().any(|p| !p.is_finite()) || !points.is_sorted() {
            return Err(bad("score sketch is not an ascending list of finite scores".into()));
        }
        for (j, kind) in layout.kinds().iter().enumerate() {
            if matches!(kind, FeatureKind::Categorical { .. }) && (offset[j] != 0.0 || scale[j] != 1.0) {
                return Err(bad(format!(
                    "categorical feature '{}' has scaler offset {} and scale {}; a code passes unscaled (0 and 1)",
                    meta.feature_names[j], offset[j], scale[j]
                )));
            }
        }
        Ok(Autoencoder {
            params: meta.params,
            architecture: meta.architecture,
            network,
            scaler: Scaler { kind: meta.scaling, offset: offset.into(), scale: scale.into() },
            feature_names: meta.feature_names,
            features: layout,
            threshold: meta.threshold,
            sketch: ScoreSketch { points, count: meta.sketch_count, exact: meta.sketch_exact },
            report: meta.report,
            explained_variance: meta.explained_variance,
            extra: meta.extra,
            trainer: Default::default(),
            folded_first_layer: Default::default(),
        })
    }
}

fn bad(msg: String) -> AutoencError {
    AutoencError::ModelFile(msg)
}

/// The eight hex digits the checksum is computed with, and the length of `,"metadata_crc32":"…"}` after
/// the digits start (the digits, the closing quote and brace).
const CHECKSUM_PLACEHOLDER: &str = "00000000";
const CHECKSUM_SUFFIX_LEN: usize = 10;
const CHECKSUM_FIELD: &str = r#","metadata_crc32":""#;

/// The CRC-32 of a stored metadata text with its checksum digits zeroed; `None` when the text does not
/// end with the checksum field. The same in Python: `zlib.crc32((text[:-10] + '00000000"}').encode())`.
pub fn metadata_checksum(json: &str) -> Option<u32> {
    let digits_start = json.len().checked_sub(CHECKSUM_SUFFIX_LEN)?;
    let field_start = digits_start.checked_sub(CHECKSUM_FIELD.len())?;
    if !json.is_char_boundary(field_start)
        || &json[field_start..digits_start] != CHECKSUM_FIELD
        || !json.ends_with("\"}")
    {
        return None;
    }
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(&json.as_bytes()[..digits_start]);
    hasher.update(CHECKSUM_PLACEHOLDER.as_bytes());
    hasher.update(b"\"}");
    Some(hasher.finalize())
}

/// The metadata of a parsed container: present, of a version this library reads, and (format 2 on)
/// matching its checksum.
fn metadata_of(header: &safetensors::tensor::Metadata) -> Result<ModelMetadata> {
    let json = header
        .metadata()
        .as_ref()
        .and_then(|m| m.get(FORMAT_NAME))
        .ok_or_else(|| bad("no metadata; not an autoenc model".into()))?;
    parse_metadata(json)
}

/// The feature kinds a file declares: present from format 3 on (and then with a categorical feature),
/// one per feature name.
fn feature_layout(meta: &ModelMetadata) -> Result<FeatureLayout> {
    let Some(kinds) = &meta.feature_kinds else {
        return Ok(FeatureLayout::numeric(meta.feature_names.len()));
    };
    if meta.format_version < 3 {
        return Err(bad(format!("feature kinds need format 3, the file says format {}", meta.format_version)));
    }
    if kinds.len() != meta.feature_names.len() {
        return Err(bad(format!(
            "metadata is inconsistent: {} feature kinds for {} feature names",
            kinds.len(),
            meta.feature_names.len()
        )));
    }
    // Widths are summed with a bound first: a crafted file's vocabularies could otherwise declare a
    // network wider than any layer may be.
    let width = kinds.iter().map(FeatureKind::width).try_fold(0usize, |sum, w| sum.checked_add(w));
    if width.is_none_or(|w| w > crate::limits::MAX_LAYER_WIDTH) {
        return Err(bad("feature kinds declare a network wider than the widest layer allowed".into()));
    }
    Ok(FeatureLayout::new(kinds.clone()))
}

/// The architecture, its bounds and the metadata values that do not need the tensors; gives the
/// feature layout.
fn check_architecture(meta: &ModelMetadata) -> Result<FeatureLayout> {
    let arch = &meta.architecture;
    if arch.inputs == 0 || arch.latent == 0 {
        return Err(bad("architecture has no inputs or no code units".into()));
    }
    let layout = feature_layout(meta)?;
    if layout.width() != arch.inputs {
        return Err(bad(format!(
            "metadata is inconsistent: {} feature names ({} network inputs) for {} inputs",
            meta.feature_names.len(),
            layout.width(),
            arch.inputs
        )));
    }
    crate::preprocess::check_feature_names(&meta.feature_names).map_err(|e| bad(e.to_string()))?;
    arch.check_size().map_err(|e| bad(e.to_string()))?;
    // The stored hyper-parameters were checked as they were read (deserialising an
    // `AutoencoderValidParams` runs `check`); what remains is whether the rest of the file agrees.
    let params = &meta.params;
    if Architecture::from_params(params, arch.inputs, arch.latent) != *arch {
        return Err(bad(format!(
            "architecture {} ({}) is not the one its hyper-parameters give",
            arch.describe(),
            arch.activation
        )));
    }
    if meta.scaling != params.scaling() {
        return Err(bad(format!(
            "scaling {:?} is not the one its hyper-parameters name ({:?})",
            meta.scaling,
            params.scaling()
        )));
    }
    let threshold = meta.threshold;
    if !(threshold.value.is_finite() && threshold.value >= 0.0) {
        return Err(bad(format!("threshold must be finite and non-negative, got {}", threshold.value)));
    }
    if let ThresholdRule::Contamination { contamination } = threshold.rule
        && !(contamination > 0.0 && contamination <= 0.5)
    {
        return Err(bad(format!("threshold contamination must be in (0, 0.5], got {contamination}")));
    }
    if meta.sketch_exact != (meta.sketch_count <= SKETCH_POINTS) {
        return Err(bad(format!(
            "score sketch of {} rows cannot be {}",
            meta.sketch_count,
            if meta.sketch_exact { "exact" } else { "a grid" }
        )));
    }
    Ok(layout)
}

/// `(name, dtype, shape)` of every tensor of the model, in the canonical (checksum) order.
fn expected_tensors(meta: &ModelMetadata) -> Vec<(String, Dtype, Vec<usize>)> {
    let arch = &meta.architecture;
    let mut out: Vec<(String, Dtype, Vec<usize>)> =
        arch.tensor_shapes().into_iter().map(|(name, shape)| (name, Dtype::F32, shape)).collect();
    let features = meta.feature_names.len();
    out.push(("scaler.offset".into(), Dtype::F32, vec![features]));
    out.push(("scaler.scale".into(), Dtype::F32, vec![features]));
    out.push(("sketch.points".into(), Dtype::F64, vec![meta.sketch_count.min(SKETCH_POINTS)]));
    out
}

/// Reads a model file no larger than [`MAX_MODEL_FILE_BYTES`]: the header's length first, then the
/// header, then exactly the tensor bytes it declares, so that `/dev/zero`, a pipe or a huge file is
/// refused after a few bytes instead of read to the end.
fn read_model_file(path: &Path) -> Result<Vec<u8>> {
    use std::io::Read;
    let mut file = std::fs::File::open(path)?;
    let mut bytes = vec![0u8; 8];
    file.read_exact(&mut bytes).map_err(|_| bad("not a safetensors container (shorter than 8 bytes)".into()))?;
    let header_len = u64::from_le_bytes(bytes[..8].try_into().unwrap_or_default());
    if header_len == 0 || header_len > MAX_MODEL_HEADER_BYTES {
        return Err(bad(format!(
            "not a safetensors container (header of {header_len} bytes; at most {MAX_MODEL_HEADER_BYTES})"
        )));
    }
    (&mut file).take(header_len).read_to_end(&mut bytes)?;
    if (bytes.len() as u64) < 8 + header_len {
        return Err(bad("truncated header".into()));
    }
    let header: safetensors::tensor::Metadata =
        serde_json::from_slice(&bytes[8..]).map_err(|e| bad(format!("not a safetensors container ({e})")))?;
    let total = 8 + header_len + header.data_len() as u64;
    if total > MAX_MODEL_FILE_BYTES {
        return Err(bad(format!(
            "declares {total} bytes, more than the largest model file ({MAX_MODEL_FILE_BYTES} bytes)"
        )));
    }
    // One byte more than declared, to notice trailing data (which `from_bytes` then refuses).
    (&mut file).take(total + 1 - bytes.len() as u64).read_to_end(&mut bytes)?;
    Ok(bytes)
}

/// Reads the metadata of a model file without building the model (for `inspect` and `ae_model_info`).
pub fn read_metadata(bytes: &[u8]) -> Result<ModelMetadata> {
    let (_, header) =
        SafeTensors::read_metadata(bytes).map_err(|e| bad(format!("not a safetensors container ({e})")))?;
    metadata_of(&header)
}

/// Checks the format version before reading the rest, so that a newer file gets an "upgrade" message
/// rather than a confusing field error, then (format 2 on) the metadata checksum.
fn parse_metadata(json: &str) -> Result<ModelMetadata> {
    let value: serde_json::Value = serde_json::from_str(json).map_err(|e| bad(format!("unreadable metadata ({e})")))?;
    let version = value
        .get("format_version")
        .and_then(|v| v.as_u64())
        .ok_or_else(|| bad("missing or unreadable format_version".into()))?;
    let version = u32::try_from(version).unwrap_or(u32::MAX);
    if version > FORMAT_VERSION {
        return Err(AutoencError::UnsupportedFormatVersion { found: version, supported: FORMAT_VERSION });
    }
    // The checksum is checked on the text before the fields are read, so that any edit — even one
    // that leaves a field unreadable — is reported as what it is.
    if version >= 2 {
        let stored = value
            .get("metadata_crc32")
            .and_then(|v| v.as_str())
            .ok_or_else(|| bad("metadata checksum is missing".into()))?;
        let computed = metadata_checksum(json).ok_or_else(|| bad("metadata checksum is not the last field".into()))?;
        if stored.len() != 8 || u32::from_str_radix(stored, 16).ok() != Some(computed) {
            return Err(bad(format!("metadata was changed or damaged (checksum {computed:08x}, stored {stored})")));
        }
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
