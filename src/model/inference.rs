//! Running a trained model on raw rows: encode, reconstruct, score, with missing values imputed.
//!
//! One forward primitive serves every method, so a batch gets the same numbers whichever method (and
//! whichever door: CLI, SQL, DataFrame, stream) asks. Across batch sizes a row's numbers agree to f32
//! precision but not always to the last bit: the matrix kernel blocks a 1-row product differently
//! from an 8192-row one, and so sums in another order. Layers the register-tiled kernel takes (16–64
//! outputs on AVX-512, see `tiled`) are exempt: each row's sums depend on that row alone.
//! - Scoring with an identity output layer never writes the reconstruction when the tiled kernel takes
//!   that layer: it compares each tile with its input rows in registers (`Decode::UpToOutput`). Chunks
//!   with missing values take the general path, which gives the same bits for their complete rows.
//! - The scaler is folded into the first layer (`W' = diag(1/scale) W`, `b' = b - (offset/scale) W`),
//!   so raw rows go straight into the first matrix product without a scaling pass.
//! - Intermediate activations live in per-thread scratch buffers reused across calls. Fresh
//!   multi-megabyte buffers cost more than the arithmetic: the first write to each new page faults
//!   (measured ~0.3 ms per MB, against ~0.15 ms for the first product of 8192 rows).
//! - A row with a non-finite value shows up as a non-finite first-layer output. Such rows are
//!   looked at afterwards: an infinity is an error naming row and feature, a NaN is a missing value,
//!   filled in by iterative imputation (start from the feature mean, reconstruct, put the
//!   reconstruction in the gaps, repeat) and left out of the score.

use std::cell::RefCell;

use ndarray::{Array1, Array2, ArrayView1, ArrayView2, ArrayViewMut2, Axis};

use super::activation::Activation;
use super::autoencoder::{Autoencoder, ScoreDetails};
use super::dense::Dense;
use super::params::{Sparsity, Variant};
use super::regularizer::top_k_mask;
use super::tiled::{self, Finish, tiled_layer};
use crate::blocks::{CHUNK_ROWS, in_blocks};
use crate::error::{AutoencError, Result};
use crate::linalg::vectorized;
use crate::preprocess::scale_value;

/// Rounds of iterative imputation for rows with missing values. Three rounds settle to within f32
/// noise on our test data.
pub const IMPUTATION_ROUNDS: usize = 3;

thread_local! {
    static SCRATCH: RefCell<Vec<Vec<f32>>> = const { RefCell::new(Vec::new()) };
}

/// How far [`Autoencoder::forward_raw`] runs the network.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Decode {
    /// Stop at the code.
    No,
    /// Run the decoder to the finished reconstruction.
    Yes,
    /// Run the decoder but leave the output layer's bias (and identity activation) to the caller.
    WithoutOutputBias,
    /// Run the decoder up to the output layer and hand over that layer's input in place of the
    /// reconstruction: the caller runs the output layer itself (the fused scorer in `tiled`).
    UpToOutput,
}

fn view_mut(buffer: &mut Vec<f32>, rows: usize, cols: usize) -> ArrayViewMut2<'_, f32> {
    if buffer.len() < rows * cols {
        buffer.resize(rows * cols, 0.0);
    }
    ArrayViewMut2::from_shape((rows, cols), &mut buffer[..rows * cols]).expect("buffer sized to the shape")
}

fn view(buffer: &[f32], rows: usize, cols: usize) -> ArrayView2<'_, f32> {
    ArrayView2::from_shape((rows, cols), &buffer[..rows * cols]).expect("buffer sized to the shape")
}

/// The rows whose first-layer pre-activations are not all finite: a NaN (missing value) or an infinity
/// in the input, or finite values so large that the product overflows. Recomputed without the
/// activation, which has already overwritten the layer's outputs — this runs only when the probe fired.
fn suspect_rows(first: &Dense<f32>, rows: ArrayView2<f32>) -> Vec<usize> {
    let pre_activation = first.forward(rows);
    pre_activation
        .rows()
        .into_iter()
        .enumerate()
        .filter(|(_, r)| !r.iter().all(|v| v.is_finite()))
        .map(|(i, _)| i)
        .collect()
}

