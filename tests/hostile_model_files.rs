//! Model files as a hostile user would write them: crafted sizes, edited metadata, extra or poisoned
//! tensors, devices instead of files. Each must be refused with a clear error, before anything large is
//! allocated; an honest file of the older format still loads.
//!
//! Forged files recompute the checksums (anyone can): the checks behind the checksums must hold on
//! their own. The peak-allocation bound is measured by a counting allocator installed for this test
//! binary.

use std::alloc::{GlobalAlloc, Layout, System};
use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use autoenc::io::model_file::{ModelMetadata, metadata_checksum};
use autoenc::{Activation, Autoencoder, AutoencoderParams, LatentSize, Scaling, ThresholdRule, Variant};
use ndarray::Array2;
use safetensors::tensor::{Dtype, SafeTensors, TensorView};

/// Counts live heap bytes and their high-water mark.
struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);
/// Peak measurements need the other tests of this binary to stand still.
static MEASURING: Mutex<()> = Mutex::new(());

// SAFETY: every call is forwarded to the system allocator with the caller's own arguments; the
// counters are atomics and allocate nothing.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwards the caller's layout to the system allocator unchanged.
        let pointer = unsafe { System.alloc(layout) };
        if !pointer.is_null() {
            let live = LIVE.fetch_add(layout.size(), Ordering::Relaxed) + layout.size();
            PEAK.fetch_max(live, Ordering::Relaxed);
        }
        pointer
    }
    unsafe fn dealloc(&self, pointer: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
        // SAFETY: the pointer came from `alloc` above with this layout.
        unsafe { System.dealloc(pointer, layout) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// The most memory refusing a hostile file may take.
const MEMORY_BOUND: usize = 100 << 20;

/// Runs `f` and returns its result with the peak heap growth it caused.
fn peak_growth<T>(f: impl FnOnce() -> T) -> (T, usize) {
    let _alone = MEASURING.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    let before = LIVE.load(Ordering::Relaxed);
    PEAK.store(before, Ordering::Relaxed);
    let out = f();
    (out, PEAK.load(Ordering::Relaxed).saturating_sub(before))
}

fn model(variant: Variant) -> Autoencoder {
    let x = Array2::from_shape_fn((200, 6), |(i, j)| ((i * 7 + j * 3) % 11) as f32 + j as f32);
    Autoencoder::params()
        .variant(variant)
        .latent(LatentSize::Fixed(2))
        .epochs(2)
        .record_timings(false)
        .fit(x.view())
        .expect("training on clean data")
}

fn plain_bytes() -> Vec<u8> {
    model(Variant::Plain).to_bytes().unwrap()
}

/// A change a forger makes to the metadata.
type Edit = Box<dyn Fn(&mut ModelMetadata)>;

/// A model file taken apart: its metadata and its tensors.
struct Parts {
    meta: ModelMetadata,
    tensors: Vec<(String, Dtype, Vec<usize>, Vec<u8>)>,
}

fn split(bytes: &[u8]) -> Parts {
    let container = SafeTensors::deserialize(bytes).unwrap();
    let (_, header) = SafeTensors::read_metadata(bytes).unwrap();
    let text = &header.metadata().as_ref().unwrap()["autoenc"];
    let mut tensors: Vec<_> = container
        .tensors()
        .into_iter()
        .map(|(name, view)| (name, view.dtype(), view.shape().to_vec(), view.data().to_vec()))
        .collect();
    tensors.sort_by(|a, b| a.0.cmp(&b.0));
    Parts { meta: serde_json::from_str(text).unwrap(), tensors }
}

/// Writes the parts back as a model file; with `sign`, recomputes the metadata checksum as a forger would.
fn join(parts: &Parts, sign: bool) -> Vec<u8> {
    join_text(serde_json::to_string(&parts.meta).unwrap(), parts, sign)
}

/// Writes a metadata text over the parts' tensors, for forgeries the typed metadata cannot express.
fn join_text(mut text: String, parts: &Parts, sign: bool) -> Vec<u8> {
    if sign {
        let crc = metadata_checksum(&text).expect("checksum field last");
        let at = text.len() - 10;
        text.replace_range(at..at + 8, &format!("{crc:08x}"));
    }
    let views: Vec<(String, TensorView)> = parts
        .tensors
        .iter()
        .map(|(name, dtype, shape, data)| (name.clone(), TensorView::new(*dtype, shape.clone(), data).unwrap()))
        .collect();
    safetensors::tensor::serialize(views, Some(HashMap::from([("autoenc".to_string(), text)]))).unwrap()
}

/// Recomputes the tensor checksum in autoenc's canonical order (network tensors, scaler, sketch).
fn resign_tensors(parts: &mut Parts) {
    let order: Vec<String> = {
        let mut names: Vec<String> = parts.meta.architecture.tensor_shapes().into_iter().map(|(n, _)| n).collect();
        names.extend(["scaler.offset".into(), "scaler.scale".into(), "sketch.points".into()]);
        names
    };
    let mut hasher = crc32fast::Hasher::new();
    for name in &order {
        if let Some(t) = parts.tensors.iter().find(|t| &t.0 == name) {
            hasher.update(&t.3);
        }
    }
    parts.meta.tensor_crc32 = hasher.finalize();
}

fn refused(bytes: &[u8]) -> String {
    let (result, grew) = peak_growth(|| Autoencoder::from_bytes(bytes));
    let message = result.expect_err("a hostile file must be refused").to_string();
    assert!(grew < MEMORY_BOUND, "refusing took {grew} bytes: {message}");
    message
}

fn assert_mentions(message: &str, words: &str) {
    assert!(message.contains(words), "expected '{words}' in: {message}");
}

#[test]
fn an_honest_file_round_trips() {
    let bytes = plain_bytes();
    let back = Autoencoder::from_bytes(&bytes).unwrap();
    assert_eq!(back.to_bytes().unwrap(), bytes);
    assert_eq!(join(&split(&bytes), true), bytes, "the test's forger writes what autoenc writes");
}

#[test]
fn crafted_sizes_are_refused_before_allocating() {
    let bytes = plain_bytes();
    let edits: Vec<(&str, Edit)> = vec![
        ("latent 2^40", Box::new(|m| m.architecture.latent = 1 << 40)),
        ("latent 10^6", Box::new(|m| m.architecture.latent = 1_000_000)),
        ("hidden 10^8", Box::new(|m| m.architecture.encoder_hidden = vec![100_000_000])),
        ("hidden 40k x 40k", Box::new(|m| m.architecture.encoder_hidden = vec![40_000, 40_000])),
        ("10k decoder layers", Box::new(|m| m.architecture.decoder_hidden = vec![4; 10_000])),
    ];
    for (what, edit) in &edits {
        let mut parts = split(&bytes);
        edit(&mut parts.meta);
        let message = refused(&join(&parts, true));
        assert!(message.contains("too large") || message.contains("at most"), "{what}: {message}");
    }
    // Wide and consistent metadata (60,000 features, all named, the hyper-parameters agreeing) over the
    // small tensors of a 6-feature model: the tensors' declared shapes give it away, before a
    // 60,000-wide network is built.
    let mut parts = split(&bytes);
    parts.meta.architecture.inputs = 60_000;
    parts.meta.feature_names = (0..60_000).map(|j| format!("f{j}")).collect();
    parts.meta.params = AutoencoderParams::from(parts.meta.params.clone())
        .hidden(Some(parts.meta.architecture.encoder_hidden.clone()))
        .check()
        .unwrap();
    let message = refused(&join(&parts, true));
    assert_mentions(&message, "expected F32");
}

#[test]
fn edited_metadata_is_refused() {
    let bytes = plain_bytes();
    let edits: Vec<(&str, Edit)> = vec![
        ("threshold digit", Box::new(|m| m.threshold.value *= 1.1)),
        ("reversed feature names", Box::new(|m| m.feature_names.reverse())),
        ("activation", Box::new(|m| m.architecture.activation = Activation::Tanh)),
        ("scaling", Box::new(|m| m.scaling = Scaling::Minmax)),
        ("negative threshold", Box::new(|m| m.threshold.value = -1.0)),
        ("extra key", Box::new(|m| _ = m.extra.insert("note".into(), "x".into()))),
    ];
    for (what, edit) in &edits {
        let mut parts = split(&bytes);
        edit(&mut parts.meta);
        let message = refused(&join(&parts, false));
        assert!(message.contains("metadata was changed"), "{what}: {message}");
    }
}

#[test]
fn forged_metadata_is_refused_by_the_checks_behind_the_checksum() {
    let bytes = plain_bytes();
    let cases: Vec<(&str, Edit, &str)> = vec![
        (
            "activation",
            Box::new(|m| m.architecture.activation = Activation::Tanh),
            "is not the one its hyper-parameters give",
        ),
        ("scaling", Box::new(|m| m.scaling = Scaling::Minmax), "scaling"),
        ("negative threshold", Box::new(|m| m.threshold.value = -1.0), "threshold"),
        (
            "contamination rule",
            Box::new(|m| m.threshold.rule = ThresholdRule::Contamination { contamination: 3.0 }),
            "contamination",
        ),
        ("duplicate names", Box::new(|m| m.feature_names[1] = m.feature_names[0].clone()), "appears more than once"),
        ("sketch flag", Box::new(|m| m.sketch_exact = false), "score sketch"),
    ];
    for (what, edit, expected) in &cases {
        let mut parts = split(&bytes);
        edit(&mut parts.meta);
        let message = refused(&join(&parts, true));
        assert!(message.contains(expected), "{what}: {message}");
    }
}

#[test]
fn forged_invalid_hyper_parameters_are_refused() {
    // A validated params set cannot hold an invalid value, so the forger edits the JSON text.
    let parts = split(&plain_bytes());
    let stored = serde_json::to_string(&parts.meta.params).unwrap();
    let mut forged = serde_json::to_value(&parts.meta.params).unwrap();
    forged["contamination"] = 7.0.into();
    let text = serde_json::to_string(&parts.meta).unwrap().replacen(&stored, &forged.to_string(), 1);
    assert_mentions(&refused(&join_text(text, &parts, true)), "hyper-parameters are invalid");
}

#[test]
fn unexpected_and_poisoned_tensors_are_refused() {
    let bytes = plain_bytes();
    let mut extra = split(&bytes);
    extra.tensors.push(("backdoor.weight".into(), Dtype::F32, vec![2], vec![0; 8]));
    assert_mentions(&refused(&join(&extra, true)), "unexpected tensor 'backdoor.weight'");

    let mut poisoned = split(&bytes);
    let weight = poisoned.tensors.iter_mut().find(|t| t.0 == "decoder.1.weight").unwrap();
    weight.3[4..8].copy_from_slice(&f32::NAN.to_le_bytes());
    resign_tensors(&mut poisoned);
    assert_mentions(&refused(&join(&poisoned, true)), "tensor 'decoder.1.weight' holds a non-finite value");

    let mut unsorted = split(&bytes);
    let sketch = unsorted.tensors.iter_mut().find(|t| t.0 == "sketch.points").unwrap();
    sketch.3[..8].copy_from_slice(&1e9f64.to_le_bytes());
    resign_tensors(&mut unsorted);
    assert_mentions(&refused(&join(&unsorted, true)), "score sketch is not an ascending list");

    let mut changed = split(&bytes);
    changed.tensors.iter_mut().find(|t| t.0 == "encoder.0.bias").unwrap().3[0] ^= 1;
    assert_mentions(&refused(&join(&changed, true)), "tensor data is corrupted");
}

#[test]
fn a_format_1_file_without_metadata_checksum_still_loads() {
    let bytes = plain_bytes();
    let mut parts = split(&bytes);
    parts.meta.metadata_crc32 = None;
    parts.meta.format_version = 1;
    let views: Vec<(String, TensorView)> = parts
        .tensors
        .iter()
        .map(|(name, dtype, shape, data)| (name.clone(), TensorView::new(*dtype, shape.clone(), data).unwrap()))
        .collect();
    let text = serde_json::to_string(&parts.meta).unwrap();
    let v1 = safetensors::tensor::serialize(views, Some(HashMap::from([("autoenc".to_string(), text)]))).unwrap();
    let loaded = Autoencoder::from_bytes(&v1).unwrap();
    let original = Autoencoder::from_bytes(&bytes).unwrap();
    let x = Array2::from_shape_fn((5, 6), |(i, j)| (i + j) as f32);
    assert_eq!(loaded.score(x.view()).unwrap(), original.score(x.view()).unwrap());
}

#[test]
fn devices_huge_headers_and_trailing_bytes_are_refused_from_paths() {
    let (result, grew) = peak_growth(|| Autoencoder::load("/dev/zero"));
    let message = result.unwrap_err().to_string();
    assert!(grew < MEMORY_BOUND, "{grew} bytes for /dev/zero");
    assert_mentions(&message, "/dev/zero");
    assert_mentions(&message, "not a safetensors container");

    let dir = tempfile::tempdir().unwrap();
    let huge_header = dir.path().join("huge.ae");
    let mut bytes = (u64::MAX / 2).to_le_bytes().to_vec();
    bytes.extend(b"{}");
    std::fs::write(&huge_header, &bytes).unwrap();
    let (result, grew) = peak_growth(|| Autoencoder::load(&huge_header));
    assert!(grew < MEMORY_BOUND);
    assert_mentions(&result.unwrap_err().to_string(), "header of");

    let trailing = dir.path().join("trailing.ae");
    let mut bytes = plain_bytes();
    bytes.extend(vec![0u8; 1 << 20]);
    std::fs::write(&trailing, &bytes).unwrap();
    let (result, grew) = peak_growth(|| Autoencoder::load(&trailing));
    assert!(grew < MEMORY_BOUND);
    assert_mentions(&result.unwrap_err().to_string(), "trailing.ae");

    let honest = dir.path().join("honest.ae");
    std::fs::write(&honest, plain_bytes()).unwrap();
    assert!(Autoencoder::load(&honest).is_ok());
}

#[test]
fn every_variant_survives_the_load_checks() {
    use autoenc::{Noise, Sparsity};
    for variant in [
        Variant::Plain,
        Variant::Denoising { noise: Noise::Masking { fraction: 0.3 } },
        Variant::Sparse { sparsity: Sparsity::TopK { k: 1 } },
        Variant::Contractive { lambda: 0.1 },
        Variant::Variational { beta: 1.0 },
    ] {
        let bytes = model(variant).to_bytes().unwrap();
        let back = Autoencoder::from_bytes(&bytes).unwrap_or_else(|e| panic!("{variant:?}: {e}"));
        assert_eq!(back.to_bytes().unwrap(), bytes, "{variant:?}");
    }
}