/// A row's score: squared errors against the scaled input over the observed (non-NaN) features,
/// divided by their count. Every path calls this one definition, so they agree to the bit. The sum runs
/// in sixteen fixed lanes (then the lanes pairwise, see `lane_total`), which the compiler vectorises.
#[inline(always)]
pub(crate) fn row_score(reconstruction: ArrayView1<f32>, raw: ArrayView1<f32>, offset: &[f32], inverse: &[f32]) -> f64 {
    let owned;
    let reconstruction = match reconstruction.as_slice() {
        Some(s) => s,
        None => {
            owned = reconstruction.to_vec();
            &owned
        }
    };
    let owned_raw;
    let raw = match raw.as_slice() {
        Some(s) => s,
        None => {
            owned_raw = raw.to_vec();
            &owned_raw
        }
    };
    const LANES: usize = 16;
    let mut lanes = [0.0f32; LANES];
    let mut observed = [0u32; LANES];
    let d = raw.len().min(reconstruction.len()).min(offset.len()).min(inverse.len());
    let mut start = 0;
    while start < d {
        let width = LANES.min(d - start);
        let (r, x, o, v) = (&reconstruction[start..], &raw[start..], &offset[start..], &inverse[start..]);
        for lane in 0..width {
            let present = !x[lane].is_nan();
            let e = r[lane] - scale_value(x[lane], o[lane], v[lane]);
            lanes[lane] += if present { e * e } else { 0.0 };
            observed[lane] += u32::from(present);
        }
        start += width;
    }
    let total = lane_total(lanes);
    let count: u32 = observed.iter().sum();
    total as f64 / count as f64
}

/// The sum of a row's sixteen score lanes, added pairwise (lane i + lane i+8, then i + i+4, ...): four
/// dependent additions instead of fifteen in a row, which had made the score pass wait on additions.
/// Every scoring path sums this way, so they agree to the bit.
#[inline(always)]
fn lane_total(lanes: [f32; 16]) -> f32 {
    let l = lanes;
    let e: [f32; 8] = std::array::from_fn(|i| l[i] + l[i + 8]);
    let q: [f32; 4] = std::array::from_fn(|i| e[i] + e[i + 4]);
    (q[0] + q[2]) + (q[1] + q[3])
}

/// A finite row can still square to infinity when it lies far outside the training range (say 1e30
/// where training saw units): such a score would be no number at all, so the row is an error instead.
fn check_scores_finite(scores: ArrayView1<f64>, at: usize) -> Result<()> {
    match scores.iter().position(|s| !s.is_finite()) {
        None => Ok(()),
        Some(i) => Err(AutoencError::InvalidInput(format!(
            "row {} overflows the network: its score is not a finite number (values far outside the training range)",
            at + i
        ))),
    }
}

/// One register of a row's score: `acc + e * e` with `e = (product + bias) - (raw - offset) * inverse`,
/// the operations `row_score` makes in each lane. The vector scorer below and the tiled kernel's fused
/// scorer both go through here, so neither can drift from `row_score`'s bits.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
pub(crate) fn add_squared_error<S: pulp::Simd>(
    simd: S,
    acc: S::f32s,
    product: S::f32s,
    bias: S::f32s,
    raw: S::f32s,
    offset: S::f32s,
    inverse: S::f32s,
) -> S::f32s {
    let error = simd.sub_f32s(simd.add_f32s(product, bias), simd.mul_f32s(simd.sub_f32s(raw, offset), inverse));
    simd.add_f32s(acc, simd.mul_f32s(error, error))
}

/// The arguments of [`complete_row_scores`], run with explicit AVX-512 vectors when the CPU has them.
struct CompleteRowScores<'a> {
    unbiased: &'a [f32],
    output_bias: &'a [f32],
    raw: &'a [f32],
    offset: &'a [f32],
    inverse: &'a [f32],
    scores: &'a mut [f64],
}

impl pulp::WithSimd for CompleteRowScores<'_> {
    type Output = ();

    /// With sixteen-lane vectors the lanes are exactly `row_score`'s, and pulp's horizontal sum adds
    /// them in `lane_total`'s order (halves, then quarters, then pairs), so the scores are the same bits
    /// as the array version's; the unit test `vector_scores_equal_row_score` holds it to that. Written
    /// out because the compiler's version of the array loop spent a sixth of a score call on bounds
    /// checks and shuffles. Other vector widths use the array version.
    #[inline(always)]
    fn with_simd<S: pulp::Simd>(self, simd: S) {
        const LANES: usize = 16;
        let CompleteRowScores { unbiased, output_bias, raw, offset, inverse, scores } = self;
        if std::mem::size_of::<S::f32s>() != LANES * std::mem::size_of::<f32>() {
            return complete_row_scores(unbiased, output_bias, raw, offset, inverse, scores);
        }
        let d = offset.len();
        let full = d - d % LANES;
        let (bias, _) = S::as_simd_f32s(&output_bias[..full]);
        let (offset_v, _) = S::as_simd_f32s(&offset[..full]);
        let (inverse_v, _) = S::as_simd_f32s(&inverse[..full]);
        let tail_bias = simd.partial_load_f32s(&output_bias[full..d]);
        let tail_offset = simd.partial_load_f32s(&offset[full..d]);
        let tail_inverse = simd.partial_load_f32s(&inverse[full..d]);
        for ((score, r), x) in scores.iter_mut().zip(unbiased.chunks_exact(d)).zip(raw.chunks_exact(d)) {
            let (r_v, r_tail) = S::as_simd_f32s(r);
            let (x_v, x_tail) = S::as_simd_f32s(x);
            let mut acc = simd.splat_f32s(0.0);
            for ((((&r, &x), &b), &o), &v) in r_v.iter().zip(x_v).zip(bias).zip(offset_v).zip(inverse_v) {
                acc = add_squared_error(simd, acc, r, b, x, o, v);
            }
            if full < d {
                // Padding lanes load as 0 and add 0 * 0 to lanes that hold +0 or more: no change.
                let (r, x) = (simd.partial_load_f32s(r_tail), simd.partial_load_f32s(x_tail));
                acc = add_squared_error(simd, acc, r, tail_bias, x, tail_offset, tail_inverse);
            }
            *score = simd.reduce_sum_f32s(acc) as f64 / d as f64;
        }
    }
}

/// [`row_score`] for a block of complete rows (no NaN), laid out contiguously, given the output layer's
/// product without its bias (`unbiased`) and the bias: each reconstruction value is finished here as
/// `product + bias`, exactly as the layer would have, then compared in the same sixteen lanes in the
/// same order, so each row's result is bit-identical to `row_score`'s on the finished reconstruction.
#[inline(always)]
fn complete_row_scores(
    unbiased: &[f32],
    output_bias: &[f32],
    raw: &[f32],
    offset: &[f32],
    inverse: &[f32],
    scores: &mut [f64],
) {
    const LANES: usize = 16;
    let d = offset.len();
    for (i, score) in scores.iter_mut().enumerate() {
        let (r, x) = (&unbiased[i * d..(i + 1) * d], &raw[i * d..(i + 1) * d]);
        let mut lanes = [0.0f32; LANES];
        let full = d - d % LANES;
        for start in (0..full).step_by(LANES) {
            let r: &[f32; LANES] = r[start..start + LANES].try_into().expect("sixteen values");
            let b: &[f32; LANES] = output_bias[start..start + LANES].try_into().expect("sixteen values");
            let x: &[f32; LANES] = x[start..start + LANES].try_into().expect("sixteen values");
            let o: &[f32; LANES] = offset[start..start + LANES].try_into().expect("sixteen values");
            let v: &[f32; LANES] = inverse[start..start + LANES].try_into().expect("sixteen values");
            for lane in 0..LANES {
                let e = (r[lane] + b[lane]) - scale_value(x[lane], o[lane], v[lane]);
                lanes[lane] += e * e;
            }
        }
        for (lane, j) in (full..d).enumerate() {
            let e = (r[j] + output_bias[j]) - scale_value(x[j], offset[j], inverse[j]);
            lanes[lane] += e * e;
        }
        let total = lane_total(lanes);
        *score = total as f64 / d as f64;
    }
}

/// The layers between raw input and code, with the scaler folded into the first.
struct CodePath<'a> {
    first: &'a Dense<f32>,
    first_activation: Activation,
    rest: Vec<(&'a Dense<f32>, Activation)>,
}

impl Autoencoder {
    fn code_path(&self) -> CodePath<'_> {
        let encoder = &self.network.encoder;
        let mut layers: Vec<(&Dense<f32>, Activation)> =
            encoder.layers.iter().zip(encoder.activations.iter().copied()).collect();
        if let Some(heads) = &self.network.heads {
            layers.push((&heads.mean, Activation::Identity));
        }
        let (first, first_activation) = layers.remove(0);
        let first = self.folded_first_layer.get_or_init(|| self.fold_scaler(first));
        CodePath { first, first_activation, rest: layers }
    }

    /// The first layer applied to raw rows: `((x - offset) * inverse) · W + b = x · W' + b'`.
    fn fold_scaler(&self, layer: &Dense<f32>) -> Dense<f32> {
        let inverse = self.scaler.inverse_scale();
        let mut folded = layer.clone();
        for (i, mut row) in folded.weight.rows_mut().into_iter().enumerate() {
            row.mapv_inplace(|w| w * inverse[i]);
        }
        for (j, b) in folded.bias.iter_mut().enumerate() {
            let shift: f64 = (0..layer.inputs())
                .map(|i| (self.scaler.offset[i] * inverse[i]) as f64 * layer.weight[(i, j)] as f64)
                .sum();
            *b = (*b as f64 - shift) as f32;
        }
        folded
    }

    /// Top-k sparsity: keeps the `k` code units of largest magnitude in each row (the others become 0),
    /// as training does; other variants leave the code alone.
    pub(super) fn mask_code(&self, mut code: ArrayViewMut2<f32>) {
        if let Variant::Sparse { sparsity: Sparsity::TopK { k } } = self.params.variant() {
            let keep = top_k_mask(code.view(), k);
            code *= &keep;
        }
    }

    /// The output layer's bias when the scorer may add it itself: the output activation is the
    /// identity, so the reconstruction is `product + bias` and nothing more.
    fn output_bias_for_scoring(&self) -> Option<&[f32]> {
        let decoder = &self.network.decoder;
        match (decoder.layers.last(), decoder.activations.last()) {
            (Some(layer), Some(Activation::Identity)) => layer.bias.as_slice(),
            _ => None,
        }
    }

    /// Runs the network on raw rows in scratch and hands `(code, reconstruction, suspect rows)` to
    /// `then`. The reconstruction (scaled units) is computed only when `decode` asks for it. Suspect
    /// rows had a non-finite first-layer output; their code and reconstruction are meaningless.
    fn forward_raw<R>(
        &self,
        rows: ArrayView2<f32>,
        decode: Decode,
        then: impl FnOnce(ArrayView2<f32>, Option<ArrayView2<f32>>, &[usize]) -> R,
    ) -> Result<R> {
        self.check_width(rows.ncols())?;
        let n = rows.nrows();
        let path = self.code_path();
        SCRATCH.with(|cell| {
            let mut buffers = cell.borrow_mut();
            let needed = 1 + path.rest.len() + self.network.decoder.layers.len();
            if buffers.len() < needed {
                buffers.resize_with(needed, Vec::new);
            }
            let mut width = path.first.outputs();
            let mut first = view_mut(&mut buffers[0], n, width);
            // NaN and infinity propagate through the product into the pre-activations, which the layer
            // probes in the same pass that adds the bias; rows are examined only when something is off.
            let clean = path.first.forward_activated_into(rows, first.view_mut(), path.first_activation);
            let suspect: Vec<usize> = if clean { Vec::new() } else { suspect_rows(path.first, rows) };
            // A one-layer encoder: the first layer's output is the code, masked before anything decodes it.
            if path.rest.is_empty() {
                self.mask_code(view_mut(&mut buffers[0], n, self.latent_size()));
            }

            // The layers after the first, without collecting them: a call on a few hundred rows is
            // short enough for allocations to show.
            let decoder = &self.network.decoder;
            let decoder_layers = match decode {
                Decode::No => 0,
                Decode::UpToOutput => decoder.layers.len().saturating_sub(1),
                Decode::Yes | Decode::WithoutOutputBias => decoder.layers.len(),
            };
            let code_layers = path.rest.len();
            let layer_count = code_layers + decoder_layers;
            let layers = path
                .rest
                .iter()
                .copied()
                .chain(decoder.layers.iter().zip(decoder.activations.iter().copied()).take(decoder_layers));
            let mut code_index = 0;
            for (i, (layer, activation)) in layers.enumerate() {
                let (done, rest) = buffers.split_at_mut(i + 1);
                let mut out = view_mut(&mut rest[0], n, layer.outputs());
                if decode == Decode::WithoutOutputBias && i + 1 == layer_count {
                    layer.product_into(view(&done[i], n, width), out.view_mut());
                } else {
                    layer.forward_activated_into(view(&done[i], n, width), out.view_mut(), activation);
                }
                if i + 1 == code_layers {
                    code_index = i + 1;
                    self.mask_code(out);
                }
                width = layer.outputs();
            }
            let code = view(&buffers[code_index], n, self.latent_size());
            let handed_over = match decode {
                Decode::UpToOutput => decoder.layers.last().map_or(self.n_features(), Dense::inputs),
                _ => self.n_features(),
            };
            let reconstruction = (decode != Decode::No).then(|| view(&buffers[layer_count], n, handed_over));
            Ok(then(code, reconstruction, &suspect))
        })
    }

    /// Code and scaled reconstruction of rows that had suspect first-layer outputs: an error for an
    /// infinity, iterative imputation for missing values.
    fn impute(
        &self,
        rows: ArrayView2<f32>,
        suspect: &[usize],
        row_offset: usize,
    ) -> Result<(Array2<f32>, Array2<f32>)> {
        let selected = rows.select(Axis(0), suspect);
        for (k, row) in selected.outer_iter().enumerate() {
            if let Some(j) = row.iter().position(|v| v.is_infinite()) {
                let row = row_offset + suspect[k];
                return Err(AutoencError::InfiniteValue { row, feature: self.feature_names[j].clone() });
            }
            if row.iter().all(|v| v.is_nan()) {
                return Err(AutoencError::AllMissing { row: row_offset + suspect[k] });
            }
            if !row.iter().any(|v| v.is_nan()) {
                return Err(AutoencError::InvalidInput(format!(
                    "row {} overflows the network (values far outside the training range)",
                    row_offset + suspect[k]
                )));
            }
        }
        let missing = selected.mapv(|v| v.is_nan());
        let mut filled = selected.clone();
        for (mut row, mask) in filled.outer_iter_mut().zip(missing.outer_iter()) {
            for ((v, &m), &off) in row.iter_mut().zip(mask).zip(&self.scaler.offset) {
                if m {
                    *v = off;
                }
            }
        }
        let forward = |filled: &Array2<f32>| -> Result<(Array2<f32>, Array2<f32>)> {
            self.forward_raw(filled.view(), Decode::Yes, |code, recon, bad| {
                if bad.is_empty() {
                    Ok((code.to_owned(), recon.expect("decoded").to_owned()))
                } else {
                    Err(AutoencError::InvalidInput(
                        "imputation diverged (values far outside the training range)".into(),
                    ))
                }
            })?
        };
        let (mut code, mut reconstruction) = forward(&filled)?;
        for _ in 0..IMPUTATION_ROUNDS {
            for ((mut row, mask), recon) in
                filled.outer_iter_mut().zip(missing.outer_iter()).zip(reconstruction.outer_iter())
            {
                for (j, (v, &m)) in row.iter_mut().zip(mask).enumerate() {
                    if m {
                        *v = recon[j] * self.scaler.scale[j] + self.scaler.offset[j];
                    }
                }
            }
            (code, reconstruction) = forward(&filled)?;
        }
        Ok((code, reconstruction))
    }

    /// Codes of up to [`CHUNK_ROWS`] rows whose first row is row `at` of the caller's input.
    fn encode_chunk(&self, rows: ArrayView2<f32>, at: usize) -> Result<Array2<f32>> {
        let (mut code, suspect) =
            self.forward_raw(rows, Decode::No, |code, _, suspect| (code.to_owned(), suspect.to_vec()))?;
        if !suspect.is_empty() {
            let (fixed, _) = self.impute(rows, &suspect, at)?;
            for (k, &i) in suspect.iter().enumerate() {
                code.row_mut(i).assign(&fixed.row(k));
            }
        }
        Ok(code)
    }

    /// Scores of up to [`CHUNK_ROWS`] rows whose first row is row `at` of the caller's input.
    fn score_chunk(&self, rows: ArrayView2<f32>, at: usize) -> Result<Array1<f64>> {
        let offset = self.scaler.offset.as_slice().expect("owned scaler is contiguous");
        let inverse = self.scaler.inverse_scale();
        let inverse = inverse.as_slice().expect("owned array is contiguous");
        // With an identity output the scorer adds the output bias itself, in the pass that compares
        // against the input, instead of the layer making one more pass over the reconstruction. The
        // sum `product + bias` is rounded the same way in either place, so the scores are the same.
        // Where the tiled kernel takes the output layer, it scores each tile straight from its
        // registers and the reconstruction is never stored.
        let fused_bias = self.output_bias_for_scoring();
        let output_layer = self.network.decoder.layers.last().expect("a decoder has at least one layer");
        let in_registers = fused_bias.is_some() && tiled::takes(output_layer.outputs());
        let decode = match (in_registers, fused_bias.is_some()) {
            (true, _) => Decode::UpToOutput,
            (false, true) => Decode::WithoutOutputBias,
            (false, false) => Decode::Yes,
        };
        let zeros = vec![0.0f32; if fused_bias.is_some() { 0 } else { self.n_features() }];
        let output_bias = fused_bias.unwrap_or(&zeros);
        let (mut scores, suspect) =
            self.forward_raw(rows, decode, |_, handed, suspect| {
                let handed = handed.expect("decoded");
                let mut scores = Array1::zeros(rows.nrows());
                if in_registers && suspect.is_empty() {
                    let slices =
                        (handed.as_slice(), output_layer.weight.as_slice(), rows.as_slice(), scores.as_slice_mut());
                    if let (Some(h), Some(w), Some(raw), Some(out)) = slices {
                        let finish = Finish::Score { bias: output_bias, raw, offset, inverse, scores: out };
                        if tiled_layer(h, w, output_layer.inputs(), output_layer.outputs(), finish).is_some() {
                            return (scores, Vec::new());
                        }
                    }
                }
                // Rows with missing values (or an input not laid out in rows): the output layer's
                // product, without its bias, for the general comparison below.
                let product;
                let recon = if in_registers {
                    let mut unbiased = Array2::zeros((rows.nrows(), output_layer.outputs()));
                    output_layer.product_into(handed, unbiased.view_mut());
                    product = unbiased;
                    product.view()
                } else {
                    handed
                };
                match (recon.as_slice(), rows.as_slice(), scores.as_slice_mut()) {
                    (Some(r), Some(x), Some(out)) if suspect.is_empty() => pulp::Arch::new()
                        .dispatch(CompleteRowScores { unbiased: r, output_bias, raw: x, offset, inverse, scores: out }),
                    _ => vectorized(
                        #[inline(always)]
                        || {
                            let mut finished = vec![0.0f32; output_bias.len()];
                            for i in 0..rows.nrows() {
                                for ((f, &r), &b) in finished.iter_mut().zip(recon.row(i)).zip(output_bias) {
                                    *f = r + b;
                                }
                                scores[i] = row_score(ArrayView1::from(&finished[..]), rows.row(i), offset, inverse);
                            }
                        },
                    ),
                }
                (scores, suspect.to_vec())
            })?;
        if !suspect.is_empty() {
            let (_, reconstruction) = self.impute(rows, &suspect, at)?;
            for (k, &i) in suspect.iter().enumerate() {
                scores[i] = row_score(reconstruction.row(k), rows.row(i), offset, inverse);
            }
        }
        check_scores_finite(scores.view(), at)?;
        Ok(scores)
    }

    /// Everything `score_details` returns, for up to [`CHUNK_ROWS`] rows starting at row `at`.
    fn score_details_chunk(&self, rows: ArrayView2<f32>, at: usize) -> Result<ScoreDetails> {
        let (mut embedding, mut reconstruction, suspect) =
            self.forward_raw(rows, Decode::Yes, |code, recon, suspect| {
                (code.to_owned(), recon.expect("decoded").to_owned(), suspect.to_vec())
            })?;
        if !suspect.is_empty() {
            let (code, recon) = self.impute(rows, &suspect, at)?;
            for (k, &i) in suspect.iter().enumerate() {
                embedding.row_mut(i).assign(&code.row(k));
                reconstruction.row_mut(i).assign(&recon.row(k));
            }
        }
        let offset = self.scaler.offset.as_slice().expect("owned scaler is contiguous");
        let inverse = self.scaler.inverse_scale();
        let inverse = inverse.as_slice().expect("owned array is contiguous");
        let mut feature_errors = Array2::zeros(reconstruction.raw_dim());
        for ((mut errors, recon), raw) in
            feature_errors.outer_iter_mut().zip(reconstruction.outer_iter()).zip(rows.outer_iter())
        {
            for (j, e) in errors.iter_mut().enumerate() {
                *e = if raw[j].is_nan() {
                    f32::NAN
                } else {
                    let d = recon[j] - scale_value(raw[j], offset[j], inverse[j]);
                    d * d
                };
            }
        }
        let scores: Array1<f64> =
            reconstruction.outer_iter().zip(rows.outer_iter()).map(|(r, x)| row_score(r, x, offset, inverse)).collect();
        check_scores_finite(scores.view(), at)?;
        Ok(ScoreDetails {
            embedding,
            reconstruction_scaled: reconstruction,
            feature_errors,
            scores,
            category_probability: None,
        })
    }
}

impl Autoencoder {
    /// Runs `work` on every block of [`CHUNK_ROWS`] rows, on up to `threads` threads, in order.
    fn chunked<T: Send>(
        &self,
        rows: ArrayView2<f32>,
        threads: usize,
        work: impl Fn(ArrayView2<f32>, usize) -> Result<T> + Sync,
    ) -> Result<Vec<T>> {
        self.check_width(rows.ncols())?;
        let n = rows.nrows();
        let results = in_blocks(n, threads, |at| work(rows.slice(ndarray::s![at..(at + CHUNK_ROWS).min(n), ..]), at))
            .ok_or_else(|| AutoencError::InvalidInput("a scoring thread panicked".into()))?;
        results.into_iter().collect()
    }

    /// Codes of `rows` (`(rows, latent)`); for a variational model, the posterior mean.
    pub fn encode(&self, rows: ArrayView2<f32>) -> Result<Array2<f32>> {
        self.encode_parallel(rows, 1)
    }

    /// [`Autoencoder::encode`] on up to `threads` threads; the result does not depend on `threads`.
    pub fn encode_parallel(&self, rows: ArrayView2<f32>, threads: usize) -> Result<Array2<f32>> {
        let blocks = self.chunked(rows, threads, |block, at| {
            if self.features.is_mixed() { self.mixed_encode_chunk(block, at) } else { self.encode_chunk(block, at) }
        })?;
        concatenate_rows(blocks, self.latent_size())
    }

    /// Anomaly scores of `rows`: the mean squared reconstruction error over observed features, in
    /// scaled units.
    pub fn score(&self, rows: ArrayView2<f32>) -> Result<Array1<f64>> {
        self.score_parallel(rows, 1)
    }

    /// [`Autoencoder::score`] on up to `threads` threads; the result does not depend on `threads`.
    pub fn score_parallel(&self, rows: ArrayView2<f32>, threads: usize) -> Result<Array1<f64>> {
        let mut blocks = self.chunked(rows, threads, |block, at| {
            if self.features.is_mixed() { self.mixed_score_chunk(block, at) } else { self.score_chunk(block, at) }
        })?;
        if blocks.len() == 1
            && let Some(only) = blocks.pop()
        {
            return Ok(only);
        }
        let mut scores = Vec::with_capacity(rows.nrows());
        for block in &blocks {
            scores.extend(block.iter());
        }
        Ok(Array1::from(scores))
    }

    /// Codes, reconstructions (scaled units), per-feature squared errors (NaN where the input was
    /// missing) and scores in one pass.
    pub fn score_details(&self, rows: ArrayView2<f32>) -> Result<ScoreDetails> {
        self.score_details_parallel(rows, 1)
    }

    /// [`Autoencoder::score_details`] on up to `threads` threads; the result does not depend on `threads`.
    pub fn score_details_parallel(&self, rows: ArrayView2<f32>, threads: usize) -> Result<ScoreDetails> {
        let blocks = self.chunked(rows, threads, |block, at| {
            if self.features.is_mixed() {
                self.mixed_score_details_chunk(block, at)
            } else {
                self.score_details_chunk(block, at)
            }
        })?;
        let scores = blocks.iter().flat_map(|b| b.scores.iter().copied()).collect();
        let (mut embedding, mut reconstruction, mut errors) = (Vec::new(), Vec::new(), Vec::new());
        let mut probability = Vec::new();
        for block in blocks {
            embedding.push(block.embedding);
            reconstruction.push(block.reconstruction_scaled);
            errors.push(block.feature_errors);
            probability.extend(block.category_probability);
        }
        let category_probability = match self.features.is_mixed() {
            true => Some(concatenate_rows(probability, self.n_features())?),
            false => None,
        };
        Ok(ScoreDetails {
            embedding: concatenate_rows(embedding, self.latent_size())?,
            reconstruction_scaled: concatenate_rows(reconstruction, self.n_features())?,
            feature_errors: concatenate_rows(errors, self.n_features())?,
            scores,
            category_probability,
        })
    }

    /// Reconstructions of `rows` in original units; missing inputs come back filled in.
    pub fn reconstruct(&self, rows: ArrayView2<f32>) -> Result<Array2<f32>> {
        let details = self.score_details(rows)?;
        Ok(self.scaler.inverse(details.reconstruction_scaled.view()))
    }
}

fn concatenate_rows(mut blocks: Vec<Array2<f32>>, width: usize) -> Result<Array2<f32>> {
    if blocks.len() == 1
        && let Some(only) = blocks.pop()
    {
        return Ok(only);
    }
    let views: Vec<ArrayView2<f32>> = blocks.iter().map(|b| b.view()).collect();
    if views.is_empty() {
        return Ok(Array2::zeros((0, width)));
    }
    ndarray::concatenate(Axis(0), &views).map_err(|e| AutoencError::InvalidInput(e.to_string()))
}

#[cfg(test)]
mod tests {
    use crate::{AutoencError, Autoencoder, LatentSize, Sparsity, Variant};
    use ndarray::{Array2, s};

    fn data() -> Array2<f32> {
        Array2::from_shape_fn((300, 6), |(i, j)| ((i * 7 + j * 3) % 11) as f32 * 0.3 + (j as f32).sin() * 10.0)
    }

    /// The vector scorer (rows of 32 and 40 features: whole vectors, and whole vectors plus a tail;
    /// output bias added by the scorer for an identity output, by the layer for a sigmoid one) gives
    /// the same bits as `row_score`, which `score_details` uses.
    #[test]
    fn vector_scores_equal_row_score() {
        for features in [32usize, 40] {
            let x = Array2::from_shape_fn((700, features), |(i, j)| {
                ((i * 31 + j * 17) % 23) as f32 * 0.13 + (j as f32 * 0.7).cos() * 3.0
            });
            for output in [crate::Activation::Identity, crate::Activation::Sigmoid] {
                let model = Autoencoder::params()
                    .variant(Variant::Plain)
                    .latent(LatentSize::Fixed(5))
                    .output_activation(output)
                    .epochs(2)
                    .fit(x.view())
                    .unwrap();
                let fast = model.score(x.view()).unwrap();
                let reference = model.score_details(x.view()).unwrap().scores;
                assert!(fast.iter().all(|s| s.is_finite() && *s > 0.0));
                assert_eq!(fast, reference, "{features} features, {output:?} output");
            }
        }
    }

    /// A row's score, code and reconstruction agree across methods exactly and across batches to f32
    /// precision, for every code-path shape (deep, top-k, variational with and without hidden layers),
    /// with 6 features (general products) and 32 (on AVX-512 the output layer is the tiled kernel's,
    /// scored in registers, and a chunk with a missing value takes the general path).
    #[test]
    fn results_do_not_depend_on_batch_or_method() {
        let wide =
            Array2::from_shape_fn((300, 32), |(i, j)| ((i * 7 + j * 3) % 11) as f32 * 0.3 + (j as f32).sin() * 10.0);
        for x in [data(), wide] {
            for (variant, hidden) in [
                (Variant::Plain, None),
                (Variant::Sparse { sparsity: Sparsity::TopK { k: 2 } }, None),
                (Variant::Sparse { sparsity: Sparsity::TopK { k: 2 } }, Some(vec![])),
                (Variant::Variational { beta: 1.0 }, None),
                (Variant::Variational { beta: 1.0 }, Some(vec![])),
                (Variant::Contractive { lambda: 0.1 }, None),
            ] {
                let model = Autoencoder::params()
                    .variant(variant)
                    .hidden(hidden)
                    .latent(LatentSize::Fixed(3))
                    .epochs(3)
                    .fit(x.view())
                    .unwrap();
                let all = model.score(x.view()).unwrap();
                let details = model.score_details(x.view()).unwrap();
                assert_eq!(all, details.scores, "{variant:?}");
                assert_eq!(model.encode(x.view()).unwrap(), details.embedding);
                // The reconstruction is the decoded code (for top-k: the masked code, as in training).
                let decoded = model.decode(details.embedding.view()).unwrap();
                let reconstructed = model.reconstruct(x.view()).unwrap();
                for (a, b) in reconstructed.iter().zip(&decoded) {
                    assert!(
                        (a - b).abs() <= 1e-4 * b.abs().max(1.0),
                        "{variant:?}, {} features: {a} vs {b}",
                        x.ncols()
                    );
                }
                for i in [0usize, 17, 299] {
                    let one = x.slice(s![i..i + 1, ..]);
                    let alone = model.score(one).unwrap()[0];
                    assert!(
                        (alone - all[i]).abs() <= 1e-5 * all[i].max(1e-3),
                        "{variant:?} row {i}: {alone} vs {}",
                        all[i]
                    );
                    for (a, b) in model.encode(one).unwrap().row(0).iter().zip(details.embedding.row(i)) {
                        assert!((a - b).abs() <= 1e-5 * b.abs().max(1.0), "{variant:?} row {i}: {a} vs {b}");
                    }
                }
                // Blocks on threads give the same numbers as one thread.
                let tall = Array2::from_shape_fn((28 * x.nrows(), x.ncols()), |(i, j)| x[(i % x.nrows(), j)]);
                assert!(tall.nrows() > super::CHUNK_ROWS);
                let one = model.score_details(tall.view()).unwrap();
                let two = model.score_details_parallel(tall.view(), 2).unwrap();
                assert_eq!(one.scores, two.scores);
                assert_eq!(one.embedding, two.embedding);
                assert_eq!(model.score_parallel(tall.view(), 3).unwrap(), one.scores);
                assert_eq!(model.encode_parallel(tall.view(), 2).unwrap(), one.embedding);
                // Rows beside a row with a missing value are unaffected by it.
                let mut holed = x.clone();
                holed[(5, 2)] = f32::NAN;
                let mixed = model.score(holed.view()).unwrap();
                assert_eq!(mixed[4], all[4], "same batch size, so bit-identical");
                assert_eq!(mixed[6], all[6]);
                assert!(mixed[5].is_finite());
            }
        }
    }

    /// Adapters share one model between threads (SQL partitions, stream workers).
    #[test]
    fn models_are_send_and_sync() {
        fn shareable<T: Send + Sync>() {}
        shareable::<Autoencoder>();
    }

    /// Errors name the row in the caller's input, not in the block.
    #[test]
    fn errors_name_rows_of_the_whole_input() {
        let x = data();
        let model =
            Autoencoder::params().variant(Variant::Plain).latent(LatentSize::Fixed(3)).epochs(1).fit(x.view()).unwrap();
        let mut tall = Array2::from_shape_fn((20_000, 6), |(i, j)| x[(i % 300, j)]);
        tall[(17_000, 4)] = f32::INFINITY;
        let err = model.score_parallel(tall.view(), 2).unwrap_err();
        assert!(matches!(err, AutoencError::InfiniteValue { row: 17_000, .. }), "{err}");
        // A finite value whose squared error overflows: an error naming the row, not an infinite score.
        tall[(17_000, 4)] = 1.0;
        tall[(12_345, 2)] = 3e38;
        for err in [
            model.score_parallel(tall.view(), 2).unwrap_err(),
            model.score_details_parallel(tall.view(), 2).unwrap_err(),
        ] {
            assert!(err.to_string().contains("row 12345 overflows"), "{err}");
        }
    }

    /// Training after a first use must not leave a stale folded layer behind.
    #[test]
    fn cached_first_layer_follows_training() {
        let x = data();
        let mut model =
            Autoencoder::params().variant(Variant::Plain).latent(LatentSize::Fixed(3)).epochs(1).fit(x.view()).unwrap();
        let before = model.encode(x.view()).unwrap();
        model.partial_fit(x.view()).unwrap();
        let after = model.encode(x.view()).unwrap();
        assert_ne!(before, after);
        let fresh = Autoencoder::from_bytes(&model.to_bytes().unwrap()).unwrap();
        assert_eq!(fresh.encode(x.view()).unwrap(), after);
    }

    /// The folded first layer equals scaling followed by the original layer.
    #[test]
    fn folded_scaler_matches_explicit_scaling() {
        let x = data();
        let model =
            Autoencoder::params().variant(Variant::Plain).latent(LatentSize::Fixed(3)).epochs(2).fit(x.view()).unwrap();
        let scaled = model.scaler().transform(x.view(), model.feature_names()).unwrap().values;
        let explicit = model.network().encode(scaled.view());
        let folded = model.encode(x.view()).unwrap();
        for (a, b) in explicit.iter().zip(folded.iter()) {
            assert!((a - b).abs() <= 1e-4 * a.abs().max(1.0), "{a} vs {b}");
        }
    }
}
